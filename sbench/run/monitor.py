"""What the coordinator knows about one running stage: barrier, live stats, progress, stuck flags, liveness.

Pure bookkeeping with no Ray in it, so it is tested directly; the coordinator actor feeds it reports and clock
ticks and carries out what it asks for (liveness queries, abort of stragglers).

Live stats: an agent hands over its measurements in parts, several per perf-log interval (every
`agent.FLUSH_S`), so a killed agent loses only its last part, not a whole interval; each report says which
of its parts end one of the agent's intervals. The monitor merges an agent's parts into that agent's
interval (the final report of a stage, the agent's death and the end of the stage close what is open), and
on each tick merges the agents' intervals into one aggregate interval (histograms decoded and added, never
averaged percentiles), keeping each agent's own intervals for its per-agent perf log. The driver drains both.
For a dead agent it keeps the window whose ops could not be collected (from the end of its last part to the
moment its death was seen), for STATUS.txt and summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sbench.metrics.counters import ProgressCounters
from sbench.metrics.progress import PhaseProgress, ProgressTracker
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator
from sbench.plan.stages import PhaseBarrier
from sbench.run.barrier import AgentStageState, BarrierStatus, StageBarrier, silence_limit_s
from sbench.status import StageStatus


@dataclass(slots=True)
class AgentReport:
    """One agent -> coordinator call per part of an interval (a few per interval, never per op)."""

    agent_id: str
    stage_index: int
    #: the parts the agent measured since its last report, in order
    snapshots: list[Snapshot]
    #: wall-clock ms when the agent actually started the stage (0 while it waits for the start time)
    started_ms: int = 0
    sent_ms: int = 0
    #: per snapshot, whether it ends one of the agent's intervals (None: every snapshot is a whole interval)
    ends: list[bool] | None = None
    #: the agent's last report of the stage: what it left open is its last (short) interval
    final: bool = False
    #: the agent's number for this report within the stage (1, 2, ...; 0: unnumbered, always taken): a report
    #: sent again after its relay died (cluster.relay) is recognised and taken once
    seq: int = 0


class SeqWindow:
    """The sequence numbers taken from one agent: every number up to `floor`, and the few above it that
    came early. Reports normally arrive in order, so this stays a single integer."""

    __slots__ = ("above", "floor")

    def __init__(self) -> None:
        self.floor = 0
        self.above: set[int] = set()

    def take(self, seq: int) -> bool:
        """True the first time `seq` is seen, False for a report already taken."""
        if seq <= self.floor or seq in self.above:
            return False
        self.above.add(seq)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)
        return True


@dataclass(frozen=True, slots=True)
class StageEvent:
    """Something the user should see live and find in STATUS.txt."""

    at_ms: int
    agent_id: str
    kind: str  # stuck | unstuck | failed | aborted | disconnected | straggler | node_removed | died
    message: str


@dataclass(slots=True)
class AgentView:
    """Per-agent live state of the stage."""

    agent_id: str
    state: AgentStageState = AgentStageState.RUNNING
    reason: str = ""
    started_ms: int = 0
    last_contact_s: float = 0.0
    progress: PhaseProgress = field(default_factory=PhaseProgress)
    stuck_reason: str = ""
    #: queries in flight or failed so far for the current silence
    queries_failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "state": self.state.value,
            "reason": self.reason,
            "started_ms": self.started_ms,
            "stuck_reason": self.stuck_reason,
            **self.progress.to_dict(),
        }


@dataclass(slots=True)
class Drained:
    """Intervals and events since the last drain, plus the current view (what the driver polls)."""

    status: BarrierStatus
    aggregate: list[Snapshot]
    per_agent: dict[str, list[Snapshot]]
    events: list[StageEvent]
    agents: dict[str, dict[str, Any]]
    start_skew_ms: int | None


#: failure kinds that mean the agent's process is gone (its unsent measurements with it)
DEATHS = frozenset({"died", "node_removed"})


def merge_parts(agent_id: str, parts: list[Snapshot]) -> Snapshot:
    """One agent's parts as one interval: counts and histograms summed exactly; the agent's CPU gauge is the
    parts' time-weighted mean (a merge alone would keep only the last part's). A single part is the interval
    as it came (no decode and re-encode: a thousand agents send one each per second)."""
    if len(parts) == 1:
        return parts[0]
    merged = Snapshot.merge_all(parts)
    if len(parts) > 1 and agent_id in merged.cpu:
        weighted = [(p.cpu[agent_id], max(1, p.end_ms - p.start_ms)) for p in parts if agent_id in p.cpu]
        total = sum(w for _, w in weighted)
        merged.cpu[agent_id] = tuple(  # type: ignore[assignment]
            sum(v[i] * w for v, w in weighted) / total for i in range(3)
        )
    return merged


class StageMonitor:
    """Barrier + live stats + stuck detection + liveness bookkeeping for one stage."""

    def __init__(
        self,
        stage_index: int,
        stage_name: str,
        barrier: PhaseBarrier,
        participants: list[str],
        *,
        interval_s: float,
        stuck_intervals: int,
        watch_progress: bool,
        now_s: float,
    ) -> None:
        self.stage_index = stage_index
        self.stage_name = stage_name
        self.spec = barrier
        self.barrier = StageBarrier(barrier, tuple(participants))
        self.interval_s = interval_s
        self.watch_progress = watch_progress
        self.views = {a: AgentView(a, last_contact_s=now_s) for a in participants}
        self._trackers = {a: ProgressTracker(stuck_intervals, source=a) for a in participants}
        self._last_counters: dict[str, ProgressCounters] = {}
        self._last_report_s = dict.fromkeys(participants, now_s)
        self._seqs = {a: SeqWindow() for a in participants}
        #: interval number -> (first arrival, running sum of the snapshots of that interval so far): a report
        #: is added as it arrives, so once the last agent's is in, only the encode is left
        self._slots: dict[int, tuple[float, SnapshotAccumulator]] = {}
        self._received = dict.fromkeys(participants, 0)
        #: interval number -> how many agents sent it (all of them: it is merged at once, not at the tick)
        self._senders: dict[int, int] = {}
        self._next_slot = 0
        self._agent_out: dict[str, list[Snapshot]] = {a: [] for a in participants}
        #: parts of each agent's current interval, and the end (epoch ms) of the last part received
        self._open: dict[str, list[Snapshot]] = {a: [] for a in participants}
        self._last_part_ms: dict[str, int] = {}
        #: agent -> the window whose ops died with it (from_ms, to_ms, seconds)
        self.lost: dict[str, dict[str, Any]] = {}
        self._aggregate_out: list[Snapshot] = []
        self._events: list[StageEvent] = []
        self.all_events: list[StageEvent] = []

    # -- inputs --

    def on_report(self, report: AgentReport, now_s: float, now_ms: int) -> None:
        view = self.views.get(report.agent_id)
        if view is None:
            return
        if report.seq and not self._seqs[report.agent_id].take(report.seq):
            return  # sent again after its relay died, but the relay had already handed it over
        view.last_contact_s = now_s
        view.queries_failed = 0
        if report.started_ms and not view.started_ms:
            view.started_ms = report.started_ms
        ends = report.ends if report.ends is not None else [True] * len(report.snapshots)
        for snap, end in zip(report.snapshots, ends, strict=True):
            self._open[report.agent_id].append(snap)
            self._last_part_ms[report.agent_id] = max(snap.end_ms, self._last_part_ms.get(report.agent_id, 0))
            if end:
                self._close(report.agent_id, now_s, now_ms)
        if report.final:
            self._close(report.agent_id, now_s, now_ms)
        if report.snapshots:
            self._last_report_s[report.agent_id] = now_s

    def _close(self, agent_id: str, now_s: float, now_ms: int) -> None:
        """The agent's open parts become one interval of its own and a share of an aggregate slot."""
        parts = self._open[agent_id]
        if not parts:
            return
        self._open[agent_id] = []
        snap = merge_parts(agent_id, parts)
        self._agent_out[agent_id].append(snap)
        slot = self._received[agent_id]
        self._received[agent_id] = slot + 1
        if slot >= self._next_slot:
            self._slot(slot, now_s).add(snap)
            self._senders[slot] = self._senders.get(slot, 0) + 1
        else:  # its slot was already written without it (it was late): fold into the oldest open one
            self._slot(self._next_slot, now_s).add(snap)
        self._update_progress(agent_id, snap, now_ms)
        if self._senders.get(self._next_slot) == len(self.views):  # every agent sent it: no need to wait
            self._emit_slots(now_s, final=False)

    def _slot(self, slot: int, now_s: float) -> SnapshotAccumulator:
        entry = self._slots.get(slot)
        if entry is None:
            entry = self._slots[slot] = (now_s, SnapshotAccumulator())
        return entry[1]

    def on_contact(self, agent_id: str, now_s: float) -> None:
        """A liveness query answered: the agent is alive even if its reports are late."""
        view = self.views.get(agent_id)
        if view is not None:
            view.last_contact_s = now_s
            view.queries_failed = 0

    def arrive(
        self,
        agent_id: str,
        ok: bool,
        reason: str,
        now_s: float,
        now_ms: int,
        status: StageStatus = StageStatus.FAILED,
    ) -> None:
        """The agent finished the stage (ok) or failed it (reason; `status` aborted/timeout/failed)."""
        view = self.views.get(agent_id)
        if view is None:
            return
        view.last_contact_s = now_s
        if ok:
            self.barrier.arrive(agent_id, now_s)
        else:
            kind = "aborted" if status is StageStatus.ABORTED else "failed"
            self.fail(agent_id, kind, reason, now_ms, now_s)
        self._sync_state(agent_id)

    def fail(self, agent_id: str, kind: str, reason: str, now_ms: int, now_s: float) -> None:
        if kind in DEATHS and agent_id in self.views:
            self._died(agent_id, now_s, now_ms)
        if agent_id not in self.views or self.barrier.states[agent_id] is AgentStageState.FAILED:
            return
        if self.barrier.states[agent_id] is AgentStageState.READY and kind not in ("failed", "aborted"):
            return  # it finished the stage before it died or fell silent: the stage result stands
        self.barrier.fail(agent_id, reason)
        self._sync_state(agent_id)
        self._event(now_ms, agent_id, kind, reason)

    def _died(self, agent_id: str, now_s: float, now_ms: int) -> None:
        """Its process is gone: what it handed over is its last interval; what it measured after its last
        part (up to when the death was seen) is lost, and that window is kept for the report."""
        self._close(agent_id, now_s, now_ms)
        view = self.views[agent_id]
        if agent_id in self.lost or not view.started_ms or view.state is not AgentStageState.RUNNING:
            return
        since = max(self._last_part_ms.get(agent_id, 0), view.started_ms)
        until = max(now_ms, since)
        self.lost[agent_id] = {"from_ms": since, "to_ms": until, "seconds": round((until - since) / 1000, 3)}

    def _sync_state(self, agent_id: str) -> None:
        view = self.views[agent_id]
        view.state = self.barrier.states[agent_id]
        view.reason = self.barrier.reasons.get(agent_id, view.reason)

    def _event(self, at_ms: int, agent_id: str, kind: str, message: str) -> None:
        event = StageEvent(at_ms, agent_id, kind, message)
        self._events.append(event)
        self.all_events.append(event)

    def _update_progress(self, agent_id: str, snap: Snapshot, now_ms: int) -> None:
        counters = snap.progress.get(agent_id)
        if counters is not None:
            self._last_counters[agent_id] = counters
        view = self.views[agent_id]
        active = self.watch_progress and view.state is AgentStageState.RUNNING and bool(view.started_ms)
        was_stuck = view.progress.is_stuck
        view.progress = self._trackers[agent_id].update(snap, active=active, now_ms=now_ms)
        if view.progress.is_stuck and not was_stuck:
            view.stuck_reason = view.progress.stuck_reason
            self._event(now_ms, agent_id, "stuck", view.progress.stuck_reason)
        elif was_stuck and not view.progress.is_stuck and view.state is AgentStageState.RUNNING:
            self._event(now_ms, agent_id, "unstuck", "progress resumed")

    # -- clock --

    def tick(self, now_s: float, now_ms: int) -> list[str]:
        """One interval passed: merge the aggregate interval, count silent intervals as idle, and return the
        agents that have been silent past heartbeat_interval x missed_threshold (to be queried)."""
        self._emit_slots(now_s, final=False)
        to_query = []
        for agent_id, view in self.views.items():
            if view.state is not AgentStageState.RUNNING:
                continue
            if view.started_ms and now_s - self._last_report_s[agent_id] > 1.5 * self.interval_s:
                # No report for a whole interval: that interval made no progress.
                self._last_report_s[agent_id] = now_s - 0.5 * self.interval_s
                idle = Snapshot(start_ms=now_ms - int(self.interval_s * 1000), end_ms=now_ms)
                last = self._last_counters.get(agent_id)
                if last is not None:
                    idle.set_progress(agent_id, last)
                self._update_progress(agent_id, idle, now_ms)
            if now_s - view.last_contact_s > silence_limit_s(self.spec):
                to_query.append(agent_id)
        return to_query

    def status(self, now_s: float) -> BarrierStatus:
        before = self.barrier.released
        status = self.barrier.evaluate(now_s)
        if before is None and status is not BarrierStatus.WAITING:
            for agent_id in self.views:
                self._sync_state(agent_id)
                if self.barrier.states[agent_id] is AgentStageState.STRAGGLER:
                    self._event(int(now_s * 1000), agent_id, "straggler", self.barrier.reasons[agent_id])
        return status

    def stragglers(self) -> list[str]:
        return [a for a, s in self.barrier.states.items() if s is AgentStageState.STRAGGLER]

    def start_skew_ms(self) -> int | None:
        starts = [v.started_ms for v in self.views.values() if v.started_ms]
        return max(starts) - min(starts) if len(starts) >= 2 else (0 if starts else None)

    def stuck_flags(self) -> dict[str, str]:
        """Every agent flagged stuck during the stage, with the reason (kept even if it recovered)."""
        return {v.agent_id: v.stuck_reason for v in self.views.values() if v.stuck_reason}

    def stuck_at_end(self) -> dict[str, str]:
        """The agents still stuck when the stage ended (flagged and never made progress again): such a stage
        is not a success, whatever its barrier decided (results.verdict)."""
        return {
            v.agent_id: v.stuck_reason for v in self.views.values() if v.progress.is_stuck and v.stuck_reason
        }

    def drain(self, now_s: float) -> Drained:
        status = self.status(now_s)
        out = Drained(
            status=status,
            aggregate=self._aggregate_out,
            per_agent={a: snaps for a, snaps in self._agent_out.items() if snaps},
            events=self._events,
            agents={a: v.to_dict() for a, v in self.views.items()},
            start_skew_ms=self.start_skew_ms(),
        )
        self._aggregate_out = []
        self._agent_out = {a: [] for a in self._agent_out}
        self._events = []
        return out

    def _emit_slots(self, now_s: float, *, final: bool) -> None:
        """Aggregate interval k = the k-th interval of every agent (they start together and share the
        interval length, so these cover the same wall time). Interval k is written once every agent still
        running has sent it, or two intervals after its first part arrived (a late or lost agent must not
        hold the perf log back)."""
        while self._next_slot in self._slots:
            first_at, acc = self._slots[self._next_slot]
            waiting = [
                a
                for a, v in self.views.items()
                if v.state is AgentStageState.RUNNING and self._received[a] <= self._next_slot
            ]
            if waiting and not final and now_s - first_at < 2 * self.interval_s:
                return
            self._aggregate_out.append(acc.snapshot())
            del self._slots[self._next_slot]
            self._senders.pop(self._next_slot, None)
            self._next_slot += 1

    def flush(self, now_s: float, now_ms: int) -> None:
        """End of stage: every agent's open parts become its last interval, and every interval still open
        becomes an aggregate row, in order."""
        for agent_id in self._open:
            self._close(agent_id, now_s, now_ms)
        for slot in sorted(self._slots):
            self._aggregate_out.append(self._slots[slot][1].snapshot())
        self._slots.clear()
