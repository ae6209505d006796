"""The entrypoint of a submitted run, on the cluster: `python -m sbench.submit.jobmain [--results-root
DIR] [--env-file FILE] CONFIG [sbench run flags]`.

It names the results directory after the job's submission id (`<root>/<id>`: the job's working directory
is a temporary copy that Ray deletes), says where it is in one line of the job's log (the fetch step reads
it back), reads credentials from `--env-file` (a file on the cluster's node: its values never travel
through Ray), and runs `sbench run` in this process, exiting with its code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sbench.errors import EXIT_USAGE
from sbench.run.driver import RAY_JOB_ENV
from sbench.submit.jobspec import DEFAULT_RESULTS_ROOT, RESULTS_MARKER


def submission_id(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The job's submission id, or a time stamp when run outside a Ray job."""
    try:
        return str(json.loads(environ[RAY_JOB_ENV])["metadata"]["job_submission_id"])
    except (KeyError, TypeError, ValueError):
        return f"sbench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=VALUE` lines (an `export ` prefix, `#` comments and one level of quotes allowed)."""
    out = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ValueError(f"{path}:{number}: expected NAME=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name.strip()] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sbench.submit.jobmain")
    parser.add_argument("--results-root", default=DEFAULT_RESULTS_ROOT)
    parser.add_argument("--env-file", type=Path)
    parser.add_argument("config")
    parser.add_argument("run_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.env_file is not None:
        try:
            values = read_env_file(args.env_file)
        except (OSError, ValueError) as exc:
            print(f"error: --env-file: {exc}", file=sys.stderr)
            return EXIT_USAGE
        os.environ.update(values)
        print(f"sbench-submit: environment from {args.env_file}: {', '.join(sorted(values))}", flush=True)
    results = Path(args.results_root).expanduser() / submission_id()
    print(f"{RESULTS_MARKER} {results}", flush=True)
    from sbench.cli import main as sbench_main

    return sbench_main(["run", args.config, "--results-dir", str(results), *args.run_args])


if __name__ == "__main__":
    raise SystemExit(main())
