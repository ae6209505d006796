"""Capturing every storage call: a Backend wrapper that times each call and appends one tuple to a queue.

Where it goes: backends are opened in two places of the engine (engine.backends.BackendSet for workloads
and PUT cleanup, engine.prepare.ShardStorage for prepare and cleanup shards); each hands what it opens to
`wrap`, which returns the backend itself when no capture is active in this process (no wrapper, no cost)
and a `CapturedBackend` when one is. The generated worker loops bind the backend's methods when a stage
starts (engine.binding), so they bind the wrapper's. One capture per process, like s3dlio's global logger:
the in-process fleet installs it for the run, a Ray agent for its life, a Ray shard task for its duration.

What a call costs: two `time.time_ns()` reads, one thread-id read, a 9-tuple and a `deque.append`
(atomic under the GIL, so no lock, and a single queue drains without the race a per-thread list swap
has), and a length check. Failed calls go to a second queue with their exception, so the common path
never tests for one; a background thread turns exceptions into error text, with credentials removed,
dumps batches with marshal and compresses them (oplog.records), all in C where it can be. Formatting the
TSV rows waits until the capture closes (oplog.agentlog sorts the raw part into the log), off the run.

Memory is bounded: the queues hold at most `limit` calls (64 Ki, ~20 MB). A worker that finds them full
wakes the writer and waits until they are half empty: backpressure, never a dropped row. Every such wait
is counted and timed (`backpressure_waits`, `backpressure_s`) and the run reports them. Calls that end
after the capture closed (a call abandoned by a stopped stage) are counted as `late_calls`, not logged.

The raw tuple: (start_ns, end_ns, op code, site, key, bytes, n_objects, error, thread ident), `site` being
the (endpoint, file prefix) pair of the backend's root (oplog.format).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from sbench.oplog.format import (
    DELETE,
    GET,
    GET_RANGE,
    HEAD,
    LIST,
    MKDIR,
    OP_CODE,
    PUT,
    RMDIR,
    endpoint_of,
    error_text,
    file_prefix,
)
from sbench.storage.base import AsyncBackend, Backend, Buffer, ObjectStat

#: calls queued at most before workers wait for the writer
LIMIT = 65_536
#: how often the writer drains the queues when nobody waits
DRAIN_S = 0.05
#: longest time `flush` and `close` wait for the writer
FLUSH_TIMEOUT_S = 30.0

_now = time.time_ns
_ident = threading.get_ident
_GET, _GET_RANGE, _PUT, _LIST, _HEAD, _DELETE, _MKDIR, _RMDIR = (
    OP_CODE[name] for name in (GET, GET_RANGE, PUT, LIST, HEAD, DELETE, MKDIR, RMDIR)
)


class BatchSink(Protocol):
    """Where the writer puts each batch of calls: their times are corrected by subtracting `offset_ns`
    (this process's clock minus the driver's), `source` keeps thread idents of different processes apart."""

    def write(self, rows: list[tuple[Any, ...]], offset_ns: int, source: int) -> None: ...

    def close(self) -> None: ...


class Capture:
    """The queues every wrapped backend of this process appends to, and the thread that drains them."""

    def __init__(self, sink: BatchSink, *, limit: int = LIMIT, source: int = 0) -> None:
        self.sink = sink
        self.limit = limit
        self.source = source
        self.rows: deque[tuple[Any, ...]] = deque()
        self.failures: deque[tuple[Any, ...]] = deque()
        self.offset_ns = 0
        self.calls = 0
        self.backpressure_waits = 0
        self.backpressure_s = 0.0
        self.late_calls = 0
        #: why the sink stopped taking batches ("" while it works); the calls it could not take
        self.failed = ""
        self.unwritten = 0
        self.closed = False
        self._closing = False
        self._busy = False
        self._sites: dict[str, tuple[str, str]] = {}
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sbench-oplog-writer", daemon=True)
        self._thread.start()

    # -- wrapping --

    def site(self, root_uri: str) -> tuple[str, str]:
        """The (endpoint, file prefix) of a backend root, one shared tuple per root."""
        site = self._sites.get(root_uri)
        if site is None:
            site = self._sites[root_uri] = (endpoint_of(root_uri), file_prefix(root_uri))
        return site

    def wrap(self, backend: Backend) -> Backend:
        if isinstance(backend, CapturedBackend):
            return backend
        cls = CapturedAsyncBackend if backend.is_async else CapturedBackend
        return cls(backend, self)

    # -- the workers' side (rare paths) --

    def wait_room(self) -> None:
        """A worker found the queues full: wake the writer and wait until they are half empty. With the
        capture closed (or its writer gone), what is queued can never be written: it is counted instead."""
        if self.closed or not self._thread.is_alive():
            self.late_calls += len(self.rows) + len(self.failures)
            self.rows.clear()
            self.failures.clear()
            return
        began = time.monotonic()
        self._wake.set()
        with self._room:
            while len(self.rows) + len(self.failures) > self.limit // 2 and not self.closed:
                if not self._thread.is_alive():
                    break
                self._room.wait(0.1)
        self.backpressure_waits += 1
        self.backpressure_s += time.monotonic() - began

    # -- the writer --

    def _run(self) -> None:
        while True:
            self._wake.wait(DRAIN_S)
            self._wake.clear()
            closing = self._closing
            self._busy = True
            try:
                self._drain()
            finally:
                self._busy = False
            with self._room:
                self._room.notify_all()
            if closing and not self.rows and not self.failures:
                return

    def _drain(self) -> None:
        rows, failures = self.rows, self.failures
        n = len(rows)
        pop = rows.popleft
        batch = [pop() for _ in range(n)]
        for _ in range(len(failures)):
            t0, t1, code, site, key, nbytes, nobj, exc, ident = failures.popleft()
            batch.append((t0, t1, code, site, key, nbytes, nobj, error_text(exc), ident))
        if not batch:
            return
        self.calls += len(batch)
        if self.failed:
            self.unwritten += len(batch)
            return
        try:
            self.sink.write(batch, self.offset_ns, self.source)
        except Exception as exc:  # a full disk, a dead agent: the run goes on and reports what was lost
            self.failed = f"{type(exc).__name__}: {exc}"
            self.unwritten += len(batch)

    def flush(self) -> None:
        """Wait (bounded) until every call queued so far is in the sink."""
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        self._wake.set()
        with self._room:
            while (self.rows or self.failures or self._busy) and self._thread.is_alive():
                if time.monotonic() > deadline:
                    break
                self._wake.set()
                self._room.wait(0.05)

    def set_offset(self, offset_ns: int) -> None:
        """This process's clock minus the driver's, for calls from now on (the calls queued before keep
        the offset they were made under)."""
        self.flush()
        self.offset_ns = int(offset_ns)

    def close(self) -> None:
        """Drain the queues into the sink and close it; later calls are only counted (`late_calls`)."""
        if self.closed:
            return
        self._closing = True
        self._wake.set()
        self._thread.join(FLUSH_TIMEOUT_S)
        self.closed = True
        with self._room:
            self._room.notify_all()
        try:
            self.sink.close()
        except Exception as exc:  # the part could not be finished: say so, the run goes on
            self.failed = self.failed or f"{type(exc).__name__}: {exc}"

    def stats(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "backpressure_waits": self.backpressure_waits,
            "backpressure_s": round(self.backpressure_s, 3),
            "late_calls": self.late_calls,
            "unwritten": self.unwritten,
            "failed": self.failed,
        }


# -- the process's capture --

_active: Capture | None = None


def install(capture: Capture) -> None:
    global _active
    _active = capture


def uninstall(capture: Capture) -> None:
    global _active
    if _active is capture:
        _active = None


def active() -> Capture | None:
    return _active


def wrap(backend: Backend) -> Backend:
    """`backend` wrapped by this process's capture, or `backend` itself when none is active."""
    capture = _active
    return backend if capture is None else capture.wrap(backend)


# -- the wrapper --


class CapturedBackend(Backend):
    """A backend whose every call is timed and queued in a Capture; everything else is the inner one's."""

    def __init__(self, inner: Backend, capture: Capture) -> None:
        super().__init__(inner.root_uri)
        self.inner = inner
        self._get, self._put, self._stat, self._delete = inner.get, inner.put, inner.stat, inner.delete
        self.scheme = inner.scheme  # type: ignore[misc]
        self.has_directories = inner.has_directories  # type: ignore[misc]
        self.threads_cheaper = inner.threads_cheaper
        self._site = capture.site(inner.root_uri)
        self._q = capture.rows
        self._ok: Callable[[tuple[Any, ...]], None] = capture.rows.append
        self._fail: Callable[[tuple[Any, ...]], None] = capture.failures.append
        self._limit = capture.limit
        self._capture = capture

    def __getattr__(self, name: str) -> Any:  # driver-specific extras (`service`, `pinned`, ...)
        return getattr(self.inner, name)

    def _failed(self, t0: int, code: int, key: str, exc: BaseException) -> None:
        self._fail((t0, _now(), code, self._site, key, 0, 1, exc, _ident()))
        if len(self._capture.failures) >= self._limit:
            self._capture.wait_room()

    def get(self, key: str) -> Buffer:
        t0 = _now()
        try:
            data = self._get(key)
        except BaseException as exc:
            self._failed(t0, _GET, key, exc)
            raise
        self._ok((t0, _now(), _GET, self._site, key, len(data), 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()
        return data

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        t0 = _now()
        try:
            data = self.inner.get_range(key, offset, length)
        except BaseException as exc:
            self._failed(t0, _GET_RANGE, key, exc)
            raise
        self._ok((t0, _now(), _GET_RANGE, self._site, key, len(data), 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()
        return data

    def put(self, key: str, data: Buffer) -> None:
        t0 = _now()
        try:
            self._put(key, data)
        except BaseException as exc:
            self._failed(t0, _PUT, key, exc)
            raise
        self._ok((t0, _now(), _PUT, self._site, key, len(data), 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()

    def stat(self, key: str) -> ObjectStat:
        t0 = _now()
        try:
            st = self._stat(key)
        except BaseException as exc:
            self._failed(t0, _HEAD, key, exc)
            raise
        self._ok((t0, _now(), _HEAD, self._site, key, st.size, 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()
        return st

    def _void(self, code: int, key: str, call: Callable[[], None]) -> None:
        t0 = _now()
        try:
            call()
        except BaseException as exc:
            self._failed(t0, code, key, exc)
            raise
        self._ok((t0, _now(), code, self._site, key, 0, 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()

    def delete(self, key: str) -> None:
        t0 = _now()
        try:
            self._delete(key)
        except BaseException as exc:
            self._failed(t0, _DELETE, key, exc)
            raise
        self._ok((t0, _now(), _DELETE, self._site, key, 0, 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()

    def mkdir(self, path: str) -> None:
        self._void(_MKDIR, path, lambda: self.inner.mkdir(path))

    def rmdir(self, path: str, recursive: bool = False) -> None:
        self._void(_RMDIR, path, lambda: self.inner.rmdir(path, recursive))

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        """One LIST row per listing, from the call to the last entry (or to the caller dropping the
        iterator), `n_objects` the entries it yielded (s3dlio's list_stream)."""
        t0 = _now()
        count = 0
        try:
            for entry in self.inner.list(prefix, recursive):
                count += 1
                yield entry
        except GeneratorExit:
            self._listed(t0, prefix, count)
            raise
        except BaseException as exc:
            self._fail((t0, _now(), _LIST, self._site, prefix, 0, count, exc, _ident()))
            raise
        self._listed(t0, prefix, count)

    def _listed(self, t0: int, prefix: str, count: int) -> None:
        self._ok((t0, _now(), _LIST, self._site, prefix, 0, count, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()

    def close(self) -> None:
        self.inner.close()

    def uri_of(self, key: str) -> str:
        return self.inner.uri_of(key)


class CapturedAsyncBackend(CapturedBackend, AsyncBackend):
    """The same for a backend the engine drives with asyncio tasks (the native drivers)."""

    async def get_async(self, key: str) -> Buffer:
        t0 = _now()
        try:
            data = await self.inner.get_async(key)  # type: ignore[attr-defined]
        except BaseException as exc:
            self._failed(t0, _GET, key, exc)
            raise
        self._ok((t0, _now(), _GET, self._site, key, len(data), 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()
        return data

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        t0 = _now()
        try:
            data = await self.inner.get_range_async(key, offset, length)  # type: ignore[attr-defined]
        except BaseException as exc:
            self._failed(t0, _GET_RANGE, key, exc)
            raise
        self._ok((t0, _now(), _GET_RANGE, self._site, key, len(data), 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()
        return data

    async def put_async(self, key: str, data: Buffer) -> None:
        t0 = _now()
        try:
            await self.inner.put_async(key, data)  # type: ignore[attr-defined]
        except BaseException as exc:
            self._failed(t0, _PUT, key, exc)
            raise
        self._ok((t0, _now(), _PUT, self._site, key, len(data), 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()

    async def stat_async(self, key: str) -> ObjectStat:
        t0 = _now()
        try:
            st = await self.inner.stat_async(key)  # type: ignore[attr-defined]
        except BaseException as exc:
            self._failed(t0, _HEAD, key, exc)
            raise
        self._ok((t0, _now(), _HEAD, self._site, key, st.size, 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()
        return st

    async def delete_async(self, key: str) -> None:
        t0 = _now()
        try:
            await self.inner.delete_async(key)  # type: ignore[attr-defined]
        except BaseException as exc:
            self._failed(t0, _DELETE, key, exc)
            raise
        self._ok((t0, _now(), _DELETE, self._site, key, 0, 1, None, _ident()))
        if len(self._q) >= self._limit:
            self._capture.wait_room()

    async def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:  # type: ignore[override]
        t0 = _now()
        count = 0
        try:
            async for entry in self.inner.list_async(prefix, recursive):  # type: ignore[attr-defined]
                count += 1
                yield entry
        except GeneratorExit:
            self._listed(t0, prefix, count)
            raise
        except BaseException as exc:
            self._fail((t0, _now(), _LIST, self._site, prefix, 0, count, exc, _ident()))
            raise
        self._listed(t0, prefix, count)
