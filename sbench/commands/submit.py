"""`sbench submit CONFIG`: run a config as a Ray job on a cluster, follow its log, bring its results home.

The job carries its own environment (sbench.submit.jobspec: this interpreter for a cluster on this
machine, a pip/uv virtualenv of sbench's pinned dependencies elsewhere, or the cluster's own sbench),
its results directory comes back through Ray when it ends (sbench.submit.pack), and the exit code is the
run's (0, 1, 2). `--detach` only submits; `--fetch JOB_ID` brings a finished job's results home.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from sbench.commands.run import add_mode_flags, check_conflicts
from sbench.errors import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, RunFailed, UsageError
from sbench.submit.jobspec import DEFAULT_RESULTS_ROOT, RuntimeEnvMode, new_job_id

#: `sbench run` flags passed on to the job as they are
_SWITCHES = (
    "prepare_only",
    "cleanup_only",
    "verify",
    "skip_prepare",
    "no_cleanup",
    "preflight_only",
    "no_report",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="run a workload as a Ray job on a cluster and bring its results home",
        description="Submit `sbench run CONFIG` as a Ray job (its environment included), print its log "
        "live, copy the results directory back through Ray and exit with the run's code (0, 1, 2).",
    )
    parser.add_argument("config", nargs="?", type=Path, help="workload YAML file (shipped with the job)")
    parser.add_argument(
        "--address",
        metavar="URL",
        help="the cluster's dashboard, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, an http "
        "RAY_ADDRESS, else http://127.0.0.1:8265)",
    )
    parser.add_argument(
        "--runtime-env",
        choices=[m.value for m in RuntimeEnvMode],
        help="how the job gets sbench's environment: local = this interpreter (default for a cluster on "
        "this machine), pip/uv = a virtualenv of sbench's pinned dependencies built on the cluster "
        "(default elsewhere), installed = the cluster's python already has sbench",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        metavar="DIR",
        help="where the results come home (default ./<job id>/)",
    )
    parser.add_argument(
        "--cluster-results-root",
        metavar="DIR",
        default=DEFAULT_RESULTS_ROOT,
        help="where the job writes its results on its node, one directory per job id (default %(default)s)",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="a NAME=VALUE file on the cluster's node that the job reads (credentials: only its path "
        "travels, never a value)",
    )
    parser.add_argument(
        "--job-id", metavar="ID", help="the job's submission id (default sbench-<time>-<config>-<hex>)"
    )
    parser.add_argument("--detach", action="store_true", help="submit, print the job id and return")
    parser.add_argument("--fetch", metavar="JOB_ID", help="bring home the results of a finished job")
    add_mode_flags(parser)
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging in the job (-vv debug)",
    )


def _run_args(args: argparse.Namespace) -> list[str]:
    out = [f"--{name.replace('_', '-')}" for name in _SWITCHES if getattr(args, name)]
    if args.op_log is not None:
        out += ["--op-log", str(args.op_log)]
    verbose = int(getattr(args, "verbose", 0) or 0)
    return out + (["-" + "v" * verbose] if verbose else [])


def _checked_dest(path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"sbench submit: {path} exists and is not empty; pick another --results-dir")
    return path


def execute(args: argparse.Namespace) -> int:
    from sbench.submit.address import dashboard_url, is_this_machine

    if (args.config is None) == (args.fetch is None):
        raise UsageError("sbench submit: give a workload file to run, or --fetch JOB_ID (one of the two)")
    check_conflicts(args, "sbench submit")
    url = dashboard_url(args.address)
    mode = RuntimeEnvMode(args.runtime_env or ("local" if is_this_machine(url) else "pip"))
    if args.fetch is not None:
        dest = _checked_dest(args.results_dir or Path(args.fetch))
        from sbench.submit.jobs import ClusterJobs  # Ray takes seconds to import: after the usage checks

        jobs = ClusterJobs(url)
        info = jobs.info(args.fetch)
        if info.status.value not in ("SUCCEEDED", "FAILED", "STOPPED"):
            raise RunFailed(f"job {args.fetch} is {info.status.value}; fetch its results once it has ended")
        return _bring_home(jobs, args.fetch, info, mode, dest)
    from sbench.config import load_config

    loaded = load_config(args.config)  # a broken config is refused here (exit 2), before any upload
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    job_id = args.job_id or new_job_id(args.config)
    dest = _checked_dest(args.results_dir or Path(job_id))
    from sbench.submit.jobs import ClusterJobs

    jobs = ClusterJobs(url)
    _submit(jobs, args, mode, job_id)
    if args.detach:
        print(f"submitted job {job_id} to {url} (runtime_env {mode.value})")
        print(f"  follow:  ray job logs --address {url} --follow {job_id}")
        print(f"  results: sbench submit --fetch {job_id} --address {url}")
        return EXIT_OK
    print(f"sbench submit: job {job_id} on {url} (runtime_env {mode.value}); Ctrl-C stops it", flush=True)
    info = jobs.follow(job_id, sys.stdout)
    return _bring_home(jobs, job_id, info, mode, dest)


def _submit(jobs: Any, args: argparse.Namespace, mode: RuntimeEnvMode, job_id: str) -> None:
    """Ship the config as the job's working directory (a temporary copy holding only it) and submit."""
    from sbench.submit.jobspec import run_job

    staging = Path(tempfile.mkdtemp(prefix="sbench-submit-"))
    try:
        shutil.copyfile(args.config, staging / args.config.name)
        spec = run_job(
            job_id,
            mode,
            staging,
            args.config.name,
            _run_args(args),
            results_root=args.cluster_results_root,
            env_file=args.env_file,
        )
        jobs.submit(spec)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _bring_home(jobs: Any, job_id: str, info: Any, mode: RuntimeEnvMode, dest: Path) -> int:
    """Fetch the results of the finished job `info` and return the run's exit code."""
    from sbench.submit.jobs import environment_failure

    why = environment_failure(info)
    if why:
        raise RunFailed(f"job {job_id} did not run: {why}")
    names = jobs.fetch(job_id, info, mode, dest)
    code = info.driver_exit_code
    if code is None:
        code = EXIT_OK if info.status.value == "SUCCEEDED" else EXIT_RUN_FAILED
    if names is None:  # e.g. a config that does not hold on the cluster (exit 2), or no sbench there
        hint = (
            " (--runtime-env installed needs a `python` with sbench on the cluster's PATH)"
            if mode is RuntimeEnvMode.INSTALLED and code not in (EXIT_RUN_FAILED, EXIT_USAGE)
            else ""
        )
        print(
            f"error: job {job_id} ended {info.status.value} (exit {code}) before sbench wrote any results; "
            f"its log says why{hint}",
            file=sys.stderr,
        )
        return code if code in (EXIT_RUN_FAILED, EXIT_USAGE) else EXIT_RUN_FAILED
    status_file = dest / "STATUS.txt"
    first = status_file.read_text().splitlines()[0] if status_file.exists() else ": none (no STATUS.txt)"
    print(f"results of job {job_id} (STATUS {first.split(':', 1)[-1].strip()}): {dest.resolve()}")
    if info.status.value == "STOPPED":
        return EXIT_RUN_FAILED  # `ray job stop` is an abort, as Ctrl-C is
    return code if code in (0, 1, 2) else EXIT_RUN_FAILED
