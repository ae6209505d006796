"""Checks that the Azure and GCS driver tests run alike on their own emulator.

They take the way objects get in as an argument: gcs-native objects are seeded through the sdk driver
(fake-gcs-server cannot take obstore's XML-API PUTs), Azure's through the backend under test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sbench.storage.base import AsyncBackend, Backend, ErrorClass, StorageError


def check_string_prefixes_and_recursive_rmdir(backend: Backend, put: Callable[[str, bytes], None]) -> None:
    """Prefixes are string prefixes (`run-` matches `run-1/` and `run-2/`), mkdir and a non-recursive rmdir
    are no-ops, and a recursive rmdir of `run-1` leaves `run-2` alone."""
    for key in ("run-1/a", "run-1/b/c", "run-2/a", "other"):
        put(key, b"x")
    assert sorted(k for k, _ in backend.list("run-")) == ["run-1/a", "run-1/b/c", "run-2/a"]
    assert sorted(k for k, _ in backend.list("run-", recursive=False)) == ["run-1/", "run-2/"]
    backend.mkdir("anything")  # a no-op on object stores
    backend.rmdir("run-1")  # not recursive: a no-op
    assert sorted(k for k, _ in backend.list("run-1/")) == ["run-1/a", "run-1/b/c"]
    backend.rmdir("run-1", recursive=True)
    assert sorted(k for k, _ in backend.list("")) == ["other", "run-2/a"]


async def check_async_reads_and_delete(backend: AsyncBackend) -> None:
    """The async API over `d/a` = b"alpha", `d/sub/b` = b"beta" and an empty `top`, seeded by the caller."""
    assert bytes(await backend.get_async("d/a")) == b"alpha"
    assert bytes(await backend.get_range_async("d/sub/b", 1, 2)) == b"et"
    listed = sorted([k async for k, _ in backend.list_async("", recursive=True)])
    assert listed == ["d/a", "d/sub/b", "top"]
    assert sorted([kv async for kv in backend.list_async("d/", recursive=False)]) == [
        ("d/a", 5), ("d/sub/", 0)]
    stat = await backend.stat_async("d/sub/b")
    assert (stat.key, stat.size) == ("d/sub/b", 4) and stat.etag and stat.mtime
    await backend.delete_async("d/a")
    with pytest.raises(StorageError) as info:
        await backend.delete_async("d/a")
    assert info.value.kind is ErrorClass.NOT_FOUND
