"""`sbench replay` against a store that stops answering, through the fault proxy: the replay must end as a
stalled failure within its stall_timeout, not wait out every request's timeout."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.conftest import S3Target
from tests.faults.proxy import Fault, FaultProxy, rule
from tests.faults.sbenchrun import BASE_ENV, ROOT, inherited_env
from tests.faults.table import Outcome
from tests.replay.logs import write_log

#: far above stall_timeout + the interval + the stop's grace, far below the 120 s request timeout
WITHIN_S = 30.0


def test_a_replay_whose_store_stops_answering_fails_as_stalled(
    s3_target: S3Target, proxy: FaultProxy, tmp_path: Path, outcome: Outcome
) -> None:
    """A replay whose every request is accepted and never answered fails as stalled after stall_timeout, with
    the ops still in flight counted, instead of waiting out the 120 s request timeout."""
    log = write_log(tmp_path / "l.tsv", [(i * 0.1, "PUT", f"bench/k{i}", 1024) for i in range(20)])
    config = tmp_path / "bp.yaml"
    config.write_text("stall_timeout: 2s\n")
    proxy.set_rules(rule(Fault.STALL))
    results = tmp_path / "r"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sbench", "replay", "--op-log", str(log), "--target", s3_target.uri,
         "--config", str(config), "--continue-on-error", "--results-dir", str(results)],
        cwd=ROOT, env={**inherited_env(), **BASE_ENV, **s3_target.env()}, capture_output=True,
        text=True, timeout=120, check=False,
    )
    seconds = time.monotonic() - t0
    status_text = (results / "STATUS.txt").read_text()
    status = status_text.splitlines()[0].split(":", 1)[1].strip()
    outcome.record(status=status, code=done.returncode, seconds=seconds)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert seconds < WITHIN_S, seconds
    assert status == "FAILURE"
    summary = json.loads((results / "summary.json").read_text())
    assert "replay stalled: no progress" in summary["reason"]
    assert "stall_timeout is 2 s" in summary["reason"]
    figures = summary["load_model"]
    assert figures["ops_succeeded"] == 0
    assert figures["ops_abandoned"] > 0  # the calls still waiting for an answer are counted, not dropped
    assert proxy.counts["stall"] >= figures["ops_abandoned"]
