"""Recursive rmdir on object stores, shared by every cloud driver (S3, Azure, GCS; sdk and native).

Object stores have no directories, so `rmdir(path, recursive=True)` means "delete every key under `path/`".
The trailing slash matters (`rmdir("run-1")` must leave `run-10/` alone), and keys are handed out a listing
page at a time so memory stays bounded however many keys there are. Each driver deletes a batch its own way
(S3 DeleteObjects, Azure Blob Batch, obstore's bulk delete, or one DELETE per key on a thread pool).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from sbench.storage.base import Backend, ErrorClass, StorageError

#: Listing page size and delete batch size (1,000: the S3 DeleteObjects limit and every store's page size).
PAGE_SIZE = 1000


def as_directory(path: str) -> str:
    """`a/b` and `a/b/` -> `a/b/` (so `rmdir("run-1")` leaves `run-10/` alone); `` -> `` (the root)."""
    return path.strip("/") + "/" if path.strip("/") else ""


def batches_under(backend: Backend, path: str, size: int = PAGE_SIZE) -> Iterator[list[str]]:
    """The keys under directory `path` in lists of at most `size`; each list is deleted before the listing
    goes on, so at most one batch is held at a time."""
    batch: list[str] = []
    for key, _ in backend.list(as_directory(path), recursive=True):
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def delete_under(backend: Backend, path: str, workers: int) -> None:
    """Delete every object under `path` with `workers` threads, one DELETE per key (for clients without a
    bulk delete); a key deleted meanwhile by another worker is fine."""
    def delete(key: str) -> None:
        try:
            backend.delete(key)
        except StorageError as exc:
            if exc.kind is not ErrorClass.NOT_FOUND:
                raise

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sbench-rmdir") as pool:
        for batch in batches_under(backend, path):
            list(pool.map(delete, batch))
