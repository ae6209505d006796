"""`python -m sbench run CONFIG` as a child process the test can watch, interrupt and time.

The child gets its own process group (as a shell job has), so "Ctrl-C" is SIGINT to the whole group exactly
as a terminal sends it, and a run that does not end within its bound is killed with its whole group. Its
output is read line by line as it comes (PYTHONUNBUFFERED), so a test can act when a stage starts. Ray
runs get a private RAY_TMPDIR: every process of the run's local Ray instance then carries that path (or
descends from one that does), which is how `ray_processes` finds the agents to kill and the helpers that
outlive sbench.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
#: The console line of a stage that ended, whatever its status (`== stage execute aborted after 1.2s: ...`).
STAGE_END = re.compile(r"^== stage \S+ \w+ after ")
#: Environment of every child: the tree under test first, unbuffered output, Ray quiet and loopback-only.
BASE_ENV = {
    "PYTHONPATH": str(ROOT),
    "PYTHONUNBUFFERED": "1",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "COLUMNS": "160",
}


@dataclass(frozen=True)
class Finished:
    """How a run ended: exit code (None: it had to be killed), seconds from start, seconds from the first
    signal the test sent to the exit and to the first stage-end line after it (None when no signal was sent,
    or no stage ended after it), and everything it printed."""

    code: int | None
    seconds: float
    after_signal: float | None
    stopped_after: float | None
    output: str


class SbenchProcess:
    """One `sbench run` child. Use as a context manager: leaving the block kills whatever is still running."""

    def __init__(
        self,
        config: Path,
        results: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.results = results
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="sbf-", dir="/tmp"))  # short: Ray's socket paths
        command = [
            *wrapper,
            sys.executable,
            "-m",
            "sbench",
            "run",
            str(config),
            "--results-dir",
            str(results),
            *args,
        ]
        self._lines: list[str] = []
        self._times: list[float] = []  # when each line arrived
        self._changed = threading.Condition()
        self._signalled_at: float | None = None
        self._ray_seen: dict[int, psutil.Process] = {}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**inherited_env(), **BASE_ENV, "RAY_TMPDIR": str(self.ray_tmp), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="sbench-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self._lines.append(line)
                self._times.append(time.monotonic())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> str:
        """The first output line matching the regular expression; fails the test (with the output so far)
        when the run ends or `timeout` passes first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout:.0f} s "
                        f"(exit code {self.proc.poll()}):\n{''.join(self._lines)[-4000:]}"
                    )
                self._changed.wait(min(left, 0.2))

    def wait_for_stage(self, stage: str, timeout: float = 60.0) -> None:
        """Until the console says the stage (preflight, prepare, execute, cleanup) started."""
        self.wait_for(rf"== stage {stage} \(\w+\) started", timeout)
        self.note_ray_processes()

    def note_ray_processes(self) -> None:
        """Remember the run's Ray processes now, so `lingering` can find them after they lost the parent
        that made them recognisable."""
        if (self.ray_tmp / "ray").exists():
            self._ray_seen.update((p.pid, p) for p in ray_processes(self.ray_tmp))

    def lingering(self, within: float) -> list[str]:
        """The run's Ray processes still alive `within` seconds after it exited (polled), as `pid name`."""
        deadline = time.monotonic() + within
        while True:
            left = {p.pid: p for p in ray_processes(self.ray_tmp)}
            left.update((pid, p) for pid, p in self._ray_seen.items() if _alive(p))
            if not left or time.monotonic() > deadline:
                return [f"{pid} {' '.join(_cmdline(p))[:60]}" for pid, p in left.items()]
            time.sleep(0.2)

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """Ctrl-C as a terminal sends it (SIGINT to the process group); SIGTERM as `kill` or `ray job stop`
        send it (to the process)."""
        self.note_ray_processes()
        if self._signalled_at is None:
            self._signalled_at = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> Finished:
        """Until the run exits, at most `timeout` seconds; a run still going then is killed (code None)."""
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        ended = time.monotonic()
        self._reader.join(10)
        sent = self._signalled_at
        if sent is None:
            return Finished(code, ended - self.started, None, None, self.output)
        stops = [
            t - sent
            for t, line in zip(self._times, self._lines, strict=True)
            if t >= sent and STAGE_END.match(line)
        ]
        return Finished(code, ended - self.started, ended - sent, stops[0] if stops else None, self.output)

    def kill(self) -> None:
        """SIGKILL the process group, then every process of the run's Ray instance that is left."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for proc in [*ray_processes(self.ray_tmp), *self._ray_seen.values()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()

    def __enter__(self) -> SbenchProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def inherited_env() -> dict[str, str]:
    """This process's environment without cloud settings: a scenario passes the credentials it means."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}


def ray_processes(ray_tmp: Path) -> list[psutil.Process]:
    """Live processes of the Ray instance rooted at `ray_tmp`: those whose command line names it (GCS,
    raylet, dashboard, monitors) and their descendants (workers and actors retitle themselves `ray::...`)."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if str(ray_tmp) in " ".join(proc.info["cmdline"] or ()):
            found[proc.pid] = proc
            try:
                found.update((child.pid, child) for child in proc.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
    return [p for p in found.values() if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def agent_processes(ray_tmp: Path) -> list[psutil.Process]:
    """The agent actors' worker processes of that Ray instance."""
    return [p for p in ray_processes(ray_tmp) if " ".join(_cmdline(p)).startswith("ray::AgentActor")]
