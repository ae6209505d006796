"""`sbench run` after the config is loaded: pick the in-process runner or the Ray driver, run the stages,
write the results directory.

Single-agent configs (no `distributed` block, `processes` unset or 1, no Ray address given) run here, in this
process, without Ray: the engine is the same one the Ray agents run, and a local Ray instance would only add
3-5 s of start-up and about 0.8 GB of memory for one process that needs no coordination. Distributed configs
(and `processes: N`, which becomes N local agents) go to `sbench.cluster.driver.run_distributed`.

Stages run in plan order: preflight (an error stops the run before any I/O), prepare, execute, cleanup,
with the CLI flags applied. A failed stage skips the stages after it except cleanup (so objects do not stay
behind); Ctrl-C or SIGTERM aborts within about a second, skips the rest, writes partial results with STATUS
`ABORTED` and exits 1; a second Ctrl-C writes STATUS.txt `ABORTED` and exits at once. Every file of the
results directory is written on every path, so a failed or interrupted run still documents what it measured
and why it ended.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sbench.config import Completion, LoadedConfig, StageType
from sbench.config.stages import PhaseBarrier, StagePlan
from sbench.engine import leftovers
from sbench.engine.context import AgentIdentity, RunControl
from sbench.engine.stage import StageOutcome, StageStatus, run_stage
from sbench.engine.state import RunState
from sbench.engine.uncleaned import uncleaned_report, why_not_cleaned, with_known_puts
from sbench.errors import EXIT_OK, EXIT_RUN_FAILED, SbenchError
from sbench.layout.naming import new_run_id
from sbench.metrics.snapshot import Snapshot
from sbench.results.atomic import write_text_atomic
from sbench.results.final import write_final_results
from sbench.results.perf_log import PerfLogWriter, stage_label
from sbench.results.resultsdir import ResultsDir
from sbench.results.status import AgentState, AgentStatus, RunStatus, first_errors_of, write_status
from sbench.results.summary import build_summary, load_model_of, stage_entry, summary_section, write_summary
from sbench.results.tsv import write_results_tsv
from sbench.results.verdict import OutageWatch, judge_stage
from sbench.storage.base import StorageError
from sbench.ui.live import LiveProgress
from sbench.ui.tables import describe_load, errors_line, first_error_lines, phase_table, print_report

#: exit code of a second Ctrl-C (the shell convention for "killed by SIGINT")
EXIT_SIGINT = 130
_WORKLOAD_TYPES = ("execute", "hybrid")


def is_distributed(loaded: LoadedConfig, ray_address: str | None = None) -> bool:
    """Ray runs it: a `distributed` block, `processes` above one (local agent processes), or a named
    cluster (--ray-address or RAY_ADDRESS)."""
    config = loaded.config
    named = bool(ray_address or os.environ.get("RAY_ADDRESS"))
    return config.distributed is not None or config.process_count > 1 or named


def run(loaded: LoadedConfig, options: Any, config_path: Path) -> int:
    """Run a loaded config with the CLI options; returns the process exit code."""
    if is_distributed(loaded, getattr(options, "ray_address", None)):
        from sbench.cluster.driver import run_distributed  # Ray takes seconds to import: only when used

        return int(run_distributed(loaded, options, config_path))
    return LocalRun(loaded, options, config_path).run()


class _Signals:
    """First SIGINT/SIGTERM: abort the run (partial results get written). Second: write STATUS.txt ABORTED
    (`last_words`, one small file) and exit at once."""

    def __init__(self, control: RunControl, last_words: Callable[[], None]) -> None:
        self.control = control
        self.count = 0
        self._last_words = last_words
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            try:
                self._last_words()
            except OSError as exc:  # exiting anyway: say why the file is missing
                print(f"sbench: could not write STATUS.txt before exiting: {exc}", file=sys.stderr)
            os._exit(EXIT_SIGINT)
        name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
        self.control.abort(f"interrupted by {name}")

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class _Phase:
    """Accumulated results of the stages of one kind (prepare, workload, cleanup)."""

    snapshots: list[Snapshot] = field(default_factory=list)
    wall_s: float = 0.0
    ran: bool = False

    def add(self, outcome: StageOutcome) -> None:
        self.snapshots.append(outcome.snapshot)
        self.wall_s += outcome.elapsed_s
        self.ran = True

    def snapshot(self) -> Snapshot:
        return Snapshot.merge_all(self.snapshots)


class LocalRun:
    """One in-process run of a single-agent config."""

    def __init__(self, loaded: LoadedConfig, options: Any, config_path: Path) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.options = options
        self.config_path = config_path
        self.identity = AgentIdentity(run_id=new_run_id())
        self.control = RunControl()
        self.state = RunState()
        self.outcomes: list[tuple[Any, StageOutcome]] = []
        self.plans: list[Any] = []
        self.phases = {"prepare": _Phase(), "workload": _Phase(), "cleanup": _Phase()}
        self.preflight: Any = None
        #: what the last cleanup stage left behind (leftovers.report), None when no cleanup ran
        self.left_behind: dict[str, Any] | None = None
        self.notes: list[str] = []
        self.t0 = time.monotonic()
        self.results: ResultsDir | None = None

    # -- stages ------------------------------------------------------------------------------------------
    def _plans(self) -> list[Any]:
        plans = list(self.options.stages(self.loaded))
        has_validation = any(str(getattr(p.type, "value", p.type)) == "validation" for p in plans)
        if plans and not has_validation and not self.options.verify:
            plans.insert(
                0,
                StagePlan(
                    name="preflight",
                    order=0,
                    type=StageType.VALIDATION,
                    completion=Completion.VALIDATION_PASSED,
                    barrier=PhaseBarrier(),
                    index=0,
                    timeout_s=300.0,
                ),
            )
        return plans

    def _run_stage(self, plan: Any, perf: PerfLogWriter, ui: LiveProgress) -> StageOutcome:
        stype = str(getattr(plan.type, "value", plan.type))
        # sai3 labels the default stages Prepare/Workload/Cleanup and explicit ones by their names
        explicit = self.config.distributed is not None and bool(self.config.distributed.stages)
        label = stage_label(stype, plan.name if explicit else None)
        expected = (
            (plan.max_duration if stype == "hybrid" else plan.duration) if stype in _WORKLOAD_TYPES else None
        )
        if stype in _WORKLOAD_TYPES and not expected:
            expected = self.config.duration
        ui.stage_started(plan.name, stype, expected)

        outages = OutageWatch()

        def on_interval(snap: Snapshot) -> None:
            perf.write(snap, stage=label, elapsed_s=time.monotonic() - self.t0)
            outages.add(snap)
            ui.interval(snap, self.identity.agent_id)

        outcome = run_stage(
            plan,
            self.config,
            self.identity,
            self.control,
            on_interval,
            state=self.state,
            cleanup_only=bool(self.options.cleanup_only),
        )
        outage = outages.result()
        if outage is not None:
            outcome.details["longest_outage"] = outage.to_dict()
        if outcome.ok:
            rules = self.config.error_handling
            broken = judge_stage(
                stype,
                outcome.snapshot,
                min_success_ratio=rules.min_success_ratio,
                outage=outage,
                max_outage=rules.max_outage,
            )
            if broken:
                outcome.status, outcome.reason = StageStatus.FAILED, "; ".join(broken)
        ui.stage_ended(plan.name, outcome.status.value, outcome.reason, outcome.elapsed_s)
        lines = first_error_lines(outcome.snapshot)
        if not lines and outcome.first_error and not outcome.ok:
            lines = [f"   first error: {outcome.first_error}"]
        for line in lines:
            ui.log.print(line)
        for note in outcome.details.get("notes", []):
            ui.log.print(f"   note: {note}")
        if "left_behind" in outcome.details:
            self.left_behind = outcome.details["left_behind"]
            for line in leftovers.lines(self.left_behind):
                ui.log.print(f"   {line}")
        return outcome

    def _stages(self, results: ResultsDir, perf: PerfLogWriter, ui: LiveProgress) -> tuple[RunStatus, str]:
        plans = self.plans = self._plans()
        status, reason = RunStatus.SUCCESS, ""
        for plan in plans:
            stype = str(getattr(plan.type, "value", plan.type))
            if self.control.aborted:
                break
            if status is not RunStatus.SUCCESS and stype != "cleanup":
                ui.log.print(f"== stage {plan.name} skipped (an earlier stage failed)")
                continue
            outcome = self._run_stage(plan, perf, ui)
            self.outcomes.append((plan, outcome))
            kind = {"prepare": "prepare", "cleanup": "cleanup"}.get(
                stype, "workload" if stype in _WORKLOAD_TYPES else None
            )
            if kind is not None:
                self.phases[kind].add(outcome)
            if stype == "validation":
                self.preflight = outcome.details.get("preflight")
                if self.preflight is not None and (not self.preflight.passed or self.preflight.warnings):
                    self.preflight.render(ui.console, show_success=False)
            if outcome.status is StageStatus.ABORTED:
                return RunStatus.ABORTED, outcome.reason
            # objects left behind fail the run even from an optional cleanup stage (leftovers.fails_run)
            left_fails = bool(outcome.details.get("left_behind", {}).get("fails_run"))
            if not outcome.ok and (not plan.optional or left_fails) and status is RunStatus.SUCCESS:
                status, reason = (
                    RunStatus.FAILURE,
                    f"stage {plan.name} {outcome.status.value}: {outcome.reason}",
                )
                if stype == "validation":
                    break  # nothing touches storage after a failed preflight
        if self.control.aborted and status is RunStatus.SUCCESS:
            return RunStatus.ABORTED, self.control.reason
        return status, reason

    def _verify(self, ui: LiveProgress) -> tuple[RunStatus, str]:
        from sbench.engine.prepare import verify_prepared

        ok, lines = verify_prepared(self.config, self.identity, self.control)
        for line in lines:
            ui.log.print(line)
        if self.control.aborted:
            return RunStatus.ABORTED, self.control.reason
        return (
            (RunStatus.SUCCESS, "") if ok else (RunStatus.FAILURE, "prepared objects missing or unreadable")
        )

    # -- results -----------------------------------------------------------------------------------------
    def _write_results(self, results: ResultsDir, status: RunStatus, reason: str) -> tuple[RunStatus, str]:
        """Every end-of-run file, STATUS.txt first, each on its own; returns the final verdict (a file that
        could not be written makes the run a failure)."""
        sections: dict[str, Any] = {}
        files: list[tuple[Path, Callable[[], object]]] = []
        has_prepare = self.config.has_prepare
        for kind, phase in self.phases.items():
            snap = phase.snapshot()
            sections[kind] = summary_section(snap, phase.wall_s) if phase.ran else None
            if kind == "workload" or (kind == "prepare" and has_prepare):
                if phase.ran:
                    files.append(
                        (results.results_tsv(kind), partial(results.write_phase, kind, snap, phase.wall_s))
                    )
                else:
                    path = results.results_tsv(kind)
                    files.append((path, partial(write_results_tsv, path, snap, 0.0, kind)))
        stages = [
            stage_entry(
                number=i,
                name=plan.name,
                stage_type=outcome.type,
                status=outcome.status.value,
                snapshot=outcome.snapshot,
                wall_seconds=outcome.elapsed_s,
                reason=outcome.reason,
            )
            | {
                "details": _plain_details(outcome.details),
                "longest_outage": outcome.details.get("longest_outage"),
            }
            for i, (plan, outcome) in enumerate(self.outcomes, start=1)
        ]
        if self.left_behind is None:
            self.left_behind = self._uncleaned(status, reason)
        else:
            cleanups = [o for p, o in self.outcomes if _kind(p) == "cleanup"]
            self.left_behind = with_known_puts(
                self.left_behind,
                self.config,
                self.identity.run_id,
                self.phases["workload"].snapshot(),
                put_gone=sum(int(o.details.get("put_gone", 0)) for o in cleanups),
                deletes_in_flight=sum(o.snapshot.unfinished_ops for o in cleanups),
            )
        total = Snapshot.merge_all(o.snapshot for _, o in self.outcomes)
        first_errors = [e for plan, o in self.outcomes for e in first_errors_of(plan.name, o.snapshot)]
        unfinished = sum(o.snapshot.unfinished_ops for _, o in self.outcomes)

        def agent(status: RunStatus, reason: str) -> AgentStatus:
            state = {
                RunStatus.SUCCESS: AgentState.COMPLETED,
                RunStatus.FAILURE: AgentState.FAILED,
                RunStatus.ABORTED: AgentState.ABORTED,
            }[status]
            ops, errors = total.total_ops(), total.errors_total()
            return AgentStatus(self.identity.agent_id, state, reason, operations=ops, errors=errors)

        preflight = self.preflight.model_dump(mode="json") if self.preflight is not None else None
        if self.preflight is not None:
            path = results.file("preflight.json")
            files.append((path, partial(write_text_atomic, path, self.preflight.to_json() + "\n")))
        warnings = list(self.loaded.warnings) + self.notes

        def summary_file(status: RunStatus, reason: str) -> object:
            return write_summary(
                results.summary_path,
                build_summary(
                    status,
                    reason=reason,
                    metadata=results.metadata,
                    load_model=load_model_of(self.config),
                    sections=sections,
                    stages=stages,
                    agents=[agent(status, reason)],
                    preflight=preflight,
                    warnings=warnings,
                    first_errors=first_errors,
                    left_behind=self.left_behind,
                ),
            )

        def status_file(status: RunStatus, reason: str) -> object:
            return write_status(
                results.status_path,
                status,
                [agent(status, reason)],
                total_operations=total.total_ops(),
                total_errors=total.errors_total(),
                reason=reason,
                first_errors=first_errors,
                left_lines=leftovers.lines(self.left_behind),
                unfinished_operations=unfinished,
            )

        return write_final_results(
            results, status, reason, status_file=status_file, summary_file=summary_file, files=files
        )

    def _uncleaned(self, status: RunStatus, reason: str) -> dict[str, Any] | None:
        """What stays on the storage when no cleanup stage reported on it."""
        why = why_not_cleaned(any(_kind(p) == "cleanup" for p in self.plans), status.value, reason)
        work = [o for p, o in self.outcomes if str(getattr(p.type, "value", p.type)) in _WORKLOAD_TYPES]
        return uncleaned_report(
            self.config,
            self.identity.run_id,
            self.state.prepared.values(),
            self.phases["prepare"].snapshot(),
            self.phases["workload"].snapshot(),
            deleted_in_workload=sum(int(o.details.get("deleted", 0)) for o in work),
            why=why,
        )

    def _last_words(self) -> None:
        """A second Ctrl-C exits at once; before that, STATUS.txt says ABORTED with the totals known so far
        (sums of plain counters, so it takes a millisecond; the other files may be incomplete)."""
        if self.results is None:
            return
        first = self.control.reason or "interrupted"
        reason = f"{first}; interrupted again, exited at once (other result files may be incomplete)"
        snaps = [o.snapshot for _, o in self.outcomes]
        ops, errors = sum(s.total_ops() for s in snaps), sum(s.errors_total() for s in snaps)
        write_status(
            self.results.status_path,
            RunStatus.ABORTED,
            [AgentStatus(self.identity.agent_id, AgentState.ABORTED, reason, operations=ops, errors=errors)],
            total_operations=ops,
            total_errors=errors,
            reason=reason,
            unfinished_operations=sum(s.unfinished_ops for s in snaps),
        )

    def _report(self, results: ResultsDir, ui: LiveProgress, status: RunStatus, reason: str) -> None:
        tables, lines = [], []
        open_loop = bool(getattr(self.config, "open_loop", False))
        for kind, title in (("prepare", "Prepare"), ("workload", "Workload"), ("cleanup", "Cleanup")):
            phase = self.phases[kind]
            snap = phase.snapshot()
            if phase.ran and (snap.total_ops() or snap.errors_total()):
                tables.append(
                    phase_table(
                        f"{title} ({phase.wall_s:.1f} s)",
                        snap,
                        phase.wall_s,
                        open_loop=open_loop and kind == "workload",
                    )
                )
        work = self.phases["workload"].snapshot()
        if self.phases["workload"].ran:
            lines.append(describe_load(load_model_of(self.config)))
            if work.late_ops:
                lines.append(
                    f"late ops (started > 1 ms after their intended time): {work.late_ops:,}, "
                    f"schedule lag p99 {work.lag_histogram().percentile(99):,} µs"
                )
            err = errors_line(work)
            if err:
                lines.append(err)
        lines.extend(leftovers.lines(self.left_behind))
        unfinished = sum(o.snapshot.unfinished_ops for _, o in self.outcomes)
        if unfinished:
            lines.append(
                f"unfinished ops (in flight when their stage ended; neither done nor failed): {unfinished:,}"
            )
        lines.append(f"STATUS: {status.value}" + (f" ({reason})" if reason else ""))
        lines.append(f"results: {results.path}")
        print_report(ui.log, ui.console, tables, lines)

    # -- run ---------------------------------------------------------------------------------------------
    def run(self) -> int:
        results = ResultsDir.create(
            self.options.results_dir,
            self.config_path,
            config_text=self.loaded.source_text or None,
            load_model=load_model_of(self.config),
            run_id=self.identity.run_id,
        )
        self.results = results
        # installed until the last file is written, so a second Ctrl-C at any point leaves STATUS.txt ABORTED
        with _Signals(self.control, self._last_words):
            return self._run(results)

    def _run(self, results: ResultsDir) -> int:
        ui = LiveProgress(results.console)
        perf = results.perf_log()
        status, reason = RunStatus.FAILURE, "the run did not finish"
        try:
            ui.log.print(
                f"sbench run {self.config_path} (run id {self.identity.run_id}, "
                f"{describe_load(load_model_of(self.config))})"
            )
            for warning in self.loaded.warnings:
                ui.log.record(f"warning: {warning}")
            if self.options.op_log is not None:
                note = (
                    f"--op-log {self.options.op_log}: op-log capture is not built yet; no op-log is written"
                )
                self.notes.append(note)
                ui.log.print(f"note: {note}")
            try:
                if self.options.verify:
                    status, reason = self._verify(ui)
                else:
                    status, reason = self._stages(results, perf, ui)
            except (SbenchError, StorageError) as exc:
                # the CLI prints it and picks the exit code; the results directory still records it
                status, reason = RunStatus.FAILURE, str(exc)
                raise
            if status is RunStatus.ABORTED:
                ui.log.print(f"run aborted: {reason}; results so far are in {results.path}")
        finally:
            ui.close()
            perf.close()
            status, reason = self._write_results(results, status, reason)
            self._report(results, ui, status, reason)
            results.close()
        return EXIT_OK if status is RunStatus.SUCCESS else EXIT_RUN_FAILED


def _kind(plan: Any) -> str:
    return str(getattr(plan.type, "value", plan.type))


def _plain_details(details: dict[str, Any]) -> dict[str, Any]:
    """Stage details for summary.json (the preflight result and the longest outage have their own keys)."""
    return {k: v for k, v in details.items() if k not in ("preflight", "longest_outage")}
