"""cluster.yaml is accepted by Ray's own cluster-launcher validation, as shipped (AWS) and with the
commented `local` provider block swapped in."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"

util = pytest.importorskip("ray.autoscaler._private.util")


def _local_block(text: str) -> dict:
    block = text.split("# --- local provider ---\n", 1)[1].split("# --- end local provider ---", 1)[0]
    return yaml.safe_load("\n".join(line[2:] for line in block.splitlines()))


def test_aws_example_validates() -> None:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    prepared = util.prepare_config(copy.deepcopy(config))
    util.validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"
    assert any("pip install" in cmd and "sbench" in cmd for cmd in config["setup_commands"])


def test_local_provider_block_validates() -> None:
    text = CLUSTER_YAML.read_text()
    config = yaml.safe_load(text)
    local = _local_block(text)
    assert local["provider"]["type"] == "local"
    config.update(local)
    for key in ("available_node_types", "head_node_type"):  # as the comment in cluster.yaml says
        del config[key]
    prepared = util.prepare_config(copy.deepcopy(config))
    util.validate_config(prepared)
    assert prepared["provider"]["worker_ips"] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]


def test_validation_rejects_a_broken_file() -> None:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    prepared = util.prepare_config(copy.deepcopy(config))
    prepared["setup_commands"] = "not a list"
    with pytest.raises(Exception, match="is not of type 'array'"):
        util.validate_config(prepared)
