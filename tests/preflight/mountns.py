"""Run filesystem checks inside a private mount namespace, on a file system mounted just for the test.

A read-only mount, a 1 MiB tmpfs or a ramfs (no O_DIRECT) show the real kernel behaviour, which chmod cannot
give a root test process. The mount lives only in a child `unshare -m` process, so nothing leaks to the host.
Run as `python -m tests.preflight.mountns JSON` inside that namespace: it prints the PreflightResult JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from sbench.preflight.filesystem import FsTarget, check_filesystem
from sbench.preflight.need import NeedPart, SpaceNeed
from sbench.preflight.result import CheckList, PreflightResult

ROOT = Path(__file__).resolve().parents[2]


@cache
def unavailable_reason() -> str | None:
    """None when `unshare -m` plus `mount -t tmpfs` work here, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "mounting a test file system needs root (euid is not 0)"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare(1) or mount(8) is not installed"
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(d)} && umount {shlex.quote(d)}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    if proc.returncode != 0:
        return f"private mount namespaces are not permitted here: {proc.stderr.strip() or proc.returncode}"
    return None


def check_on_mount(mount_dir: Path, mount_args: list[str], target: FsTarget) -> PreflightResult:
    """Mount (`mount MOUNT_ARGS mount_dir`) in a private namespace and run check_filesystem there."""
    spec = json.dumps(
        {
            "uri": target.uri,
            "path": target.path,
            "source": target.source,
            "direct": target.direct,
            "write": target.write,
            "need": [[p.label, p.count, p.mean_size] for p in target.need.parts],
        }
    )
    script = (
        f"mount {' '.join(shlex.quote(a) for a in mount_args)} {shlex.quote(str(mount_dir))} && "
        f"exec {shlex.quote(sys.executable)} -m tests.preflight.mountns {shlex.quote(spec)}"
    )
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"check in mount namespace failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return PreflightResult.from_json(proc.stdout)


def run_in_tmpfs(
    size: str, mount: Path, argv: list[str], after: str = ""
) -> subprocess.CompletedProcess[str]:
    """`python -m sbench ARGV` in a private mount namespace with a tmpfs of `size` at `mount`; `after` is a
    shell command run in the namespace once sbench exited (copy out what the tmpfs holds: it goes with the
    namespace). The result carries sbench's exit code and output."""
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(mount))} || exit 99; "
        f"{shlex.quote(sys.executable)} -m sbench {' '.join(shlex.quote(a) for a in argv)}; rc=$?; "
        f"{after or ':'}; exit $rc"
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _main(spec_text: str) -> None:
    spec = json.loads(spec_text)
    need = SpaceNeed(tuple(NeedPart(label, count, mean) for label, count, mean in spec.pop("need")))
    checks = CheckList(agent_id="test", endpoint=spec["uri"])
    check_filesystem(FsTarget(need=need, **spec), checks)
    sys.stdout.write(checks.result().to_json())


if __name__ == "__main__":
    _main(sys.argv[1])
