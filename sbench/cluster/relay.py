"""Per-node report relays: the agents of a node hand their interval reports to one relay on their node, which
forwards what it collected as one `report_batch` call to the coordinator.

Why: the coordinator's cost is mostly Ray's per-call work, not the merge (bench/coordinator_scale.py: 1,000
report calls a second take ~0.7 of its core, and an interval's last report waits behind the 999 before it).
A relay batches, it does not merge: the coordinator takes every report of a batch through the same code as a
direct one, so per-agent progress, stuck detection and every figure stay what they are.

Failure: an agent (`ReportLink`) numbers its reports within a stage and keeps each until it is answered. If
a relay call fails (the relay died, with or without having handed the report over) or stays unanswered for
RELAY_ANSWER_TIMEOUT_S (the relay hangs), the agent stops using the relay and sends every unanswered report
again, directly; the coordinator ignores a number it already took (`run.monitor.SeqWindow`), so no report is
lost or counted twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from sbench.run.monitor import AgentReport

#: How long a relay holds the first report of a batch for the others of its node (a batch goes at once when
#: every agent of the node has sent one): the added delay of an answer, far under the 2 s stop bound.
RELAY_FLUSH_S = 0.1
#: Direct report calls a second above which agents report through a relay per node: the coordinator spends
#: ~0.7 ms per call (bench/coordinator_scale.py, 0.7 core at 1,000 calls a second), so at this rate its
#: calls alone cost about a fifth of a core.
RELAY_ABOVE_CALLS_PER_S = 250
#: A relay call unanswered this long counts as failed (a hung relay, not one that is merely behind): well
#: above a batch's wait plus a loaded coordinator's answer, and under `agent.FINAL_REPORT_TIMEOUT_S`, so a
#: stage's last report still reaches the coordinator directly before the agent gives up on it.
RELAY_ANSWER_TIMEOUT_S = 5.0


def wants_relays(calls_per_s: float, agents: int, nodes: int) -> bool:
    """The one rule for using relays: the fleet's direct calls would pass RELAY_ABOVE_CALLS_PER_S, and nodes
    hold several agents each (with one agent per node a relay saves no call)."""
    return calls_per_s > RELAY_ABOVE_CALLS_PER_S and agents > nodes


class ReportRelay:
    """Wrapped with `ray.remote` by `cluster.actors.create_relay`; async, so the reports of every agent of
    its node wait on one event loop while a batch forms."""

    def __init__(self, coordinator: Any, agents: int) -> None:
        self.coordinator = coordinator
        #: agents on this node: a batch holding this many reports goes at once
        self.agents = max(1, agents)
        self._batch: list[tuple[AgentReport, asyncio.Future[str]]] = []
        self._timer: asyncio.TimerHandle | None = None
        #: batches on their way to the coordinator (a task nobody holds may be collected mid-flight)
        self._sending: set[asyncio.Task[None]] = set()
        self._forwarded = [0, 0]

    async def forwarded(self) -> tuple[int, int]:
        """(reports, batches) handed to the coordinator so far: the batching at work (tests, benches)."""
        return self._forwarded[0], self._forwarded[1]

    async def report(self, report: AgentReport) -> str:
        """Queue `report` for the node's next batch; returns the coordinator's answer for it."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()
        self._batch.append((report, answer))
        if len(self._batch) >= self.agents:
            self._send()
        elif self._timer is None:
            self._timer = loop.call_later(RELAY_FLUSH_S, self._send)
        return await answer

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._batch = self._batch, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._forward(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _forward(self, batch: list[tuple[AgentReport, asyncio.Future[str]]]) -> None:
        try:
            answers = await self.coordinator.report_batch.remote([report for report, _ in batch])
        except Exception as exc:  # each agent sees the failure and sends its report again, directly
            for _, answer in batch:
                if not answer.done():  # done: the agent's call was cancelled, nobody waits for it
                    answer.set_exception(exc)
            return
        self._forwarded[0] += len(batch)
        self._forwarded[1] += 1
        for (_, answer), command in zip(batch, answers, strict=True):
            if not answer.done():
                answer.set_result(command)


class ReportLink:
    """An agent's way to the coordinator: through its node's relay while that answers, else directly (see
    the module docstring). Not thread-safe: the agent's stage thread alone uses it."""

    def __init__(self, coordinator: Any, relay: Any = None) -> None:
        self.coordinator = coordinator
        self.relay = relay
        self._seq = 0
        #: sent and not yet answered: (report, its call, whether the call went through the relay)
        self._unanswered: list[tuple[AgentReport, Any, bool]] = []
        #: when the relay counts as hung (monotonic s): RELAY_ANSWER_TIMEOUT_S after the first call it owes or
        #: its last answer, None while it owes none
        self._relay_deadline: float | None = None

    def begin_stage(self) -> None:
        """Numbers start again at 1 (the coordinator keeps them per stage); nothing of the last stage is
        owed."""
        self._seq = 0
        self._unanswered = []
        self._relay_deadline = None

    @property
    def waiting(self) -> bool:
        """A report is still unanswered (the coordinator, or the relay, is behind)."""
        return bool(self._unanswered)

    def send(self, report: AgentReport) -> None:
        self._seq += 1
        report.seq = self._seq
        self._call(report)

    def _call(self, report: AgentReport) -> None:
        via_relay = self.relay is not None
        target = self.relay if via_relay else self.coordinator
        self._unanswered.append((report, target.report.remote(report), via_relay))
        if via_relay and self._relay_deadline is None:
            self._relay_deadline = time.monotonic() + RELAY_ANSWER_TIMEOUT_S

    def answers(self, timeout: float = 0.0) -> tuple[list[str], bool]:
        """The coordinator's answers that came in within `timeout`, in order, and whether a direct call
        failed (the coordinator is gone). A failed relay call, or one unanswered past its deadline, drops the
        relay: every report still owed is sent again directly (the coordinator ignores the ones it already
        took)."""
        if not self._unanswered:
            return [], False
        refs = [ref for _, ref, _ in self._unanswered]
        ready = set(ray.wait(refs, num_returns=len(refs), timeout=timeout)[0])
        commands: list[str] = []
        failed = relay_failed = False
        still: list[tuple[AgentReport, Any, bool]] = []
        for report, ref, via_relay in self._unanswered:
            if ref not in ready:
                still.append((report, ref, via_relay))
                continue
            try:
                commands.append(ray.get(ref))
            except Exception:  # the relay died (resent below) or the coordinator is gone
                if via_relay:
                    relay_failed = True
                    still.append((report, ref, via_relay))
                else:
                    failed = True
        self._unanswered = still
        if not any(via_relay for _, _, via_relay in still):
            self._relay_deadline = None
        elif self._relay_deadline is not None and time.monotonic() >= self._relay_deadline:
            relay_failed = True  # a hung relay: the reports it holds go directly
        elif commands:
            self._relay_deadline = time.monotonic() + RELAY_ANSWER_TIMEOUT_S  # it answers: not hung
        if relay_failed:
            self.relay = None
            self._relay_deadline = None
            owed = sorted((report for report, _, via_relay in still if via_relay), key=lambda r: r.seq)
            self._unanswered = [entry for entry in still if not entry[2]]
            for report in owed:
                self._call(report)
        return commands, failed

    def confirm(self, timeout_s: float) -> bool:
        """Wait (bounded) until every report sent is answered; False if one is not (timed out, or the
        coordinator is gone)."""
        deadline = time.monotonic() + timeout_s
        while self._unanswered:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._relay_deadline is not None:  # wake up in time to go around a hung relay
                left = min(left, max(0.0, self._relay_deadline - time.monotonic()) + 0.01)
            _, failed = self.answers(timeout=left)
            if failed:
                return False
        return True
