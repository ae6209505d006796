"""Storage backends behind one small protocol, chosen by URI scheme (see registry.py)."""

from sbench.storage.base import AsyncBackend, Backend, ErrorClass, ObjectStat, StorageError
from sbench.storage.registry import open_backend
from sbench.storage.uri import StorageUri, parse_uri

__all__ = [
    "AsyncBackend",
    "Backend",
    "ErrorClass",
    "ObjectStat",
    "StorageError",
    "StorageUri",
    "open_backend",
    "parse_uri",
]
