"""The op-log of a Ray run: each agent captures into its own log on its node, shard tasks send their calls
to the agent they work for, and at the end the driver merges the agents' logs, streamed through Ray.

- Agent (`NodeLog`, held by the agent actor): an oplog.agentlog.AgentLog in a scratch directory on its
  node, installed in the actor's process, so every backend its engine opens is captured. Its clock offset
  to the driver is measured by the driver at each stage's start (NTP-style over Ray, oplog.clock; 0 for an
  agent on the driver's node, which shares its clock) and subtracted from the times of the calls after it.
  At the end it sorts its part into a TSV log on its node.
- Shard task (`task_capture`): prepare and cleanup shards run as Ray tasks on any worker process. For its
  duration a task installs a capture whose batches go to its agent's actor (at most one batch in flight:
  backpressure reaches the task's workers through the capture's bounded queue). A task on another node
  than its agent measures its clock against the agent's first, so its times land on the agent's clock.
- Driver (`RayOpLogs`): after the last stage, every agent sorts its log (in parallel, on its node); the
  driver reads each in chunks through Ray (one chunk ahead), keeps a copy as agents/<id>/op_log.tsv[.zst]
  and merges them by start into the run's op-log (oplog.merge.merge_sorted): no shared file system.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ray

from sbench.oplog.agentlog import AgentLog, LogSummary
from sbench.oplog.capture import Capture, install, uninstall
from sbench.oplog.clock import measure_offset
from sbench.oplog.merge import merge_sorted
from sbench.oplog.reader import decompressed
from sbench.oplog.runlog import ClockOffset, OpLogReport, agent_log_name

#: the agent actor's concurrency group for op-log calls (batches from tasks never wait behind a stage)
OPLOG_GROUP = "oplog"
#: bytes per read of an agent's log through Ray
CHUNK = 1 << 20
#: how long the driver waits for the agents to sort their logs, and for one chunk
FINISH_TIMEOUT_S = 600.0
READ_TIMEOUT_S = 120.0
#: how long a task waits for its agent to take a batch
BATCH_TIMEOUT_S = 120.0


class NodeLog:
    """An agent's op-log on its node (see the module docstring)."""

    def __init__(self, agent_id: str, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"sbench-oplog-{agent_id}-"))
        self.log = AgentLog(self.dir / name, agent_id, work_dir=self.dir)
        self.summary: LogSummary | None = None

    def finish(self) -> tuple[dict[str, Any], int]:
        """Sort the log; (its summary, its size in bytes)."""
        if self.summary is None:
            self.summary = self.log.finish()
        size = self.log.out.stat().st_size if self.log.out.exists() else 0
        return self.summary.to_dict(), size

    def read(self, offset: int, size: int) -> bytes:
        with open(self.log.out, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def discard(self) -> None:
        if self.summary is None:
            self.log.abandon()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- shard tasks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskLogSpec:
    """What a shard task needs to send its calls to its agent (picklable: an actor handle)."""

    actor: Any
    node_id: str


class ActorSink:
    """A task capture's batches, sent to the agent actor with at most one batch in flight."""

    def __init__(self, actor: Any, offset_ns: int, source: int) -> None:
        self.actor = actor
        self.offset_ns = offset_ns
        self.source = source
        self._pending: Any = None

    def write(self, rows: list[tuple[Any, ...]], offset_ns: int, source: int) -> None:
        ref = self.actor.oplog_batch.remote(rows, self.offset_ns + offset_ns, self.source)
        if self._pending is not None:
            ray.get(self._pending, timeout=BATCH_TIMEOUT_S)
        self._pending = ref

    def close(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            ray.get(pending, timeout=BATCH_TIMEOUT_S)


@contextlib.contextmanager
def task_capture(spec: TaskLogSpec | None) -> Iterator[None]:
    """Capture the storage calls of the block for the agent of `spec` (nothing when None)."""
    if spec is None:
        yield
        return
    offset = 0
    if ray.get_runtime_context().get_node_id() != spec.node_id:
        offset, _ = measure_offset(lambda: ray.get(spec.actor.oplog_clock.remote(), timeout=30))
    capture = Capture(ActorSink(spec.actor, offset, secrets.randbits(62) + 1))
    install(capture)
    try:
        yield
    finally:
        uninstall(capture)
        capture.close()


# -- the driver -------------------------------------------------------------------------------------------


class _ActorStream(io.RawIOBase):
    """An agent's log read through Ray one chunk ahead, each chunk also written to `tee`."""

    def __init__(self, actor: Any, size: int, tee: BinaryIO) -> None:
        super().__init__()
        self._actor = actor
        self._size = size
        self._tee = tee
        self._offset = 0
        self._buf = memoryview(b"")
        self._next = self._fetch(0)

    def _fetch(self, offset: int) -> Any:
        return self._actor.oplog_read.remote(offset, CHUNK) if offset < self._size else None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            if self._next is None:
                return 0
            chunk = ray.get(self._next, timeout=READ_TIMEOUT_S)
            if not chunk:
                raise EOFError(f"the agent's log ended at {self._offset} of {self._size} bytes")
            self._tee.write(chunk)
            self._offset += len(chunk)
            self._next = self._fetch(self._offset)
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class RayOpLogs:
    """The driver's side of a Ray run's op-log (see the module docstring)."""

    def __init__(self, agents: list[Any], path: Path, agent_dir: Callable[[str], Path]) -> None:
        self.agents = agents
        self.path = path
        self.agent_dir = agent_dir
        self.name = agent_log_name(path)
        self.clock: list[ClockOffset] = []
        self.driver_node = ray.get_runtime_context().get_node_id()

    def open(self) -> None:
        ray.get([a.actor.oplog_open.remote(self.name) for a in self.agents], timeout=60)

    def task_spec(self, agent_id: str) -> TaskLogSpec | None:
        for agent in self.agents:
            if agent.agent_id == agent_id:
                return TaskLogSpec(agent.actor, agent.node_id)
        return None

    def stage_started(self, stage: str, agents: list[Any]) -> None:
        """Measure each agent's clock offset (NTP-style) and have it applied from now on."""
        refs = []
        for agent in agents:
            if agent.node_id == self.driver_node:
                offset, uncertainty, same = 0, 0, True
            else:
                actor = agent.actor
                offset, uncertainty = measure_offset(
                    lambda a=actor: ray.get(a.oplog_clock.remote(), timeout=30)
                )
                same = False
            self.clock.append(ClockOffset(stage, agent.agent_id, offset / 1000, uncertainty / 1000, same))
            refs.append(agent.actor.oplog_offset.remote(offset))
        ray.get(refs, timeout=60)

    def close(self) -> OpLogReport:
        """Sort on every agent, fetch, keep and merge; an agent that cannot answer is named, not fatal."""
        report = OpLogReport(str(self.path), clock=self.clock)
        finishing = {a.agent_id: (a, a.actor.oplog_finish.remote()) for a in self.agents}
        streams: dict[str, BinaryIO] = {}
        tees: list[BinaryIO] = []
        began = time.monotonic()
        try:
            for agent_id, (agent, ref) in finishing.items():
                try:
                    summary, size = ray.get(ref, timeout=FINISH_TIMEOUT_S)
                except Exception as exc:  # a dead agent: its calls are lost with it
                    report.problems.append(f"{agent_id}: its op-log could not be collected ({exc})")
                    continue
                log_summary = LogSummary(**summary)
                copy = self.agent_dir(agent_id) / self.name
                log_summary.path = str(copy)
                report.agents.append(log_summary)
                if log_summary.failed:
                    report.problems.append(f"{agent_id}: {log_summary.failed}")
                tee = open(copy, "wb")  # noqa: SIM115 - closed below
                tees.append(tee)
                raw = io.BufferedReader(_ActorStream(agent.actor, size, tee), CHUNK)
                streams[f"{agent_id}:{copy.name}"] = decompressed(raw)
            report.rows = merge_sorted(streams, self.path)
        finally:
            for stream in streams.values():
                stream.close()
            for tee in tees:
                tee.close()
            for agent in self.agents:
                with contextlib.suppress(Exception):
                    agent.actor.oplog_discard.remote()
        report.merge_s = time.monotonic() - began
        return report

    def abandon(self) -> None:
        for agent in self.agents:
            with contextlib.suppress(Exception):
                agent.actor.oplog_discard.remote()
