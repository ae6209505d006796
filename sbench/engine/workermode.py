"""Threads or asyncio tasks for one agent's workload workers: `workers.mode`, and the rule `auto` follows.

`threads` and `asyncio` are the user's choice and are followed as given (`asyncio` needs an async call for
every op: the native cloud drivers and null:// with `driver: native`). `auto` runs asyncio tasks only where
every op's backend has async calls, and among those it still picks threads when all of these hold:

- every backend's sync calls measured cheaper than its async ones (`Backend.threads_cheaper`: the native S3
  driver; the native Azure and GCS drivers and null:// keep asyncio tasks, unmeasured or measured better);
- the agent runs at most `THREADS_MAX_WORKERS` workers;
- the run knows the size of every object the workload moves (PUT sizes and prepared sizes from the config,
  GET sizes from the LIST that found the keys), none is larger than `THREADS_MAX_OBJECT` (`largest_object`),
  and workers x that size is at most `THREADS_MAX_IN_FLIGHT` bytes;
- the config does not ask for uvloop (`workers.event_loop` only matters to asyncio tasks).

Why (bench/native_path.py against SeaweedFS on the same 2 cores, a full `sbench run` per variant; the
crossover table is in bench/README.md, § "The native S3 path"): an async obstore call is a Rust future that
a tokio thread completes by taking the interpreter lock and waking the event loop through its self-pipe; a
sync call releases the lock, runs the request and returns. Client CPU per op of threads over asyncio tasks
(median of 3 per-round ratios): 4 KiB GET x0.45 (16 in flight), x0.52 (64), x0.55 (128), x0.39 (256);
4 KiB PUT x0.53, x0.59, x0.63, x0.67, at 1.1-1.8x the throughput everywhere; 1 MiB GET x0.95 (16), x0.99
(64), x1.04 (256) at 1.56x, 1.07x and 1.00x the throughput, 1 MiB PUT x0.87 (16), x0.87 (256); 16 MiB GET
x1.38 (16), x1.37 (64) at 0.67x and 0.84x the throughput. So threads up to 256 workers, 1 MiB objects and
64 MiB in flight (1 MiB x 64, where threads still moved more bytes at the same CPU; at 1 MiB x 256 they
no longer won), the largest values measured where they won; above any of these, and where sizes are
unknown, `auto` keeps asyncio tasks as before: they hold thousands of requests in flight in one process,
where a thread per request stops scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sbench.config.models import Config, EventLoop, GetOp, PutOp, WorkerMode
from sbench.config.validation import largest_size
from sbench.errors import ConfigError
from sbench.storage.base import Backend

#: `auto` picks threads up to this many workers per agent (the most measured: threads cheaper there)
THREADS_MAX_WORKERS = 256
#: ... and only when no object the workload moves is larger than this (1 MiB: threads as cheap and faster;
#: 16 MiB: asyncio tasks cheaper and faster)
THREADS_MAX_OBJECT = 1024 * 1024
#: ... and workers x the largest object at most this (1 MiB GETs: threads won at 64 in flight, not at 256)
THREADS_MAX_IN_FLIGHT = 64 * 1024 * 1024


@dataclass(frozen=True)
class WorkerChoice:
    """How the agent runs its workers, and why (recorded in the stage's details)."""

    asyncio: bool
    why: str

    @property
    def mode(self) -> str:
        return "asyncio" if self.asyncio else "threads"


def largest_object(config: Config, listed_reads: Sequence[int | None] = ()) -> int | None:
    """The largest object the workload moves: every PUT's size from the config and, for the GETs, the
    largest size LIST gave for each GET's keys (`listed_reads`, one per GET op, None for one whose keys
    were not listed), or the config's prepared sizes where a GET was not listed; None when neither knows."""
    sizes = [largest_size(op.size_spec) for op in config.workload if isinstance(op, PutOp)]
    gets = sum(isinstance(op, GetOp) for op in config.workload)
    known = [size for size in listed_reads if size is not None]
    sizes += known
    if gets and len(known) < max(gets, len(listed_reads)):
        ensure = config.prepare.ensure_objects if config.prepare is not None else []
        if not ensure:
            return None
        sizes += [largest_size(spec.size_spec) for spec in ensure]
    if any(size is None for size in sizes):
        return None
    return max((size for size in sizes if size is not None), default=0)


def choose_workers(
    config: Config,
    backends: Sequence[Backend],
    all_async: bool,
    workers: int,
    listed_reads: Sequence[int | None] = (),
) -> WorkerChoice:
    """Threads or asyncio tasks for `workers` workers whose ops use `backends`; `all_async` is True when
    every op has an async call; `listed_reads` as for largest_object. Raises ConfigError for
    `mode: asyncio` on a backend without async calls."""
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
    largest = largest_object(config, listed_reads)
    if largest is None:
        return WorkerChoice(True, "auto: object sizes unknown (GETs of keys not listed nor prepared)")
    if largest > THREADS_MAX_OBJECT:
        return WorkerChoice(True, f"auto: objects up to {largest:,} B > {THREADS_MAX_OBJECT:,} B")
    if workers * largest > THREADS_MAX_IN_FLIGHT:
        return WorkerChoice(
            True, f"auto: {workers} workers x {largest:,} B > {THREADS_MAX_IN_FLIGHT:,} B in flight"
        )
    return WorkerChoice(
        False,
        f"auto: {workers} workers <= {THREADS_MAX_WORKERS}, objects <= {THREADS_MAX_OBJECT:,} B, "
        f"<= {THREADS_MAX_IN_FLIGHT:,} B in flight",
    )
