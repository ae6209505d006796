"""Storage backends behind one small protocol, chosen by URI scheme (see registry.py)."""

from sbench.storage.base import AsyncBackend, Backend, ErrorClass, ObjectStat, StorageError

__all__ = ["AsyncBackend", "Backend", "ErrorClass", "ObjectStat", "StorageError"]
