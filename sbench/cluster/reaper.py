"""A watchdog that ends the local Ray instance sbench started as soon as the driver is gone, however it ended.

Ray ties its GCS server and raylet to the driver (the kernel kills them when the driver dies), but not the
raylet's children: after a second Ctrl-C (`os._exit`) or a SIGKILL of the driver, `DashboardAgent`,
`RuntimeEnvAgent` and idle workers kept running for 60-90 s, retrying a GCS that no longer exists. This
process closes that gap: the driver starts it right after `ray.init` with a pipe on its stdin and keeps the
write end; the kernel closes that end when the driver exits on any path (normal end, `os._exit`, SIGKILL),
and the reaper then kills, with SIGKILL, every process of the instance:

- every process that references the instance's private temp dir (command line or an open file: the GCS
  server, raylet, dashboard, log monitor, the agents and every worker keep their logs open there), and
- every process seen under the instance while the driver ran (sampled every 0.5 s: the driver's children
  that belong to the instance and all their descendants, e.g. custom-stage commands that agents start,
  which hold no such file), if it is still the same process (pid and start time). Other children of the
  driver (when sbench runs inside a larger program) are not the instance's and are left alone.

It never touches the driver's pid or itself, and a cluster sbench joined (RAY_ADDRESS) never gets one.
It runs in its own session, so Ctrl-C in the terminal does not stop it before it has done its job. It
imports nothing from sbench: `python -m sbench.cluster.reaper DRIVER_PID TEMP_DIR` starts in milliseconds.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

#: How often the driver's descendants are sampled while it runs.
SAMPLE_S = 0.5
#: How long the reaper waits for killed processes to disappear before it gives up on them.
KILL_WAIT_S = 3.0
PROC = Path("/proc")


def start_reaper(temp_dir: str) -> subprocess.Popen[bytes] | None:
    """Start the watchdog for the instance under `temp_dir` (None where /proc is missing: not Linux)."""
    if not PROC.is_dir():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "sbench.cluster.reaper", str(os.getpid()), temp_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def stop_reaper(reaper: subprocess.Popen[bytes] | None, timeout_s: float = 5.0) -> None:
    """Normal end (after `ray.shutdown()`): let the reaper kill what is left now and wait for it."""
    if reaper is None:
        return
    if reaper.stdin is not None:
        reaper.stdin.close()
    try:
        reaper.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return  # it keeps working on its own after sbench exits


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, None when it is gone or a zombie (dead,
    waiting for its new parent to reap it)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []


def instance_tree(driver: int, temp_dir: str) -> dict[int, int]:
    """pid -> start time of the driver's children that reference `temp_dir` (the processes `ray.init`
    started) and of all their live descendants."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append((pid, stat[1]))
    out = {pid: started for pid, started in children.get(driver, []) if references(pid, temp_dir)}
    stack = list(out)
    while stack:
        for pid, started in children.get(stack.pop(), []):
            if pid not in out:
                out[pid] = started
                stack.append(pid)
    return out


def references(pid: int, temp_dir: str) -> bool:
    """True when the process's command line or one of its open files is under `temp_dir`."""
    base = PROC / str(pid)
    try:
        if temp_dir.encode() in (base / "cmdline").read_bytes():
            return True
        fds = os.listdir(base / "fd")
    except OSError:
        return False
    prefix = temp_dir.rstrip("/") + "/"
    for fd in fds:
        try:
            if os.readlink(base / "fd" / fd).startswith(prefix):
                return True
        except OSError:
            continue
    return False


def targets(driver: int, temp_dir: str, seen: dict[int, int]) -> list[int]:
    """The processes to kill: those referencing `temp_dir` now, and those seen in the instance's tree that
    are still themselves."""
    spared = {driver, os.getpid()}
    found = {pid for pid, started in seen.items() if (_stat(pid) or (0, -1))[1] == started}
    found.update(pid for pid in _pids() if pid not in found and references(pid, temp_dir))
    return sorted(found - spared)


def reap(driver: int, temp_dir: str, seen: dict[int, int]) -> list[int]:
    """SIGKILL every target, wait (bounded) until they are gone; returns the pids that were signalled."""
    killed = targets(driver, temp_dir, seen)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue  # already gone, or not ours to signal
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and any(_stat(pid) is not None for pid in killed):
        time.sleep(0.05)
    return killed


def watch(driver: int, temp_dir: str) -> None:
    """Sample the instance's process tree until stdin reaches EOF (the driver is gone), then reap."""
    seen: dict[int, int] = {}
    stdin = sys.stdin.fileno()
    while True:
        seen.update(instance_tree(driver, temp_dir))
        ready, _, _ = select.select([stdin], [], [], SAMPLE_S)
        if ready and not os.read(stdin, 4096):
            break
    reap(driver, temp_dir, seen)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for sbench must not end the watchdog
    watch(int(argv[0]), argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
