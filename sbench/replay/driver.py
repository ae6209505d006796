"""The driver of `sbench replay`: plan, dry-run or run on a fleet, and the results directory.

How a replay flows:
 1. The backpressure settings and the remap rules are loaded (exit 2 with file, line, did-you-mean); the
    log is scanned and checked (exit 2 at the first malformed line), sorted first when it is not.
 2. `--dry-run` streams every op through the mapper, opens (without I/O) the backend of every root the ops
    reach, prints the plan (ops per class, span, duration at this speed, roots, skipped ops) and stops.
 3. Otherwise the results directory exists first (config.yaml records the replay's inputs), signals are
    caught (run.driver.StopSignals: a first Ctrl-C stops within ~2 s keeping partial results, a second
    exits at once), the fleet replays (LocalFleet: one executor in this process; the Ray fleet of
    cluster.replayfleet: the stream split over agents by key) and each interval becomes perf_log rows.
 4. The one stage, `replay`, is written as a run's stage is (run.report.RunReport: NN_replay_results.tsv,
    workload_results.tsv, per-agent files, summary.json, STATUS.txt, metadata.json). summary.json's
    `load_model` holds the replay's own figures: log, speed, ops per outcome, lag, mode transitions,
    remap hits, start skew. The verdict is true: no op succeeded, the replay stopped at a failed op
    (without --continue-on-error), a drain after too many mode switches, or an abort: not SUCCESS, exit 1.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from sbench.config.models import Completion, StageType
from sbench.control import RunControl
from sbench.errors import EXIT_OK, EXIT_RUN_FAILED, ConfigError
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.agentlog import AgentLog
from sbench.oplog.runlog import OpLogReport, in_process_client_id
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.replay.executor import ReplayExecutor, split_root
from sbench.replay.plan import Mapper, ReplayPlan
from sbench.replay.remap import Remapper, retarget, source_uri
from sbench.replay.settings import Backpressure, load_backpressure, load_remap
from sbench.results.resultsdir import ResultsDir
from sbench.run.driver import StopSignals
from sbench.run.report import RunReport, stage_status
from sbench.run.stagerecord import StageRun
from sbench.status import RunStatus, StageStatus
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend

#: the epoch is this far after the replay starts, so every worker (every agent) is ready for op 0
START_LEAD_S = 0.2
#: roots listed by a dry-run at most
MAX_LISTED_ROOTS = 20


@dataclass
class ReplayOptions:
    """The command line of `sbench replay`."""

    op_log: Path
    target: str | None = None
    remap: Path | None = None
    speed: float = 1.0
    continue_on_error: bool = False
    config: Path | None = None
    dry_run: bool = False
    results_dir: Path | None = None
    #: the replay's own op-log (its calls, as a run's --op-log)
    capture: Path | None = None
    agents: int | None = None
    interval_s: float = 1.0


@dataclass
class FleetOutcome:
    """What a fleet hands back: the stage over every agent and the fleet's own figures."""

    run: StageRun
    op_log: OpLogReport | None = None
    figures: dict[str, Any] = field(default_factory=dict)


class ReplayFleet(Protocol):
    """Runs the replay's one stage on some agents (in this process, or on Ray)."""

    agents: list[tuple[str, str]]

    def replay(self, plan: ReplayPlan, call: StageCall) -> FleetOutcome: ...


@dataclass
class StageCall:
    """What a fleet needs besides the plan."""

    stage: StagePlan
    settings: Backpressure
    control: RunControl
    continue_on_error: bool
    interval_s: float
    on_interval: Any
    capture: Path | None
    agent_dir: Any


def build_mapper(options: ReplayOptions) -> tuple[Mapper, Remapper | None]:
    """(endpoint, file) -> URI: the remap rules, `--target`, or the logged URI itself."""
    if options.remap is not None and options.target is not None:
        raise ConfigError("sbench replay: give --target or --remap, not both")
    if options.remap is not None:
        remapper = Remapper(load_remap(options.remap))
        return (lambda endpoint, file: remapper(source_uri(endpoint, file))), remapper
    if options.target is not None:
        target = options.target
        if "://" not in target:
            raise ConfigError(f"--target {target!r}: not a URI; give scheme://... (file:///tmp/r/, s3://b/p/)")
        open_backend(split_root(target)[0]).close()  # a bad scheme or URI: exit 2 before anything runs
        return (lambda endpoint, file: retarget(target, endpoint, file)), None
    return source_uri, None


def stage_plan(duration_s: float) -> StagePlan:
    """The replay's one stage, as the results writers know stages (an execute stage: `workload_*` files)."""
    return StagePlan(name="replay", order=1, type=StageType.EXECUTE, completion=Completion.DURATION,
                     barrier=PhaseBarrier(), duration=duration_s)


class LocalFleet:
    """The replay in this process: one agent (`standalone`, or SBENCH_CLIENT_ID)."""

    def __init__(self) -> None:
        self.agent_id = "standalone"
        self.agents = [(self.agent_id, _local_ip())]

    def replay(self, plan: ReplayPlan, call: StageCall) -> FleetOutcome:
        log = AgentLog(call.capture, in_process_client_id(self.agent_id)) if call.capture else None
        executor = ReplayExecutor(
            self.agent_id, call.settings, call.control, continue_on_error=call.continue_on_error,
            interval_s=call.interval_s, on_interval=lambda snap: call.on_interval({self.agent_id: snap}),
        )
        try:
            result = executor.run(plan.batches(), START_LEAD_S)
        finally:
            report = OpLogReport.of_one(log.finish()) if log is not None else None
        run = StageRun.of_one_agent(call.stage, result, aborted=call.control.aborted)
        return FleetOutcome(run, report, {"start_skew_ms": 0})


def dry_run(plan: ReplayPlan, options: ReplayOptions, say: Any) -> int:
    """Every op through the mapper, every root opened without I/O; the plan printed."""
    calls: Counter[str] = Counter()
    roots: set[str] = set()
    for op in plan.ops():
        calls[op.op] += 1
        roots.add(split_root(op.uri)[0])
    for root in sorted(roots)[:MAX_LISTED_ROOTS]:
        open_backend(root, BackendOptions()).close()
    scan = plan.scan
    say(f"replay plan of {options.op_log}: {scan.rows:,} rows, {'sorted' if scan.in_order else 'unsorted'}")
    per_op = ", ".join(f"{k} {v:,}" for k, v in sorted(calls.items()))
    say(f"  ops to replay: {sum(calls.values()):,} ({per_op})")
    if scan.skipped:
        say(f"  skipped (not replayable): {', '.join(f'{k} {v:,}' for k, v in scan.skipped.items())}")
    say(f"  logged span {scan.span_s:.3f} s; at speed {options.speed:g}: {plan.duration_s:.3f} s")
    say(f"  logged errors: {scan.logged_errors:,}")
    say(f"  storage roots ({len(roots):,}): {', '.join(sorted(roots)[:MAX_LISTED_ROOTS])}"
        + (" ..." if len(roots) > MAX_LISTED_ROOTS else ""))
    return EXIT_OK


def _local_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


class ReplayDriver:
    """One replay from the log to the last result file (see the module docstring)."""

    def __init__(self, options: ReplayOptions, fleet: ReplayFleet | None = None,
                 settings: Backpressure | None = None) -> None:
        self.options = options
        self.settings = settings if settings is not None else load_backpressure(options.config)
        self.mapper, self.remapper = build_mapper(options)
        self.fleet = fleet
        self.control = RunControl()
        self.results: ResultsDir | None = None
        self._print_lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._print_lock:
            if self.results is not None:
                self.results.console.print(text)
            else:
                print(text, flush=True)

    def execute(self) -> int:
        options = self.options
        if not options.speed > 0:
            raise ConfigError(f"--speed must be > 0 (got {options.speed})")
        plan = ReplayPlan(options.op_log, speed=options.speed, mapper=self.mapper, say=self.say)
        try:
            if options.dry_run:
                code = dry_run(plan, options, self.say)
                self.say(f"  fleet: {self._fleet_text()}")
                return code
            return self._run(plan)
        finally:
            plan.close()

    def _fleet_text(self) -> str:
        """Who would replay (a dry-run places no agents: it says what the flags and the block ask for)."""
        dist = self.settings.distributed
        if dist is not None:
            listed = f"{len(dist.agents)} listed agent(s)" if dist.agents else ""
            per_node = (f"{dist.agents_per_node} agent(s) per node on "
                        f"{dist.nodes if dist.nodes == 'all' else ', '.join(dist.nodes or [])} node(s)"
                        if dist.agents_per_node else "")
            parts = " and ".join(t for t in (listed, per_node) if t)
            return f"Ray agents of the `distributed` block: {parts}"
        if self.options.agents is not None:
            return f"{self.options.agents} Ray agent(s) (--agents), spread over the cluster's nodes"
        return "this process (one agent)"

    def _inputs(self) -> str:
        """config.yaml of a replay: its inputs (the remap rules and backpressure settings in full)."""
        o = self.options
        doc: dict[str, Any] = {
            "replay": {
                "op_log": str(o.op_log), "target": o.target, "speed": o.speed,
                "continue_on_error": o.continue_on_error, "agents": o.agents,
            },
            "backpressure": self.settings.model_dump(exclude={"distributed"}),
        }
        if self.settings.distributed is not None:
            doc["distributed"] = self.settings.distributed.model_dump(mode="json", exclude_unset=True)
        if o.remap is not None:
            doc["remap"] = yaml.safe_load(o.remap.read_text(encoding="utf-8"))
        return yaml.safe_dump(doc, sort_keys=False)

    def _run(self, plan: ReplayPlan) -> int:
        options = self.options
        fleet = self.fleet or LocalFleet()
        run_id = uuid.uuid4().hex[:12]
        load_model = {"model": "replay", "log": str(options.op_log), "speed": options.speed}
        results = self.results = ResultsDir.create(
            options.results_dir, Path("replay.yaml"), config_text=self._inputs(), test_name="replay",
            distributed=len(fleet.agents) > 1, agents=[a for a, _ in fleet.agents], run_id=run_id,
            load_model=load_model,
        )
        report = RunReport(results, fleet.agents, int(time.time() * 1000))
        stage = stage_plan(plan.duration_s)
        self.say(
            f"sbench replay {options.op_log}: {plan.scan.replayable:,} ops over {plan.duration_s:.3f} s "
            f"(speed {options.speed:g}, {len(fleet.agents)} agent(s), max_concurrent "
            f"{self.settings.max_concurrent}); results in {results.path}"
        )
        capture = None
        if options.capture is not None:
            capture = options.capture if options.capture.is_absolute() else results.path / options.capture
        interval_lock = threading.Lock()

        def on_interval(per_agent: dict[str, Snapshot]) -> None:
            with interval_lock:
                report.write_intervals("replay", [Snapshot.merge_all(per_agent.values())],
                                       {a: [s] for a, s in per_agent.items()})

        report.stage_started(stage, open_loop=True)
        call = StageCall(stage, self.settings, self.control, options.continue_on_error, options.interval_s,
                         on_interval, capture, results.agent_dir)
        status, reason = RunStatus.FAILURE, "the replay did not finish"
        outcome: FleetOutcome | None = None
        with StopSignals(self.control, self.say, lambda: report.write_aborted_status(self.control.reason)):
            try:
                outcome = fleet.replay(plan, call)
                report.stage_done(outcome.run, optional=False)
                status, reason = self._verdict(outcome.run)
            finally:
                if self.control.aborted:
                    status, reason = RunStatus.ABORTED, self.control.reason
                figures = self._figures(plan, outcome)
                load_model.update(figures)
                status, reason = report.finalize(
                    status, reason, load_model=load_model, warnings=[], preflight=None,
                    extra={"run_id": run_id, "replay": figures},
                    op_log=outcome.op_log.to_dict() if outcome and outcome.op_log else None,
                )
                self._closing_lines(status, reason, figures, outcome)
                results.close()
        return EXIT_OK if status is RunStatus.SUCCESS else EXIT_RUN_FAILED

    @staticmethod
    def _verdict(run: StageRun) -> tuple[RunStatus, str]:
        status = stage_status(run)
        reasons = "; ".join(f"{a}: {r.reason}" if len(run.results) > 1 else r.reason
                            for a, r in sorted(run.results.items()) if not r.ok)
        if status is StageStatus.OK and run.merged.total_ops() == 0 and run.merged.errors_total():
            return RunStatus.FAILURE, "every op failed"
        if status is StageStatus.ABORTED:
            return RunStatus.ABORTED, reasons
        return (RunStatus.SUCCESS, "") if status is StageStatus.OK else (RunStatus.FAILURE, reasons)

    def _figures(self, plan: ReplayPlan, outcome: FleetOutcome | None) -> dict[str, Any]:
        """summary.json's account of the replay: the log, what happened to its ops, lag and modes."""
        figures: dict[str, Any] = {"log": plan.scan.to_dict(),
                                   "duration_at_speed_s": round(plan.duration_s, 6)}
        if self.remapper is not None:
            figures["remap"] = self.remapper.report()
        elif self.options.target:
            figures["target"] = self.options.target
        if outcome is None:
            return figures
        per_agent = {a: r.extra.get("replay", {}) for a, r in sorted(outcome.run.results.items())}
        keys = ("ops_taken", "ops_started", "ops_succeeded", "ops_failed", "ops_abandoned")
        totals = {k: sum(p.get(k, 0) for p in per_agent.values()) for k in keys}
        totals["ops_not_replayed"] = plan.scan.replayable - totals["ops_started"]
        active = max((p.get("active_s", 0.0) for p in per_agent.values()), default=0.0)
        totals["active_s"] = active  # from the epoch to the end of the last op
        totals["ops_per_s_active"] = round(totals["ops_succeeded"] / active, 1) if active else 0.0
        merged = outcome.run.merged
        lag = merged.lag_histogram()
        figures.update(totals)
        figures.update({
            "late_ops": merged.late_ops,
            "lag_p50_ms": round(lag.percentile(50) / 1000, 3) if merged.late_ops else 0.0,
            "lag_max_ms": round(lag.max / 1000, 3) if merged.late_ops else 0.0,
            "transitions": {a: p.get("transitions", []) for a, p in per_agent.items()},
            "drained": {a: p["drained"] for a, p in per_agent.items() if p.get("drained")},
            "agents": per_agent,
            **outcome.figures,
        })
        return figures

    def _closing_lines(self, status: RunStatus, reason: str, figures: dict[str, Any],
                       outcome: FleetOutcome | None) -> None:
        if outcome is not None:
            self.say(
                f"replayed {figures.get('ops_succeeded', 0):,} ops ok, "
                f"{figures.get('ops_failed', 0):,} failed, "
                f"{figures.get('ops_not_replayed', 0):,} not replayed; late {figures.get('late_ops', 0):,} "
                f"(max lag {figures.get('lag_max_ms', 0.0):.1f} ms); mode transitions "
                f"{sum(len(t) for t in figures.get('transitions', {}).values())}"
            )
            if outcome.op_log is not None:
                for line in outcome.op_log.lines():
                    self.say(line)
        self.say(f"replay {status.value}{': ' + reason if reason else ''}")
