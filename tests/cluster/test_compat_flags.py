"""On the session's Ray instance: an ad-hoc distributed run from a plain config with sai3bench-ctl's flags
(--agents, --agent-ids, --start-delay), sharded prepare keys, the populate ledger's per-agent and AGGREGATE
rows, and `sbench ping` reaching the node."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sbench.cli import main


def test_agents_flags_ledger_and_ping(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    cfg = tmp_path / "plain.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 0.5s\nconcurrency: 1\n"
        "prepare:\n  key_prefix_shards: 4\n  cleanup: false\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: 20, size_spec: 100}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
    )
    out = tmp_path / "r"
    flags = ["--agents", "2", "--agent-ids", "x,y", "--start-delay", "0.3s", "--no-report"]
    assert main(["run", str(cfg), *flags, "--results-dir", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["distributed"] is True and meta["agents"] == ["x", "y"]
    overrides = meta["extra"]["cli_overrides"]
    assert overrides["distributed.agents"] == {"cli": "2", "yaml": None}
    assert overrides["distributed.start_delay"] == {"cli": 0.3, "yaml": None}
    assert "start delay: the first stage starts in 0.3 s" in (out / "console_log.txt").read_text()
    assert sorted(p.name for p in (out / "agents").iterdir()) == ["x", "y"]
    assert len({p.parent.name for p in (root / "data").rglob("prepared-*.dat")}) == 4
    with (out / "populate_ledger.tsv").open() as fh:
        rows = {r["agent_id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert set(rows) == {"x", "y", "AGGREGATE"}
    created = {a: int(rows[a]["objects_created"]) for a in ("x", "y")}
    assert sum(created.values()) == 20 and min(created.values()) > 0  # each agent's own shards
    assert rows["AGGREGATE"]["objects_created"] == "20" and rows["AGGREGATE"]["total_bytes"] == "2000"
    capsys.readouterr()
    assert main(["ping", "--probes", "3"]) == 0
    text = capsys.readouterr().out
    assert "Ray: the caller's connection" in text
    assert "round trip min" in text and "(3 probes), clock offset" in text
