"""The typed result: serialisation, merging, verdict, table rendering and the failure paragraph."""

from __future__ import annotations

import io
import json
import pickle

import pytest
from pydantic import ValidationError
from rich.console import Console

from sbench.errors import RunFailed
from sbench.preflight.result import Check, CheckList, ErrorType, Level, PreflightResult


def sample() -> PreflightResult:
    a = CheckList(agent_id="agent-1", endpoint="s3://b/p/")
    a.success("s3.list", "LIST (max 1) works", details={"first_key": None})
    a.warning("s3.credentials", "half a key pair", ErrorType.AUTHENTICATION, "set AWS_SECRET_ACCESS_KEY")
    b = CheckList(agent_id="agent-2", endpoint="file:///data/")
    b.error("fs.space", "needs 2 GiB, 1 GiB free", ErrorType.RESOURCE, "free 1 GiB on /data")
    b.info("fs.mount", "on /data (xfs)")
    return a.result().merge(b.result())


def test_passed_counts_and_errors() -> None:
    result = sample()
    assert not result.passed
    assert result.counts == {"success": 1, "info": 1, "warning": 1, "error": 1}
    assert [c.name for c in result.errors] == ["fs.space"]
    assert [c.agent_id for c in result.checks] == ["agent-1", "agent-1", "agent-2", "agent-2"]
    assert PreflightResult(checks=[c for c in result.checks if c.level is not Level.ERROR]).passed


def test_json_round_trip_keeps_derived_fields_for_readers() -> None:
    result = sample()
    data = json.loads(result.to_json())
    assert data["passed"] is False and data["counts"]["error"] == 1
    assert data["checks"][2]["error_type"] == "resource"
    assert PreflightResult.from_json(result.to_json()) == result
    assert PreflightResult.model_validate(result.model_dump()) == result
    assert pickle.loads(pickle.dumps(result)) == result


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Check(level="error", name="x", message="y", colour="red")
    with pytest.raises(ValidationError):
        PreflightResult.model_validate({"checks": [], "verdict": "ok"})


def test_merge_all_concatenates_in_order() -> None:
    parts = [sample(), PreflightResult(), sample()]
    merged = PreflightResult.merge_all(parts)
    assert len(merged.checks) == 8 and merged.checks[:4] == sample().checks


def test_render_prints_table_with_agents_and_suggestions() -> None:
    out = io.StringIO()
    sample().render(Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "Preflight checks" in text and "agent-2" in text and "ERROR (resource)" in text
    assert "→ free 1 GiB on /data" in text
    assert "Preflight FAILED: 1 ok, 1 info, 1 warning(s), 1 error(s)" in text


def test_raise_if_failed_names_every_error_and_its_fix() -> None:
    with pytest.raises(RunFailed) as info:
        sample().raise_if_failed()
    assert info.value.exit_code == 1
    assert "[agent-2] fs.space (file:///data/): needs 2 GiB, 1 GiB free Fix: free 1 GiB on /data" in str(
        info.value
    )
    PreflightResult(checks=[sample().checks[1]]).raise_if_failed()  # a warning alone never stops a run
