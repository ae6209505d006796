"""What `sbench submit` hands to Ray: the entrypoint and the runtime_env of the job (and of its fetch job).

A job's `python` is whatever the cluster's PATH says (the system interpreter on a fresh clone, without
sbench's dependencies), so the entrypoint never relies on it except where the runtime_env makes it right:

- `local` (the default when the cluster runs on this machine): the entrypoint names this interpreter's
  path and `py_executable` makes the job's agents and tasks use it too; nothing is installed.
- `pip` / `uv` (the default for a cluster elsewhere): Ray builds a virtualenv on each node from sbench's
  pinned dependencies (Ray itself excepted: the cluster's own Ray is used, and its version is checked
  before submitting), and activates it, so `python` is that virtualenv's interpreter.
- `installed`: the cluster's `python` already has sbench (an image built from deploy/Dockerfile, or
  cluster.yaml's setup_commands); nothing is shipped. The KubeRay manifest uses this one.

In every mode but `installed`, this sbench package is shipped with `py_modules`, so the job runs exactly
the code that submitted it, and the config goes as the job's `working_dir`. No environment value is put
anywhere here (Ray logs a runtime_env in full and shows entrypoints in its dashboard): credentials reach
the job's driver from the node (its environment or `--env-file`, a file on the cluster), never from here.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import sbench

JOB_MODULE = "sbench.submit.jobmain"
PACK_MODULE = "sbench.submit.pack"
#: where a job's results go on the node of its driver, one directory per job id
DEFAULT_RESULTS_ROOT = "~/sbench-results"
#: the job log line that says where the results are (written by jobmain, read back by jobs)
RESULTS_MARKER = "sbench-submit: results directory on the job's node:"
#: never shipped with the package: byte-code is rebuilt on the cluster
EXCLUDES = ["__pycache__/", "*.pyc"]


class RuntimeEnvMode(StrEnum):
    LOCAL = "local"
    PIP = "pip"
    UV = "uv"
    INSTALLED = "installed"


@dataclass(frozen=True)
class JobSpec:
    """One job as submitted: `JobSubmissionClient.submit_job(**spec.submit_kwargs())`."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    #: where the entrypoint runs: {"node:<ip>": 0.001} pins it to one node (None: the head)
    entrypoint_resources: dict[str, float] | None = None

    def submit_kwargs(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "entrypoint": self.entrypoint,
            "runtime_env": self.runtime_env or None,
            "metadata": self.metadata,
            "entrypoint_resources": self.entrypoint_resources,
        }


def new_job_id(config_path: Path) -> str:
    """`sbench-YYYYMMDD-HHMMSS-<config>-<4 hex>`: the local results directory gets the same name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", config_path.stem) or "run"
    return f"sbench-{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{uuid.uuid4().hex[:4]}"


def job_python(mode: RuntimeEnvMode) -> str:
    """The interpreter the entrypoint names: this one in local mode, else the job's own `python`."""
    return sys.executable if mode is RuntimeEnvMode.LOCAL else "python"


def run_entrypoint(
    python: str,
    config_name: str,
    run_args: list[str],
    *,
    results_root: str | None = None,
    env_file: str | None = None,
) -> str:
    """The shell command Ray runs for a submitted run (and the KubeRay manifest's `entrypoint`)."""
    words = [python, "-m", JOB_MODULE]
    if results_root is not None:
        words += ["--results-root", results_root]
    if env_file is not None:
        words += ["--env-file", env_file]
    return shlex.join([*words, config_name, *run_args])


def pack_entrypoint(python: str, remote_dir: str) -> str:
    """The shell command of the fetch job: pack `remote_dir` into the job's log."""
    return shlex.join([python, "-m", PACK_MODULE, remote_dir])


def pinned_requirements() -> list[str]:
    """sbench's declared dependencies (pinned in pyproject.toml), without extras and without Ray (a
    runtime_env must not replace the cluster's Ray; its version is checked instead)."""
    out = []
    for req in importlib.metadata.requires("sbench") or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0]
        if name.lower() != "ray":
            out.append(req)
    return out


def package_dir() -> Path:
    """The directory of the sbench package that is running (shipped with py_modules)."""
    return Path(sbench.__file__).resolve().parent


def runtime_env(mode: RuntimeEnvMode, working_dir: Path | None = None) -> dict[str, Any]:
    """The job's runtime_env for `mode`; `working_dir` holds the config (None for a fetch job)."""
    env: dict[str, Any] = {}
    if mode is not RuntimeEnvMode.INSTALLED:
        env["py_modules"] = [str(package_dir())]
        env["excludes"] = list(EXCLUDES)
    if mode is RuntimeEnvMode.LOCAL:
        env["py_executable"] = sys.executable
    elif mode is RuntimeEnvMode.PIP:
        env["pip"] = {"packages": pinned_requirements(), "pip_check": False}
    elif mode is RuntimeEnvMode.UV:
        env["uv"] = {"packages": pinned_requirements()}
    if working_dir is not None:
        env["working_dir"] = str(working_dir)
    return env


def run_job(
    job_id: str,
    mode: RuntimeEnvMode,
    working_dir: Path,
    config_name: str,
    run_args: list[str],
    *,
    results_root: str | None = None,
    env_file: str | None = None,
) -> JobSpec:
    """The spec of a submitted run."""
    python = job_python(mode)
    entry = run_entrypoint(python, config_name, run_args, results_root=results_root, env_file=env_file)
    meta = {"sbench": sbench.__version__, "sbench_runtime_env": mode.value}
    return JobSpec(job_id, entry, runtime_env(mode, working_dir), meta)


def pack_job(run_job_id: str, mode: RuntimeEnvMode, node_ip: str, remote_dir: str) -> JobSpec:
    """The spec of the fetch job that brings `remote_dir` of job `run_job_id` home: pinned to the node
    (by IP) where the run's driver wrote it."""
    job_id = f"{run_job_id}-fetch-{uuid.uuid4().hex[:4]}"
    entry = pack_entrypoint(job_python(mode), remote_dir)
    pin = {f"node:{node_ip}": 0.001}
    return JobSpec(job_id, entry, runtime_env(mode), {"sbench_fetch_of": run_job_id}, pin)
