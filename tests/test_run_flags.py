"""sai3-bench's run/controller flags on `sbench run`: --tsv-name, --results-name-style, and --agents,
--agent-ids, --path-template, --start-delay, --shared-prepare applied to the YAML (config.overrides)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sbench.cli import main
from sbench.config import load_config
from sbench.config.overrides import ControllerFlags, apply_controller_flags
from sbench.errors import UsageError


def _config(tmp_path: Path, extra: str = "") -> Path:
    root = tmp_path / "store"
    root.mkdir(exist_ok=True)
    cfg = tmp_path / "flags.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 0.3s\nconcurrency: 1\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{root}/data/', count: 5, size_spec: 64}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n" + extra
    )
    return cfg


# -- --tsv-name and --results-name-style ---------------------------------------------------------------


def test_tsv_name_names_the_directory_and_the_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(cfg), "--prepare-only", "--no-report", "--tsv-name", "nightly"]) == 0
    [out] = tmp_path.glob("sbench-*-nightly")
    assert re.fullmatch(r"sbench-\d{8}-\d{6}-nightly", out.name)
    assert json.loads((out / "metadata.json").read_text())["test_name"] == "nightly"
    assert (out / "prepare_results.tsv").is_file()  # file names inside stay fixed, as in sai3


def test_sai3_name_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path)
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a second run in the same minute gets a suffix instead of mixing results
        assert main(["run", str(cfg), "--prepare-only", "--no-report", "--results-name-style", "sai3"]) == 0
    names = sorted(p.name for p in tmp_path.glob("sai3-*"))
    assert len(names) == 2 and re.fullmatch(r"sai3-\d{8}-\d{4}-flags", names[0])
    assert names[1] == names[0] + "-2"


def test_dry_run_shows_the_directory_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--dry-run", "--tsv-name", "nightly", "--results-name-style", "sai3"]
    assert main(["run", str(_config(tmp_path)), *flags]) == 0
    assert re.search(r"\./sai3-\d{8}-\d{4}-nightly/ \(stamped when the run starts\)", capsys.readouterr().out)


@pytest.mark.parametrize("name", ["a/b", "..", " "])
def test_bad_tsv_name_is_a_usage_error(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_config(tmp_path)), "--dry-run", "--tsv-name", name]) == 2
    assert "--tsv-name" in capsys.readouterr().err


# -- controller flags on the YAML ----------------------------------------------------------------------


def _apply(data: dict[str, Any], **flags: str) -> dict[str, Any]:
    return apply_controller_flags(data, ControllerFlags(**flags), "w.yaml")


def test_agents_count_and_hosts() -> None:
    data: dict[str, Any] = {}
    record = _apply(data, agents="3")
    assert data["distributed"] == {"shared_filesystem": True, "agents": [{"address": "localhost"}] * 3}
    assert record["distributed.agents"] == {"cli": "3", "yaml": None}
    data = {}
    _apply(data, agents="10.0.0.5, 10.0.0.6", shared_prepare="false", agent_ids="n1,n2")
    assert data["distributed"]["agents"] == [{"address": "10.0.0.5", "id": "n1"},
                                             {"address": "10.0.0.6", "id": "n2"}]
    assert data["distributed"]["shared_filesystem"] is False


def test_flags_beat_the_yaml_and_are_recorded() -> None:
    data: dict[str, Any] = {"distributed": {
        "shared_filesystem": True, "path_template": "agent-{id}/",
        "agents": [{"address": "a:1", "id": "x", "path_template": "own/"}, {"address": "b:1"}],
    }}
    record = _apply(data, agent_ids="p,q", path_template="h-{id}/", start_delay="2s", shared_prepare="no")
    dist = data["distributed"]
    assert [a["id"] for a in dist["agents"]] == ["p", "q"]
    assert "path_template" not in dist["agents"][0] and dist["path_template"] == "h-{id}/"
    assert dist["start_delay"] == 2.0 and dist["shared_filesystem"] is False
    assert record["distributed.path_template"] == {"cli": "h-{id}/", "yaml": "agent-{id}/"}
    assert record["distributed.agents[].id"] == {"cli": ["p", "q"], "yaml": ["x", None]}
    assert record["distributed.agents[0].path_template"]["yaml"] == "own/"
    assert record["distributed.shared_filesystem"] == {"cli": False, "yaml": True}


@pytest.mark.parametrize(
    ("data", "flags", "words"),
    [
        ({"distributed": {"shared_filesystem": True, "agents": [{"address": "a:1"}]}}, {"agents": "2"},
         "lists its own agents (distributed.agents"),
        ({"distributed": {"shared_filesystem": True, "agents_per_node": 2}}, {"agents": "2"},
         "agents_per_node"),
        ({"processes": 4}, {"agents": "2"}, "`processes: 4`"),
        ({}, {"path_template": "x/"}, "--path-template: w.yaml has no `distributed` block"),
        ({}, {"agents": "2", "agent_ids": "a"}, "1 ids for 2 agents"),
        ({}, {"agents": "2", "agent_ids": "a,a"}, "'a' is given twice"),
        ({}, {"agents": "0"}, "give 1 to"),
        ({}, {"agents": "a,,b"}, "node addresses separated by commas"),
        ({}, {"agents": "1", "start_delay": "soon"}, "--start-delay"),
        ({}, {"agents": "1", "shared_prepare": "maybe"}, "give true or false"),
    ],
)
def test_conflicts_and_bad_values_are_refused(
    data: dict[str, Any], flags: dict[str, str], words: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(words)):
        _apply(data, **flags)


def test_flag_values_are_validated_like_yaml(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    loaded = load_config(cfg, ControllerFlags(agents="2", agent_ids="a,b", start_delay="1.5s"))
    dist = loaded.config.distributed
    assert dist is not None and [a.id for a in dist.agents] == ["a", "b"] and dist.start_delay == 1.5
    assert loaded.overrides["distributed.start_delay"] == {"cli": 1.5, "yaml": None}

def test_a_bad_flag_value_is_refused_naming_the_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    assert main(["run", str(cfg), "--dry-run", "--agents", "2", "--path-template", "../up/"]) == 2
    err = capsys.readouterr().err
    assert "distributed.path_template" in err and "came from `sbench run` flags" in err


def test_dry_run_shows_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    flags = ["--agents", "2", "--agent-ids", "left,right", "--shared-prepare", "false",
             "--path-template", "h-{id}/", "--start-delay", "2s"]
    assert main(["run", str(cfg), "--dry-run", *flags]) == 0
    out = capsys.readouterr().out
    assert "Agents (2)" in out and "left" in out and "right" in out
    assert "isolated: each agent works under `h-{id}/`" in out
    assert "the first stage starts 2s after the agents are ready" in out
    assert "Set by flags" in out and "distributed.agents = '2'" in out
