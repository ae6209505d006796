"""Per-agent preflight as Ray tasks: the typed result crosses the Ray boundary and merges per agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbench.plan.agents import AgentIdentity
from sbench.preflight import PreflightResult, controller_checks, run_preflight
from sbench.preflight.result import ErrorType
from tests.preflight.conftest import config_of


@pytest.mark.ray
@pytest.mark.slow
def test_each_agent_checks_its_own_target_in_a_ray_task(ray_session, tmp_path: Path) -> None:
    import ray

    (tmp_path / "a1").mkdir()
    config = config_of(f"""
duration: 1s
target: file://{tmp_path}/a1/
distributed:
  shared_filesystem: false
  agents:
    - {{address: "127.0.0.1:1", id: a1, target_override: "file://{tmp_path}/a1/"}}
    - {{address: "127.0.0.1:2", id: a2, target_override: "file://{tmp_path}/a2-missing/"}}
workload:
  - {{op: put, path: "w/", object_size: 1024, weight: 1}}
""")
    task = ray.remote(num_cpus=0)(run_preflight)
    refs = [task.remote(config, AgentIdentity(agent_id, i, 2)) for i, agent_id in enumerate(("a1", "a2"))]
    per_agent = ray.get(refs, timeout=120)
    assert all(isinstance(r, PreflightResult) for r in per_agent)
    merged = PreflightResult.merge_all([controller_checks(config), *per_agent])
    assert per_agent[0].passed and not per_agent[1].passed
    (err,) = merged.errors
    assert (err.agent_id, err.name, err.error_type) == ("a2", "fs.stat", ErrorType.CONFIGURATION)
    assert "distributed.agents[1].target_override" in err.suggestion
    assert {c.agent_id for c in merged.checks} == {None, "a1", "a2"}
