"""Multi-endpoint routing over real file roots: strategies, exact per-endpoint counters, intervals."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sbench.errors import ConfigError
from sbench.metrics.histogram import LatencyHistogram
from sbench.storage.base import AsyncBackend, Backend, Buffer, ObjectStat
from sbench.storage.file import FileBackend
from sbench.storage.multi import (
    AsyncMultiEndpointBackend,
    EndpointStats,
    MultiEndpointBackend,
    open_multi,
    parse_strategy,
)
from sbench.storage.options import BackendOptions
from sbench.storage.uri import parse_uri
from tests.storage.fixtures_local import exercise_multi


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / f"ep{i}" for i in range(3)]
    for p in paths:
        p.mkdir()
    return paths


def _uris(roots: list[Path]) -> list[str]:
    return [f"file://{p}/" for p in roots]


def test_round_robin_counters_over_three_file_roots(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots), "round_robin")
    stats = exercise_multi(multi)
    # Each PUT through the router landed in exactly one root, and that root's bytes match its counter.
    for root, ep in zip(roots, stats, strict=True):
        written = sum(f.stat().st_size for f in (root / "mx").glob("new-*"))
        assert written == ep.bytes_written
    new_files = [sorted(f.name for f in (r / "mx").glob("new-*")) for r in roots]
    assert sum(len(f) for f in new_files) == 7
    assert len({name for names in new_files for name in names}) == 7


def test_least_connections_avoids_busy_endpoint(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots), "least_connections")
    for root in roots:
        (root / "a").write_bytes(b"1")
        (root / "b").write_bytes(b"2")
    listing = multi.list("", recursive=True)
    next(listing)  # a LIST stays in flight until the iterator is drained
    busy = [s.index for s in multi.endpoint_stats() if s.in_flight == 1]
    assert len(busy) == 1
    for _ in range(6):
        multi.get("a")
    by_index = {s.index: s for s in multi.endpoint_stats()}
    assert by_index[busy[0]].requests == 0  # still open, not counted, and never chosen while others idle
    assert sorted(s.requests for i, s in by_index.items() if i != busy[0]) == [3, 3]
    list(listing)
    assert all(s.in_flight == 0 for s in multi.endpoint_stats())
    assert by_index[busy[0]].uri in multi.endpoints


def test_early_stopped_listing_is_not_an_error(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots))
    for root in roots:
        for i in range(5):
            (root / f"f{i}").write_bytes(b"x")
    listing = multi.list("", recursive=True)
    next(listing)
    listing.close()
    stats = multi.endpoint_stats()
    assert sum(s.requests for s in stats) == 1 and sum(s.errors for s in stats) == 0


@pytest.mark.parametrize("name", ["round-robin", "least_conn", "random", ""])
def test_unknown_strategy_is_config_error(roots: list[Path], name: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        open_multi(_uris(roots), name)
    assert "multi_endpoint.strategy" in str(excinfo.value)
    assert "round_robin" in str(excinfo.value)


def test_did_you_mean() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_strategy("round-robin")
    assert "Did you mean 'round_robin'" in str(excinfo.value)
    assert parse_strategy("Least_Connections").value == "least_connections"


def test_no_endpoints_is_config_error() -> None:
    with pytest.raises(ConfigError):
        open_multi([], "round_robin")


def test_intervals_are_deltas(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots))
    for i in range(6):
        multi.put(f"k{i}", b"abcd")
    first = multi.take_endpoint_interval()
    assert [s.requests for s in first] == [2, 2, 2]
    assert [s.bytes_written for s in first] == [8, 8, 8]
    assert all(LatencyHistogram.decode(s.latency).count == 2 for s in first)
    multi.put("k9", b"zz")
    second = multi.take_endpoint_interval()
    assert [s.requests for s in second] == [1, 0, 0]
    assert [LatencyHistogram.decode(s.latency).count for s in second] == [1, 0, 0]
    total = multi.endpoint_stats()
    assert [s.requests for s in total] == [3, 2, 2]
    assert [LatencyHistogram.decode(s.latency).count for s in total] == [3, 2, 2]


def test_stats_are_picklable(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots))
    multi.put("x", b"1")
    stats = multi.endpoint_stats()
    assert pickle.loads(pickle.dumps(stats)) == stats
    assert isinstance(stats[0], EndpointStats)


def test_thread_safe_counting(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots), "least_connections")
    for root in roots:
        (root / "obj").write_bytes(b"x" * 100)
    threads, per_thread = 8, 300

    def work() -> None:
        for _ in range(per_thread):
            multi.get("obj")

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stats = multi.endpoint_stats()
    assert sum(s.requests for s in stats) == threads * per_thread
    assert sum(s.bytes_read for s in stats) == threads * per_thread * 100
    assert sum(LatencyHistogram.decode(s.latency).count for s in stats) == threads * per_thread
    assert all(s.in_flight == 0 for s in stats)


def test_sync_children_give_sync_router(roots: list[Path]) -> None:
    multi = open_multi(_uris(roots))
    assert type(multi) is MultiEndpointBackend and not multi.is_async
    assert multi.has_directories


class _ThreadedAsyncFile(AsyncBackend):
    """file:// driven through asyncio.to_thread: a real AsyncBackend for routing tests (the native cloud
    drivers are the production async backends; they are exercised by their own tests)."""

    scheme = "file"

    def __init__(self, inner: FileBackend) -> None:
        super().__init__(inner.root_uri)
        self.inner = inner

    def get(self, key: str) -> Buffer:
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        return self.inner.get_range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        self.inner.put(key, data)

    def list(self, prefix: str = "", recursive: bool = True):
        return self.inner.list(prefix, recursive)

    def stat(self, key: str) -> ObjectStat:
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(path)

    def rmdir(self, path: str, recursive: bool = False) -> None:
        self.inner.rmdir(path, recursive)

    async def get_async(self, key: str) -> Buffer:
        return await asyncio.to_thread(self.inner.get, key)

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        return await asyncio.to_thread(self.inner.get_range, key, offset, length)

    async def put_async(self, key: str, data: Buffer) -> None:
        await asyncio.to_thread(self.inner.put, key, data)

    async def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:
        for item in await asyncio.to_thread(lambda: list(self.inner.list(prefix, recursive))):
            yield item

    async def stat_async(self, key: str) -> ObjectStat:
        return await asyncio.to_thread(self.inner.stat, key)

    async def delete_async(self, key: str) -> None:
        await asyncio.to_thread(self.inner.delete, key)


def test_async_router_over_async_children(roots: list[Path]) -> None:
    children: list[Backend] = [
        _ThreadedAsyncFile(FileBackend(parse_uri(u), BackendOptions())) for u in _uris(roots)
    ]
    multi = MultiEndpointBackend(children, _uris(roots), "round_robin")
    assert isinstance(multi, AsyncMultiEndpointBackend) and multi.is_async
    exercise_multi(multi, use_async=True)
    multi = MultiEndpointBackend(children, _uris(roots), "round_robin")

    async def scenario() -> None:
        await asyncio.gather(*(multi.put_async(f"k{i}", b"x" * i) for i in range(9)))
        for child in children:  # reads below may be routed to any root: make every root hold every key
            for i in range(9):
                child.put(f"k{i}", b"x" * i)
        got = await asyncio.gather(*(multi.get_async(f"k{i}") for i in range(9)))
        assert [len(g) for g in got] == list(range(9))
        assert (await multi.stat_async("k3")).size == 3
        assert len([k async for k, _ in multi.list_async("k", recursive=True)]) == 9
        await multi.delete_async("k1")

    asyncio.run(scenario())
    stats = multi.endpoint_stats()
    assert [s.requests for s in stats] == [7, 7, 7]  # 21 calls in turn
    assert sum(s.bytes_written for s in stats) == sum(range(9))
    assert sum(s.bytes_read for s in stats) == sum(range(9))


def test_bad_endpoint_uri_is_config_error(roots: list[Path]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        open_multi([*_uris(roots), "file://relative/path"])
    assert "'relative'" in str(excinfo.value)
