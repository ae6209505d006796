"""Prepare and cleanup on real file:// storage: gap fill after an interruption, identical re-creation,
cleanup of exactly what the run created, pool split, trees, --cleanup-only names, multi-endpoint placement."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.indexset import IndexSet
from sbench.engine.prepare import PrepareShard, ShardStorage, scan_existing
from sbench.engine.workload import run_workload
from sbench.layout.tree import TreeLayout, TreeSpec
from sbench.metrics.buckets import OpClass
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import prepare_params
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.file import FileBackend
from sbench.storage.options import BackendOptions
from sbench.storage.uri import parse_uri
from tests.engine.helpers import OneAgent, config_from

LOGNORMAL = "{type: lognormal, mean: 2048, std_dev: 1024, min: 1, max: 16384}"


def _cfg(
    root: Path, count: int, workload: str = '  - {op: get, path: "data/", weight: 1}\n', extra: str = ""
) -> object:
    return config_from(
        f"target: file://{root}/\nconcurrency: 4\nduration: 1s\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{root}/data/', count: {count}, "
        f"size_spec: {LOGNORMAL}}}\n  cleanup: true\n{extra}workload:\n{workload}"
    )


def _sizes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in directory.iterdir()}


class _AbortAfter(FileBackend):
    """The real file backend; the run is aborted (as by Ctrl-C) once `after` objects were written."""

    def __init__(self, root: str, control: RunControl, after: int) -> None:
        super().__init__(parse_uri(root), BackendOptions())
        self.control, self.after, self.count = control, after, 0
        self.lock = threading.Lock()

    def put(self, key: str, data) -> None:  # type: ignore[no-untyped-def]
        super().put(key, data)
        with self.lock:
            self.count += 1
            if self.count == self.after:
                self.control.abort("interrupted by the test")


def test_interrupted_prepare_resumes_with_only_missing_objects_and_same_sizes(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, 400)
    params = prepare_params(cfg, AgentIdentity())[0]
    control = RunControl()
    storage = ShardStorage(params)
    storage.close()
    storage.backends = [_AbortAfter(params.base_uri, control, params.total // 2)]
    first = PrepareShard(params, 0, params.total, control, existing=scan_existing(params), storage=storage,
                         own_storage=True).begin().finish()
    assert first.aborted and 0 < first.created_count < params.total
    before = _sizes(tmp_path / "data")
    mtimes = {n: (tmp_path / "data" / n).stat().st_mtime_ns for n in before}
    victim = sorted(before)[0]
    victim_bytes = (tmp_path / "data" / victim).read_bytes()
    os.unlink(tmp_path / "data" / victim)  # a hole in the middle of the created range

    agent = OneAgent(cfg)
    state = agent.state
    out = agent.prepare()
    assert out.created == params.total - len(before) + 1
    assert out.existed == len(before) - 1 and out.failed == 0
    after = _sizes(tmp_path / "data")
    assert len(after) == params.total
    assert all(after[n] == before[n] for n in before)
    assert all((tmp_path / "data" / n).stat().st_mtime_ns == mtimes[n] for n in before if n != victim)
    assert (tmp_path / "data" / victim).read_bytes() == victim_bytes  # identical re-creation
    for name, size in after.items():
        index = int(name[len("prepared-") : -4])
        assert size == params.sampler.size_for_index(index, params.size_seed)
    assert len(set(after.values())) > 50
    assert out.snapshot.total_ops(OpClass.PUT) == out.created
    assert state.prepared[0].complete and len(state.prepared[0].created) == out.created


def test_cleanup_deletes_only_what_this_run_created(tmp_path: Path) -> None:
    data, puts = tmp_path / "data", tmp_path / "puts"
    data.mkdir()
    puts.mkdir()
    foreign = {
        data / "prepared-00000003.dat": b"was here before",
        data / "notes.txt": b"foreign",
        puts / "put_20200101-000000-beef_standalone_0_000000001.dat": b"another run",
        puts / "put_myrun_otheragent_0_000000001.dat": b"another agent of this run",
        puts / "mine.dat": b"foreign",
    }
    for path, content in foreign.items():
        path.write_bytes(content)
    body = (
        '  - {op: get, path: "data/", weight: 5}\n  - {op: put, path: "puts/", weight: 5, object_size: 100}\n'
    )
    cfg = _cfg(tmp_path, 10, body)
    agent = OneAgent(cfg, run_id="myrun")
    ident, state = agent.identity, agent.state
    prep = agent.prepare()
    assert (prep.created, prep.existed) == (9, 1)
    work = run_workload(cfg, ident, RunControl(), duration_s=0.5, state=state)
    assert work.snapshot.total_ops(OpClass.PUT) > 0
    assert len(list(puts.iterdir())) > len(foreign) - 2
    out = agent.cleanup()
    assert out.deleted == 9 and out.put_deleted == work.snapshot.total_ops(OpClass.PUT)
    assert out.failed == 0 and not out.reason
    for path, content in foreign.items():
        assert path.read_bytes() == content
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt", "prepared-00000003.dat"]
    assert len(list(puts.iterdir())) == 3
    assert out.snapshot.total_ops(OpClass.META) == 9 + out.put_deleted


def test_cleanup_without_prepare_record_keeps_prepared_objects(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, 5)
    OneAgent(cfg).prepare()
    out = OneAgent(cfg).cleanup()
    assert out.deleted == 0 and len(list((tmp_path / "data").iterdir())) == 5
    assert any("nothing recorded as created" in n for n in out.notes)


def test_cleanup_only_rebuilds_the_names_prepare_used(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, 25)
    OneAgent(cfg).prepare()
    (tmp_path / "data" / "data-00000000.dat").write_bytes(b"sai3 7.13 name, not ours")
    out = OneAgent(cfg, cleanup_only=True).cleanup()
    assert out.deleted == 25
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["data-00000000.dat"]
    assert any("--cleanup-only" in n for n in out.notes)


def test_read_and_delete_workload_splits_pools(tmp_path: Path) -> None:
    body = (
        '  - {op: get, path: "data/prepared-*.dat", weight: 5}\n'
        '  - {op: delete, path: "data/prepared-*.dat", weight: 5}\n'
    )
    cfg = _cfg(tmp_path, 30, body)
    agent = OneAgent(cfg)
    state = agent.state
    prep = agent.prepare()
    assert prep.created == 60  # 30 prepared- and 30 deletable-
    res = run_workload(cfg, AgentIdentity(), RunControl(), duration_s=2.0, state=state)
    left = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert res.snapshot.errors_total() == 0
    assert left == [f"prepared-{i:08d}.dat" for i in range(30)]
    assert res.deleted == 30 and res.ended_by == "duration"  # GETs go on after the delete pool is empty


def test_tree_prepare_records_mkdir_and_cleanup_removes_tree(tmp_path: Path) -> None:
    tree = "  directory_structure: {width: 3, depth: 2, files_per_dir: 2}\n"
    cfg = config_from(
        f"target: file://{tmp_path}/\nconcurrency: 3\nduration: 1s\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{tmp_path}/tree/', count: 0, size_spec: 100}}\n"
        f"  cleanup: true\n{tree}"
        "workload:\n  - {op: get, path: x, weight: 5}\n  - {op: mkdir, path: x, weight: 1}\n"
    )
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "keep.txt").write_text("foreign")
    layout = TreeLayout(TreeSpec(width=3, depth=2, files_per_dir=2))
    agent = OneAgent(cfg)
    state = agent.state
    prep = agent.prepare()
    assert prep.created == layout.total_files == 18
    assert prep.snapshot.total_ops(OpClass.META) == layout.total_dirs == 12  # every mkdir timed
    for _idx, path in layout.iter_files():
        assert (tmp_path / "tree" / path).stat().st_size == 100
    res = run_workload(cfg, AgentIdentity(), RunControl(), duration_s=0.3, state=state)
    assert res.snapshot.errors_total() == 0 and res.snapshot.total_ops(OpClass.GET) > 0
    out = agent.cleanup()
    assert out.deleted == 18 and out.failed == 0
    assert [p.name for p in (tmp_path / "tree").iterdir()] == ["keep.txt"]


def test_multi_endpoint_prepare_places_index_modulo_endpoints(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    cfg = config_from(
        f"concurrency: 2\nduration: 1s\nmulti_endpoint:\n  endpoints: ['file://{a}/', 'file://{b}/']\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{a}/', use_multi_endpoint: true, count: 10, "
        "size_spec: 10}\n"
        "workload:\n  - {op: get, path: '', weight: 1}\n"
    )
    out = OneAgent(cfg).prepare()
    assert out.created == 10
    assert sorted(p.name for p in a.iterdir()) == [f"prepared-{i:08d}.dat" for i in range(0, 10, 2)]
    assert sorted(p.name for p in b.iterdir()) == [f"prepared-{i:08d}.dat" for i in range(1, 10, 2)]


def test_shared_storage_split_by_agent(tmp_path: Path) -> None:
    cfg = config_from(
        f"target: file://{tmp_path}/\nconcurrency: 2\nduration: 1s\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{tmp_path}/d/', count: 9, size_spec: 10}}\n"
        "distributed:\n  shared_filesystem: true\n  tree_creation_mode: coordinator\n"
        "  path_selection: random\n  agents: [{address: 'localhost:1'}, {address: 'localhost:2'}]\n"
        "workload:\n  - {op: get, path: 'd/', weight: 1}\n"
    )
    params = prepare_params(cfg, AgentIdentity("agent-2", 1, 2))[0]
    shard = PrepareShard(params, 0, params.total, RunControl(), existing=IndexSet(0, params.total))
    out = shard.begin().finish()
    assert out.created_count == 4
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        f"prepared-{i:08d}.dat" for i in (1, 3, 5, 7)
    ]


class _FlakyPuts(FileBackend):
    """The real file backend, failing the first PUT of every key (throttled for even indices, a
    non-retryable error for odd ones) to drive both the immediate and the deferred retry paths."""

    def __init__(self, root: str) -> None:
        super().__init__(parse_uri(root), BackendOptions())
        self.seen: set[str] = set()

    def put(self, key: str, data) -> None:  # type: ignore[no-untyped-def]
        if key not in self.seen:
            self.seen.add(key)
            index = int(key[len("prepared-"):-4])
            kind = ErrorClass.THROTTLED if index % 2 == 0 else ErrorClass.OTHER
            raise StorageError(kind, "injected first-attempt failure", uri=self.uri_of(key))
        super().put(key, data)


def test_prepare_retries_recreate_the_same_bytes(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, 12)
    params = prepare_params(cfg, AgentIdentity())[0]
    storage = ShardStorage(params)
    storage.close()
    storage.backends = [_FlakyPuts(params.base_uri)]
    shard = PrepareShard(params, 0, params.total, RunControl(), existing=IndexSet(0, params.total),
                         storage=storage, own_storage=True)
    result = shard.begin().finish()
    assert result.created_count == 12 and len(result.failed) == 0
    expected = PayloadGenerator(params.fill, params.dedup_factor, params.compress_factor,  # type: ignore[arg-type]
                                params.payload_seed)
    for g in range(12):
        data = (tmp_path / "data" / f"prepared-{g:08d}.dat").read_bytes()
        assert data == bytes(expected.payload(params.size_of(g), g))
    assert result.snapshot.retries.get(OpClass.PUT, 0) == 6  # immediate retries of the throttled ones
    assert result.snapshot.errors_total() == 6  # the odd ones failed once, then the deferred round made them
