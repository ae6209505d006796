"""The results directory of one run (reference §1.14, §3) and its metadata.json.

Default location `./sbench-YYYYMMDD-HHMMSS-<name>/` (seconds, unlike sai3's minutes, so two runs in one
minute do not collide; a numeric suffix handles the rest), or with `--results-name-style sai3` sai3's own
`./sai3-YYYYMMDD-HHMM-<name>/`, for scripts that glob it. `<name>` is `--tsv-name` or the config's stem.
Writers of individual files live in tsv.py, perf_log.py, summary.py and status.py; this class names the
files, keeps the run's metadata and owns the run's WriteGuard (`writes`), through which every write after
the start goes (see final.py for the end).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from sbench import __version__
from sbench.config.runoptions import NAME_STYLES
from sbench.errors import ConfigError, RunFailed
from sbench.metrics.snapshot import Snapshot
from sbench.results.atomic import write_text_atomic
from sbench.results.console import ConsoleLog
from sbench.results.perf_log import PerfLogWriter
from sbench.results.tsv import Kind, stage_file_name, write_endpoint_stats_tsv, write_results_tsv
from sbench.results.writeguard import WriteGuard, os_error_text

CONFIG_FILE = "config.yaml"
CONSOLE_FILE = "console_log.txt"
METADATA_FILE = "metadata.json"
SUMMARY_FILE = "summary.json"
STATUS_FILE = "STATUS.txt"
PERF_LOG_FILE = "perf_log.tsv"
AGENTS_DIR = "agents"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


@dataclass
class RunMetadata:
    """metadata.json: sai3's RunMetadata fields plus load model, run id and final status."""

    version: str
    test_name: str
    config_path: str
    start_time: str
    end_time: str | None
    duration_secs: float | None
    command_line: list[str]
    hostname: str
    distributed: bool
    agents: list[str]
    load_model: dict[str, Any]
    run_id: str
    status: str | None = None
    results_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ResultsDir:
    """Creates the directory, copies the config, opens the console transcript and writes metadata.json."""

    def __init__(
        self,
        path: Path,
        metadata: RunMetadata,
        console: ConsoleLog,
        started: float,
        writes: WriteGuard | None = None,
    ) -> None:
        self.path = path
        self.metadata = metadata
        self.console = console
        self.writes = writes or WriteGuard()
        self._started = started
        self._mono0 = time.monotonic()
        self._identity = _dir_identity(path)

    @classmethod
    def create(
        cls,
        base: Path | None,
        config_path: Path,
        *,
        config_text: str | None = None,
        test_name: str | None = None,
        command_line: list[str] | None = None,
        distributed: bool = False,
        agents: list[str] | None = None,
        load_model: dict[str, Any] | None = None,
        run_id: str = "",
        stream: TextIO | None = None,
        now: float | None = None,
        name_style: str = "sbench",
    ) -> ResultsDir:
        """`base` is the exact directory to use (`--results-dir`), or None for the timestamped default in
        the current directory. A given directory must be absent or empty: old results are never mixed in."""
        started = now if now is not None else time.time()
        stem = test_name or config_path.stem or "run"
        path = base if base is not None else _default_path(Path.cwd(), stem, started, name_style)
        _prepare_dir(path, explicit=base is not None)
        try:
            if config_text is not None:
                (path / CONFIG_FILE).write_text(config_text, encoding="utf-8")
            else:
                shutil.copyfile(config_path, path / CONFIG_FILE)
        except OSError as exc:
            raise RunFailed(
                f"Could not copy the config {config_path} into the results directory {path}: {exc.strerror}.",
                hint="check that the file is readable and the directory writable.",
            ) from exc
        metadata = RunMetadata(
            version=__version__,
            test_name=test_name or stem,
            config_path=str(config_path),
            start_time=_iso(started),
            end_time=None,
            duration_secs=None,
            command_line=list(command_line if command_line is not None else sys.argv),
            hostname=socket.gethostname(),
            distributed=distributed,
            agents=list(agents or []),
            load_model=dict(load_model or {}),
            run_id=run_id,
            results_dir=str(path.resolve()),
        )
        writes = WriteGuard()
        try:
            console = ConsoleLog(path / CONSOLE_FILE, stream, on_error=writes.note)
            results = cls(path, metadata, console, started, writes)
            results.write_metadata()  # written now and again at finalize: a killed run still has one
        except OSError as exc:
            raise RunFailed(
                f"Could not write into the results directory {path}: {os_error_text(exc)}.",
                hint="check its free space and permissions, or choose another with --results-dir.",
            ) from exc
        return results

    # ----- file names (reference §3) -----
    def file(self, name: str) -> Path:
        return self.path / name

    def results_tsv(self, kind: str) -> Path:
        """`workload_results.tsv` or `prepare_results.tsv`."""
        return self.path / f"{kind}_results.tsv"

    def endpoint_stats_tsv(self, kind: str) -> Path:
        """`workload_endpoint_stats.tsv` or `prepare_endpoint_stats.tsv`."""
        return self.path / f"{kind}_endpoint_stats.tsv"

    def stage_tsv(self, stage_number: int, stage_name: str) -> Path:
        return self.path / stage_file_name(stage_number, stage_name)

    def stage_hlog(self, stage_number: int, stage_name: str) -> Path:
        """`NN_<name>.hlog`, the stage's HdrHistogram interval log (results.hlog)."""
        return self.path / stage_file_name(stage_number, stage_name, ".hlog")

    def agent_path(self, agent_id: str) -> Path:
        """agents/<id>/ (not created: see `agent_dir`)."""
        return self.path / AGENTS_DIR / _safe(agent_id)

    def agent_dir(self, agent_id: str) -> Path:
        path = self.agent_path(agent_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def perf_log(self, agent_id: str | None = None) -> PerfLogWriter:
        """The run's perf_log.tsv (agent_id None: `standalone`/aggregate) or agents/<id>/perf_log.tsv."""
        if agent_id is None:
            label = "controller" if self.metadata.distributed else "standalone"
            return PerfLogWriter(self.path / PERF_LOG_FILE, label, on_error=self.writes.note)
        return PerfLogWriter(self.agent_path(agent_id) / PERF_LOG_FILE, agent_id, on_error=self.writes.note)

    def write_phase(
        self, kind: Kind, snapshot: Snapshot, wall_seconds: float, include_p999: bool = True
    ) -> list[Path]:
        """`<kind>_results.tsv`, plus `<kind>_endpoint_stats.tsv` when the snapshot has endpoint stats; each
        in its own attempt (a failure is noted in `writes`). Returns the files written."""
        tsv = self.results_tsv(kind)
        writes: list[tuple[Path, Callable[[], object]]] = [
            (tsv, partial(write_results_tsv, tsv, snapshot, wall_seconds, kind, include_p999))
        ]
        if snapshot.endpoints:
            path = self.endpoint_stats_tsv(kind)
            writes.append((path, partial(write_endpoint_stats_tsv, path, snapshot.endpoints)))
        return [path for path, write in writes if self.writes.attempt(path, write)]

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def status_path(self) -> Path:
        return self.path / STATUS_FILE

    # ----- metadata -----
    def write_metadata(self) -> Path:
        """metadata.json as it stands (raises OSError; callers after the start go through `writes`)."""
        text = json.dumps(asdict(self.metadata), indent=2) + "\n"
        return write_text_atomic(self.path / METADATA_FILE, text)

    def elapsed_s(self) -> float:
        return time.monotonic() - self._mono0

    def stamp_end(self) -> None:
        """Fix the run's end time and duration (once), before summary.json and metadata.json are built from
        it, so both files carry the same values."""
        if self.metadata.end_time is not None:
            return
        ended = self._started + self.elapsed_s()
        self.metadata.end_time = _iso(ended)
        self.metadata.duration_secs = round(ended - self._started, 3)

    def finalize(self, status: str, **extra: Any) -> bool:
        """Stamp end time (if not yet), duration and status into metadata.json; False when it could not be
        written (noted in `writes`)."""
        self.stamp_end()
        self.metadata.status = status
        self.metadata.extra.update(extra)
        return self.save_metadata()

    def save_metadata(self) -> bool:
        """metadata.json during or at the end of the run; False when it could not be written (noted)."""
        return self.writes.attempt(self.path / METADATA_FILE, self.write_metadata)

    def check_present(self) -> None:
        """Before the end-of-run files: if the directory was deleted (or replaced) during the run, recreate
        it so the verdict and summary still land, and note what was lost (the transcript and perf logs
        written so far went with the old directory)."""
        if _dir_identity(self.path) == self._identity:
            return
        missing = not self.path.is_dir()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.writes.note(self.path, exc)
            return
        self._identity = _dir_identity(self.path)
        gone = os_error_text(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)))
        what = f"deleted during the run ({gone})" if missing else "replaced during the run"
        self.writes.note(
            self.path,
            f"the directory was {what}; recreated it for the end-of-run files, but what was written before "
            "(console_log.txt, perf_log.tsv, stage files) is lost",
        )
        self.console.reopen()

    def close(self) -> None:
        """Close the console transcript (after the closing report, so it holds the report too)."""
        self.console.close()


def _safe(agent_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in agent_id) or "agent"


def _dir_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the directory, or None when it is gone: a directory deleted and created again
    (by a later mkdir of a subdirectory) has a new inode."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _default_path(cwd: Path, stem: str, started: float, style: str = "sbench") -> Path:
    prefix, fmt = NAME_STYLES[style]
    stamp = datetime.fromtimestamp(started).strftime(fmt)
    candidate = cwd / f"{prefix}-{stamp}-{stem}"
    n = 2
    while candidate.exists():
        candidate = cwd / f"{prefix}-{stamp}-{stem}-{n}"
        n += 1
    return candidate


def _prepare_dir(path: Path, explicit: bool) -> None:
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--results-dir {path} exists and is not a directory.", hint="give a new path.")
        if explicit and any(path.iterdir()):
            raise ConfigError(
                f"--results-dir {path} already holds files; sbench will not mix a new run into old results.",
                hint="give a new or empty directory, or omit --results-dir for a timestamped one.",
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFailed(
            f"Could not create the results directory {path}: {exc.strerror}.",
            hint="check the path, its permissions and free space, or choose another with --results-dir.",
        ) from exc
