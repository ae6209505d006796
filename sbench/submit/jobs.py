"""The submitting side of `sbench submit`: reach the cluster's job API, submit, follow the log, stop,
and bring a finished job's results directory home (through a fetch job, see sbench.submit.pack).

Everything goes through Ray's dashboard address (`http://HEAD:8265`), the one a user already has for
`ray job submit`. Before anything is submitted the address is checked (reachable, a Ray dashboard, the
Ray version sbench is pinned to), so the common mistakes end with one sentence, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

import ray
from ray.job_submission import JobErrorType, JobStatus, JobSubmissionClient

from sbench.errors import EXIT_INTERRUPTED, RunFailed
from sbench.stopsignals import SignalScope
from sbench.submit import pack
from sbench.submit.address import DEFAULT_ADDRESS
from sbench.submit.jobspec import RESULTS_MARKER, JobSpec, RuntimeEnvMode, pack_job

TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED})
#: how long a fetch job may take (packing is seconds; building its environment may take minutes)
FETCH_TIMEOUT = 900.0


def check_cluster(url: str, timeout: float = 10.0) -> str:
    """The cluster's Ray version; RunFailed when it cannot be reached, is not Ray, or runs another Ray."""
    hint = f"start the head with `ray start --head` and pass its dashboard (--address {DEFAULT_ADDRESS})"
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=timeout) as answer:
            body = answer.read(65536)
    except urllib.error.HTTPError as exc:
        raise RunFailed(
            f"{url} answers, but not as a Ray dashboard (GET /api/version: HTTP {exc.code})", hint=hint
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RunFailed(f"cannot reach the Ray dashboard at {url}: {reason}", hint=hint) from None
    try:
        version = str(json.loads(body)["ray_version"])
    except (ValueError, KeyError, TypeError):
        raise RunFailed(f"{url} answers, but not as a Ray dashboard (no ray_version)", hint=hint) from None
    if version != ray.__version__:
        raise RunFailed(
            f"the Ray cluster at {url} runs Ray {version}, but sbench needs Ray {ray.__version__} "
            "(the version it is pinned to): the job's driver and agents would not match",
            hint=f"run the cluster with ray=={ray.__version__}, or install the sbench that matches it",
        )
    return version


def results_dir_in(log: str) -> str | None:
    """The results directory a run job announced in its log (None: it never got that far)."""
    for line in log.splitlines():
        if line.startswith(RESULTS_MARKER):
            return line[len(RESULTS_MARKER) :].strip()
    return None


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


class ClusterJobs:
    """One cluster's job API (checked on construction)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ray_version = check_cluster(url)
        self.client = JobSubmissionClient(url)

    def submit(self, spec: JobSpec) -> str:
        """Submit `spec` (uploading its working_dir and py_modules); RunFailed when Ray refuses it."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.client.submit_job(**spec.submit_kwargs())
            except (RuntimeError, ValueError, ConnectionError) as exc:
                # the head's job agent answers "No available agent" for a few seconds after it starts
                if "No available agent" in str(exc) and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                raise RunFailed(f"the cluster at {self.url} refused the job: {_tail(str(exc), 3)}") from None

    def info(self, job_id: str) -> Any:
        try:
            return self.client.get_job_info(job_id)
        except RuntimeError as exc:
            raise RunFailed(f"no job {job_id} on the cluster at {self.url}: {_tail(str(exc), 1)}") from None

    def logs(self, job_id: str) -> str:
        return self.client.get_job_logs(job_id)

    def follow(self, job_id: str, out: TextIO) -> Any:
        """Print the job's log as it grows until the job ends; Ctrl-C stops the job (as `ray job stop`)
        and keeps following, so its partial results come home. Returns the final job info."""
        printed = 0

        async def stream() -> None:
            nonlocal printed
            async for chunk in self.client.tail_job_logs(job_id):
                out.write(chunk)
                out.flush()
                printed += len(chunk)

        with _StopSignals() as signals:
            try:
                asyncio.run(stream())
                info = self.wait(job_id)
            except KeyboardInterrupt:
                print(f"\nsbench submit: {signals.name}, stopping job {job_id} (as `ray job stop`; again to "
                      "exit at once)", file=sys.stderr)
                self.client.stop_job(job_id)
                info = self.wait(job_id)
        rest = self.logs(job_id)[printed:]
        if rest:
            out.write(rest)
            out.flush()
        return info

    def wait(self, job_id: str, timeout: float | None = None) -> Any:
        """Poll until the job is in a terminal state (RunFailed after `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.info(job_id)
            if info.status in TERMINAL:
                return info
            if deadline is not None and time.monotonic() > deadline:
                raise RunFailed(f"job {job_id} is still {info.status.value} after {timeout:.0f} s")
            time.sleep(0.25)

    def fetch(self, job_id: str, info: Any, mode: RuntimeEnvMode, dest: Path) -> list[str] | None:
        """Bring the run's results directory into `dest`; None when the run wrote none. A job pinned to
        the node of the run's driver packs it (sbench.submit.pack), and the archive comes back in its log."""
        remote = results_dir_in(self.logs(job_id))
        node_ip = urllib.parse.urlsplit(info.driver_agent_http_address or "").hostname
        if remote is None or not node_ip:
            return None
        spec = pack_job(job_id, mode, node_ip, remote)
        self.submit(spec)
        done = self.wait(spec.submission_id, timeout=FETCH_TIMEOUT)
        log = self.logs(spec.submission_id)
        if done.status == JobStatus.FAILED and done.driver_exit_code == pack.NO_DIR:
            return None
        if done.status != JobStatus.SUCCEEDED:
            why = environment_failure(done) or done.status.value
            raise RunFailed(f"fetching {remote} of job {job_id} failed ({why}): {_tail(log, 3)}")
        names = pack.unpack(pack.decode(log), dest)
        self.client.delete_job(spec.submission_id)  # its log holds a copy of the archive
        return names


def environment_failure(info: Any) -> str | None:
    """Why the job's environment could not be built, or None when it was."""
    if info.error_type != JobErrorType.RUNTIME_ENV_SETUP_FAILURE:
        return None
    return f"its environment could not be built: {_tail(info.message or '', 2)}"


class _StopSignals(SignalScope):
    """SIGINT and SIGTERM while a job is followed: the first raises KeyboardInterrupt, so the job is stopped
    and its partial results still come home; a second exits at once (130), leaving the stopped job's results
    on the cluster."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "Ctrl-C"
        self._signalled = False

    def _handle(self, signum: int, _frame: object) -> None:
        if self._signalled:
            print(f"\nsbench submit: {signal.Signals(signum).name} again: exiting now", file=sys.stderr)
            os._exit(EXIT_INTERRUPTED)
        self._signalled = True
        self.name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        raise KeyboardInterrupt
