"""A replay's `--config` with a run's `distributed:` block: validated as `sbench run` validates it, the
replay's own rules on top, and `--agents` next to it refused. No Ray: every case ends before a fleet starts
(dry-runs and exit 2); the 3-node replay in tests/cluster/test_multinode.py runs a block for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbench.cli import main
from tests.replay.logs import write_log


def _replay(tmp_path: Path, config: str, *extra: str) -> int:
    log = write_log(tmp_path / "l.tsv", [(0.0, "PUT", "bench/k", 10)])
    path = tmp_path / "bp.yaml"
    path.write_text(config)
    return main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/", "--config", str(path),
                 "--dry-run", *extra])


def test_a_typo_inside_the_block_names_key_path_line_and_the_key_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = "max_concurrent: 4\ndistributed:\n  agents_per_nodes: 1\n"
    assert _replay(tmp_path, config) == 2
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'bp.yaml'}:3: distributed.agents_per_nodes: unknown key `agents_per_nodes`. "
            "Did you mean `agents_per_node`?") in err
    assert "Traceback" not in err


def test_the_block_follows_sbench_runs_agent_rules(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The same messages as a workload's block: no agents, `nodes` without agents_per_node, an id twice."""
    assert _replay(tmp_path, "distributed:\n  nodes: all\n") == 2
    err = capsys.readouterr().err
    assert "bp.yaml:1: distributed: needs agents" in err
    assert "bp.yaml:2: distributed.nodes: only applies with `agents_per_node`" in err
    config = "distributed:\n  agents:\n    - {address: localhost, id: a}\n    - {address: localhost, id: a}\n"
    assert _replay(tmp_path, config) == 2
    assert "bp.yaml:4: distributed.agents[1].id: agent id 'a' is already used by agents[0]" in \
        capsys.readouterr().err


def test_agents_next_to_a_block_is_refused_naming_both(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _replay(tmp_path, "max_concurrent: 4\ndistributed:\n  agents_per_node: 1\n", "--agents", "3") == 2
    err = capsys.readouterr().err
    assert "--agents 3" in err and f"{tmp_path / 'bp.yaml'}:2 has a `distributed` block" in err


def test_per_agent_targets_are_refused_and_run_only_keys_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    refused = "distributed:\n  agents:\n    - {address: localhost, target_override: 'file:///x/'}\n"
    assert _replay(tmp_path, refused) == 2
    assert "bp.yaml:3: distributed.agents[0].target_override: not for a replay" in capsys.readouterr().err
    config = ("distributed:\n  agents_per_node: 2\n  shared_filesystem: false\n  path_template: 'a-{id}/'\n"
              "  agents:\n    - {address: localhost, id: edge, concurrency_override: 8}\n")
    assert _replay(tmp_path, config) == 0  # shared_filesystem may also be left out (see the next one)
    captured = capsys.readouterr()
    assert "bp.yaml:3: distributed.shared_filesystem: has no effect on a replay" in captured.err
    assert "bp.yaml:4: distributed.path_template: has no effect on a replay" in captured.err
    assert "fleet: Ray agents of the `distributed` block: 1 listed agent(s) and 2 agent(s) per node on all" \
        in captured.out
    assert _replay(tmp_path, "distributed:\n  agents_per_node: 1\n") == 0
    assert capsys.readouterr().err == ""
