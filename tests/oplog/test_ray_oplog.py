"""The op-log of a Ray run: two agent actors and the prepare/cleanup shard tasks capture their calls, each
agent's log is kept under agents/<id>/, and the driver's merged log (sorted by start, brought through
Ray) has every call of the run: the round trip of test_roundtrip, per agent and merged."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.oplog.reader import read_rows
from sbench.run.launch import run
from tests.oplog.roundtrip import check, mixed_config

pytestmark = pytest.mark.ray

AGENTS = """distributed:
  shared_filesystem: true
  agents:
    - {address: "127.0.0.1", id: a1}
    - {address: "127.0.0.1", id: a2}
"""


def test_distributed_capture_merges_the_agents_logs(ray_session: None, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = tmp_path / "dist.yaml"
    path.write_text(mixed_config(f"file://{root}/", AGENTS))
    results = tmp_path / "results"
    run(load_config(path), RunOptions(results_dir=results, op_log=Path("ops.tsv.zst")), path, on_ray=True)
    rows = check(results, results / "ops.tsv.zst", setup_lists=2)
    merged = Counter(r.client_id for r in rows)
    assert set(merged) == {"a1", "a2"}
    summary = json.loads((results / "summary.json").read_text())
    for agent_id in ("a1", "a2"):
        own = list(read_rows(results / "agents" / agent_id / "op_log.tsv.zst"))
        assert {r.client_id for r in own} == {agent_id} and len(own) == merged[agent_id]
        assert [r.start_ns for r in own] == sorted(r.start_ns for r in own)
    by_agent = {a["client_id"]: a for a in summary["op_log"]["agents"]}
    assert {a: by_agent[a]["rows"] for a in by_agent} == dict(merged)
    # the agents' own calls (execute) and their shard tasks' calls (prepare PUTs, cleanup DELETEs)
    assert {r.op for r in rows} >= {"PUT", "GET", "HEAD", "LIST", "DELETE"}
    offsets = summary["op_log"]["clock_offsets"]
    stages = {s["name"] for s in summary["stages"]}
    assert {(o["stage"], o["agent_id"]) for o in offsets} == {(s, a) for s in stages for a in ("a1", "a2")}
    assert all(o["same_node"] and o["offset_us"] == 0 for o in offsets)  # one node: the driver's clock
