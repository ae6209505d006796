"""Driver features on one local Ray node: shared LIST, prepare resume from the metadata cache without LIST,
exact cleanup, custom stages on every agent, optional stages, and isolated per-agent prefixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.conftest import agent_lines, assert_merged_equals_sum, run_driver, stage_tables, status_of

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _agents(n: int) -> str:
    return "\n".join(f"    - {{address: 'localhost:{7761 + i}', id: a{i + 1}}}" for i in range(n))


def test_one_list_shared_by_every_agent(ray_session, tmp_path: Path) -> None:
    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    for i in range(300):
        (data / f"obj-{i:04d}").write_bytes(b"y" * 512)
    code, results = run_driver(
        f"""
target: "file://{tmp_path / "data"}/"
duration: 2s
concurrency: 2
workload:
  - {{op: get, path: "set/*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{_agents(3)}
""",
        tmp_path,
        "shared",
    )
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    summary = json.loads((results / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    assert execute["status"] == "ok"
    console = (results / "console_log.txt").read_text()
    assert "shared listings: 1 LIST(s) done once, read back by 2 agent(s)" in console
    _, agents = stage_tables(results / "02_execute_results.tsv")
    assert all(int(a["get_ops"]) > 0 for a in agents)


def _resume_config(data: Path, kv: Path, stages: str = "") -> str:
    return f"""
target: "file://{data}/"
duration: 1s
concurrency: 4
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 500, size_spec: 1024, fill: zero}}
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  kv_cache_dir: "{kv}"
  agents:
{_agents(2)}
{stages}
"""


def test_prepare_resumes_from_the_cache_and_cleanup_deletes_exactly_what_sbench_created(
    ray_session, tmp_path: Path
) -> None:
    data, kv = tmp_path / "data", tmp_path / "kv"
    data.mkdir()
    foreign = data / "prepared-00000007.dat"  # a prepare name that someone else's file already occupies
    foreign.write_bytes(b"not ours")
    only_prepare = """
  stages:
    - {name: preflight, order: 1, type: validation}
    - {name: prepare, order: 2, type: prepare}
"""
    code, first = run_driver(_resume_config(data, kv, only_prepare), tmp_path, "first")
    assert code == 0
    counts, _ = stage_tables(first / "02_prepare_results.tsv")
    assert counts["PUT/ALL"] == 499  # gap fill: the existing name was left alone
    assert foreign.read_bytes() == b"not ours"
    # Second run, same objects, persistent cache: no LIST, nothing created, then the workload and cleanup.
    code, second = run_driver(_resume_config(data, kv), tmp_path, "second")
    assert code == 0, (second / "console_log.txt").read_text()[-2000:]
    console = (second / "console_log.txt").read_text()
    assert "resuming from the metadata cache, 499 of 500 objects already created (no LIST)" in console
    counts, _ = stage_tables(second / "02_prepare_results.tsv")
    assert counts.get("PUT/ALL", 0) == 1  # only the index the cache did not know as created
    counts, _ = stage_tables(second / "04_cleanup_results.tsv")
    assert counts["META/ALL"] == 500  # the 499 of the first run and the 1 of this one
    assert [p.name for p in data.iterdir()] == []  # the overwritten foreign name was sbench's now too
    meta = json.loads((second / "metadata.json").read_text())
    cache = meta["extra"]["metadata_cache"]
    assert cache["by_state"]["deleted"] == 500 and cache["by_state"]["created"] == 0
    assert_merged_equals_sum(second)


def test_without_the_metadata_cache_cleanup_still_deletes_exactly_what_prepare_created(
    ray_session, tmp_path: Path
) -> None:
    """enable_metadata_cache: false (sai3 HEAD): no cache actor and no database, the driver keeps the created
    sets in memory, a foreign object under a prepare name survives cleanup."""
    data = tmp_path / "data"
    data.mkdir()
    foreign = data / "prepared-00000007.dat"
    foreign.write_bytes(b"not ours")
    config = _resume_config(data, tmp_path / "kv").replace(f'  kv_cache_dir: "{tmp_path / "kv"}"\n', "")
    code, results = run_driver("enable_metadata_cache: false\n" + config, tmp_path, "nocache")
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    assert [p.name for p in data.iterdir()] == [foreign.name] and foreign.read_bytes() == b"not ours"
    counts, _ = stage_tables(results / "04_cleanup_results.tsv")
    assert counts["META/ALL"] == 499
    assert not (results / ".sbench-metadata").exists() and not (tmp_path / "kv").exists()
    meta = json.loads((results / "metadata.json").read_text())
    assert meta["extra"]["metadata_cache"] == "off (enable_metadata_cache: false)"


def test_custom_stage_runs_on_every_agent_and_optional_failure_goes_on(ray_session, tmp_path: Path) -> None:
    marker = tmp_path / "marks"
    marker.mkdir()
    code, results = run_driver(
        f"""
target: "file://{tmp_path}/"
duration: 1s
workload:
  - {{op: stat, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{_agents(2)}
  stages:
    - name: mark
      order: 1
      type: custom
      command: sh
      args: ["-c", "touch {marker}/$SBENCH_AGENT_ID"]
    - {{name: flaky, order: 2, type: custom, command: "false", optional: true}}
    - {{name: last, order: 3, type: custom, command: "true"}}
""",
        tmp_path,
        "custom",
    )
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    assert sorted(p.name for p in marker.iterdir()) == ["a1", "a2"]  # ran once on each agent
    summary = json.loads((results / "summary.json").read_text())
    by_name = {s["name"]: s for s in summary["stages"]}
    assert by_name["flaky"]["status"] == "failed" and by_name["last"]["status"] == "ok"
    assert "false exited with code 1" in by_name["flaky"]["reason"]
    lines = agent_lines(results)
    assert all(
        line.startswith("Completed") and "optional stage 'flaky' failed" in line for line in lines.values()
    )
    assert status_of(results) == "SUCCESS"


def test_isolated_agents_get_their_own_prefix(ray_session, tmp_path: Path) -> None:
    data = tmp_path / "iso"
    data.mkdir()
    code, results = run_driver(
        f"""
target: "file://{data}/"
duration: 1s
concurrency: 2
prepare:
  ensure_objects:
    - {{count: 20, size_spec: 1024, fill: zero}}
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: false
  agents:
{_agents(2)}
""",
        tmp_path,
        "isolated",
    )
    assert code == 0
    assert sorted(p.name for p in data.iterdir()) == ["agent-1", "agent-2"]  # sai3's agent-{{id}}/ layout
    assert len(list((data / "agent-1").iterdir())) == 20 and len(list((data / "agent-2").iterdir())) == 20
    _, agents = stage_tables(results / "02_prepare_results.tsv")
    assert {a["agent_id"]: int(a["put_ops"]) for a in agents} == {"a1": 20, "a2": 20}


def test_prepare_only_verify_and_cleanup_only_flags(ray_session, tmp_path: Path) -> None:
    data = tmp_path / "flags"
    data.mkdir()
    config = f"""
target: "file://{data}/"
duration: 1s
prepare:
  ensure_objects:
    - {{count: 40, size_spec: 1024, fill: zero}}
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{_agents(2)}
"""
    code, results = run_driver(config, tmp_path, "prep", prepare_only=True)
    assert code == 0 and len(list(data.iterdir())) == 40
    assert sorted(p.name for p in results.glob("0*_results.tsv")) == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
    ]
    code, results = run_driver(config, tmp_path, "verify-ok", verify=True)
    assert code == 0 and "40 of 40 objects found" in (results / "console_log.txt").read_text()
    (data / "prepared-00000011.dat").unlink()
    code, results = run_driver(config, tmp_path, "verify-bad", verify=True)
    assert code == 1 and status_of(results) == "FAILURE"
    assert "39 of 40 objects found" in (results / "console_log.txt").read_text()
    code, results = run_driver(config, tmp_path, "clean", cleanup_only=True)
    assert code == 0 and list(data.iterdir()) == []
    console = (results / "console_log.txt").read_text()
    assert "--cleanup-only has no record of which objects existed before" in console
    assert "so every prepare name (40 objects) is deleted" in console


def test_stage_timeout_and_hybrid_expected_tasks(ray_session, tmp_path: Path) -> None:
    data = tmp_path / "limits"
    data.mkdir()
    code, results = run_driver(
        f"""
target: "file://{data}/"
duration: 1s
concurrency: 2
prepare:
  ensure_objects:
    - {{count: 2000, size_spec: 1024, fill: zero}}
workload:
  - {{op: stat, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{_agents(2)}
  stages:
    - {{name: prepare, order: 1, type: prepare}}
    - {{name: burst, order: 2, type: hybrid, max_duration: 20s, expected_tasks: 3000}}
    - {{name: slow, order: 3, type: custom, command: sleep, args: ["30"], timeout_secs: 1}}
""",
        tmp_path,
        "limits",
    )
    summary = json.loads((results / "summary.json").read_text())
    by_name = {s["name"]: s for s in summary["stages"]}
    burst = by_name["burst"]
    assert burst["status"] == "ok"
    assert all(a["duration_s"] < 15 for a in burst["agents"])  # ended by expected_tasks, not max_duration
    assert all(a["ops"] >= 3000 for a in burst["agents"])
    slow = by_name["slow"]
    assert slow["status"] == "failed", slow
    assert "stage time limit of 1 s (timeout_secs) exceeded" in slow["reason"], slow["reason"]
    assert all(a["duration_s"] < 5 for a in slow["agents"])  # the 30 s command was stopped at its limit
    assert code == 1 and status_of(results) == "FAILURE"
    assert "stage 'slow'" in (results / "STATUS.txt").read_text()


def test_processes_run_as_local_agents_sharing_the_open_loop_rate(ray_session, tmp_path: Path) -> None:
    """`processes: 2` (sai3's standalone multi-process mode) runs two local agent processes with
    concurrency split between them, and the open-loop rate is the run's aggregate, not per agent."""
    (tmp_path / "data").mkdir()
    code, results = run_driver(
        f"""
target: "file://{tmp_path / "data"}/"
duration: 4s
concurrency: 4
processes: 2
io_rate: {{iops: 400, distribution: deterministic}}
workload:
  - {{op: put, path: "up/", object_size: 1024, weight: 1}}
""",
        tmp_path,
        "processes",
    )
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    assert set(agent_lines(results)) == {"agent-1", "agent-2"}
    assert_merged_equals_sum(results)
    counts, agents = stage_tables(next(results.glob("[0-9][0-9]_execute_results.tsv")))
    assert 1520 <= counts["PUT/ALL"] <= 1680  # 400 ops/s x 4 s in aggregate, +-5%
    assert all(720 <= int(a["put_ops"]) <= 880 for a in agents)  # each agent has half of the workers
    written = list((tmp_path / "data" / "up").iterdir())
    assert len(written) == counts["PUT/ALL"]


def test_a_stage_ending_with_a_stuck_agent_fails_the_run(ray_session, tmp_path: Path) -> None:
    """Two agents under best_effort: flaky-1 works (with a few throttled GETs), stuck-2 never progresses.
    The barrier lets the stage pass, but a stage that ends with an agent stuck is not a success: FAILURE,
    exit 1, the stuck agent named. The first throttled message travels through Ray, scrubbed."""
    from sbench.config import load_config
    from sbench.config.runoptions import RunOptions
    from sbench.run.launch import run
    from tests.cluster.fakes import FLAKY_SIGNATURE, fake_stage

    path = tmp_path / "stuck.yaml"
    path.write_text(
        f"""
target: "file://{tmp_path}/"
duration: 2s
concurrency: 1
perf_log: {{interval: 0.25}}
workload:
  - {{op: put, path: "w/", object_size: 1024, weight: 1}}
distributed:
  shared_filesystem: true
  stuck_intervals: 2
  barrier_sync:
    enabled: true
    execute: {{type: best_effort, agent_barrier_timeout: 5}}
  agents:
    - {{address: 'localhost:7761', id: flaky-1}}
    - {{address: 'localhost:7762', id: stuck-2}}
"""
    )
    results = tmp_path / "stuck-results"
    code = run(load_config(path), RunOptions(results_dir=results), path, stage_fn=fake_stage, on_ray=True)
    assert code == 1
    status = (results / "STATUS.txt").read_text()
    assert status_of(results) == "FAILURE"
    assert "Reason: stage 'execute' failed: agent stuck-2 ended the stage STUCK (no progress for 2" in status
    lines = agent_lines(results)
    assert lines["stuck-2"].startswith("Failed (stage 'execute': ")
    assert "agent stuck-2 ended the stage STUCK" in lines["stuck-2"]
    assert "[STUCK:" in lines["stuck-2"] and lines["flaky-1"].startswith("Completed")
    first = status.split("=== First Error of Each Class ===", 1)[1].strip().splitlines()
    assert len(first) == 1 and first[0].startswith("stage execute: throttled (") and "flaky-1" in first[0]
    summary = json.loads((results / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["name"] == "execute")
    assert execute["status"] == "failed" and "stuck-2 ended the stage STUCK" in execute["reason"]
    assert execute["errors"]["first_by_class"]["throttled"]["message"].endswith("/b/k.dat?REDACTED")
    assert [e["kind"] for e in summary["first_errors"]] == ["throttled"]
    console = (results / "console_log.txt").read_text()
    assert "first throttled error (" in console
    for name in ("STATUS.txt", "summary.json", "console_log.txt", "metadata.json"):
        assert FLAKY_SIGNATURE not in (results / name).read_text(), name
    # summary.json's run times are set and the same as metadata.json's (they were null)
    meta = json.loads((results / "metadata.json").read_text())
    assert summary["run"]["end_time"] is not None and summary["run"]["duration_secs"] is not None
    times = (summary["run"]["end_time"], summary["run"]["duration_secs"])
    assert times == (meta["end_time"], meta["duration_secs"])
    assert meta["status"] == "FAILURE"


def test_results_directory_deleted_during_a_ray_run(ray_session, tmp_path: Path) -> None:
    """A custom stage deletes the results directory mid-run: later stage files fail (noted, no traceback),
    the directory comes back for the end-of-run files, and the run fails naming the path and the error."""
    results = tmp_path / "gone-results"
    (tmp_path / "data").mkdir()
    code, out = run_driver(
        f"""
target: "file://{tmp_path}/data/"
duration: 1s
concurrency: 1
perf_log: {{interval: 0.25}}
workload:
  - {{op: put, path: "w/", object_size: 1024, weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{_agents(2)}
  stages:
    - {{name: wipe, order: 1, type: custom, command: rm, args: ["-rf", "{results}"]}}
    - {{name: execute, order: 2, type: execute, duration: 1s}}
""",
        tmp_path,
        "gone",
    )
    assert out == results
    assert code == 1
    assert status_of(results) == "FAILURE"
    reason = json.loads((results / "summary.json").read_text())["reason"]
    assert f"{results}: the directory was replaced during the run" in reason or (
        f"{results}: the directory was deleted during the run" in reason
    ), reason
    assert "No such file or directory [ENOENT]" in reason  # a stage file written while it was gone
    assert (results / "workload_results.tsv").is_file() and (results / "metadata.json").is_file()
    assert not list(results.rglob("*.tmp"))
