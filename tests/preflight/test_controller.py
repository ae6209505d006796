"""Controller-side consistency checks and the per-agent entry point on file:// configs."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from sbench.config import Config
from sbench.plan.agents import AgentIdentity
from sbench.preflight import controller_checks, run_preflight
from sbench.preflight.result import ErrorType, Level
from tests.preflight.conftest import config_of

PUT = "workload:\n  - {op: put, path: 'w/', object_size: 1024, weight: 1}\n"


def shared(agents: str, target: str = "s3://b/p/", extra: str = "") -> str:
    """A shared-storage distributed config with `agents` (a YAML flow list), `extra` distributed keys and
    one PUT op."""
    return f"target: {target}\ndistributed:\n  shared_filesystem: true\n{extra}  agents: {agents}\n{PUT}"


def unchecked(text: str) -> Config:
    """A Config without the loader's cross-checks, to reach states only a hand-built config can have."""
    return Config.model_validate(yaml.safe_load(text))


def test_duplicate_agent_ids_are_a_configuration_error() -> None:
    result = controller_checks(
        unchecked(shared('[{address: "127.0.0.1:1", id: x}, {address: "127.0.0.1:2", id: x}]'))
    )
    (err,) = result.errors
    assert (err.name, err.error_type) == ("config.agent_ids", ErrorType.CONFIGURATION)
    assert "distributed.agents[1].id" in err.suggestion and err.agent_id is None


def test_agents_and_agents_per_node_together_are_an_error() -> None:
    result = controller_checks(
        unchecked(shared('[{address: "127.0.0.1:1"}]', extra="  agents_per_node: 2\n"))
    )
    assert [(c.name, c.error_type) for c in result.errors] == [("config.agents", ErrorType.CONFIGURATION)]


def test_unresolvable_agent_host_is_a_network_error() -> None:
    result = controller_checks(
        config_of(shared('[{address: "127.0.0.1:7761"}, {address: "no-such-node.invalid:7761"}]'))
    )
    (err,) = result.errors
    assert (err.name, err.error_type) == ("config.agent_hosts", ErrorType.NETWORK)
    assert "distributed.agents[1].address" in err.suggestion


def test_shared_filesystem_on_a_local_disk_warns(tmp_path: Path) -> None:
    result = controller_checks(
        config_of(
            shared('[{address: "127.0.0.1:1"}, {address: "127.0.0.1:2"}]', target=f"file://{tmp_path}/")
        )
    )
    assert result.passed
    (warn,) = result.warnings
    assert warn.name == "config.storage_mode" and "shared_filesystem: false" in warn.suggestion


def test_shared_storage_with_different_agent_targets_warns() -> None:
    result = controller_checks(
        config_of(
            shared('[{address: "127.0.0.1:1"}, {address: "127.0.0.1:2", target_override: "s3://other/p/"}]')
        )
    )
    assert [w.name for w in result.warnings] == ["config.storage_mode"]


def test_endpoints_with_different_namespaces_warn() -> None:
    result = controller_checks(
        config_of(f"""
multi_endpoint:
  endpoints: ["s3://10.0.0.1:9000/b1/", "s3://10.0.0.2:9000/b2/"]
{PUT}""")
    )
    (warn,) = result.warnings
    assert warn.name == "config.endpoints" and "same bucket and prefix" in warn.suggestion
    same = controller_checks(
        config_of(f"""
multi_endpoint:
  endpoints: ["s3://10.0.0.1:9000/b1/", "s3://10.0.0.2:9000/b1/"]
{PUT}""")
    )
    assert [c.level for c in same.find("config.endpoints")] == [Level.SUCCESS]


def test_per_agent_endpoint_sets_must_share_a_namespace_when_shared() -> None:
    result = controller_checks(
        config_of(f"""
distributed:
  shared_filesystem: true
  agents:
    - {{address: "127.0.0.1:1", multi_endpoint: {{endpoints: ["s3://10.0.0.1:9000/b/"]}}}}
    - {{address: "127.0.0.1:2", multi_endpoint: {{endpoints: ["s3://10.0.0.2:9000/c/"]}}}}
{PUT}""")
    )
    assert "config.endpoint_sets" in [w.name for w in result.warnings]


def test_multi_endpoint_base_uri_under_another_endpoint_warns() -> None:
    """(A base_uri outside target and endpoints is a config error now: tests/config/test_confinement.py.)"""
    result = controller_checks(
        config_of("""
multi_endpoint:
  endpoints: ["s3://10.0.0.1:9000/b/p/", "s3://10.0.0.2:9000/b/p/"]
prepare:
  ensure_objects: [{base_uri: "s3://10.0.0.2:9000/b/p/pool/", use_multi_endpoint: true, count: 1}]
workload:
  - {op: get, path: "prepared-*.dat", weight: 1}
""")
    )
    (warn,) = result.warnings
    assert warn.name == "config.base_uri" and "prepare.ensure_objects[0].base_uri" in warn.suggestion


def test_missing_target_directory_from_a_config(tmp_path: Path) -> None:
    result = run_preflight(config_of(f"target: file://{tmp_path}/missing/\n{PUT}"))
    (err,) = result.errors
    assert (err.name, err.error_type) == ("fs.stat", ErrorType.CONFIGURATION)
    assert "`target`" in err.suggestion and err.agent_id == "standalone"
    assert os.listdir(tmp_path) == []


def test_missing_get_target_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "present.dat").write_bytes(b"abc")
    config = config_of(f"""
target: file://{tmp_path}/
workload:
  - {{op: get, path: "present.dat", weight: 1}}
  - {{op: stat, path: "*.dat", weight: 1}}
""")
    result = run_preflight(config)
    assert result.passed, result.errors
    assert [c.level for c in result.find("fs.get_target")] == [Level.SUCCESS]
    assert [c.level for c in result.find("fs.stat_target")] == [Level.SUCCESS]
    (tmp_path / "present.dat").rename(tmp_path / "other.dat")
    (err,) = run_preflight(config).errors
    assert (err.name, err.error_type) == ("fs.get_target", ErrorType.CONFIGURATION)
    assert "`workload[0].path`" in err.suggestion


def test_isolated_agent_prefix_is_created_by_the_run(tmp_path: Path) -> None:
    """The cluster layer hands each isolated agent `target/agent-N/`, which does not exist before the run."""
    config = config_of(f"""
target: file://{tmp_path}/agent-1/
distributed:
  shared_filesystem: false
  agents: [{{address: "127.0.0.1:1"}}]
{PUT}""")
    result = run_preflight(config, AgentIdentity("agent-1", 0, 1))
    assert result.passed, result.errors
    assert result.find("fs.created_by_run")[0].details["checked"] == str(tmp_path)
    assert os.listdir(tmp_path) == []


def test_missing_run_created_directory_under_a_system_path_is_refused() -> None:
    config = config_of(f"""
target: file:///no-such-top-dir/agent-1/
distributed:
  shared_filesystem: false
  agents: [{{address: "127.0.0.1:1"}}]
{PUT}""")
    (err,) = run_preflight(config, AgentIdentity("agent-1", 0, 1)).errors
    assert (err.name, err.error_type) == ("fs.stat", ErrorType.CONFIGURATION)
    assert "mkdir -p /no-such-top-dir/agent-1" in err.suggestion
