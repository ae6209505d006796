"""`workers.mode`'s rule (engine.workermode): `auto` picks threads on the native S3 driver up to
THREADS_MAX_WORKERS workers, objects of THREADS_MAX_OBJECT bytes and THREADS_MAX_IN_FLIGHT bytes in
flight, asyncio tasks beyond any limit,
for unknown sizes, with uvloop, and on every other async backend; `threads` and `asyncio` are followed as
given, and `asyncio` where a store has no async calls is refused at load time."""

from __future__ import annotations

import pytest

from sbench.engine.workermode import (
    THREADS_MAX_IN_FLIGHT,
    THREADS_MAX_OBJECT,
    THREADS_MAX_WORKERS,
    choose_workers,
    largest_object,
)
from sbench.errors import ConfigError
from sbench.layout.paths import resolve_pool
from sbench.oplog.capture import Capture
from sbench.storage.azure_native import AzureNativeBackend
from sbench.storage.base import Backend
from sbench.storage.file import FileBackend
from sbench.storage.gcs_native import GcsNativeBackend
from sbench.storage.multi import MultiEndpointBackend
from sbench.storage.null import NullAsyncBackend, NullBackend
from sbench.storage.options import BackendOptions
from sbench.storage.s3_native import S3NativeBackend
from sbench.storage.uri import parse_uri
from tests.engine.helpers import config_from


class Discard:
    """An op-log sink that keeps nothing (these tests make no calls)."""

    def write(self, rows: list[tuple[object, ...]], offset_ns: int, source: int) -> None:
        del rows

    def close(self) -> None:
        return None


class S3Like(NullAsyncBackend):
    """An async backend that says what the native S3 driver says: its sync calls are the cheaper ones."""

    threads_cheaper = True


def _null(cls: type[NullBackend], name: str = "null:///wm/") -> NullBackend:
    return cls(parse_uri(name), BackendOptions())


def _config(*, get: str | None = "4KiB", put: str | None = "4KiB", workers: str = "") -> object:
    entry = f"{{base_uri: 'null:///wm/d/', count: 4, size_spec: {get}}}"
    prepare = f"prepare:\n  ensure_objects:\n    - {entry}\n"
    # the config's driver does not matter to the rule (it gets the opened backends); native lets
    # `mode: asyncio` load on null://
    ops = []
    if get is not None:
        ops.append("  - {op: get, path: 'd/', weight: 1}")
    if put is not None:
        key = "size_spec" if put.startswith("{") else "object_size"
        ops.append(f"  - {{op: put, path: 'p/', weight: 1, {key}: {put}}}")
    return config_from(
        "target: null:///wm/\nconcurrency: 4\nduration: 1s\ndriver: native\n"
        + (workers and f"workers: {workers}\n")
        + (prepare if get not in (None, "none") else "")
        + "workload:\n" + "\n".join(ops) + "\n"
    )


def _choose(config: object, backend: Backend, workers: int = 16) -> tuple[str, str]:
    choice = choose_workers(config, [backend], backend.is_async, workers)  # type: ignore[arg-type]
    return choice.mode, choice.why


def test_only_the_native_s3_driver_says_threads_are_cheaper() -> None:
    """The measured driver opts in; the native Azure and GCS drivers and null:// keep asyncio tasks."""
    assert S3NativeBackend.threads_cheaper is True
    assert not any(c.threads_cheaper for c in (AzureNativeBackend, GcsNativeBackend, NullAsyncBackend,
                                                NullBackend, FileBackend))


@pytest.mark.parametrize(("workers", "size", "mode"), [
    (1, "4KiB", "threads"),
    (16, "4KiB", "threads"),
    (THREADS_MAX_WORKERS, "4KiB", "threads"),
    (THREADS_MAX_IN_FLIGHT // THREADS_MAX_OBJECT, str(THREADS_MAX_OBJECT), "threads"),
    (THREADS_MAX_IN_FLIGHT // THREADS_MAX_OBJECT + 1, str(THREADS_MAX_OBJECT), "asyncio"),
    (THREADS_MAX_WORKERS, str(THREADS_MAX_OBJECT), "asyncio"),
    (THREADS_MAX_WORKERS + 1, "4KiB", "asyncio"),
    (16, str(THREADS_MAX_OBJECT + 1), "asyncio"),
    (16, "16MiB", "asyncio"),
    (1000, "16MiB", "asyncio"),
])
def test_auto_over_workers_and_sizes(workers: int, size: str, mode: str) -> None:
    """Within all three limits threads, beyond any asyncio tasks; a larger GET or a larger PUT alike."""
    backend = _null(S3Like)
    assert _choose(_config(get=size, put="4KiB"), backend, workers)[0] == mode
    assert _choose(_config(get="4KiB", put=size), backend, workers)[0] == mode
    assert _choose(_config(get=None, put=size), backend, workers)[0] == mode
    assert _choose(_config(get=size, put=None), backend, workers)[0] == mode


def test_auto_keeps_asyncio_where_threads_are_not_measured_cheaper() -> None:
    """null:// with its async driver (its asyncio ceiling), uvloop asked for, sizes the config does not
    know (a GET with no prepare), and a multi-endpoint router with one child that is not the S3 driver."""
    small = _config()
    assert _choose(small, _null(NullAsyncBackend)) == (
        "asyncio", "auto: not every backend measured cheaper on threads")
    assert _choose(_config(workers="{event_loop: uvloop}"), _null(S3Like)) == (
        "asyncio", "auto: event_loop uvloop")
    unknown = ("asyncio", "auto: object sizes unknown (GETs of keys not listed nor prepared)")
    assert _choose(_config(get="none"), _null(S3Like)) == unknown
    mixed = MultiEndpointBackend([_null(S3Like), _null(NullAsyncBackend, "null:///wm2/")],
                                 ["null:///wm/", "null:///wm2/"])
    assert mixed.is_async and _choose(small, mixed)[0] == "asyncio"
    both = MultiEndpointBackend([_null(S3Like), _null(S3Like, "null:///wm2/")], ["null:///wm/", "null:///wm2/"])
    assert _choose(small, both)[0] == "threads"


def test_capture_wrapper_keeps_the_inner_backends_answer() -> None:
    """An op-log capture wraps every backend: the choice must not change when one is on."""
    capture = Capture(Discard())
    try:
        assert _choose(_config(), capture.wrap(_null(S3Like)))[0] == "threads"
        assert _choose(_config(), capture.wrap(_null(NullAsyncBackend)))[0] == "asyncio"
    finally:
        capture.close()


def test_explicit_modes_are_followed() -> None:
    """`threads` and `asyncio` are the user's choice over any size or count; `asyncio` on a backend without
    async calls is refused, naming it; `auto` there runs threads, as before."""
    assert _choose(_config(get="16MiB", workers="{mode: threads}"), _null(NullAsyncBackend), 5000) == (
        "threads", "workers.mode: threads")
    pinned = _config(workers="{mode: asyncio}")
    assert _choose(pinned, _null(S3Like), 1) == ("asyncio", "workers.mode: asyncio")
    with pytest.raises(ConfigError, match=r"workers\.mode: asyncio needs async calls.*none on null://+wm"):
        _choose(pinned, _null(NullBackend))
    assert _choose(_config(), _null(NullBackend)) == ("threads", "auto: a backend without async calls")


def test_largest_object_as_the_config_knows_it() -> None:
    """PUT sizes and, when the workload reads, every prepared size; unknown when a GET has no prepare; a
    uniform size counts by its maximum."""
    assert largest_object(_config(get="4KiB", put="1MiB")) == 1 << 20
    assert largest_object(_config(get="16MiB", put="4KiB")) == 16 << 20
    assert largest_object(_config(get=None, put="{type: uniform, min: 1KiB, max: 2MiB}")) == 2 << 20
    assert largest_object(_config(get="none", put="4KiB")) is None


def test_listed_gets_give_their_sizes() -> None:
    """GETs of keys found by LIST (no prepare): the listing's largest size decides; a GET whose keys were
    not listed falls back to the prepared sizes, and without a prepare the size stays unknown."""
    assert largest_object(_config(get="none", put="4KiB"), [8192]) == 8192
    assert largest_object(_config(get="none", put="4KiB"), [None]) is None
    assert largest_object(_config(get="16MiB", put="4KiB"), [None]) == 16 << 20
    assert largest_object(_config(get="16MiB", put="4KiB"), [2 << 20]) == 2 << 20
    backend = _null(S3Like)
    listed = choose_workers(_config(get="none"), [backend], True, 16, [4096])  # type: ignore[arg-type]
    assert listed.mode == "threads"
    big = choose_workers(_config(get="none"), [backend], True, 16, [16 << 20])  # type: ignore[arg-type]
    assert big.mode == "asyncio"


def test_a_listed_pool_knows_its_largest_object() -> None:
    """resolve_pool keeps the largest size the LIST reported (engine.workermode reads it)."""
    backend = _null(NullAsyncBackend, "null:///wm-list/")
    for name, size in (("d/a.dat", 100), ("d/b.dat", 5000), ("e/c.dat", 90000)):
        backend.put(name, memoryview(bytes(size)))
    assert resolve_pool(backend, "d/", op="get").largest == 5000
    assert resolve_pool(backend, "**/*.dat", op="get").largest == 90000
    assert resolve_pool(backend, "d/a.dat", op="get").largest is None  # an exact key is not listed


@pytest.mark.parametrize(("target", "driver"), [
    ("file:///tmp/wm/", "auto"), ("null:///wm/", "auto"), ("null:///wm/", "sdk"), ("s3://b/wm/", "sdk"),
])
def test_asyncio_without_async_calls_is_refused_at_load(target: str, driver: str) -> None:
    """A store without async calls under `mode: asyncio` is a config error naming the key, before a stage."""
    with pytest.raises(ConfigError, match=r"(?s)workers\.mode.*asyncio needs async calls"):
        config_from(f"target: {target}\ndriver: {driver}\nworkers: {{mode: asyncio}}\n"
                    "workload:\n  - {op: put, path: p/, weight: 1}\n")


@pytest.mark.parametrize("target", ["null:///wm/", "s3://b/wm/", "az://acct/c/wm/", "gs://b/wm/"])
def test_asyncio_on_the_native_drivers_loads(target: str) -> None:
    assert config_from(f"target: {target}\ndriver: native\nworkers: {{mode: asyncio}}\n"
                       "workload:\n  - {op: put, path: p/, weight: 1}\n").workers.mode.value == "asyncio"
