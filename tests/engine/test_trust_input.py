"""In-process runs: a symlink planted after the config was checked never leads a key out of the target
(issue 10 item 1), and DELETE never shares a pool with GET/STAT when prepare split them (item 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.config import load_config, load_config_text
from sbench.control import RunControl
from sbench.engine.binding import WorkerState as _Worker
from sbench.engine.binding import WorkloadOp as _Op
from sbench.engine.binding import bind_pool_op as _bind_pool_op
from sbench.engine.opcalls import PoolExhausted
from sbench.engine.workload import run_workload
from sbench.layout.paths import KeyPool
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import ErrorClass
from sbench.storage.registry import open_backend
from tests.victim import assert_untouched


def test_a_symlink_planted_after_the_config_was_checked_fails_preflight(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    bench, victim = layout
    config = tmp_path / "w.yaml"
    config.write_text(
        f'target: "file://{bench}/"\nduration: 1s\nconcurrency: 2\n'
        'workload:\n  - {op: put, path: "uploads/", object_size: 1KiB, weight: 1}\n'
    )
    loaded = load_config(config)  # valid now: uploads/ does not exist yet
    (bench / "uploads").symlink_to(victim, target_is_directory=True)
    from sbench.config.runoptions import RunOptions
    from sbench.run.launch import run

    results = tmp_path / "res"
    assert run(loaded, RunOptions(results_dir=results), config) == 1
    preflight = json.loads((results / "preflight.json").read_text())
    confined = [c for c in preflight["checks"] if c["name"] == "fs.confined"]
    assert confined and confined[0]["level"] == "error" and "workload[0].path" in confined[0]["message"]
    assert_untouched(victim)


def test_a_symlink_planted_mid_run_is_refused_and_counted(layout: tuple[Path, Path]) -> None:
    bench, victim = layout
    config = load_config_text(
        f'target: "file://{bench}/"\nconcurrency: 2\nerror_handling: {{max_total_errors: 1000000}}\n'
        'workload:\n  - {op: put, path: "uploads/", object_size: 1KiB, weight: 1}\n'
    ).config
    (bench / "uploads").symlink_to(victim, target_is_directory=True)  # after load and preflight
    result = run_workload(config, AgentIdentity(run_id="plant"), RunControl(), duration_s=0.5)
    by_class = result.snapshot.errors_by_class()
    assert by_class.get(ErrorClass.OUTSIDE_ROOT, 0) > 0 and result.snapshot.total_ops() == 0
    assert "outside_root" in result.first_error and str(victim) in result.first_error
    assert_untouched(victim)


# -- item 12 -----------------------------------------------------------------------------------------------

SPLIT = """\
target: "file://{root}/"
duration: 1s
concurrency: 4
prepare:
  ensure_objects:
    - {{base_uri: "file://{root}/data/", count: 150, size_spec: 1KiB, fill: zero}}
workload:
  - {{op: get, path: "{path}", weight: 40}}
  - {{op: stat, path: "{path}", weight: 20}}
  - {{op: delete, path: "{path}", weight: 40}}
"""


@pytest.mark.parametrize("path", ["data/", "data/*", "data/**", "data/*.dat", "data/prepared-*.dat"])
def test_delete_takes_only_the_deletable_pool_whatever_the_glob(
    tmp_path: Path, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    config = tmp_path / "split.yaml"
    config.write_text(SPLIT.format(root=root, path=path))
    results = tmp_path / "res"
    assert main(["run", str(config), "--results-dir", str(results)]) == 0
    names = sorted(p.name for p in (root / "data").iterdir())
    assert names == [f"prepared-{i:08d}.dat" for i in range(150)]  # every deletable gone, no prepared one
    summary = json.loads((results / "summary.json").read_text())
    workload = summary["workload"]
    assert workload["totals"]["errors"] == 0, workload
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    assert execute["details"]["deleted"] == 150
    label = path.replace("prepared-", "deletable-")  # the DELETE path as the split rewrites it (sai3 §1.6)
    assert execute["details"]["notes"] == [
        f"DELETE {label}: its pool of keys is empty after 150 deletes; this op stopped"
    ]
    out = capsys.readouterr().out
    assert out.count("its pool of keys is empty") == 1 and "AttributeError" not in out


def test_an_empty_read_pool_stops_the_op_instead_of_an_attribute_error(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(b"1")
    backend = open_backend(f"file://{tmp_path}/")
    pool = KeyPool.of_keys(["k"], label="get k")
    assert pool.take(__import__("random").Random(1)) == "k"  # the pool is now empty
    for kind in ("get", "stat"):
        op = _Op(kind, 1.0, f"{kind.upper()} k", backend)
        _bind_pool_op(op, kind, backend, pool)
        with pytest.raises(PoolExhausted):
            op.call(_Worker(0, 1, [op]))
