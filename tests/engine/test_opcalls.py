"""Every op's call and retry come from one template (engine.opcalls): each shape compiles with exactly its
lines, every op a workload binds (flat and tree, each kind) calls generated code whose retry repeats the same
storage call, and a traceback from inside a generated call shows the template's line."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import traceback
from pathlib import Path

import pytest

from sbench.engine.backends import BackendSet
from sbench.engine.binding import WorkerState, WorkloadOp, build_ops
from sbench.engine.opcalls import ACTIONS, KEYS, PAYLOADS, CallShape, PoolExhausted, call_source, op_calls
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import StorageError
from tests.engine.helpers import OneAgent, config_from, make_files


def _valid(*fields: object) -> CallShape | None:
    try:
        return CallShape(*fields)  # type: ignore[arg-type]
    except ValueError:
        return None


SHAPES = [
    shape
    for shape in (
        _valid(*fields) for fields in itertools.product(KEYS, ACTIONS, PAYLOADS, (False, True), (False, True))
    )
    if shape is not None
]


def test_the_shapes_cover_every_op_kind() -> None:
    """pool read/void (GET, STAT, DELETE, tree ops), indexed read/void (unchanging pools), PUT with a new key
    (fixed or sampled size, feeding pools or not), PUT into a tree file, LIST; sync and async each."""
    kinds = {(s.key, s.action, s.payload, s.feeds) for s in SHAPES}
    assert kinds == {
        ("pool", "read", "", False),
        ("pool", "void", "", False),
        ("index", "read", "", False),
        ("index", "void", "", False),
        ("seq", "put", "fixed", False),
        ("seq", "put", "fixed", True),
        ("seq", "put", "sampled", False),
        ("seq", "put", "sampled", True),
        ("pool", "put", "fixed", False),
        ("pool", "put", "fixed", True),
        ("pool", "put", "sampled", False),
        ("pool", "put", "sampled", True),
        ("none", "list", "", False),
    }
    assert len(SHAPES) == 2 * len(kinds)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_every_call_shape_compiles_with_exactly_its_lines(shape: CallShape) -> None:
    source = call_source(shape)
    call_part, _, redo_part = source.partition("def redo(w):")
    assert "@" not in source and "AWAIT" not in source and "ASYNC" not in source and "NAME" not in source
    assert ("raise PoolExhausted(op.label)" in call_part) == (shape.key == "pool")
    assert ("key_of(int(w.rnd() * count))" in call_part) == (shape.key == "index")
    assert ('f"{head}{w.tag}{seq}.dat"' in call_part) == (shape.key == "seq")
    assert ("payload(size, (w.index << 40) | seq)" in call_part) == (shape.payload == "sampled")
    assert ("payload((w.index << 40) | seq)" in call_part) == (shape.payload == "fixed")
    assert source.count("pool.add(key)") == (2 if shape.feeds else 0)  # the call and its retry
    assert ("async def call(w)" in source) == shape.asynchronous
    assert ("await " in source or "async for" in source) == shape.asynchronous
    # the retry repeats the call on the kept key and payload: it chooses and makes nothing
    for making in ("choose(", "key_of(", "w.seq", "payload(", "sample("):
        assert making not in redo_part
    call, redo = op_calls(shape, None, print)
    for function in (call, redo):
        assert function.__code__.co_filename == f"<sbench op call {shape.name}>"
        assert inspect.iscoroutinefunction(function) == shape.asynchronous
    assert op_calls(shape, None, print)[0].__code__ is call.__code__  # compiled once per shape


def test_impossible_call_shapes_are_refused() -> None:
    for fields in (
        ("pool", "put"),
        ("pool", "read", "fixed"),
        ("none", "read"),
        ("pool", "list"),
        ("x", "read"),
        ("seq", "read"),
        ("index", "put", "fixed"),
    ):
        with pytest.raises(ValueError):
            CallShape(*fields)
    with pytest.raises(ValueError):
        CallShape("pool", "void", feeds=True)


def _generated(op: WorkloadOp) -> bool:
    return all(f.__code__.co_filename.startswith("<sbench op call ") for f in (op.call, op.redo))


def test_every_flat_op_calls_generated_code_and_its_retry_repeats_the_call(tmp_path: Path) -> None:
    make_files(tmp_path / "r", [f"prepared-{i:04d}.dat" for i in range(5)], size=300)
    make_files(tmp_path / "x", [f"deletable-{i:04d}.dat" for i in range(5)])
    cfg = config_from(
        f"target: file://{tmp_path}/\nconcurrency: 1\nduration: 1s\ndynamic_put_pool: false\nworkload:\n"
        "  - {op: get, path: 'r/*', weight: 1}\n"
        "  - {op: stat, path: 'r/*', weight: 1}\n"
        "  - {op: delete, path: 'x/*', weight: 1}\n"
        "  - {op: put, path: 'w/', weight: 1, object_size: 700}\n"
        "  - {op: put, path: 'v/', weight: 1, size_spec: {type: uniform, min: 10, max: 20}}\n"
        "  - {op: list, path: 'r/', weight: 1}\n"
    )
    backends = BackendSet(cfg)
    try:
        ops = build_ops(cfg, AgentIdentity(run_id="calls"), backends, None, 7)
        assert [op.kind for op in ops] == ["get", "stat", "delete", "put", "put", "list"]
        assert all(_generated(op) for op in ops)
        w = WorkerState(0, 1, ops)
        get, stat, delete, fixed_put, sized_put, listing = ops
        assert get.call(w) == 300 and get.redo(w) == 300
        assert stat.call(w) == 0 and stat.redo(w) == 0
        assert fixed_put.call(w) == 700 and fixed_put.redo(w) == 700
        written = tmp_path / "w" / w.key.rsplit("/", 1)[-1]
        assert written.stat().st_size == 700 and bytes(w.data) == written.read_bytes()
        size = sized_put.call(w)
        assert 10 <= size <= 20 and sized_put.redo(w) == size and w.seq == 2  # one new key per call, not redo
        assert listing.call(w) == 0 and listing.redo(w) == 0
        for _ in range(5):
            assert delete.call(w) == 0
        with pytest.raises(PoolExhausted):
            delete.call(w)
        assert not list((tmp_path / "x").iterdir())
    finally:
        backends.close()


def test_every_tree_op_calls_generated_code(tmp_path: Path) -> None:
    cfg = config_from(
        f"target: file://{tmp_path}/\nconcurrency: 1\nduration: 1s\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{tmp_path}/tree/', count: 0, size_spec: 100}}\n"
        "  directory_structure: {width: 2, depth: 1, files_per_dir: 2}\n"
        "workload:\n"
        + "".join(f"  - {{op: {kind}, path: x, weight: 1}}\n" for kind in ("get", "stat", "delete", "mkdir"))
        + "  - {op: put, path: x, weight: 1, object_size: 100}\n"
    )
    agent = OneAgent(cfg)
    agent.prepare()
    state = agent.state
    backends = BackendSet(cfg)
    try:
        ops = build_ops(cfg, AgentIdentity(), backends, state, 7)
        assert all(_generated(op) for op in ops)
        w = WorkerState(0, 1, ops)
        get, stat, delete, mkdir, put = ops
        assert get.call(w) == 100 and stat.call(w) == 0 and put.call(w) == 100 and put.redo(w) == 100
        assert delete.call(w) == 0 and mkdir.call(w) == 0
    finally:
        backends.close()


def test_a_traceback_from_a_generated_call_shows_its_line(tmp_path: Path) -> None:
    make_files(tmp_path / "r", ["prepared-0000.dat"])
    cfg = config_from(
        f"target: file://{tmp_path}/\nconcurrency: 1\nduration: 1s\nworkload:\n"
        "  - {op: delete, path: 'r/*', weight: 1}\n"
    )
    backends = BackendSet(cfg)
    try:
        (op,) = build_ops(cfg, AgentIdentity(), backends, None, 7)
        (tmp_path / "r" / "prepared-0000.dat").unlink()  # gone behind the pool's back: the DELETE fails
        with pytest.raises(StorageError) as info:
            op.call(WorkerState(0, 1, [op]))
    finally:
        backends.close()
    frames = traceback.extract_tb(info.value.__traceback__)
    generated = [f for f in frames if f.filename.startswith("<sbench op call")]
    assert [(f.filename, f.name, f.line) for f in generated] == [
        ("<sbench op call sync-void-pool>", "call", "action(key)")
    ]


def test_an_async_call_awaits_its_action() -> None:
    """The asyncio variant of a pool GET (native drivers): same lines, awaited."""

    async def read(key: str) -> bytes:
        return key.encode()

    keys = iter(["a/one", None])
    op = WorkloadOp("get", 1.0, "GET a/*", backend=None)  # type: ignore[arg-type]
    call, redo = op_calls(
        CallShape("pool", "read", asynchronous=True), op, read, choose=lambda rng: next(keys)
    )
    w = WorkerState(0, 1, [op])
    assert asyncio.run(call(w)) == 5 and w.key == "a/one" and asyncio.run(redo(w)) == 5
    with pytest.raises(PoolExhausted, match="GET a/"):
        asyncio.run(call(w))
