"""`distributed_env` and `agents[].env` on Ray (issue 14 #2): each agent's custom stage command sees the
config's variables for every agent plus its own entry's (the hash of what it saw proves it, never the value),
metadata.json names them, and neither value is in any file of the results directory or of the Ray session's
directory (logs, runtime_env records, everything, read as bytes)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from tests.cluster.conftest import run_driver, status_of

pytestmark = [pytest.mark.ray]

ALL = f"all-agents-{uuid.uuid4().hex}"
OWN = f"agent-one-{uuid.uuid4().hex}"
HASH = 'printf "%s|%s" "$SBX_OWN" "$SBX_ALL" | sha256sum | cut -c1-64 > {dir}/$SBENCH_AGENT_ID'


def _leaks(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:  # a socket or a file Ray removed meanwhile
                continue
            found += [f"{needle} in {path}" for needle in (ALL, OWN) if needle.encode() in data]
    return found


def test_agent_env_reaches_each_agents_commands_and_no_file(ray_session, tmp_path: Path) -> None:
    import ray._private.worker

    hashes = tmp_path / "hashes"
    hashes.mkdir()
    (tmp_path / "data").mkdir()
    code, results = run_driver(
        f"""
target: "file://{tmp_path / "data"}/"
duration: 1s
concurrency: 1
distributed_env: {{SBX_ALL: {ALL}}}
workload:
  - {{op: put, path: "w/", size_spec: 1024, weight: 1}}
distributed:
  shared_filesystem: true
  agents:
    - {{address: "localhost:7761", id: e1, env: {{SBX_OWN: {OWN}}}}}
    - {{address: "localhost:7762", id: e2}}
  stages:
    - name: hashes
      order: 1
      type: custom
      command: sh
      args: ["-c", '{HASH.format(dir=hashes)}']
""",
        tmp_path,
        "agentenv",
    )
    assert code == 0 and status_of(results) == "SUCCESS", (results / "console_log.txt").read_text()[-2000:]
    seen = {p.name: p.read_text().strip() for p in hashes.iterdir()}
    assert seen == {
        "e1": hashlib.sha256(f"{OWN}|{ALL}".encode()).hexdigest(),
        "e2": hashlib.sha256(f"|{ALL}".encode()).hexdigest(),
    }
    extra = json.loads((results / "metadata.json").read_text())["extra"]
    assert "SBX_ALL" in extra["forwarded_env"]
    assert "SBX_OWN" in extra["agent_env"]["e1"] and "SBX_OWN" not in extra["agent_env"]["e2"]
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    assert _leaks(results) + _leaks(session) == []
