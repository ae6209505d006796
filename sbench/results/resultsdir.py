"""The results directory of one run (reference §1.14, §3) and its metadata.json.

Default location `./sbench-YYYYMMDD-HHMMSS-<config-stem>/` (seconds, unlike sai3's minutes, so two runs in
one minute do not collide; a numeric suffix handles the rest). Writers of individual files live in tsv.py,
perf_log.py, summary.py and status.py; this class names the files and keeps the run's metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sbench import __version__
from sbench.errors import ConfigError, RunFailed
from sbench.metrics.snapshot import Snapshot
from sbench.results.console import ConsoleLog
from sbench.results.perf_log import PerfLogWriter
from sbench.results.tsv import Kind, stage_tsv_name, write_endpoint_stats_tsv, write_results_tsv

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

    def __init__(self, path: Path, metadata: RunMetadata, console: ConsoleLog, started: float) -> None:
        self.path = path
        self.metadata = metadata
        self.console = console
        self._started = started
        self._mono0 = time.monotonic()

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
    ) -> ResultsDir:
        """`base` is the exact directory to use (`--results-dir`), or None for the timestamped default in
        the current directory. A given directory must be absent or empty: old results are never mixed in."""
        started = now if now is not None else time.time()
        stem = config_path.stem or "run"
        path = base if base is not None else _default_path(Path.cwd(), stem, started)
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
        results = cls(path, metadata, ConsoleLog(path / CONSOLE_FILE, stream), started)
        results.write_metadata()  # written now and again at finalize: a killed run still has one
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
        return self.path / stage_tsv_name(stage_number, stage_name)

    def agent_dir(self, agent_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in agent_id) or "agent"
        path = self.path / AGENTS_DIR / safe
        path.mkdir(parents=True, exist_ok=True)
        return path

    def perf_log(self, agent_id: str | None = None) -> PerfLogWriter:
        """The run's perf_log.tsv (agent_id None: `standalone`/aggregate) or agents/<id>/perf_log.tsv."""
        if agent_id is None:
            label = "controller" if self.metadata.distributed else "standalone"
            return PerfLogWriter(self.path / PERF_LOG_FILE, label)
        return PerfLogWriter(self.agent_dir(agent_id) / PERF_LOG_FILE, agent_id)

    def write_phase(
        self, kind: Kind, snapshot: Snapshot, wall_seconds: float, include_p999: bool = True
    ) -> list[Path]:
        """`<kind>_results.tsv`, plus `<kind>_endpoint_stats.tsv` when the snapshot has endpoint stats."""
        paths = [write_results_tsv(self.results_tsv(kind), snapshot, wall_seconds, kind, include_p999)]
        if snapshot.endpoints:
            paths.append(write_endpoint_stats_tsv(self.endpoint_stats_tsv(kind), snapshot.endpoints))
        return paths

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def status_path(self) -> Path:
        return self.path / STATUS_FILE

    # ----- metadata -----
    def write_metadata(self) -> Path:
        target = self.path / METADATA_FILE
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self.metadata), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        return target

    def elapsed_s(self) -> float:
        return time.monotonic() - self._mono0

    def finalize(self, status: str, **extra: Any) -> None:
        """Stamp end time, duration and status into metadata.json and close the console transcript."""
        ended = self._started + self.elapsed_s()
        self.metadata.end_time = _iso(ended)
        self.metadata.duration_secs = round(ended - self._started, 3)
        self.metadata.status = status
        self.metadata.extra.update(extra)
        self.write_metadata()
        self.console.close()


def _default_path(cwd: Path, stem: str, started: float) -> Path:
    stamp = datetime.fromtimestamp(started).strftime("%Y%m%d-%H%M%S")
    candidate = cwd / f"sbench-{stamp}-{stem}"
    n = 2
    while candidate.exists():
        candidate = cwd / f"sbench-{stamp}-{stem}-{n}"
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
