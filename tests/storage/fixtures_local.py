"""Contract-suite fixtures for file:// and direct://, and helpers every backend case shares.

The cloud fixture modules (`fixtures_s3`, `fixtures_cloud`) import `Seeder` and `put_many` from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from sbench.errors import ConfigError
from sbench.storage.base import Backend, Buffer, StorageError
from sbench.storage.registry import open_backend


@dataclass(frozen=True)
class Seeder:
    """How a contract test creates objects for a case.

    `put` writes a key relative to the backend root. `put_skip_reason` is set when the backend under test
    cannot PUT on the test server (its objects are created through another client instead), so PUT-specific
    checks skip with that reason.
    """

    put: Callable[[str, Buffer], None]
    put_skip_reason: str | None = None


def put_many(
    put: Callable[[str, Buffer], None], items: Iterable[tuple[str, Buffer]], threads: int = 16
) -> int:
    """Write many small objects through a thread pool (2,500 sequential PUTs to an emulator take too long)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(1 for _ in pool.map(lambda kv: put(*kv), items))


def unique_prefix(label: str = "t") -> str:
    """A fresh prefix name so tests sharing one bucket never see each other's objects."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backend_file(tmp_path: Path) -> Iterator[Backend]:
    root = tmp_path / "file-root"
    root.mkdir()
    backend = open_backend(f"file://{root}/")
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def backend_direct(tmp_path: Path) -> Iterator[Backend]:
    root = tmp_path / "direct-root"
    root.mkdir()
    backend = open_backend(f"direct://{root}/")
    try:
        backend.put(".probe", b"x")  # a file system that refuses O_DIRECT says so here, with its path
        backend.delete(".probe")
    except (ConfigError, StorageError) as exc:
        backend.close()
        pytest.skip(f"direct: {tmp_path} does not allow O_DIRECT: {exc}")
    try:
        yield backend
    finally:
        backend.close()
