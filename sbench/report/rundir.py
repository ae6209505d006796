"""One results directory read back, sbench's or sai3-bench's (same file names, reference §3).

sbench's directories have summary.json (every figure, exact) and NN_<stage>.hlog files; sai3-bench's have
only the TSVs. Everything the report, the comparison and the xlsx export need is read here, once; file names
come from the writers' modules, so a renamed file is renamed in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sbench.errors import ConfigError
from sbench.report.tsvfile import Cell, read_table
from sbench.results.resultsdir import (
    AGENTS_DIR,
    CONFIG_FILE,
    METADATA_FILE,
    PERF_LOG_FILE,
    STATUS_FILE,
    SUMMARY_FILE,
)

PREFLIGHT_FILE = "preflight.json"
#: `NN_<stage>_results.tsv` and `NN_<stage>.hlog` (results.tsv.stage_file_name)
STAGE_TSV = re.compile(r"^(\d{2,})_(.+)_results\.tsv$")
STAGE_HLOG = re.compile(r"^(\d{2,})_(.+)\.hlog$")

PerfRow = dict[str, Cell]


@dataclass
class RunDir:
    """What a results directory holds (absent files are None or empty)."""

    path: Path
    kind: Literal["sbench", "sai3"]
    metadata: dict[str, Any]
    summary: dict[str, Any] | None
    status_text: str
    config_text: str
    preflight: dict[str, Any] | None
    #: perf_log.tsv rows (the merged one: `standalone` or `controller`), cells as text
    perf: list[PerfRow]
    #: agents/<id>/perf_log.tsv rows, by agent id
    agent_perf: dict[str, list[PerfRow]] = field(default_factory=dict)
    #: stage number -> NN_<stage>_results.tsv / NN_<stage>.hlog
    stage_tsvs: dict[int, Path] = field(default_factory=dict)
    hlogs: dict[int, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def open_loop(self) -> bool:
        return self.load_model.get("kind") == "open"

    @property
    def load_model(self) -> dict[str, Any]:
        model = (self.summary or {}).get("load_model") or self.metadata.get("load_model")
        return model if isinstance(model, dict) else {}

    def tsv_files(self, include_agents: bool = False) -> list[Path]:
        """Every TSV of the directory (sorted), and of agents/<id>/ with `include_agents`."""
        files = sorted(self.path.glob("*.tsv"))
        if include_agents:
            files += sorted(self.path.glob(f"{AGENTS_DIR}/*/*.tsv"))
        return files


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as JSON: {exc}") from exc
    return data if isinstance(data, dict) else None


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _perf(path: Path) -> list[PerfRow]:
    """Rows of a perf log, cells as text: report.series.num reads the numbers it needs."""
    return read_table(path, convert=False).rows if path.is_file() else []


def _numbered(path: Path, pattern: re.Pattern[str]) -> dict[int, Path]:
    found = {}
    for file in sorted(path.iterdir()):
        match = pattern.match(file.name)
        if match and file.is_file():
            found[int(match.group(1))] = file
    return found


def load_run(path: Path) -> RunDir:
    """Read a results directory; ConfigError (exit 2) naming the path when it is not one."""
    if not path.is_dir():
        raise ConfigError(f"{path}: no such results directory")
    summary = _json(path / SUMMARY_FILE)
    stage_tsvs = _numbered(path, STAGE_TSV)
    has_tables = any(path.glob("*_results.tsv")) or (path / "results.tsv").is_file()
    if summary is None and not has_tables and not (path / PERF_LOG_FILE).is_file():
        raise ConfigError(
            f"{path} is not a results directory: it has no summary.json, perf_log.tsv or *_results.tsv",
            hint="give the directory `sbench run` (or sai3-bench) wrote",
        )
    agents_dir = path / AGENTS_DIR
    agent_perf = {}
    if agents_dir.is_dir():
        for agent in sorted(p for p in agents_dir.iterdir() if p.is_dir()):
            rows = _perf(agent / PERF_LOG_FILE)
            if rows:
                agent_perf[agent.name] = rows
    return RunDir(
        path=path,
        kind="sbench" if summary is not None else "sai3",
        metadata=_json(path / METADATA_FILE) or {},
        summary=summary,
        status_text=_text(path / STATUS_FILE),
        config_text=_text(path / CONFIG_FILE),
        preflight=_json(path / PREFLIGHT_FILE),
        perf=_perf(path / PERF_LOG_FILE),
        agent_perf=agent_perf,
        stage_tsvs=stage_tsvs,
        hlogs=_numbered(path, STAGE_HLOG),
    )
