"""Whole runs on null:// in this process (`sbench.run.launch.run`, as `sbench run` does): every op, closed and
open loop, thread and asyncio workers, a directory tree, the dry run and a bad latency. Functional only: no
assertion on speed. The null backend's methods are wrapped by a counting spy (the real methods still run),
so each op kind is seen to be called; STAT and LIST share the META class in the result files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from sbench.cli import main
from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.run.launch import run
from sbench.storage.null import NullAsyncBackend, NullBackend
from sbench.storage.nullindex import INDEX
from tests.faults.checks import counts_agree, read_status, verdicts_agree

MIXED = """
target: "{target}"
duration: 1s
concurrency: 4
driver: {driver}
{io_rate}
prepare:
  cleanup: true
  ensure_objects:
    - {{base_uri: "{base}", count: 100, size_spec: 4KiB}}
workload:
  - {{op: get, path: "{rel}data/", weight: 40}}
  - {{op: put, path: "{rel}out/", object_size: 1KiB, weight: 20}}
  - {{op: stat, path: "{rel}data/", weight: 20}}
  - {{op: list, path: "{rel}data/", weight: 10}}
  - {{op: delete, path: "{rel}data/", weight: 5}}
"""

TREE = """
target: "null:///{name}/"
duration: 1s
concurrency: 2
prepare:
  cleanup: true
  directory_structure: {{width: 2, depth: 2, files_per_dir: 3}}
  ensure_objects:
    - {{count: 12, size_spec: 2KiB}}
workload:
  - {{op: get, path: "/", weight: 30}}
  - {{op: stat, path: "/", weight: 20}}
  - {{op: put, path: "/", object_size: 1KiB, weight: 10}}
  - {{op: mkdir, path: "/", weight: 20}}
  - {{op: rmdir, path: "/", weight: 20}}
"""

SPIED = ("get", "put", "stat", "list", "delete", "mkdir", "rmdir")
ASYNC_SPIED = ("get_async", "put_async", "stat_async", "list_async", "delete_async")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of each null backend method during the test (a wrapper around the real method)."""
    counts: Counter[str] = Counter()

    def spy(name: str, method: Any) -> Any:
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return method(self, *args, **kwargs)  # a coroutine or async generator for the async ones

        return counted

    for cls, names in ((NullBackend, SPIED), (NullAsyncBackend, ASYNC_SPIED)):
        for name in names:
            monkeypatch.setattr(cls, name, spy(name, getattr(cls, name)))
    return counts


def _run(tmp_path: Path, text: str) -> tuple[int, Path, dict[str, Any]]:
    path = tmp_path / "null.yaml"
    path.write_text(text)
    results = tmp_path / "results"
    code = run(load_config(path), RunOptions(results_dir=results), path, on_ray=False)
    return code, results, json.loads((results / "summary.json").read_text())


def _assert_success(code: int, results: Path, summary: dict[str, Any]) -> None:
    status, text = read_status(results)
    assert (code, status) == (0, "SUCCESS"), text
    assert verdicts_agree(results, status) == []
    assert counts_agree(results, distributed=False) == []
    assert summary["left_behind"]["total"] == 0 and summary["left_behind"]["exact"]


def _held(name: str) -> list[str]:
    """Keys the index still holds under the run's root: cleanup must leave none."""
    return [k for k, _ in INDEX.keys_under(name + "/", recursive=True)]


@pytest.mark.parametrize("workers", ["threads", "asyncio"])
@pytest.mark.parametrize("load", ["closed", "open"])
def test_every_op_runs_on_null(tmp_path: Path, calls: Counter[str], workers: str, load: str) -> None:
    name = f"run-{uuid4().hex[:8]}"
    if load == "open":
        # rooted at the top of the namespace, with a service time: the case of `null://?latency=...`
        target, rel, base = "null://?latency=20us", f"{name}/", f"null://{name}/data/"
    else:
        target, rel, base = f"null:///{name}/", "", f"null:///{name}/data/"
    text = MIXED.format(
        target=target, rel=rel, base=base,
        driver="native" if workers == "asyncio" else "auto",
        io_rate="io_rate: {iops: 3000, distribution: exponential}" if load == "open" else "",
    )
    code, results, summary = _run(tmp_path, text)
    _assert_success(code, results, summary)
    ops = summary["workload"]["operations"]
    assert all(ops[op]["ops"] > 0 for op in ("GET", "PUT", "META")), ops
    assert summary["prepare"]["operations"]["PUT"]["ops"] == 200  # the prepared and the deletable pool
    (execute,) = [s for s in summary["stages"] if s["type"] == "execute"]
    assert execute["details"]["async"] is (workers == "asyncio")
    # what `auto` chose is recorded and printed (null:// keeps asyncio tasks under `driver: native`)
    assert execute["details"]["worker_mode"] == workers
    on = "asyncio tasks" if workers == "asyncio" else "threads"
    assert f"s, on {on})" in (results / "console_log.txt").read_text()
    assert execute["details"]["deleted"] > 0  # DELETE ran (in META with STAT and LIST)
    assert execute["details"]["open_loop"] is (load == "open")
    suffix = "_async" if workers == "asyncio" else ""
    # prepare and cleanup list at most three times; the workload's LIST ops are the rest
    assert calls[f"stat{suffix}"] > 0 and calls[f"list{suffix}"] > 3 and calls[f"get{suffix}"] > 0, calls
    assert _held(name) == []
    checks = json.loads((results / "preflight.json").read_text())["checks"]
    assert [c["level"] for c in checks if c["name"] == "null.target"] == ["success"]


def test_directory_tree_ops_on_null(tmp_path: Path, calls: Counter[str]) -> None:
    """MKDIR and RMDIR through a tree config act as on object stores (MKDIR nothing, RMDIR without
    `recursive` nothing), and GET/STAT/PUT pick tree files."""
    name = f"tree-{uuid4().hex[:8]}"
    code, results, summary = _run(tmp_path, TREE.format(name=name))
    _assert_success(code, results, summary)
    assert summary["prepare"]["operations"]["PUT"]["ops"] == 12
    ops = summary["workload"]["operations"]
    assert all(ops[op]["ops"] > 0 for op in ("GET", "PUT", "META")), ops
    assert calls["mkdir"] > 0 and calls["rmdir"] > 0 and calls["stat"] > 0, calls
    assert _held(name) == []


def test_bad_latency_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MIXED.format(target="null:///b/?latency=fast", rel="", base="null:///b/data/",
                                 driver="auto", io_rate=""))
    assert main(["run", str(path), "--results-dir", str(tmp_path / "r")]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "target" in text and "latency='fast'" in text and "Traceback" not in text
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_dry_run_describes_the_null_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dry.yaml"
    path.write_text(MIXED.format(target="null:///b/?latency=200us&dist=exp", rel="", base="null:///b/data/",
                                 driver="native", io_rate=""))
    assert main(["run", str(path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    for words in ("200 µs per call", "(exponential)", "native (asyncio)", "null target: no storage to check"):
        assert words in text
