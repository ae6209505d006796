"""`run_distributed`: the Ray driver of a distributed run (one code path for a laptop and a cluster).

It connects to Ray (the cluster --ray-address or RAY_ADDRESS names, else a private local instance: see
`cluster.connect`), creates the coordinator, the metadata cache and the agents, runs the stages in order
(prepare/cleanup/preflight as tasks, execute/hybrid/custom in the agents), writes every result file, and
always tears its actors and placement group down. Ctrl-C or SIGTERM (also what `ray job stop` sends) stops
every agent mid-stage, keeps partial results and ends with STATUS `ABORTED`; a second Ctrl-C writes STATUS.txt
`ABORTED` and exits at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from sbench.cluster.actors import create_coordinator, create_metadata_cache
from sbench.cluster.agent import StageFn
from sbench.cluster.barrier import BarrierStatus
from sbench.cluster.connect import RayConnection, ray_connection
from sbench.cluster.env import ForwardedEnv
from sbench.cluster.fleet import Fleet, start_fleet
from sbench.cluster.listing import listing_scope
from sbench.cluster.metadata_cache import default_db_path
from sbench.cluster.monitor import Drained
from sbench.cluster.report import RunReport, uncollected_text
from sbench.cluster.stagerun import AgentRef, StageRun, run_agent_stage
from sbench.cluster.stageverdict import StageOutages, apply_verdict
from sbench.cluster.taskstages import (
    TaskStageContext,
    run_cleanup_shards,
    run_prepare_stage,
    run_validation_stage,
    run_verify,
)
from sbench.cluster.topology import local_agents
from sbench.config.models import Completion, Config, StageType
from sbench.config.stages import PhaseBarrier, StagePlan
from sbench.engine import leftovers
from sbench.engine.state import PreparedRecord
from sbench.engine.uncleaned import uncleaned_report, why_not_cleaned, with_known_puts
from sbench.errors import EXIT_OK, EXIT_RUN_FAILED, RunFailed
from sbench.layout.naming import new_run_id
from sbench.metrics.snapshot import Snapshot
from sbench.results.atomic import write_text_atomic
from sbench.results.perf_log import stage_label
from sbench.results.resultsdir import ResultsDir
from sbench.results.status import RunStatus, write_status
from sbench.results.summary import load_model_of
from sbench.ui.live import LiveProgress
from sbench.ui.tables import describe_load, first_error_lines, phase_table, print_report

#: Exit code of a second Ctrl-C (128 + SIGINT); an aborted run exits 1 like a failed one (as locally).
EXIT_SIGINT = 130
#: set by Ray's job supervisor in the environment of a submitted job's entrypoint
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
#: how long a live agent has to answer the ping before cleanup (a control-group call, normally ~1 ms)
PING_TIMEOUT_S = 5.0


class AbortSignals:
    """First SIGINT/SIGTERM: abort the run gracefully. Second: kill the run's actors and exit at once."""

    def __init__(self, on_hard_exit: Any, say: Any) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._on_hard_exit = on_hard_exit
        self._say = say
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals can only be handled in the main thread (e.g. when embedded)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def request(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            self._say(f"{name} again: exiting now")
            self._on_hard_exit()
            os._exit(EXIT_SIGINT)
        self.request(f"{name} received on the driver")
        self._say(f"{name}: aborting the run, stopping every agent (press Ctrl-C again to exit at once)")


class DistributedRun:
    """One distributed run from connection to the last result file."""

    def __init__(self, loaded: Any, options: Any, config_path: Path, stage_fn: StageFn | None = None) -> None:
        self.loaded = loaded
        self.config: Config = loaded.config
        self.options = options
        self.config_path = config_path
        self.stage_fn = stage_fn
        self.run_id = new_run_id()
        dist = self.config.distributed
        self.interval_s = float(self.config.perf_log.interval)
        self.stuck_intervals = dist.stuck_intervals if dist is not None else 10
        self.results: ResultsDir | None = None
        self.report: RunReport | None = None
        self.fleet: Fleet | None = None
        self.coordinator: Any = None
        self.cache: Any = None
        self.signals = AbortSignals(self._hard_exit, self._say)
        self.preflight: Any = None
        self.extra: dict[str, Any] = {"run_id": self.run_id, "start_skew_ms": {}, "events": []}
        self.ui: LiveProgress | None = None
        #: which Ray the run uses, shown in the header and kept in metadata.json
        self.connection = RayConnection("existing", "", 0)
        #: the driver's storage variables, handed to every agent and task in memory (names only on disk)
        self.env = ForwardedEnv.capture()
        self._current_task_stage: StagePlan | None = None
        #: what the last cleanup stage left behind (leftovers.report), None when no cleanup ran
        self.left_behind: dict[str, Any] | None = None
        self.plans: list[StagePlan] = []
        #: workload PUT objects the cleanup stages confirmed gone, and cleanup tasks that never returned
        self.put_gone = 0
        self.cleanup_lost_tasks = 0
        #: the prepared objects this run created, per entry (what stays when no cleanup runs)
        self.prepared: dict[int, PreparedRecord] = {}
        #: the running stage's outage watches (results.verdict), fed with the intervals the perf logs get
        self.outages = StageOutages()

    # -- output --

    def _say(self, text: str) -> None:
        if self.ui is not None:
            self.ui.log.print(text)
        else:
            print(text, flush=True)

    # -- life cycle --

    def execute(self) -> int:
        plans = self.plans = self._plans()
        self.results = ResultsDir.create(
            self.options.results_dir or _job_results_dir(self.config_path),
            self.config_path,
            config_text=self.loaded.source_text,
            distributed=True,
            run_id=self.run_id,
            load_model=load_model_of(self.config),
        )
        self.ui = LiveProgress(self.results.console)
        load = describe_load(load_model_of(self.config))
        self._say(f"sbench run {self.config_path} (run id {self.run_id}, {load})")
        self._say(f"Ray: {self.connection.describe()}")
        self.extra["ray"] = self.connection.as_dict()
        for warning in self.loaded.warnings:
            self.ui.log.record(f"warning: {warning}")
        if getattr(self.options, "op_log", None) is not None:
            note = f"--op-log {self.options.op_log}: op-log capture is not built yet; no op-log is written"
            self.extra["notes"] = [note]
            self._say(f"note: {note}")
        self.signals.install()
        status, reason = RunStatus.FAILURE, ""
        try:
            status, reason = self._run(plans)
        except RunFailed as exc:
            status, reason = RunStatus.FAILURE, str(exc)
            self._say(f"run failed: {exc}")
        finally:
            if self.signals.event.is_set():
                status, reason = RunStatus.ABORTED, self.signals.reason
            self.ui.close()
            self._collect_events()
            self._teardown()
            status, reason = self._finalize(status, reason)
            self._final_report(status, reason)
            self.results.close()
            # only now: a second Ctrl-C during teardown or while files are written still leaves STATUS.txt
            self.signals.restore()
        return EXIT_OK if status is RunStatus.SUCCESS else EXIT_RUN_FAILED

    def _plans(self) -> list[StagePlan]:
        """The stages with the CLI flags applied; a preflight first when the plan has none (as locally)."""
        plans = list(self.options.stages(self.loaded))
        if plans and not any(p.type is StageType.VALIDATION for p in plans):
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

    def _run(self, plans: list[StagePlan]) -> tuple[RunStatus, str]:
        assert self.results is not None
        dist = self.config.distributed
        self.coordinator = create_coordinator(self.run_id, self.interval_s, self.stuck_intervals)
        db = default_db_path(self.results.path, dist.kv_cache_dir if dist is not None else None)
        self.cache = create_metadata_cache(db, self.run_id)
        self.fleet = start_fleet(
            self.config,
            self.run_id,
            self.coordinator,
            interval_s=self.interval_s,
            stage_fn=self.stage_fn,
            cache=self.cache,
            env=self.env,
        )
        agents = self.fleet.agents
        self.results.metadata.agents = [a.agent_id for a in agents]
        self.extra["forwarded_env"] = self.env.names  # names only, never values
        self.extra["clock_offsets_ms"] = dict(self.fleet.clock_offsets_ms)
        self.results.save_metadata()
        nodes = sorted({a.node_id for a in agents})
        self._say(
            f"agents: {len(agents)} on {len(nodes)} Ray nodes "
            f"({', '.join(f'{a.agent_id}@{a.node_ip}' for a in agents)}); results in {self.results.path}"
        )
        run_start_ms = int(time.time() * 1000)
        self.report = RunReport(self.results, [(a.agent_id, a.node_ip) for a in agents], run_start_ms)
        if getattr(self.options, "verify", False):
            ok, lines = run_verify(self._task_context(agents))
            for line in lines:
                self._say(line)
            if ok:
                return RunStatus.SUCCESS, ""
            return RunStatus.FAILURE, "prepared objects missing or unreadable"
        excluded: dict[str, str] = {}
        status, reason = RunStatus.SUCCESS, ""
        for plan in plans:
            if self.signals.event.is_set():
                break
            if status is not RunStatus.SUCCESS and plan.type is not StageType.CLEANUP:
                self._say(f"== stage {plan.name} skipped (an earlier stage failed)")
                continue
            participants = [a for a in agents if a.agent_id not in excluded]
            for agent_id, why in excluded.items():
                self.report.excluded(agent_id, f"sat out stage {plan.name!r}: {why}")
            if not participants:
                return RunStatus.FAILURE, f"no agent left to run stage {plan.name!r}"
            self._say(
                f"== stage {plan.index}/{len(plans)}: {plan.name} ({plan.type.value}) on {len(participants)} "
                f"agents, {plan.barrier.type.value} barrier"
            )
            assert self.ui is not None
            self.ui.stage_started(plan.name, plan.type.value, _expected_s(plan, self.config))
            run = self._run_stage(plan, participants)
            apply_verdict(run, self.config.error_handling, self.outages)
            self.ui.stage_ended(
                plan.name,
                run.status.value,
                self._failure_reason(run) if run.failed_agents or run.timed_out or run.verdict else "",
                run.elapsed_s,
            )
            merged = self.report.stage_done(run, optional=plan.optional)
            for agent_id, window in run.lost.items():
                self._say(f"[{plan.name}] {agent_id}: {uncollected_text(window)}")
            if run.start_skew_ms is not None:
                self.extra["start_skew_ms"][plan.name] = run.start_skew_ms
            self._say(self._stage_line(run))
            for line in first_error_lines(merged):
                self._say(line)
            if run.aborted or self.signals.event.is_set():
                break
            if plan.type is StageType.CLEANUP and (self.left_behind or {}).get("fails_run"):
                # objects left behind fail the run, even from an optional cleanup stage
                if status is RunStatus.SUCCESS:
                    status, reason = RunStatus.FAILURE, f"stage {plan.name!r}: " + leftovers.summary(
                        leftovers.from_report(self.left_behind)
                    )
                continue
            if run.status is BarrierStatus.FAILED:
                why = self._failure_reason(run)
                if plan.optional:
                    self._say(f"optional stage {plan.name!r} failed ({why}); the run goes on")
                    continue
                if status is RunStatus.SUCCESS:
                    status, reason = RunStatus.FAILURE, why
                if plan.type is StageType.VALIDATION:
                    break  # nothing touches storage after a failed preflight
                continue
            excluded.update(ray.get(self.coordinator.excluded.remote()))
            if run.status is BarrierStatus.DEGRADED and plan.barrier.type.value == "majority":
                for agent_id in run.failed_agents:
                    excluded.setdefault(agent_id, f"failed stage {plan.name!r} (majority barrier)")
        return status, reason

    @staticmethod
    def _failure_reason(run: StageRun) -> str:
        plan = run.plan
        if run.verdict:
            return f"stage {plan.name!r} failed: {run.verdict}"
        failed = run.failed_agents or sorted(run.reasons)
        detail = "; ".join(f"{a}: {run.reasons.get(a, 'failed')}" for a in failed)
        return f"stage {plan.name!r} failed its {plan.barrier.type.value} barrier: {detail}"

    def _stage_line(self, run: StageRun) -> str:
        snap = Snapshot.merge_all(r.snapshot for r in run.results.values())
        ops = snap.total_ops()
        skew = f", start skew {run.start_skew_ms} ms" if run.start_skew_ms is not None else ""
        stuck = f", STUCK: {', '.join(sorted(run.stuck))}" if run.stuck else ""
        return (
            f"stage {run.plan.name}: {run.status.value.upper()} in {run.elapsed_s:.1f} s, {ops:,} ops, "
            f"{snap.errors_total():,} errors{skew}{stuck}"
        )

    # -- stages --

    def _task_context(self, participants: list[AgentRef]) -> TaskStageContext:
        assert self.fleet is not None
        cpus = int(ray.cluster_resources().get("CPU", 2))
        return TaskStageContext(
            config=self.config,
            agents=participants,
            agent_configs=self.fleet.configs,
            coordinator=self.coordinator,
            cache=self.cache,
            abort_requested=self.signals.event,
            abort_reason=lambda: self.signals.reason or "aborted",
            interval_s=self.interval_s,
            max_in_flight=max(2, min(64, 2 * cpus)),
            on_interval=self._task_interval,
            say=self._say,
            cleanup_only=bool(getattr(self.options, "cleanup_only", False)),
            env=self.env,
        )

    def _run_stage(self, plan: StagePlan, participants: list[AgentRef]) -> StageRun:
        self._current_task_stage = plan
        self.outages = StageOutages()
        if plan.type is StageType.VALIDATION:
            run, results = run_validation_stage(self._task_context(participants), plan)
            merged = results[0].merge(*results[1:])
            self.preflight = merged.model_dump(mode="json")
            assert self.results is not None
            path = self.results.file("preflight.json")
            self.results.writes.attempt(path, partial(write_text_atomic, path, merged.to_json() + "\n"))
            if not merged.passed or merged.warnings:
                assert self.ui is not None
                merged.render(self.ui.console, show_success=False)
            return run
        if plan.type is StageType.PREPARE:
            run, records = run_prepare_stage(self._task_context(participants), plan)
            for per_agent in records.values():
                self.prepared.update(per_agent)
            ray.get([a.actor.set_prepared.remote(records.get(a.agent_id, {})) for a in participants])
            delay = float(self.config.prepare.post_prepare_delay) if self.config.prepare else 0.0
            if delay > 0 and any(r.snapshot.total_ops() for r in run.results.values()):
                self.signals.event.wait(delay)
            return run
        if plan.type is StageType.CLEANUP:
            return self._cleanup(plan, participants)
        return self._agent_stage(plan, participants)

    def _agent_stage(self, plan: StagePlan, participants: list[AgentRef]) -> StageRun:
        totals = {a.agent_id: plan.expected_tasks for a in participants} if plan.expected_tasks else None
        run = run_agent_stage(
            self.coordinator,
            participants,
            plan,
            on_poll=lambda drained: self._agent_poll(plan, drained),
            abort_requested=self.signals.event,
            abort_reason=lambda: self.signals.reason or "aborted",
            objects_total=totals,
        )
        for note in run.notes:
            self._say(f"   note: {note}")
        shared = [r.extra["shared_listings"] for r in run.results.values() if "shared_listings" in r.extra]
        if any(s["produced"] or s["fetched"] for s in shared):
            produced = sum(s["produced"] for s in shared)
            fetched = sum(s["fetched"] for s in shared)
            self._say(f"shared listings: {produced} LIST(s) done once, read back by {fetched} agent(s)")
        ray.get(self.cache.drop_listings.remote(listing_scope(self.run_id, plan.index)))
        return run

    def _cleanup(self, plan: StagePlan, participants: list[AgentRef]) -> StageRun:
        """Every agent's prepared objects (exact created sets) and workload PUT objects, by shard tasks that
        only live agents answer for: a dead agent's objects are cleaned up by the survivors."""
        assert self.fleet is not None
        live = _alive(participants) or participants
        answered = {a.agent_id for a in live}
        for agent in self.fleet.agents:
            if agent.agent_id not in answered:
                who = agent.agent_id
                self._say(f"cleanup: {who} is out (dead or excluded); the live agents clean up its objects")
        stage = run_cleanup_shards(
            self._task_context(live), plan, owners=list(self.fleet.agents), run_id=self.run_id
        )
        for note in stage.notes:
            self._say(f"cleanup: {note}")
        aborted = stage.run.aborted or self.signals.event.is_set()
        self.left_behind = leftovers.report(stage.mode, stage.leftovers, aborted=aborted)
        self.put_gone += stage.put_gone
        self.cleanup_lost_tasks += stage.lost_jobs
        for line in leftovers.lines(self.left_behind):
            self._say(f"cleanup: {line}")
        return stage.run

    # -- live output --

    def _label(self, plan: StagePlan) -> str:
        """perf-log `stage`: sai3 labels default stages Prepare/Workload/Cleanup, explicit ones by name."""
        dist = self.config.distributed
        explicit = dist is not None and bool(dist.stages)
        return stage_label(plan.type.value, plan.name if explicit or plan.type is StageType.CUSTOM else None)

    def _agent_poll(self, plan: StagePlan, drained: Drained) -> None:
        assert self.report is not None and self.ui is not None
        self.report.write_intervals(self._label(plan), drained.aggregate, drained.per_agent)
        self.outages.add(drained.aggregate, drained.per_agent)
        for event in drained.events:
            self._say(f"[{plan.name}] {event.agent_id}: {event.kind}: {event.message}")
        for snap in drained.aggregate:
            self.ui.interval(snap)

    def _task_interval(self, aggregate: Snapshot, per_agent: dict[str, Snapshot]) -> None:
        assert self.report is not None and self.ui is not None
        stage = self._current_task_stage
        assert stage is not None
        per = {a: [s] for a, s in per_agent.items()}
        self.report.write_intervals(self._label(stage), [aggregate], per)
        self.outages.add([aggregate], per)
        self.ui.interval(aggregate)

    # -- teardown and results --

    def _collect_events(self) -> None:
        if self.coordinator is None:
            return
        try:
            events = ray.get(self.coordinator.events.remote(), timeout=5)
        except Exception as exc:  # the coordinator died with its node: the events stay in console_log.txt
            self._say(f"could not fetch the coordinator's events: {exc}")
            return
        self.extra["events"] = [
            {"at_ms": e.at_ms, "agent_id": e.agent_id, "kind": e.kind, "message": e.message} for e in events
        ]

    def _teardown(self) -> None:
        """Kill every actor of the run and free its placement group (also after a failure)."""
        if self.cache is not None:
            with contextlib.suppress(Exception):
                self.extra["metadata_cache"] = ray.get(self.cache.stats.remote(), timeout=30)
                ray.get(self.cache.close.remote(), timeout=10)
        if self.fleet is not None:
            self.fleet.shutdown()
        for actor in (self.coordinator, self.cache):
            if actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)

    def _hard_exit(self) -> None:
        """Second Ctrl-C: STATUS.txt ABORTED, best-effort kill of the actors (non-blocking), then the caller
        exits."""
        self._last_words()
        with contextlib.suppress(Exception):
            if self.fleet is not None:
                for actor in self.fleet.actors:
                    ray.kill(actor, no_restart=True)
                self.fleet.placement.release()
            for actor in (self.coordinator, self.cache):
                if actor is not None:
                    ray.kill(actor, no_restart=True)

    def _last_words(self) -> None:
        """STATUS.txt ABORTED with what is known, before a second Ctrl-C exits (one small file)."""
        if self.results is None:
            return
        first = self.signals.reason or "interrupted"
        reason = f"{first}; interrupted again, exited at once (other result files may be incomplete)"
        try:
            if self.report is not None:
                self.report.write_aborted_status(reason)
            else:  # the agents never started
                write_status(self.results.status_path, RunStatus.ABORTED, [], total_operations=0,
                             total_errors=0, reason=reason)
        except OSError as exc:  # exiting anyway: say why the file is missing
            print(f"sbench: could not write STATUS.txt before exiting: {exc}", file=sys.stderr)

    def _results_of(self, *types: StageType) -> list[Any]:
        """Every agent's result of every stage of these types so far."""
        assert self.report is not None
        return [r for run in self.report.stage_runs if run.plan.type in types for r in run.results.values()]

    def _uncleaned(self, status: RunStatus, reason: str) -> dict[str, Any] | None:
        """What stays on the storage when no cleanup stage reported on it."""
        assert self.report is not None
        why = why_not_cleaned(any(p.type is StageType.CLEANUP for p in self.plans), status.value, reason)
        work = self._results_of(*_WORKLOAD_TYPES)
        return uncleaned_report(
            self.config,
            self.run_id,
            self.prepared.values(),
            Snapshot.merge_all(r.snapshot for r in self._results_of(StageType.PREPARE)),
            Snapshot.merge_all(r.snapshot for r in work),
            deleted_in_workload=sum(int(r.extra.get("deleted", 0)) for r in work),
            why=why,
        )

    def _final_report(self, status: RunStatus, reason: str) -> None:
        """The closing tables (main prepare and workload stages, merged over agents) and status lines."""
        assert self.ui is not None and self.results is not None
        tables, lines = [], []
        for run in self.report.stage_runs if self.report is not None else []:
            snap = Snapshot.merge_all(r.snapshot for r in run.results.values())
            if snap.total_ops() or snap.errors_total():
                wall = max((r.elapsed_s for r in run.results.values()), default=0.0)
                title = f"{run.plan.name} ({run.plan.type.value}, {len(run.results)} agents, {wall:.1f} s)"
                tables.append(phase_table(title, snap, wall, open_loop=self.config.open_loop))
        for track in self.report.tracks.values() if self.report is not None else []:
            stuck = f" [STUCK: {track.stuck_reason}]" if track.stuck_reason else ""
            why = f" ({track.reason})" if track.reason else ""
            lines.append(f"{track.agent_id}@{track.node_ip}: {track.state.value}{why}{stuck}")
        lines.extend(leftovers.lines(self.left_behind))
        unfinished = self.report.unfinished if self.report is not None else 0
        if unfinished:
            lines.append(
                f"unfinished ops (in flight when their stage ended; neither done nor failed): {unfinished:,}"
            )
        lines.append(f"STATUS: {status.value}" + (f" ({reason})" if reason else ""))
        lines.append(f"results: {self.results.path}")
        print_report(self.ui.log, self.ui.console, tables, lines)

    def _finalize(self, status: RunStatus, reason: str) -> tuple[RunStatus, str]:
        """Write every end-of-run file; the final verdict (an unwritable results file fails the run)."""
        assert self.results is not None
        if self.report is None:
            self.report = RunReport(self.results, [], int(time.time() * 1000))
        if self.left_behind is None:
            self.left_behind = self._uncleaned(status, reason)
        else:
            workload = Snapshot.merge_all(r.snapshot for r in self._results_of(*_WORKLOAD_TYPES))
            in_flight = sum(r.snapshot.unfinished_ops for r in self._results_of(StageType.CLEANUP))
            self.left_behind = with_known_puts(
                self.left_behind,
                self.config,
                self.run_id,
                workload,
                put_gone=self.put_gone,
                deletes_in_flight=None if self.cleanup_lost_tasks else in_flight,
            )
        return self.report.finalize(
            status,
            reason,
            load_model=load_model_of(self.config),
            warnings=list(self.loaded.warnings),
            preflight=self.preflight,
            extra=self.extra,
            left_behind=self.left_behind,
            phases=("workload", "prepare") if self.config.has_prepare else ("workload",),
        )


_WORKLOAD_TYPES = (StageType.EXECUTE, StageType.HYBRID)


def _job_results_dir(config_path: Path) -> Path | None:
    """Under `ray job submit` the working directory is a temporary copy that Ray garbage-collects, so the
    default results directory goes to ~/sbench-results/ on the driver's node instead (None elsewhere)."""
    if RAY_JOB_ENV not in os.environ:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.home() / "sbench-results" / f"sbench-{stamp}-{config_path.stem or 'run'}-{os.getpid()}"


def _expected_s(plan: StagePlan, config: Config) -> float | None:
    if plan.type is StageType.EXECUTE:
        return plan.duration or config.duration
    if plan.type is StageType.HYBRID:
        return plan.max_duration
    return None


def _alive(agents: list[AgentRef]) -> list[AgentRef]:
    """The agents whose actor answers a ping within PING_TIMEOUT_S (cleanup is never handed to a dead one)."""
    refs = {a.actor.ping.remote(): a for a in agents}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=PING_TIMEOUT_S)
    answered: set[str] = set()
    for ref in ready:
        try:
            ray.get(ref)
        except (RayActorError, ActorUnavailableError):
            continue
        answered.add(refs[ref].agent_id)
    return [a for a in agents if a.agent_id in answered]


def run_distributed(loaded: Any, options: Any, config_path: Path, stage_fn: StageFn | None = None) -> int:
    """Run a config with a `distributed` block (or under RAY_ADDRESS) on Ray; returns the exit code."""
    if loaded.config.distributed is None:
        # `processes: N`, or RAY_ADDRESS without a `distributed` block: local agents on the driver's node.
        loaded = dataclasses.replace(loaded, config=local_agents(loaded.config))
    with ray_connection(getattr(options, "ray_address", None)) as connection:
        run = DistributedRun(loaded, options, config_path, stage_fn)
        run.connection = connection
        return run.execute()
