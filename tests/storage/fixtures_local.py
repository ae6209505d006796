"""Contract-suite fixtures for file:// and direct://, and helpers every backend case shares.

The cloud fixture modules (`fixtures_s3`, `fixtures_cloud`) import `Seeder`, `put_many`, `unique_prefix` and
`exercise_multi` from here.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sbench.errors import ConfigError
from sbench.metrics.histogram import LatencyHistogram
from sbench.storage.base import Backend, Buffer, ErrorClass, StorageError
from sbench.storage.multi import EndpointStats, MultiEndpointBackend, Strategy
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


def exercise_multi(
    multi: MultiEndpointBackend, prefix: str = "mx", *, use_async: bool = False
) -> list[EndpointStats]:
    """Drive a known sequence of calls through a fresh round_robin MultiEndpointBackend and assert that every
    endpoint's counters match the calls routed to it (call i goes to endpoint i % n).

    Objects are first written to every child directly (not counted), so the check also works where the
    endpoints are separate namespaces (several file roots). Used for three file roots here and for two S3
    endpoints by the S3 fixtures. `use_async` makes the same calls through the `*_async` methods (for a
    router over native drivers). Returns the final cumulative stats for extra checks by the caller.
    """
    loop = asyncio.new_event_loop() if use_async else None
    try:
        return _exercise_multi(multi, prefix, loop)
    finally:
        if loop is not None:
            loop.close()


def _exercise_multi(
    multi: MultiEndpointBackend, prefix: str, loop: asyncio.AbstractEventLoop | None
) -> list[EndpointStats]:
    def call(name: str, *args: object) -> Any:
        if loop is None:
            return getattr(multi, name)(*args)
        return loop.run_until_complete(getattr(multi, name + "_async")(*args))

    def listing(list_prefix: str) -> list[tuple[str, int]]:
        if loop is None:
            return list(multi.list(list_prefix, recursive=True))

        async def collect() -> list[tuple[str, int]]:
            return [kv async for kv in multi.list_async(list_prefix, recursive=True)]  # type: ignore[attr-defined]

        return loop.run_until_complete(collect())

    backends = multi.backends
    n = len(backends)
    assert multi.strategy is Strategy.ROUND_ROBIN
    assert all(s.requests == 0 for s in multi.endpoint_stats()), "exercise_multi needs a fresh backend"
    keys = [f"{prefix}/k{i}" for i in range(2 * n + 1)]
    payload = os.urandom(3000)
    for child in backends:
        put_many(child.put, ((key, payload[: 1000 + i]) for i, key in enumerate(keys)), threads=4)

    expected = [EndpointStats(uri=uri, index=i) for i, uri in enumerate(multi.endpoints)]
    turn = 0

    def routed(nread: int = 0, nwritten: int = 0, error: bool = False) -> None:
        nonlocal turn
        e = expected[turn % n]
        e.requests += 1
        e.bytes_read += nread
        e.bytes_written += nwritten
        e.errors += int(error)
        turn += 1

    for i, key in enumerate(keys):
        size = 1000 + i
        assert bytes(call("get", key)) == payload[:size]
        routed(nread=size)
        assert bytes(call("get_range", key, 5, 10)) == payload[5:15]
        routed(nread=10)
        assert call("stat", key).size == size
        routed()
        call("put", f"{prefix}/new-{i}", memoryview(payload)[:i])
        routed(nwritten=i)
    for _ in range(n):
        try:
            call("stat", f"{prefix}/missing")
        except StorageError as exc:
            assert exc.kind is ErrorClass.NOT_FOUND
        else:
            raise AssertionError("stat of a missing key did not fail")
        routed(error=True)
    for _ in range(n):
        assert {k for k, _ in listing(f"{prefix}/k")} == set(keys)
        routed()

    got = multi.endpoint_stats()
    for stats, want in zip(got, expected, strict=True):
        assert (stats.uri, stats.requests, stats.bytes_read, stats.bytes_written, stats.errors) == (
            want.uri, want.requests, want.bytes_read, want.bytes_written, want.errors,
        ), stats
        assert stats.in_flight == 0
        assert LatencyHistogram.decode(stats.latency).count == want.requests - want.errors
    return got
