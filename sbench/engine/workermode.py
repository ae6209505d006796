"""Threads or asyncio tasks for one agent's workload workers: `workers.mode`, and the rule `auto` follows.

`threads` and `asyncio` are the user's choice and are followed as given (`asyncio` needs an async call for
every op: the native cloud drivers and null:// with `driver: native`). `auto` runs asyncio tasks only where
every op's backend has async calls, and among those it still picks threads when all of these hold:

- every backend's sync calls measured cheaper than its async ones (`Backend.threads_cheaper`: the native S3
  driver; the native Azure and GCS drivers and null:// keep asyncio tasks, unmeasured or measured better);
- the agent runs at most `THREADS_MAX_WORKERS` workers;
- the config knows the size of every object the workload moves, and none is larger than
  `THREADS_MAX_OBJECT` (`largest_object`);
- the config does not ask for uvloop (`workers.event_loop` only matters to asyncio tasks).

Why (bench/native_path.py against SeaweedFS on 2 cores, full `sbench run` per variant, bench/README.md
§ "The native S3 path"): an async obstore call is a Rust future that a tokio thread completes by taking the
interpreter lock and waking the event loop through its self-pipe; a sync call releases the lock, runs the
request and returns. At 16 in flight threads cost 0.53x (4 KiB GET) to 0.59x (PUT) the client CPU per op of
asyncio tasks at equal or better throughput; the gap narrows as more requests are in flight and the object
grows (per concurrency and size: the crossover table in bench/README.md), and at 16 MiB GETs asyncio tasks
are both cheaper and faster (7.1 against 8.6 ms of CPU per GET, x1.000 against x0.928 of the best bare
loop's throughput). Above the limits, and where sizes are unknown, `auto` keeps asyncio tasks as before:
they hold thousands of requests in flight in one process, where a thread per request stops scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sbench.config.models import Config, EventLoop, GetOp, PutOp, WorkerMode
from sbench.config.validation import largest_size
from sbench.errors import ConfigError
from sbench.storage.base import Backend

#: `auto` picks threads up to this many workers per agent (measured: threads cheaper per op up to here)
THREADS_MAX_WORKERS = 128
#: ... and only when no object the workload moves is larger than this (measured: 16 MiB GETs are cheaper
#: and faster on asyncio tasks)
THREADS_MAX_OBJECT = 1024 * 1024


@dataclass(frozen=True)
class WorkerChoice:
    """How the agent runs its workers, and why (recorded in the stage's details)."""

    asyncio: bool
    why: str

    @property
    def mode(self) -> str:
        return "asyncio" if self.asyncio else "threads"


def largest_object(config: Config) -> int | None:
    """The largest object the workload moves, as the config knows it: every PUT's size and, when it reads,
    every prepared object's size; None when it reads objects no `prepare` block sizes."""
    sizes = [largest_size(op.size_spec) for op in config.workload if isinstance(op, PutOp)]
    if any(isinstance(op, GetOp) for op in config.workload):
        ensure = config.prepare.ensure_objects if config.prepare is not None else []
        if not ensure:
            return None
        sizes += [largest_size(spec.size_spec) for spec in ensure]
    if any(size is None for size in sizes):
        return None
    return max((size for size in sizes if size is not None), default=0)


def choose_workers(
    config: Config, backends: Sequence[Backend], all_async: bool, workers: int
) -> WorkerChoice:
    """Threads or asyncio tasks for `workers` workers whose ops use `backends`; `all_async` is True when
    every op has an async call. Raises ConfigError for `mode: asyncio` on a backend without async calls."""
    mode = config.workers.mode
    if mode is WorkerMode.THREADS:
        return WorkerChoice(False, "workers.mode: threads")
    if not all_async:
        if mode is WorkerMode.ASYNCIO:
            sync = sorted({b.root_uri for b in backends if not b.is_async})
            raise ConfigError(
                f"workers.mode: asyncio needs async calls on every backend; none on {', '.join(sync)}",
                hint="use the native driver (driver: native) of a cloud store or null://, or mode: auto",
            )
        return WorkerChoice(False, "auto: a backend without async calls")
    if mode is WorkerMode.ASYNCIO:
        return WorkerChoice(True, "workers.mode: asyncio")
    if config.workers.event_loop is EventLoop.UVLOOP:
        return WorkerChoice(True, "auto: event_loop uvloop")
    if not all(b.threads_cheaper for b in backends):
        return WorkerChoice(True, "auto: not every backend measured cheaper on threads")
    if workers > THREADS_MAX_WORKERS:
        return WorkerChoice(True, f"auto: {workers} workers > {THREADS_MAX_WORKERS}")
    largest = largest_object(config)
    if largest is None:
        return WorkerChoice(True, "auto: object sizes unknown to the config")
    if largest > THREADS_MAX_OBJECT:
        return WorkerChoice(True, f"auto: objects up to {largest:,} B > {THREADS_MAX_OBJECT:,} B")
    return WorkerChoice(
        False, f"auto: {workers} workers <= {THREADS_MAX_WORKERS}, objects <= {THREADS_MAX_OBJECT:,} B"
    )
