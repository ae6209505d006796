"""The null:// backend on its own: URI and query parsing, what each call answers, the per-process index, the
declared prepare spaces that let other processes answer prepared keys, and the service time."""

from __future__ import annotations

import asyncio
import ctypes
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from sbench.config import load_config
from sbench.errors import ConfigError
from sbench.layout.naming import prepared_key
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import prepare_params, storage_options
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.null import NullAsyncBackend, NullBackend
from sbench.storage.nullindex import INDEX
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.registry import open_backend
from sbench.storage.servicetime import MAX_SERVICE_S, ServiceTime
from sbench.storage.uri import canonical, parse_uri, relative_to


@pytest.fixture
def root() -> Iterator[str]:
    """A fresh null:// root (the index is per process, shared by every test): emptied afterwards."""
    name = f"t-{uuid4().hex[:8]}"
    yield f"null:///{name}/"
    for key, _ in list(INDEX.keys_under(name + "/", True)):
        INDEX.remove(key)


def _kind(excinfo: pytest.ExceptionInfo[StorageError]) -> ErrorClass:
    return excinfo.value.kind


# -- URIs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "prefix", "query"),
    [
        ("null://", "", ""),
        ("null:///bench/", "bench/", ""),
        ("null://bench/", "bench/", ""),
        ("null://anything/deep/er", "anything/deep/er", ""),
        ("null://?latency=200us", "", "latency=200us"),
        ("null:///b/?latency=1ms&dist=exp", "b/", "latency=1ms&dist=exp"),
        # sbench appends paths to URIs: what follows the query is more path
        ("null:///b/?latency=1ms/agent-1/", "b/agent-1/", "latency=1ms"),
        ("null://?latency=1ms/data/", "data/", "latency=1ms"),
    ],
)
def test_null_uris(uri: str, prefix: str, query: str) -> None:
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.prefix, parsed.query) == ("null", prefix, query)
    assert parsed.root == "null://" + prefix  # one spelling, no query


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("null://?latency=abc", ["latency='abc'", "not a duration"]),
        ("null://?latency=2s", ["latency=2s", "500 ms"]),
        ("null://?latency=-1ms", ["latency='-1ms'"]),
        ("null://?latncy=1ms", ["'latncy'", "unknown"]),
        ("null://?latency=1ms&latency=2ms", ["'latency'", "twice"]),
        ("null://?dist=exp", ["dist=exp", "needs a latency"]),
        ("null://?latency=1ms&dist=gauss", ["dist='gauss'", "fixed, uniform, exp"]),
        ("null://?latency=", ["'latency'", "no value"]),
        ("null:///a//b/", ["empty component"]),
        ("null:///a/../b/", ["`..`"]),
    ],
)
def test_bad_null_uris_name_the_part(uri: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_uri(uri)
    text = str(excinfo.value)
    assert uri in text
    for word in words:
        assert word in text


def test_the_top_of_a_scheme_keeps_its_slashes() -> None:
    """`null://` (and `file:///`) as a root: paths below it are relative to it, without a leading `/`."""
    assert canonical("null://?latency=1ms") == "null://"
    assert relative_to(canonical("null://"), canonical("null://data/")) == "data"
    assert relative_to(canonical("null://"), canonical("null:///")) == ""
    assert relative_to(canonical("file:///"), canonical("file:///tmp/x/")) == "tmp/x"
    assert relative_to(canonical("null://b"), canonical("null://bc/")) is None
    assert relative_to(canonical("null://b"), canonical("null:///b/c")) == "c"


# -- calls ---------------------------------------------------------------------------------------------------


def test_put_get_stat_answer_the_size_without_keeping_bytes(root: str) -> None:
    backend = open_backend(root)
    assert isinstance(backend, NullBackend) and not backend.is_async and not backend.has_directories
    backend.put("a/x.dat", b"x" * 4096)
    backend.put("a/y.dat", memoryview(b"y" * 10))
    backend.put("zero.dat", b"")
    got = backend.get("a/x.dat")
    assert len(got) == 4096 and bytes(got) == bytes(4096)  # zero bytes of the object's size
    assert isinstance(got, memoryview) and got.obj is backend.get("a/y.dat").obj  # one buffer, no copies
    assert backend.stat("a/y.dat").size == 10 and backend.stat("zero.dat").size == 0
    assert len(backend.get_range("a/x.dat", 4000, 500)) == 96  # a range past the end: what exists
    assert len(backend.get_range("a/x.dat", 5000, 10)) == 0
    backend.put("a/x.dat", b"12")  # replaced
    assert len(backend.get("a/x.dat")) == 2


def test_missing_keys_are_not_found(root: str) -> None:
    backend = open_backend(root)
    for call in (lambda: backend.get("nope"), lambda: backend.stat("nope"), lambda: backend.delete("nope")):
        with pytest.raises(StorageError) as excinfo:
            call()
        assert _kind(excinfo) is ErrorClass.NOT_FOUND
        assert "nope" in str(excinfo.value)
    backend.put("k", b"abc")
    backend.delete("k")
    with pytest.raises(StorageError) as excinfo:
        backend.delete("k")
    assert _kind(excinfo) is ErrorClass.NOT_FOUND


def test_list_has_the_prefix_rules_of_an_object_store(root: str) -> None:
    backend = open_backend(root)
    for key in ("top.dat", "d/a.dat", "d/b.dat", "d/sub/c.dat", "d/sub/deeper/e.dat", "dx/f.dat"):
        backend.put(key, b"12345")
    assert sorted(k for k, _ in backend.list("", recursive=True)) == [
        "d/a.dat", "d/b.dat", "d/sub/c.dat", "d/sub/deeper/e.dat", "dx/f.dat", "top.dat",
    ]
    assert sorted(backend.list("", recursive=False)) == [("d/", 0), ("dx/", 0), ("top.dat", 5)]
    assert sorted(backend.list("d/", recursive=False)) == [("d/a.dat", 5), ("d/b.dat", 5), ("d/sub/", 0)]
    assert sorted(k for k, _ in backend.list("d/", recursive=True)) == [
        "d/a.dat", "d/b.dat", "d/sub/c.dat", "d/sub/deeper/e.dat",
    ]
    assert sorted(k for k, _ in backend.list("d", recursive=True)) == sorted(  # a string prefix
        ["d/a.dat", "d/b.dat", "d/sub/c.dat", "d/sub/deeper/e.dat", "dx/f.dat"]
    )
    assert [k for k, _ in backend.list("d/a", recursive=False)] == ["d/a.dat"]
    backend.delete("d/sub/deeper/e.dat")
    assert sorted(backend.list("d/sub/", recursive=False)) == [("d/sub/c.dat", 5)]


def test_numbered_keys_are_kept_as_arrays(root: str) -> None:
    """PUT keys (`STEM_N.dat`, N a plain decimal) cost one array slot each, not a dict entry, and answer
    and list like any other key, mixed with the others in their directory."""
    backend = open_backend(root)
    name = parse_uri(root).prefix
    for n in range(1000):
        backend.put(f"out/put_r_a_0_{n}.dat", b"x" * (n % 7))
    backend.put("out/put_r_a_1_0.dat", b"1")
    backend.put("out/file_00000042.dat", b"22")  # zero-padded: an ordinary key
    backend.put("out/x_1.dat", b"333")
    odd = ["out/y_+1.dat", "out/y_1x.dat", "out/y_\u0663.dat", "out/y_07.dat", "out/y_7.bin"]
    for key in odd:  # not `STEM_N.dat` with a plain N: ordinary keys, answered all the same
        backend.put(key, b"4444")
        assert backend.stat(key).size == 4
    assert sorted(k for k in INDEX.sizes if k.startswith(name)) == sorted(
        name + k for k in ["out/file_00000042.dat", *odd]
    )
    for key in odd:
        backend.delete(key)
    assert len(INDEX.stems[name + "out/put_r_a_0"]) >= 1000
    assert backend.stat("out/put_r_a_0_999.dat").size == 999 % 7
    assert len(backend.get("out/put_r_a_0_13.dat")) == 13 % 7
    listed = dict(backend.list("out/", recursive=False))
    assert len(listed) == 1003 and listed["out/file_00000042.dat"] == 2 and listed["out/x_1.dat"] == 3
    assert sorted(k for k, _ in backend.list("out/put_r_a_0_99", True)) == [
        "out/put_r_a_0_99.dat", "out/put_r_a_0_990.dat", "out/put_r_a_0_991.dat", "out/put_r_a_0_992.dat",
        "out/put_r_a_0_993.dat", "out/put_r_a_0_994.dat", "out/put_r_a_0_995.dat", "out/put_r_a_0_996.dat",
        "out/put_r_a_0_997.dat", "out/put_r_a_0_998.dat", "out/put_r_a_0_999.dat",
    ]
    assert [k for k, _ in backend.list("out/put_r_a_1", True)] == ["out/put_r_a_1_0.dat"]
    backend.delete("out/put_r_a_0_5.dat")
    with pytest.raises(StorageError) as excinfo:
        backend.delete("out/put_r_a_0_5.dat")
    assert _kind(excinfo) is ErrorClass.NOT_FOUND
    with pytest.raises(StorageError):
        backend.get("out/put_r_a_0_5000.dat")  # beyond the array
    assert len(list(backend.list("out/", True))) == 1002
    for key, _ in list(backend.list("", True)):
        backend.delete(key)
    assert list(backend.list("", True)) == [] and list(backend.list("", False)) == []


def test_mkdir_and_rmdir_act_as_on_object_stores(root: str) -> None:
    backend = open_backend(root)
    backend.put("run-1/a", b"1")
    backend.put("run-1/b/c", b"1")
    backend.put("run-10/a", b"1")
    backend.mkdir("new/dir")  # nothing to create
    backend.rmdir("run-1")  # not recursive: nothing to remove
    assert len(list(backend.list("", True))) == 3
    backend.rmdir("run-1", recursive=True)
    assert [k for k, _ in backend.list("", True)] == ["run-10/a"]


def test_keys_never_leave_the_root(root: str) -> None:
    backend = open_backend(root)
    calls = (
        lambda: backend.put("../escape", b"x"),
        lambda: backend.get("a/../../escape"),
        lambda: backend.stat("../x"),
        lambda: backend.delete("../x"),
        lambda: list(backend.list("../", True)),
        lambda: backend.rmdir("..", recursive=True),
    )
    for call in calls:
        with pytest.raises(StorageError) as excinfo:
            call()
        assert _kind(excinfo) is ErrorClass.OUTSIDE_ROOT
    assert not [k for k, _ in INDEX.keys_under("", True) if ".." in k]


def test_backends_of_one_process_share_one_index(root: str) -> None:
    outer = open_backend(root)
    inner = open_backend(root + "d/?latency=1us")
    inner.put("k.dat", b"123")
    assert outer.stat("d/k.dat").size == 3
    assert [k for k, _ in outer.list("d/", True)] == ["d/k.dat"]
    outer.delete("d/k.dat")
    with pytest.raises(StorageError):
        inner.get("k.dat")


def test_asyncio_variant_answers_the_same(root: str) -> None:
    backend = open_backend(root, BackendOptions(driver=Driver.NATIVE))
    assert isinstance(backend, NullAsyncBackend) and backend.is_async
    assert type(open_backend(root, BackendOptions(driver=Driver.AUTO))) is NullBackend

    async def calls() -> None:
        await backend.put_async("a/k.dat", b"x" * 100)
        assert len(await backend.get_async("a/k.dat")) == 100
        assert len(await backend.get_range_async("a/k.dat", 90, 50)) == 10
        assert (await backend.stat_async("a/k.dat")).size == 100
        assert [k async for k, _ in backend.list_async("a/", recursive=False)] == ["a/k.dat"]
        await backend.delete_async("a/k.dat")
        with pytest.raises(StorageError) as excinfo:
            await backend.get_async("a/k.dat")
        assert _kind(excinfo) is ErrorClass.NOT_FOUND

    asyncio.run(calls())


def test_asyncio_calls_let_other_tasks_run(root: str) -> None:
    """Each call suspends once, as a real store's does: tasks take turns instead of the first one running
    alone until the stage ends."""
    backend = open_backend(root, BackendOptions(driver=Driver.NATIVE))
    backend.put("k", b"1")
    order: list[str] = []

    async def task(name: str) -> None:
        for _ in range(3):
            await backend.get_async("k")
            order.append(name)

    async def both() -> None:
        await asyncio.gather(task("a"), task("b"))

    asyncio.run(both())
    assert order == ["a", "b"] * 3


# -- declared prepare spaces (another process's prepare) ----------------------------------------------------

FLAT = """
target: "{root}"
duration: 1s
prepare:
  ensure_objects:
    - {{base_uri: "{root}data/", count: 10, size_spec: {{type: uniform, min: 1KiB, max: 8KiB}}}}
workload:
  - {{op: get, path: "data/", weight: 1}}
  - {{op: delete, path: "data/", weight: 1}}
"""

TREE = """
target: "{root}"
duration: 1s
prepare:
  directory_structure: {{width: 2, depth: 2, files_per_dir: 3}}
  ensure_objects:
    - {{count: 12, size_spec: 2KiB}}
workload:
  - {{op: get, path: "/", weight: 1}}
"""


def _config(tmp_path: Path, text: str, root: str):  # -> Config
    path = tmp_path / "c.yaml"
    path.write_text(text.format(root=root))
    return load_config(path).config


def test_a_declared_object_exists_with_its_prepared_size(tmp_path: Path, root: str) -> None:
    """What prepare makes in another process: GET/STAT/DELETE answer it, with the size prepare gives it;
    it is not listed, and once deleted here it stays deleted here."""
    config = _config(tmp_path, FLAT, root)
    (params,) = prepare_params(config, AgentIdentity())
    backend = open_backend(root, storage_options(config, root))
    assert params.pools == ("prepared", "deletable")
    for pool in params.pools:
        for i in (0, 9):
            key = "data/" + prepared_key(pool, i)
            assert backend.stat(key).size == len(backend.get(key)) == params.size_of(i)
    assert list(backend.list("data/", True)) == []  # read (and so remembered), still not listed
    assert INDEX.size(parse_uri(root).prefix + "data/" + prepared_key("prepared", 9)) == params.size_of(9)
    for key in ("data/" + prepared_key("prepared", 10), "data/other.dat", prepared_key("prepared", 1)):
        with pytest.raises(StorageError):
            backend.get(key)  # beyond the count, not a prepare name, or not where prepare puts it
    gone = "data/" + prepared_key("deletable", 3)
    backend.delete(gone)
    for call in (lambda: backend.get(gone), lambda: backend.delete(gone)):
        with pytest.raises(StorageError) as excinfo:
            call()
        assert _kind(excinfo) is ErrorClass.NOT_FOUND
    backend.put(gone, b"abc")  # PUT brings it back, with its new size
    assert backend.stat(gone).size == 3


def test_declared_tree_files(tmp_path: Path, root: str) -> None:
    config = _config(tmp_path, TREE, root)
    (params,) = prepare_params(config, AgentIdentity())
    layout = params.layout()
    assert layout is not None
    backend = open_backend(root, storage_options(config, root))
    assert backend.stat(layout.file_path(11)).size == 2048
    with pytest.raises(StorageError):
        backend.stat(layout.file_path(0).replace("file_00000000", "file_00000005"))  # not its directory


def test_only_null_uris_carry_declared_spaces(tmp_path: Path, root: str) -> None:
    config = _config(tmp_path, FLAT, root)
    assert storage_options(config, root).declared
    assert all(p.options.declared for p in prepare_params(config, AgentIdentity()))
    assert storage_options(config, "s3://bucket/x/").declared == ()


# -- service time --------------------------------------------------------------------------------------------


def test_service_time_draws() -> None:
    assert ServiceTime(0.0002).sampler()() == 0.0002
    uniform = ServiceTime(0.001, "uniform").sampler()
    assert all(0.0 <= uniform() <= 0.002 for _ in range(1000))
    exp = ServiceTime(0.3, "exp").sampler()
    draws = [exp() for _ in range(2000)]
    assert max(draws) == MAX_SERVICE_S  # capped: a draw above the cap comes out as the cap
    assert all(d >= 0 for d in draws)
    assert not ServiceTime().sleeps and ServiceTime(0.0002).sleeps


def test_every_call_sleeps_at_least_its_service_time(root: str) -> None:
    """A lower bound only (a sleep never ends early): each of 20 GETs of a 2 ms target takes 2 ms or more."""
    backend = open_backend(root + "?latency=2ms")
    backend.put("k", b"1")
    start = time.perf_counter()
    for _ in range(10):
        backend.get("k")
        backend.stat("k")
    assert time.perf_counter() - start >= 20 * 0.002
    assert open_backend(root)._pause is None  # no latency: no sleep at all


@pytest.mark.skipif(sys.platform != "linux", reason="timer slack is a Linux thread attribute")
def test_a_sleeping_thread_gets_a_tight_timer_slack() -> None:
    """Linux ends a timed sleep up to the thread's timer slack late (50 µs by default); the first null
    sleep of a thread sets it to 1 ns (PR_GET_TIMERSLACK reads it back)."""
    prctl = ctypes.CDLL(None).prctl
    seen: list[int] = []

    def worker() -> None:
        prctl(29, 50_000, 0, 0, 0)  # the default (a thread inherits its creator's, maybe tightened already)
        seen.append(prctl(30, 0, 0, 0, 0))
        ServiceTime(1e-6).pause()()
        seen.append(prctl(30, 0, 0, 0, 0))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [50_000, 1]
