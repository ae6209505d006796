"""Cleanup after an agent died (issue 10 #4), on the real Ray driver: one of two agents is killed
(`ray.kill` of its actor) in the middle of the execute stage, and the survivor cleans up what the dead agent
created (its prepared objects from the metadata cache, its PUT keys by run id), under an all_or_nothing and
a best_effort execute barrier. Nothing of the run may stay on the storage, and a dead agent must not make
the cleanup stage fail."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import agent_lines, run_driver, status_of

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _config(data: Path, barrier: str, shared: bool, prepared: str = "") -> str:
    base = f"base_uri: 'file://{data / prepared}/', " if prepared else ""
    get = f"{prepared}/*" if prepared else "*"
    return f"""
target: "file://{data}/"
duration: 4s
concurrency: 2
perf_log: {{interval: 0.5}}
prepare:
  cleanup: true
  ensure_objects:
    - {{{base}count: 40, size_spec: 1024, fill: zero}}
workload:
  - {{op: get, path: "{get}", weight: 1}}
  - {{op: put, path: "puts/", object_size: 512, weight: 1}}
distributed:
  shared_filesystem: {str(shared).lower()}
  barrier_sync:
    execute: {{type: {barrier}, agent_barrier_timeout: 10}}
  agents:
    - {{address: "localhost:7761", id: a1}}
    - {{address: "localhost:7762", id: a2}}
"""


def _kill_second_agent_during_execute(results: Path, seen: dict[str, int]) -> threading.Thread:
    """Once the execute stage has reported a second of intervals, count the files (the dead agent's PUTs
    among them) and kill agent a2's actor."""

    def watch() -> None:
        perf = results / "perf_log.tsv"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if perf.is_file() and perf.read_text().count("\tWorkload\t") >= 2:
                run_id = json.loads((results / "metadata.json").read_text())["run_id"]
                actor = ray.get_actor(f"sbench-agent-{run_id}-1", namespace="sbench")
                seen["files"] = sum(1 for p in results.parent.joinpath("data").rglob("*") if p.is_file())
                ray.kill(actor, no_restart=True)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("barrier", "shared"), [("all_or_nothing", False), ("best_effort", True)])
def test_survivors_clean_up_what_a_dead_agent_created(
    ray_session, tmp_path: Path, barrier: str, shared: bool
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    seen: dict[str, int] = {}
    watcher = _kill_second_agent_during_execute(tmp_path / f"{barrier}-results", seen)
    code, results = run_driver(_config(data, barrier, shared), tmp_path, barrier)
    watcher.join(5)
    console = (results / "console_log.txt").read_text()
    assert seen.get("files", 0) > 80, seen  # both agents' prepared objects, and PUT objects, were there
    left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    assert left == [], (left[:5], console[-3000:])
    assert "a2 is out (dead or excluded); the live agents clean up its objects" in console
    summary = json.loads((results / "summary.json").read_text())
    cleanup = next(s for s in summary["stages"] if s["type"] == "cleanup")
    assert cleanup["status"] == "ok", cleanup["reason"]
    assert [a["agent_id"] for a in cleanup["agents"]] == ["a1"]  # never scheduled on the dead agent
    assert cleanup["operations"]["META"]["ops"] >= seen["files"]  # deletes, each one confirmed
    assert summary["left_behind"]["total"] == 0 and summary["left_behind"]["locations"] == []
    lines = agent_lines(results)
    assert lines["a2"].startswith(("Disconnected", "Failed")) and "execute" in lines["a2"], lines
    if barrier == "all_or_nothing":
        assert code == 1 and status_of(results) == "FAILURE"
        assert "stage 'execute'" in summary["reason"] and "cleanup" not in summary["reason"]
    else:
        assert code == 0 and status_of(results) == "SUCCESS", summary["reason"]
        assert lines["a1"].startswith("Completed"), lines


def test_cleanup_that_leaves_objects_fails_the_run_with_count_and_location(
    ray_session, tmp_path: Path
) -> None:
    """The #3 rule on the Ray path: deletes of the prepared objects fail (their directory is made immutable
    while the workload runs), so cleanup leaves all 40 and the run fails, saying where and why."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    data = tmp_path / "data"
    data.mkdir()
    prepared = data / "set"
    config = _config(data, "all_or_nothing", True, prepared="set")
    results = tmp_path / "frozen-results"

    def freeze() -> None:
        perf = results / "perf_log.tsv"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if perf.is_file() and "\tWorkload\t" in perf.read_text():
                subprocess.run(["chattr", "+i", str(prepared)], check=True)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=freeze, daemon=True)
    watcher.start()
    try:
        code, results = run_driver(config, tmp_path, "frozen")
        watcher.join(5)
    finally:
        subprocess.run(["chattr", "-i", str(prepared)], check=False)
    assert code == 1 and status_of(results) == "FAILURE"
    assert len(list(prepared.iterdir())) == 40
    assert [p for p in (data / "puts").iterdir()] == []  # the PUT objects went
    summary = json.loads((results / "summary.json").read_text())
    location = f"file://{prepared}/"
    assert summary["reason"] == f"stage 'cleanup': cleanup left 40 objects of this run: {location}: 40"
    left = summary["left_behind"]
    assert (left["total"], left["fails_run"], [loc["location"] for loc in left["locations"]]) == (
        40,
        True,
        [location],
    )
    assert "Operation not permitted" in left["locations"][0]["errors"]["auth"]
    status = (results / "STATUS.txt").read_text()
    assert f"Objects left: 40 (cleanup_mode=tolerant: the run fails)\n- {location}: 40 [auth: " in status


def test_multi_endpoint_puts_of_every_agent_are_cleaned_up_on_every_endpoint(
    ray_session, tmp_path: Path
) -> None:
    """#13 on the Ray path: two agents (`processes: 2`) PUT through a two-endpoint block whose endpoints are
    two different directories; cleanup removes this run's keys from both, and keeps a foreign file."""
    a, b = tmp_path / "ep-a", tmp_path / "ep-b"
    (b / "out").mkdir(parents=True)
    a.mkdir()
    (b / "out" / "foreign.dat").write_bytes(b"not ours")
    code, results = run_driver(
        f"""
duration: 1s
concurrency: 2
processes: 2
multi_endpoint:
  endpoints: ['file://{a}/', 'file://{b}/']
prepare:
  cleanup: true
  ensure_objects:
    - {{base_uri: 'file://{a}/', use_multi_endpoint: true, count: 20, size_spec: 100}}
workload:
  - {{op: put, path: "out/", object_size: 100, weight: 1}}
""",
        tmp_path,
        "multi",
    )
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    summary = json.loads((results / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    assert execute["operations"]["PUT"]["ops"] > 0
    assert [p for p in a.rglob("*") if p.is_file()] == []
    assert [p.name for p in b.rglob("*") if p.is_file()] == ["foreign.dat"]
    assert summary["left_behind"]["total"] == 0
