"""One namespace over several endpoints (sai3 `multi_endpoint`), with per-endpoint counters and latencies.

Every endpoint is assumed to serve the same objects (several gateways or NICs in front of one store, as in
sai3), so each call goes to exactly one endpoint chosen by the strategy:
- `round_robin`: endpoints in turn;
- `least_connections`: the endpoint with the fewest calls in flight (ties broken in turn).
An unknown strategy is a ConfigError (sai3 silently fell back to round_robin).

Per endpoint it counts requests, bytes read and written, errors and calls in flight, and records successful
call latencies in a LatencyHistogram; `endpoint_stats()` is a cumulative snapshot at any time and
`take_endpoint_interval()` the delta since the previous take (what interval snapshots carry). One uncontended
lock per endpoint keeps that exact without serialising calls to different endpoints.
"""

from __future__ import annotations

import difflib
import itertools
import threading
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sbench.errors import ConfigError
from sbench.metrics.histogram import LatencyHistogram
from sbench.storage.base import AsyncBackend, Backend, Buffer, ObjectStat
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend

T = TypeVar("T")


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_CONNECTIONS = "least_connections"


def parse_strategy(name: str | Strategy) -> Strategy:
    """The strategy named in a config; ConfigError with a did-you-mean for anything else."""
    try:
        return Strategy(str(name).strip().lower())
    except ValueError:
        choices = [s.value for s in Strategy]
        close = difflib.get_close_matches(str(name), choices, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"multi_endpoint.strategy: unknown load-balancing strategy {name!r}.",
            hint=f"{hint}Use one of: {', '.join(choices)}.",
        ) from None


@dataclass(slots=True)
class EndpointStats:
    """One endpoint's counters; plain and picklable, so it crosses Ray and lands in Snapshots as is."""

    uri: str
    requests: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0
    in_flight: int = 0
    #: encoded LatencyHistogram (µs) of successful calls; decode with LatencyHistogram.decode
    latency: bytes = b""
    index: int = 0


class _Endpoint:
    """Live counters of one endpoint, updated under `lock` (taken by its calls and by stats readers)."""

    __slots__ = (
        "backend",
        "bytes_read",
        "bytes_written",
        "errors",
        "hist",
        "in_flight",
        "index",
        "lock",
        "marks",
        "requests",
        "total_hist",
        "uri",
    )

    def __init__(self, backend: Backend, uri: str, index: int) -> None:
        self.backend = backend
        self.uri = uri
        self.index = index
        self.lock = threading.Lock()
        self.requests = self.bytes_read = self.bytes_written = self.errors = self.in_flight = 0
        self.hist = LatencyHistogram()  # since the last interval take
        self.total_hist = LatencyHistogram()  # everything before that
        self.marks = (0, 0, 0, 0)  # requests, bytes_read, bytes_written, errors at the last take

    def begin(self) -> int:
        with self.lock:
            self.in_flight += 1
        return time.perf_counter_ns()

    def done(self, start_ns: int, nread: int = 0, nwritten: int = 0) -> None:
        latency_us = (time.perf_counter_ns() - start_ns) // 1000
        with self.lock:
            self.in_flight -= 1
            self.requests += 1
            self.bytes_read += nread
            self.bytes_written += nwritten
            self.hist.record_us(latency_us)

    def failed(self) -> None:
        with self.lock:
            self.in_flight -= 1
            self.requests += 1
            self.errors += 1

    def cumulative(self) -> EndpointStats:
        with self.lock:
            hist = LatencyHistogram()
            hist.add(self.total_hist)
            hist.add(self.hist)
            return EndpointStats(
                self.uri, self.requests, self.bytes_read, self.bytes_written, self.errors, self.in_flight,
                hist.encode(), self.index,
            )

    def take_interval(self) -> EndpointStats:
        with self.lock:
            r, br, bw, e = self.marks
            stats = EndpointStats(
                self.uri, self.requests - r, self.bytes_read - br, self.bytes_written - bw, self.errors - e,
                self.in_flight, self.hist.encode(), self.index,
            )
            self.total_hist.add(self.hist)
            self.hist.reset()
            self.marks = (self.requests, self.bytes_read, self.bytes_written, self.errors)
            return stats


class _CountedCalls(Backend):
    """The Backend calls, each sent to the endpoint `_pick()` returns and counted on it."""

    @abstractmethod
    def _pick(self) -> _Endpoint:
        """The endpoint the next call goes to."""

    def _call(self, fn: Callable[[Backend], T], read: bool = False, nwritten: int = 0) -> T:
        ep = self._pick()
        start = ep.begin()
        try:
            result = fn(ep.backend)
        except BaseException:
            ep.failed()
            raise
        ep.done(start, len(result) if read else 0, nwritten)  # type: ignore[arg-type]
        return result

    def get(self, key: str) -> Buffer:
        return self._call(lambda b: b.get(key), read=True)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        return self._call(lambda b: b.get_range(key, offset, length), read=True)

    def put(self, key: str, data: Buffer) -> None:
        self._call(lambda b: b.put(key, data), nwritten=memoryview(data).nbytes)

    def stat(self, key: str) -> ObjectStat:
        return self._call(lambda b: b.stat(key))

    def delete(self, key: str) -> None:
        self._call(lambda b: b.delete(key))

    def mkdir(self, path: str) -> None:
        self._call(lambda b: b.mkdir(path))

    def rmdir(self, path: str, recursive: bool = False) -> None:
        self._call(lambda b: b.rmdir(path, recursive))

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        """One LIST on one endpoint; it counts as one request that stays in flight until the caller has
        consumed (or dropped) the iterator, with the whole iteration as its latency."""
        ep = self._pick()
        start = ep.begin()
        try:
            yield from ep.backend.list(prefix, recursive)
        except GeneratorExit:  # the caller stopped early: a finished request, not an error
            ep.done(start)
            raise
        except BaseException:
            ep.failed()
            raise
        ep.done(start)


class MultiEndpointBackend(_CountedCalls):
    """Routes each call to one of N backends that share a namespace, and measures every endpoint.

    Constructed over async-capable children (all AsyncBackend), it is an `AsyncMultiEndpointBackend`, so
    the engine can drive it with asyncio tasks like a single native backend.
    """

    scheme = "multi"

    def __new__(cls, backends: Sequence[Backend], *args: object, **kwargs: object) -> MultiEndpointBackend:
        if cls is MultiEndpointBackend and backends and all(b.is_async for b in backends):
            cls = AsyncMultiEndpointBackend
        return super().__new__(cls)

    def __init__(
        self, backends: Sequence[Backend], uris: Sequence[str], strategy: str | Strategy = "round_robin"
    ) -> None:
        if not backends:
            raise ConfigError(
                "multi_endpoint.endpoints is empty.", hint="List at least one endpoint URI under endpoints:."
            )
        if len(backends) != len(uris):
            raise ValueError(f"{len(backends)} backends but {len(uris)} endpoint URIs")
        super().__init__(uris[0])
        self.strategy = parse_strategy(strategy)
        self.has_directories = all(b.has_directories for b in backends)  # type: ignore[misc]
        self.threads_cheaper = all(b.threads_cheaper for b in backends)
        self._endpoints = [_Endpoint(b, u, i) for i, (b, u) in enumerate(zip(backends, uris, strict=True))]
        self._turn = itertools.count()  # next() on a count is atomic under the GIL
        least = self.strategy is Strategy.LEAST_CONNECTIONS
        self._pick = self._least_connections if least else self._round_robin

    # -- routing -----------------------------------------------------------------------------------------

    @property
    def endpoints(self) -> list[str]:
        return [ep.uri for ep in self._endpoints]

    @property
    def backends(self) -> list[Backend]:
        return [ep.backend for ep in self._endpoints]

    def _pick(self) -> _Endpoint:  # __init__ binds the configured strategy over this per instance
        return self._round_robin()

    def _round_robin(self) -> _Endpoint:
        return self._endpoints[next(self._turn) % len(self._endpoints)]

    def _least_connections(self) -> _Endpoint:
        # Ties take turns: starting the scan at a rotating index would send a busy endpoint's turns to
        # its neighbour, skewing the idle ones.
        eps = self._endpoints
        fewest = min(ep.in_flight for ep in eps)
        tied = [ep for ep in eps if ep.in_flight == fewest]
        return tied[next(self._turn) % len(tied)]

    def close(self) -> None:
        for ep in self._endpoints:
            ep.backend.close()

    # -- statistics --------------------------------------------------------------------------------------

    def endpoint_stats(self) -> list[EndpointStats]:
        """Cumulative counters and latencies of every endpoint since the backend was opened."""
        return [ep.cumulative() for ep in self._endpoints]

    def take_endpoint_interval(self) -> list[EndpointStats]:
        """Counters and latencies since the previous call (in_flight is the current value)."""
        return [ep.take_interval() for ep in self._endpoints]

    def pinned(self, index: int) -> Backend:
        """A backend that always uses endpoint `index` and still counts in this router's statistics.

        Prepare and cleanup place object i on endpoint i % n (as sai3 does) instead of letting the strategy
        choose, yet their per-endpoint stats must be measured the same way as the workload's.
        """
        return _PinnedEndpoint(self._endpoints[index])


class _PinnedEndpoint(_CountedCalls):
    """One endpoint of a router, addressed directly, with every call counted on that endpoint."""

    scheme = "multi"

    def __init__(self, endpoint: _Endpoint) -> None:
        super().__init__(endpoint.uri)
        self._ep = endpoint
        self.has_directories = endpoint.backend.has_directories  # type: ignore[misc]

    def _pick(self) -> _Endpoint:
        return self._ep

    def uri_of(self, key: str) -> str:
        return self._ep.backend.uri_of(key)


class AsyncMultiEndpointBackend(MultiEndpointBackend, AsyncBackend):
    """The multi-endpoint router over native (async) children; sync calls keep working too."""

    async def _acall(
        self, fn: Callable[[AsyncBackend], Awaitable[T]], read: bool = False, nwritten: int = 0
    ) -> T:
        ep = self._pick()
        start = ep.begin()
        try:
            result = await fn(ep.backend)  # type: ignore[arg-type]
        except BaseException:
            ep.failed()
            raise
        ep.done(start, len(result) if read else 0, nwritten)  # type: ignore[arg-type]
        return result

    async def get_async(self, key: str) -> Buffer:
        return await self._acall(lambda b: b.get_async(key), read=True)

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        return await self._acall(lambda b: b.get_range_async(key, offset, length), read=True)

    async def put_async(self, key: str, data: Buffer) -> None:
        await self._acall(lambda b: b.put_async(key, data), nwritten=memoryview(data).nbytes)

    async def stat_async(self, key: str) -> ObjectStat:
        return await self._acall(lambda b: b.stat_async(key))

    async def delete_async(self, key: str) -> None:
        await self._acall(lambda b: b.delete_async(key))

    async def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:
        ep = self._pick()
        start = ep.begin()
        try:
            async for item in ep.backend.list_async(prefix, recursive):  # type: ignore[attr-defined]
                yield item
        except GeneratorExit:
            ep.done(start)
            raise
        except BaseException:
            ep.failed()
            raise
        ep.done(start)


def open_multi(
    uris: Sequence[str], strategy: str | Strategy = "round_robin", options: BackendOptions | None = None
) -> MultiEndpointBackend:
    """Open every endpoint URI with the registry and route over them; closes what it opened on failure."""
    strategy = parse_strategy(strategy)  # fail on a bad name before opening any client
    opened: list[Backend] = []
    try:
        for uri in uris:
            opened.append(open_backend(uri, options))
        return MultiEndpointBackend(opened, list(uris), strategy)
    except BaseException:
        for backend in opened:
            backend.close()
        raise
