"""The range engine: read one large object as concurrent ranged GETs (sai3 `range_engine`).

sai3 v0.8.60 applied `range_engine` to gs:// only; here every cloud driver (S3, Azure, GCS; sdk and
native) uses this one engine, so chunking, bounding and reassembly behave the same everywhere. A driver
supplies only a `fetch(offset, length)` callable (sync or async) for one ranged request and the object
size (from a HEAD); the engine plans the chunks, keeps at most `max_concurrent_ranges` of them in flight
for that object, copies each into one preallocated buffer and checks that every range came back whole.

The per-range deadline (`range_timeout_s`) belongs to the driver's fetch (a client or store configured
with that timeout), because only the client can abandon a request. The async form never leaves a request
running unawaited; the sync form cancels the ranges not yet started when one fails.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sbench.storage.base import Buffer, ErrorClass, StorageError
from sbench.storage.options import RangeSettings

Fetch = Callable[[int, int], Buffer]
AsyncFetch = Callable[[int, int], Awaitable[Buffer]]

#: Upper bound on the sync engine's shared thread pool, whatever concurrency x ranges asks for.
MAX_POOL_THREADS = 256


def split_ranges(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """(offset, length) pairs covering [0, size) in chunks of `chunk_size` (the last one shorter)."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return [(off, min(chunk_size, size - off)) for off in range(0, size, chunk_size)]


class RangeEngine:
    """Concurrent ranged reads of large objects; one per backend, shared by all its workers.

    `callers` is how many workers may read through the engine at once (the backend's concurrency); it sizes
    the sync form's thread pool so each caller can keep `max_concurrent_ranges` ranges in flight.
    """

    def __init__(self, settings: RangeSettings, callers: int = 1) -> None:
        if settings.chunk_size <= 0 or settings.max_concurrent_ranges <= 0:
            raise ValueError("range_engine chunk_size and max_concurrent_ranges must be positive")
        self.settings = settings
        self._pool_size = max(1, min(MAX_POOL_THREADS, settings.max_concurrent_ranges * max(1, callers)))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def applies(self, size: int) -> bool:
        """True when an object of `size` bytes should be read in ranges (enabled, large enough, and more
        than one chunk)."""
        s = self.settings
        return s.enabled and size >= s.min_split_size and size > s.chunk_size

    def read(self, fetch: Fetch, size: int, uri: str | None = None) -> bytearray:
        """Read `size` bytes with concurrent `fetch(offset, length)` calls from a thread pool."""
        out = bytearray(size)
        view = memoryview(out)
        pending = iter(split_ranges(size, self.settings.chunk_size))
        pool = self._executor()
        in_flight: dict[Future[Buffer], tuple[int, int]] = {}
        try:
            for offset, length in pending:
                in_flight[pool.submit(fetch, offset, length)] = (offset, length)
                if len(in_flight) >= self.settings.max_concurrent_ranges:
                    break
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    offset, length = in_flight.pop(fut)
                    _place(view, offset, length, fut.result(), uri)
                    nxt = next(pending, None)
                    if nxt is not None:
                        in_flight[pool.submit(fetch, *nxt)] = nxt
        finally:
            for fut in in_flight:
                fut.cancel()
        return out

    async def read_async(self, fetch: AsyncFetch, size: int, uri: str | None = None) -> bytearray:
        """Read `size` bytes with at most `max_concurrent_ranges` concurrent `await fetch(offset, length)`."""
        out = bytearray(size)
        view = memoryview(out)
        ranges = iter(split_ranges(size, self.settings.chunk_size))

        async def worker() -> None:
            # Each worker pulls the next range from the shared iterator: k workers = k ranges in flight.
            for offset, length in ranges:
                _place(view, offset, length, await fetch(offset, length), uri)

        n_workers = min(self.settings.max_concurrent_ranges, -(-size // self.settings.chunk_size))
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(n_workers):
                    group.create_task(worker())
        except BaseExceptionGroup as group_exc:
            raise _first_error(group_exc) from None
        return out

    def close(self) -> None:
        """Stop the sync form's threads (running ranges finish; none are started afterwards)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="sbench-range")
                pool = self._pool
        return pool


def _place(view: memoryview, offset: int, length: int, chunk: Buffer, uri: str | None) -> None:
    got = len(memoryview(chunk))
    if got != length:
        raise StorageError(
            ErrorClass.OTHER,
            f"ranged read at offset {offset} returned {got} bytes instead of {length} "
            f"(the object changed size during the read?)",
            uri=uri,
        )
    view[offset:offset + length] = chunk


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The first real failure of a TaskGroup (StorageError preferred), so callers see one classified error."""
    leaves: list[BaseException] = []
    todo: list[BaseException] = [group]
    while todo:
        cur = todo.pop(0)
        if isinstance(cur, BaseExceptionGroup):
            todo.extend(cur.exceptions)
        else:
            leaves.append(cur)
    for leaf in leaves:
        if isinstance(leaf, StorageError):
            return leaf
    return leaves[0]
