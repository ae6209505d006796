"""The one driver of `sbench run`, whatever runs the work (run.fleet: in this process or on Ray agents).

How a run flows:
 1. commands.run loads and validates the config; run.launch picks the fleet and opens Ray when it is one.
 2. The stage plan: the config's stages with the CLI flags applied, a preflight first when it has none.
 3. The results directory and the console transcript exist before anything else happens.
 4. Signals: a first SIGINT/SIGTERM aborts the run (every stage stops within about 2 s and partial results
    are kept); a second writes STATUS.txt ABORTED, kills the fleet and exits 130 at once.
 5. The fleet starts its agents; then each stage runs on the agents still in the run (prepare and cleanup
    as shard jobs, run.shardstages; the rest in the engine of each agent). Its intervals become
    perf_log.tsv rows (merged and per agent), outage watches, the live display and the live metrics
    (metrics.live: --metrics-port, Ray's metrics export) as they arrive.
 6. A finished stage is judged (run.stageverdict: no op succeeded, success ratio, outage, stuck agents)
    and written (NN_<stage>_results.tsv); a failed stage skips the rest except cleanup, a failed preflight
    stops the run before any I/O, a majority barrier drops the agents that failed.
 7. At the end, whatever happened: the fleet stops, what stays on the storage is counted (engine.uncleaned),
    STATUS.txt, summary.json, the phase TSVs and metadata.json are written (run.report), the closing tables
    are shown, report.html is drawn from the files (unless --no-report; its failure is only a warning), and
    the exit code is 0 only for SUCCESS.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from sbench.config import LoadedConfig
from sbench.config.models import BarrierType, StageType
from sbench.config.runoptions import RunOptions
from sbench.control import RunControl
from sbench.engine import leftovers
from sbench.engine.batchloops import NATIVE_BATCHES
from sbench.engine.uncleaned import uncleaned_report, why_not_cleaned, with_known_puts
from sbench.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, RunFailed, SbenchError
from sbench.metrics.live.state import LiveMetrics
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.runlog import OpLogReport, op_log_path
from sbench.plan.runplan import build_plan
from sbench.plan.stages import StagePlan
from sbench.preflight.result import PreflightResult
from sbench.report.afterrun import report_after_run
from sbench.results.atomic import write_text_atomic
from sbench.results.perf_log import stage_label
from sbench.results.resultsdir import ResultsDir
from sbench.run.barrier import BarrierStatus
from sbench.run.fleet import AgentInfo, Fleet, StageCall
from sbench.run.report import RunReport, stage_status, uncollected_text
from sbench.run.stagerecord import StageRun
from sbench.run.stageverdict import StageOutages, apply_verdict
from sbench.status import RunStatus
from sbench.stopsignals import SignalScope
from sbench.storage.base import StorageError
from sbench.ui.live import LiveProgress
from sbench.ui.tables import describe_load, errors_line, first_error_lines, phase_table, print_report

#: set by Ray's job supervisor in the environment of a submitted job's entrypoint
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
_WORKLOAD_TYPES = (StageType.EXECUTE, StageType.HYBRID)


class StopSignals(SignalScope):
    """First SIGINT/SIGTERM: abort the run (partial results get written). Second: `last_words` (STATUS.txt
    ABORTED, the fleet killed) and exit 130 at once. Installed until the last file is written."""

    def __init__(self, control: RunControl, say: Any, last_words: Any) -> None:
        super().__init__()
        self.control = control
        self._say = say
        self._last_words = last_words

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.control.aborted:
            self._say(f"{name} again: exiting now")
            self._last_words()
            os._exit(EXIT_INTERRUPTED)
        how = " (Ctrl-C)" if signum == signal.SIGINT else ""
        self.control.abort(f"interrupted by {name}{how}")
        self._say(f"{name}: aborting the run, stopping every agent (press Ctrl-C again to exit at once)")


class RunDriver:
    """One run from the stage plan to the last result file, over any fleet (see the module docstring)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        options: RunOptions,
        config_path: Path,
        fleet: Fleet,
        run_id: str,
        live: LiveMetrics | None = None,
    ) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.options = options
        self.config_path = config_path
        self.fleet = fleet
        self.run_id = run_id
        self.control = RunControl()
        self.plan = build_plan(loaded.config, options)
        self.results: ResultsDir | None = None
        self.ui: LiveProgress | None = None
        self.report: RunReport | None = None
        self.agents: list[AgentInfo] = []
        self.runs: list[StageRun] = []
        self.preflight: PreflightResult | None = None
        #: what the last cleanup stage left behind (leftovers.report), None when no cleanup ran
        self.left_behind: dict[str, Any] | None = None
        self.notes: list[str] = []
        self.extra: dict[str, Any] = {"run_id": run_id, "start_skew_ms": {}}
        if loaded.overrides:  # keys `sbench run` flags set (config.overrides), with the YAML's values
            self.extra["cli_overrides"] = loaded.overrides
        self.outages = StageOutages()
        self._label = ""
        self.op_log_path: Path | None = None
        self.op_log: OpLogReport | None = None
        self._op_log_open = False
        #: live metrics for Prometheus (metrics.live), fed from the intervals below; None: off
        self.live = live

    # -- output --

    def say(self, text: str) -> None:
        if self.ui is not None:
            self.ui.log.print(text)
        else:
            print(text, flush=True)

    @property
    def many(self) -> bool:
        """More than one agent: the console names agents and barriers."""
        return len(self.agents) > 1

    # -- the run --

    def execute(self) -> int:
        """Run every stage and write every result file; returns the exit code."""
        results = self.results = ResultsDir.create(
            self.options.results_dir or _job_results_dir(self.config_path),
            self.config_path,
            config_text=self.loaded.source_text or None,
            distributed=self.fleet.distributed,
            run_id=self.run_id,
            load_model=self.plan.load_model,
            test_name=self.options.tsv_name,
            name_style=self.options.results_name_style,
        )
        dist = self.config.distributed
        self.ui = LiveProgress(results.console, stuck_intervals=dist.stuck_intervals if dist else None)
        self.report = RunReport(results, [], int(time.time() * 1000))
        load = describe_load(self.plan.load_model)
        self.say(f"sbench run {self.config_path} (run id {self.run_id}, {load})")
        if self.fleet.describe():
            self.say(self.fleet.describe())
        for warning in self.loaded.warnings:
            self.ui.log.record(f"warning: {warning}")
        self.op_log_path = op_log_path(self.options.op_log, self.config.op_log_path, results.path)
        status, reason = RunStatus.FAILURE, "the run did not finish"
        with StopSignals(self.control, self.say, self._last_words):
            try:
                status, reason = self._run(results)
            except (SbenchError, StorageError) as exc:
                # the CLI prints it and picks the exit code; the results directory still records it
                status, reason = RunStatus.FAILURE, str(exc)
                raise
            finally:
                if self.control.aborted:
                    status, reason = RunStatus.ABORTED, self.control.reason
                    self.say(f"run aborted: {reason}; results so far are in {results.path}")
                self.ui.close()
                self._close_op_log()
                self.fleet.stop()
                status, reason = self._finalize(status, reason)
                self._final_report(status, reason)
                if not self.options.no_report:  # after every other file; cannot change the status
                    report_after_run(results.path, self.say)
                results.close()
        return EXIT_OK if status is RunStatus.SUCCESS else EXIT_RUN_FAILED

    def _run(self, results: ResultsDir) -> tuple[RunStatus, str]:
        self.agents = self.fleet.start(self.control, self.say, results.path)
        assert self.report is not None
        self.report.add_agents([(a.agent_id, a.node_ip) for a in self.agents])
        results.metadata.agents = [a.agent_id for a in self.agents]
        results.save_metadata()
        if self.many:
            self.say(f"results in {results.path}")
        self._open_op_log()
        if self.options.verify:
            ok, lines = self.fleet.verify()
            for line in lines:
                self.say(line)
            if ok:
                return RunStatus.SUCCESS, ""
            return RunStatus.FAILURE, "prepared objects missing or unreadable"
        delay = self.config.distributed.start_delay if self.config.distributed is not None else None
        if delay:  # sai3's start_delay: every agent is ready; the first stage starts this much later
            self.say(f"start delay: the first stage starts in {delay:g} s")
            self.control.wait(delay)
        return self._stages()

    def _stages(self) -> tuple[RunStatus, str]:
        """The stage loop (see the module docstring); the verdict before the result files."""
        assert self.report is not None
        dropped: dict[str, str] = {}
        status, reason = RunStatus.SUCCESS, ""
        for plan in self.plan.stages:
            if self.control.aborted:
                break
            if status is not RunStatus.SUCCESS and plan.type is not StageType.CLEANUP:
                self.say(f"== stage {plan.name} skipped (an earlier stage failed)")
                continue
            participants = [a.agent_id for a in self.agents if a.agent_id not in dropped]
            for agent_id, why in dropped.items():
                self.report.excluded(agent_id, f"sat out stage {plan.name!r}: {why}")
            if not participants:
                return RunStatus.FAILURE, f"no agent left to run stage {plan.name!r}"
            run = self._run_stage(plan, participants)
            if run.aborted or self.control.aborted:
                break
            if plan.type is StageType.CLEANUP and (self.left_behind or {}).get("fails_run"):
                # objects left behind fail the run, even from an optional cleanup stage; the reason gives
                # the same count as STATUS.txt's list (the cleanup's own, floored by the run's PUTs)
                if status is RunStatus.SUCCESS:
                    assert self.left_behind is not None
                    left = leftovers.summary(leftovers.from_report(self.left_behind))
                    status, reason = RunStatus.FAILURE, f"stage {plan.name!r}: {left}"
                continue
            if run.status is BarrierStatus.FAILED:
                why = self._failure_reason(run)
                if plan.optional:
                    self.say(f"optional stage {plan.name!r} failed ({why}); the run goes on")
                    continue
                if status is RunStatus.SUCCESS:
                    status, reason = RunStatus.FAILURE, why
                if plan.type is StageType.VALIDATION:
                    break  # nothing touches storage after a failed preflight
                continue
            dropped.update(self.fleet.dropped())
            if run.status is BarrierStatus.DEGRADED and plan.barrier.type is BarrierType.MAJORITY:
                for agent_id in run.failed_agents:
                    dropped.setdefault(agent_id, f"failed stage {plan.name!r} (majority barrier)")
        return status, reason

    def _run_stage(self, plan: StagePlan, participants: list[str]) -> StageRun:
        assert self.ui is not None and self.report is not None
        self.outages = StageOutages()
        self._label = self._stage_label(plan)
        where = f" on {len(participants)} agents, {plan.barrier.type.value} barrier" if self.many else ""
        self.ui.stage_started(plan.name, plan.type.value, plan.run_for_s, where)
        self.report.stage_started(plan, open_loop=self.config.open_loop and plan.run_for_s is not None)
        if self.live is not None:
            self.live.stage_started(plan.name, plan.type.value)
        intervals = partial(self._intervals, plan.name)
        run = self.fleet.run_stage(StageCall(plan, participants, intervals, self.say))
        apply_verdict(run, self.config.error_handling, self.outages)
        if self.live is not None:
            totals = {agent: result.snapshot for agent, result in run.results.items()}
            status = stage_status(run).value
            self.live.stage_ended(plan.name, plan.type.value, totals, status, list(run.stuck_at_end))
        self.runs.append(run)
        failed = run.status is BarrierStatus.FAILED or run.aborted or run.timed_out or bool(run.verdict)
        self.ui.stage_ended(
            plan.name, stage_status(run), self._failure_reason(run) if failed else "", run.elapsed_s
        )
        merged = self.report.stage_done(run, optional=plan.optional)
        for agent_id, window in run.lost.items():
            self.say(f"[{plan.name}] {agent_id}: {uncollected_text(window)}")
        if run.start_skew_ms is not None:
            self.extra["start_skew_ms"][plan.name] = run.start_skew_ms
        if self.many:
            self.say(self._stage_line(run, merged))
        lines = first_error_lines(merged)
        if not lines and failed:
            lines = [
                f"   first error: {e}" for r in run.results.values() if (e := r.extra.get("first_error"))
            ]
        for line in lines:
            self.say(line)
        for note in run.notes:
            self.say(f"   note: {note}")
        self._keep(run)
        return run

    def _keep(self, run: StageRun) -> None:
        """What a stage hands to the rest of the run: preflight result, prepared objects, leftovers."""
        assert self.results is not None and self.ui is not None
        if run.preflight is not None:
            self.preflight = run.preflight
            path = self.results.file("preflight.json")
            self.results.writes.attempt(
                path, partial(write_text_atomic, path, run.preflight.to_json() + "\n")
            )
            if not run.preflight.passed or run.preflight.warnings:
                run.preflight.render(self.ui.console, show_success=False)
        if run.left_behind is not None:
            self.left_behind = self._with_known_puts(run.left_behind)
            for line in leftovers.lines(self.left_behind):
                self.say(f"   {line}")

    # -- the op-log --

    def _open_op_log(self) -> None:
        path = self.op_log_path
        if path is None:
            return
        assert self.results is not None
        try:
            self.fleet.open_op_log(path, self.results.agent_dir)
        except OSError as exc:
            raise RunFailed(f"op-log {path}: cannot be written ({exc.strerror or exc})") from exc
        self._op_log_open = True
        self.say(f"op-log: capturing every storage call for {path}")

    def _close_op_log(self) -> None:
        """The run's op-log, whatever happened (an aborted run logs what it did); a failure here is said
        and recorded, never the run's verdict."""
        if not self._op_log_open:
            return
        self._op_log_open = False
        try:
            self.op_log = self.fleet.close_op_log()
        except Exception as exc:  # the run's files matter more than its op-log
            self.op_log = OpLogReport(str(self.op_log_path), problems=[f"{type(exc).__name__}: {exc}"])
        for line in self.op_log.lines():
            self.say(line)

    def _failure_reason(self, run: StageRun) -> str:
        plan = run.plan
        if run.verdict:
            return f"stage {plan.name!r} failed: {run.verdict}"
        if not self.many:
            result = next(iter(run.results.values()), None)
            if result is not None:
                return f"stage {plan.name!r} {result.status}: {result.reason}"
        failed = run.failed_agents or sorted(run.reasons)
        detail = "; ".join(f"{a}: {run.reasons.get(a, 'failed')}" for a in failed)
        return f"stage {plan.name!r} failed its {plan.barrier.type.value} barrier: {detail}"

    @staticmethod
    def _stage_line(run: StageRun, merged: Snapshot) -> str:
        skew = f", start skew {run.start_skew_ms} ms" if run.start_skew_ms is not None else ""
        stuck = f", STUCK: {', '.join(sorted(run.stuck))}" if run.stuck else ""
        return (
            f"stage {run.plan.name}: {run.status.value.upper()} in {run.elapsed_s:.1f} s, "
            f"{merged.total_ops():,} ops, {merged.errors_total():,} errors{skew}{stuck}"
        )

    # -- live intervals --

    def _stage_label(self, plan: StagePlan) -> str:
        """perf-log `stage`: sai3 labels default stages Prepare/Workload/Cleanup, explicit ones by name."""
        dist = self.config.distributed
        explicit = dist is not None and bool(dist.stages)
        return stage_label(plan.type.value, plan.name if explicit or plan.type is StageType.CUSTOM else None)

    def _intervals(
        self, stage: str, aggregate: list[Snapshot], per_agent: dict[str, list[Snapshot]]
    ) -> None:
        """A fleet's intervals: perf logs, outage watches, live display, live metrics."""
        assert self.report is not None and self.ui is not None
        if self.live is not None:
            self.live.intervals(stage, per_agent)
        self.report.write_intervals(self._label, aggregate, per_agent)
        self.outages.add(aggregate, per_agent)
        self.ui.agent_intervals(per_agent)
        for snap in aggregate:
            self.ui.interval(snap)

    # -- end of run --

    def _of(self, *types: StageType) -> list[StageRun]:
        return [run for run in self.runs if run.plan.type in types]

    def _uncleaned(self, status: RunStatus, reason: str) -> dict[str, Any] | None:
        """What stays on the storage when no cleanup stage reported on it."""
        has_cleanup = any(p.type is StageType.CLEANUP for p in self.plan.stages)
        why = why_not_cleaned(has_cleanup, status.value, reason)
        work = [r for run in self._of(*_WORKLOAD_TYPES) for r in run.results.values()]
        return uncleaned_report(
            self.config,
            self.run_id,
            {e: rec for run in self._of(StageType.PREPARE) for e, rec in run.prepared.items()}.values(),
            Snapshot.merge_all(run.merged for run in self._of(StageType.PREPARE)),
            Snapshot.merge_all(r.snapshot for r in work),
            deleted_in_workload=sum(int(r.extra.get("deleted", 0)) for r in work),
            why=why,
        )

    def _with_known_puts(self, left_behind: dict[str, Any]) -> dict[str, Any]:
        """A cleanup's report floored by what the run knows of its own PUTs (engine.uncleaned)."""
        cleanups = self._of(StageType.CLEANUP)
        lost = any(run.lost_jobs for run in cleanups)
        return with_known_puts(
            left_behind,
            self.config,
            self.run_id,
            Snapshot.merge_all(run.merged for run in self._of(*_WORKLOAD_TYPES)),
            put_gone=sum(run.put_gone for run in cleanups),
            deletes_in_flight=None if lost else sum(run.merged.unfinished_ops for run in cleanups),
        )

    def _finalize(self, status: RunStatus, reason: str) -> tuple[RunStatus, str]:
        """Write every end-of-run file; the final verdict (an unwritable results file fails the run)."""
        assert self.report is not None
        if self.left_behind is None:
            self.left_behind = self._uncleaned(status, reason)
        return self.report.finalize(
            status,
            reason,
            load_model=self.plan.load_model,
            warnings=list(self.loaded.warnings) + self.notes,
            preflight=self.preflight.model_dump(mode="json") if self.preflight is not None else None,
            extra={**self.extra, **self.fleet.metadata()},
            left_behind=self.left_behind,
            op_log=self.op_log.to_dict() if self.op_log is not None else None,
            phases=("workload", "prepare") if self.config.has_prepare else ("workload",),
            perf_log_copy=Path(self.config.perf_log.path).expanduser().absolute()
            if self.config.perf_log.path
            else None,
        )

    def _final_report(self, status: RunStatus, reason: str) -> None:
        """The closing tables (one per stage that did anything, merged over agents, titled as in perf_log.tsv)
        and the status lines."""
        assert self.ui is not None and self.results is not None and self.report is not None
        tables, lines = [], []
        for run in self.runs:
            snap = run.merged
            if snap.total_ops() or snap.errors_total():
                wall = max((r.elapsed_s for r in run.results.values()), default=0.0)
                agents = f"{len(run.results)} agents, " if self.many else ""
                title = f"{self._stage_label(run.plan)} ({agents}{wall:.1f} s{_workers_on(run)})"
                open_loop = self.config.open_loop and run.plan.type in _WORKLOAD_TYPES
                tables.append(phase_table(title, snap, wall, open_loop=open_loop))
        work = Snapshot.merge_all(run.merged for run in self._of(*_WORKLOAD_TYPES))
        if self._of(*_WORKLOAD_TYPES):
            lines.append(describe_load(self.plan.load_model))
            if work.late_ops:
                lines.append(
                    f"late ops (started > 1 ms after their intended time): {work.late_ops:,}, "
                    f"schedule lag p99 {work.lag_histogram().percentile(99):,} µs"
                )
            errors = errors_line(work)
            if errors:
                lines.append(errors)
        if self.many:
            for track in self.report.tracks.values():
                stuck = f" [STUCK: {track.stuck_reason}]" if track.stuck_reason else ""
                why = f" ({track.reason})" if track.reason else ""
                lines.append(f"{track.agent_id}@{track.node_ip}: {track.state.value}{why}{stuck}")
        lines.extend(leftovers.lines(self.left_behind))
        if self.report.unfinished:
            lines.append(
                "unfinished ops (in flight when their stage ended; neither done nor failed): "
                f"{self.report.unfinished:,}"
            )
        lines.append(f"STATUS: {status.value}" + (f" ({reason})" if reason else ""))
        lines.append(f"results: {self.results.path}")
        print_report(self.ui.log, self.ui.console, tables, lines)

    def _last_words(self) -> None:
        """A second Ctrl-C exits at once; before that, STATUS.txt says ABORTED with the totals known so far
        (plain counters of the stages done, one small file), and the fleet is killed without waiting."""
        first = self.control.reason or "interrupted"
        reason = f"{first}; interrupted again, exited at once (other result files may be incomplete)"
        try:
            if self.report is not None:
                self.report.write_aborted_status(reason)
        except OSError as exc:  # exiting anyway: say why the file is missing
            print(f"sbench: could not write STATUS.txt before exiting: {exc}", file=sys.stderr)
        self.fleet.kill()


def _job_results_dir(config_path: Path) -> Path | None:
    """Under `ray job submit` the working directory is a temporary copy that Ray garbage-collects, so the
    default results directory goes to ~/sbench-results/ on the driver's node instead (None elsewhere)."""
    if RAY_JOB_ENV not in os.environ:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.home() / "sbench-results" / f"sbench-{stamp}-{config_path.stem or 'run'}-{os.getpid()}"


def _workers_on(run: StageRun) -> str:
    """The end of a workload stage's table title naming its workers (threads, asyncio tasks, or both when
    the agents differ) and, on file://, whether they made their calls in native batches, so what
    `workers.mode: auto` and `native_file_io` chose (engine.workermode, engine.batchloops) shows on the
    console too."""
    modes = sorted({str(m) for r in run.results.values() if (m := r.extra.get("worker_mode"))})
    if not modes:
        return ""
    batched = any(r.extra.get("file_loop") == NATIVE_BATCHES for r in run.results.values())
    native = " with native file:// batches" if batched else ""
    return f", on {' and '.join('asyncio tasks' if m == 'asyncio' else m for m in modes)}{native}"
