"""Writing a distributed run's results on the driver, from what the agents sent through Ray.

No shared file system between nodes is assumed: every file is written here, from interval snapshots
(perf logs) and per-agent stage results (stage TSVs, per-agent results). Aggregates are exact merges of the
per-agent snapshots, so every merged count equals the sum of the per-agent counts in the same file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sbench.config.models import StageType
from sbench.engine import leftovers
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import StagePlan
from sbench.results.atomic import replace_atomic
from sbench.results.final import write_final_results
from sbench.results.hlog import HistogramLog
from sbench.results.ledger import LEDGER_FILE, LedgerEntry, write_ledger
from sbench.results.perf_log import PerfLogWriter
from sbench.results.resultsdir import PERF_LOG_FILE, ResultsDir
from sbench.results.status import AgentStatus, FirstError, first_errors_of, write_status
from sbench.results.summary import build_summary, stage_entry, summary_section, write_summary
from sbench.results.tsv import (
    AgentRow,
    Kind,
    StageFigures,
    write_endpoint_stats_tsv,
    write_results_tsv,
    write_stage_tsv,
)
from sbench.run.barrier import BarrierStatus
from sbench.run.stagerecord import StageRun
from sbench.status import AgentState, RunStatus, StageStatus

#: Which summary.json section / legacy file a stage type feeds.
_PHASE_OF = {
    StageType.EXECUTE: "workload",
    StageType.HYBRID: "workload",
    StageType.PREPARE: "prepare",
    StageType.CLEANUP: "cleanup",
}


@dataclass
class AgentTrack:
    """One agent across the run: its final state for STATUS.txt and its totals."""

    agent_id: str
    node_ip: str
    state: AgentState = AgentState.COMPLETED
    reason: str = ""
    stuck_reason: str = ""
    disconnects: int = 0
    operations: int = 0
    errors: int = 0
    notes: list[str] = field(default_factory=list)

    def status(self) -> AgentStatus:
        reason = "; ".join([self.reason, *self.notes] if self.reason else self.notes)
        return AgentStatus(
            agent_id=self.agent_id,
            state=self.state,
            reason=reason,
            stuck=bool(self.stuck_reason),
            stuck_reason=self.stuck_reason,
            reconnects=self.disconnects,
            operations=self.operations,
            errors=self.errors,
        )


def stage_status(run: StageRun) -> StageStatus:
    """How the stage ended over all its agents: an abort or a timeout first, then the barrier's decision
    (a barrier that released without some agents is `degraded`)."""
    if run.aborted:
        return StageStatus.ABORTED
    if run.timed_out:
        return StageStatus.TIMEOUT
    return {
        BarrierStatus.READY: StageStatus.OK,
        BarrierStatus.DEGRADED: StageStatus.DEGRADED,
    }.get(run.status, StageStatus.FAILED)


def uncollected_text(window: dict[str, Any]) -> str:
    """The ops a dead agent measured but never handed over, as a time window (STATUS.txt, console)."""

    def at(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="milliseconds")

    return (
        f"ops between {at(window['from_ms'])} and {at(window['to_ms'])} ({window['seconds']:.3f} s) could "
        "not be collected (the agent died; the end is when its death was seen)"
    )


def stage_reason(run: StageRun) -> str:
    """Why a stage ended as it did: the verdict and each failed agent's reason; for a stage that went well,
    what the agents said it did (one agent: its own words)."""
    failures = ([run.verdict] if run.verdict else []) + [f"{a}: {r}" for a, r in sorted(run.reasons.items())]
    if failures:
        return "; ".join(failures)
    said = {a: r.reason for a, r in sorted(run.results.items()) if r.reason}
    if len(run.results) == 1:
        return "".join(said.values())
    return "; ".join(f"{a}: {r}" for a, r in said.items())


#: agent stage details that have a place of their own in summary.json (or are no JSON)
_OWN_PLACE = ("first_error", "preflight", "final_report", "shared_listings")


def stage_details(run: StageRun) -> dict[str, Any]:
    """The engine's stage details over every agent: counts add up, lists (notes) join, values every agent
    agrees on are kept (a custom stage's exit code, the load model), values the agents disagree on are
    left out."""
    merged: dict[str, Any] = {}
    disagree: set[str] = set()
    for result in run.results.values():
        for key, value in result.extra.items():
            if key in _OWN_PLACE or key in disagree:
                continue
            if key not in merged:
                merged[key] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                merged[key] += value
            elif isinstance(value, list):
                merged[key] = [*merged[key], *value]
            elif merged[key] != value:
                disagree.add(key)
                del merged[key]
    return merged


class RunReport:
    """Collects stage results as they finish and writes every result file of the run."""

    def __init__(self, results: ResultsDir, agents: list[tuple[str, str]], run_start_ms: int) -> None:
        self.results = results
        self.run_start_ms = run_start_ms
        self.tracks: dict[str, AgentTrack] = {}
        self.add_agents(agents)
        self.stage_entries: list[dict[str, Any]] = []
        #: summary.json sections per phase, None for a phase that did not run
        self.sections: dict[str, dict[str, Any] | None] = dict.fromkeys(("prepare", "workload", "cleanup"))
        self.stage_runs: list[StageRun] = []
        self.degraded: list[str] = []
        #: per stage, the first failed op of every error class (STATUS.txt, summary.json)
        self.first_errors: list[FirstError] = []
        self._aggregate_log = results.perf_log()
        self._agent_logs: dict[str, PerfLogWriter] = {}
        #: phase -> every stage of that phase so far, merged: (snapshot, wall seconds, per agent the same)
        self._phases: dict[str, tuple[Snapshot, float, dict[str, tuple[Snapshot, float]]]] = {}
        self._hlog: HistogramLog | None = None
        #: ops in flight when their stage ended, over every stage so far
        self.unfinished = 0

    def add_agents(self, agents: list[tuple[str, str]]) -> None:
        """The fleet's agents (id, node IP), in the order the result files list them."""
        for agent_id, ip in agents:
            self.tracks.setdefault(agent_id, AgentTrack(agent_id, ip))

    # -- live intervals --

    def stage_started(self, plan: StagePlan, *, open_loop: bool) -> None:
        """The stage's HdrHistogram interval log (NN_<stage>.hlog) takes its merged intervals from now on."""
        self._hlog = HistogramLog(
            self.results.stage_hlog(plan.index, plan.name),
            self.run_start_ms,
            service_time=open_loop,
            on_error=self.results.writes.note,
        )

    def write_intervals(
        self, label: str, aggregate: list[Snapshot], per_agent: dict[str, list[Snapshot]]
    ) -> None:
        """Perf-log rows: the merged intervals (perf_log.tsv) and each agent's (agents/<id>/perf_log.tsv);
        the merged intervals' histograms go to the stage's interval log too."""
        for snap in aggregate:
            self._aggregate_log.write(
                snap, stage=label, elapsed_s=self._elapsed(snap), timestamp_ms=snap.end_ms
            )
            if self._hlog is not None:
                self._hlog.write(snap)
        for agent_id, snaps in per_agent.items():
            log = self._agent_logs.get(agent_id)
            if log is None:
                log = self._agent_logs[agent_id] = self.results.perf_log(agent_id)
            for snap in snaps:
                log.write(snap, stage=label, elapsed_s=self._elapsed(snap), timestamp_ms=snap.end_ms)

    def _elapsed(self, snap: Snapshot) -> float:
        return max(0.0, (snap.end_ms - self.run_start_ms) / 1000) if snap.end_ms else 0.0

    # -- per stage --

    def stage_done(self, run: StageRun, *, optional: bool) -> Snapshot:
        """Write NN_<stage>_results.tsv (and its endpoint stats) and fold the stage into agent states."""
        plan = run.plan
        self.stage_runs.append(run)
        if self._hlog is not None:
            self._hlog.close()
            self._hlog = None
        rows = [
            AgentRow(agent_id, result.snapshot, result.elapsed_s)
            for agent_id, result in sorted(run.results.items(), key=lambda kv: self._order(kv[0]))
        ]
        merged = Snapshot.merge_all(r.snapshot for r in rows)
        self.unfinished += merged.unfinished_ops
        figures = StageFigures(plan.index, plan.name, plan.type.value, merged, rows)
        stage_path = self.results.stage_tsv(plan.index, plan.name)
        self.results.writes.attempt(stage_path, partial(write_stage_tsv, stage_path, figures))
        if merged.endpoints:
            path = self.results.file(stage_path.name.replace("_results.tsv", "_endpoint_stats.tsv"))
            self.results.writes.attempt(path, partial(write_endpoint_stats_tsv, path, merged.endpoints))
        self.first_errors.extend(first_errors_of(plan.name, merged))
        status = stage_status(run)
        reason = stage_reason(run)
        self.stage_entries.append(
            stage_entry(figures, status, reason)
            | {
                "barrier": plan.barrier.type.value,
                "start_skew_ms": run.start_skew_ms,
                "stuck": run.stuck,
                "optional": optional,
                "aborted": run.aborted,
                "timed_out": run.timed_out,
                "agents_progress": run.progress,
                "notes": run.notes,
                "uncollected": run.lost,
                "longest_outage": run.longest_outage,
                "details": stage_details(run),
            }
        )
        phase = _PHASE_OF.get(plan.type)
        if phase is not None:
            self._add_to_phase(phase, figures)
        if run.status is BarrierStatus.DEGRADED:
            self.degraded.append(
                f"stage {plan.name!r} went on without {', '.join(run.failed_agents)} "
                f"({plan.barrier.type.value} barrier)"
            )
        self._fold_agents(run, optional)
        return merged

    def _add_to_phase(self, phase: str, stage: StageFigures) -> None:
        """A phase (prepare, workload, cleanup) is every stage of its kind merged, their walls added."""
        merged, wall, rows = stage.snapshot, stage.wall_seconds, stage.agents
        total, total_wall, per_agent = self._phases.get(phase, (Snapshot(), 0.0, {}))
        for row in rows:
            snap, secs = per_agent.get(row.agent_id, (Snapshot(), 0.0))
            per_agent[row.agent_id] = (Snapshot.merge(snap, row.snapshot), secs + row.duration_s)
        total, total_wall = Snapshot.merge(total, merged), total_wall + wall
        self._phases[phase] = (total, total_wall, per_agent)
        self.sections[phase] = summary_section(total, total_wall)

    def _ledger_entries(self) -> list[LedgerEntry]:
        """populate_ledger.tsv's rows: every agent of every prepare stage that ran."""
        out = []
        for run in self.stage_runs:
            if run.plan.type is not StageType.PREPARE:
                continue
            for agent_id, result in sorted(run.results.items(), key=lambda kv: self._order(kv[0])):
                extra = result.extra
                out.append(LedgerEntry(
                    agent_id, run.plan.name, int(extra.get("created", 0)), int(extra.get("existed", 0)),
                    int(extra.get("failed", 0)), result.snapshot, result.elapsed_s,
                ))
        return out

    def _order(self, agent_id: str) -> int:
        return list(self.tracks).index(agent_id) if agent_id in self.tracks else len(self.tracks)

    def _fold_agents(self, run: StageRun, optional: bool) -> None:
        plan = run.plan
        for agent_id, window in run.lost.items():
            track = self.tracks.get(agent_id)
            if track is not None:
                track.notes.append(f"stage {plan.name!r}: {uncollected_text(window)}")
        for agent_id, result in run.results.items():
            track = self.tracks.get(agent_id)
            if track is None:
                continue
            track.operations += result.snapshot.total_ops()
            track.errors += result.snapshot.errors_total()
            if agent_id in run.stuck and not track.stuck_reason:
                track.stuck_reason = f"stage {plan.name!r}: {run.stuck[agent_id]}"
            state = run.states.get(agent_id, "ready")
            if state == "ready" and result.ok:
                continue
            why = run.reasons.get(agent_id) or result.reason or result.status
            if optional:
                track.notes.append(f"optional stage {plan.name!r} failed: {why}")
                continue
            if track.state is not AgentState.COMPLETED:
                continue  # keep the first failure: later stages ran without this agent
            stopped = state == "straggler" and run.status is BarrierStatus.FAILED
            if (result.status is StageStatus.ABORTED and run.aborted) or stopped:
                track.state, track.reason = AgentState.ABORTED, f"stage {plan.name!r}: {why}"
            elif any(k in why for k in ("no longer alive", "actor died", "silent for")):
                track.state, track.reason = AgentState.DISCONNECTED, f"stage {plan.name!r}: {why}"
                track.disconnects += 1
            else:
                track.state, track.reason = AgentState.FAILED, f"stage {plan.name!r}: {why}"

    def excluded(self, agent_id: str, reason: str) -> None:
        """An agent sat out a stage (failed earlier under majority, or dead)."""
        track = self.tracks.get(agent_id)
        if track is not None and reason not in track.notes:
            track.notes.append(reason)

    # -- end of run --

    def write_aborted_status(self, reason: str) -> None:
        """STATUS.txt ABORTED from what is known now, for a second Ctrl-C that exits at once (plain counters
        of the stages done so far: no merge, no other file)."""
        agents = [t.status() for t in self.tracks.values()]
        for agent in agents:
            if agent.state is AgentState.COMPLETED:
                agent.state, agent.reason = AgentState.ABORTED, reason
        write_status(
            self.results.status_path,
            RunStatus.ABORTED,
            agents,
            total_operations=sum(a.operations for a in agents),
            total_errors=sum(a.errors for a in agents),
            reason=reason,
            unfinished_operations=self.unfinished,
        )

    def finalize(
        self,
        status: RunStatus,
        reason: str,
        *,
        load_model: dict[str, Any],
        warnings: list[str],
        preflight: Any,
        extra: dict[str, Any],
        left_behind: dict[str, Any] | None = None,
        op_log: dict[str, Any] | None = None,
        phases: tuple[str, ...] = ("workload",),
        perf_log_copy: Path | None = None,
    ) -> tuple[RunStatus, str]:
        """STATUS.txt first, then summary.json, workload/prepare results (merged and per agent) and
        metadata.json, each on its own (results.final); returns the final verdict. `left_behind`: what
        cleanup left (count and place), reported whatever the status.

        Every file of `phases` (`workload`, and `prepare` when the config prepares) is written on every path,
        with zero rows for a phase that never ran (an abort or failure before it), and every agent gets its
        perf log. `perf_log_copy` (`perf_log.path`) receives a copy of the finished perf_log.tsv, a file of
        the run like the others: one that cannot be written makes the results incomplete."""
        if self._hlog is not None:  # the run ended inside a stage
            self._hlog.close()
        for agent_id in self.tracks:
            if agent_id not in self._agent_logs:
                self._agent_logs[agent_id] = self.results.perf_log(agent_id)
        self._aggregate_log.close()
        for log in self._agent_logs.values():
            log.close()
        if status is RunStatus.ABORTED:
            for track in self.tracks.values():
                if track.state is AgentState.COMPLETED:
                    track.state, track.reason = AgentState.ABORTED, reason
        files: list[tuple[Path, Callable[[], object]]] = []
        for kind in ("workload", "prepare"):
            if kind not in phases and kind not in self._phases:
                continue
            merged, wall, per_agent = self._phases.get(kind, (Snapshot(), 0.0, {}))
            write_phase = partial(self.results.write_phase, kind, merged, wall)
            files.append((self.results.results_tsv(kind), write_phase))
            for agent_id in dict.fromkeys([*self.tracks, *per_agent]):
                snap, secs = per_agent.get(agent_id, (Snapshot(), 0.0))
                name = "results.tsv" if kind == "workload" else "prepare_results.tsv"
                write = partial(_write_agent_tsv, self.results, agent_id, name, snap, secs, kind)
                files.append((self.results.agent_path(agent_id) / name, write))
        ledger = self._ledger_entries()
        if ledger:
            path = self.results.file(LEDGER_FILE)
            meta = self.results.metadata
            write = partial(write_ledger, path, meta.test_name, ledger, aggregate=meta.distributed)
            files.append((path, write))
        if perf_log_copy is not None:
            copy = partial(_copy_file, self.results.path / PERF_LOG_FILE, perf_log_copy)
            files.append((perf_log_copy, copy))
        agents = [t.status() for t in self.tracks.values()]
        total_ops = sum(a.operations for a in agents)
        total_errors = sum(a.errors for a in agents)
        self.results.metadata.extra.update(extra)

        def full(reason: str) -> str:
            return "; ".join(x for x in [reason, *self.degraded] if x)

        def status_file(status: RunStatus, reason: str) -> object:
            return write_status(
                self.results.status_path,
                status,
                agents,
                total_operations=total_ops,
                total_errors=total_errors,
                reason=full(reason),
                first_errors=self.first_errors,
                left_lines=leftovers.lines(left_behind),
                unfinished_operations=self.unfinished,
            )

        def summary_file(status: RunStatus, reason: str) -> object:
            summary = build_summary(
                status,
                reason=full(reason),
                metadata=self.results.metadata,
                load_model=load_model,
                sections=self.sections,
                stages=self.stage_entries,
                agents=agents,
                preflight=preflight,
                warnings=warnings,
                first_errors=self.first_errors,
                left_behind=left_behind,
                op_log=op_log,
            )
            return write_summary(self.results.summary_path, summary)

        return write_final_results(
            self.results,
            status,
            reason,
            status_file=status_file,
            summary_file=summary_file,
            files=files,
            metadata_extra=extra,
        )


def _copy_file(source: Path, dest: Path) -> Path:
    """`source` to `dest` (its directory made if needed), complete or absent (results.atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return replace_atomic(dest, lambda tmp: shutil.copyfile(source, tmp))


def _write_agent_tsv(
    results: ResultsDir, agent_id: str, name: str, snap: Snapshot, secs: float, kind: Kind
) -> Path:
    return write_results_tsv(results.agent_dir(agent_id) / name, snap, secs, kind)
