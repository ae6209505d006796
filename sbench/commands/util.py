"""`sbench util {health,list,stat,get,put,delete} --uri URI`: one-shot storage operations on any backend.

URI forms follow sai3 (§1.1): a trailing `/` means "everything under this prefix", a `*` in the last path
component is a pattern on the object's name, anything else is one object (or, for list/health, a key prefix).
`util put` writes random bytes (sai3 wrote zeros, which compressing or deduplicating stores swallow), names
objects by replacing `*` with a 6-digit index, or `obj_NNNNNN.dat` under a trailing `/`.

Bulk operations stream keys from the listing into a bounded thread pool, so memory stays flat for any object
count; failures are counted by error class and end with exit code 1 and the first messages.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

from sbench.config.units import parse_count, parse_size
from sbench.data.payload import PayloadGenerator
from sbench.errors import EXIT_OK, EXIT_RUN_FAILED, ConfigError
from sbench.metrics.histogram import LatencyHistogram
from sbench.storage.base import Backend, StorageError
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.registry import open_backend
from sbench.storage.uri import LOCAL_SCHEMES, StorageUri, parse_uri

ACTIONS = ("health", "list", "stat", "get", "put", "delete")
#: Failures printed in full at the end of a bulk operation; the rest are only counted.
SHOWN_ERRORS = 5
T = TypeVar("T")


# -- argument parsing ------------------------------------------------------------------------------------


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_count(text: str) -> int:
    try:
        value = parse_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    util = subparsers.add_parser(
        "util",
        help="one-shot storage operations: health, list, stat, get, put, delete",
        description="Storage utilities on any URI (file://, direct://, s3://, az://, gs://). A trailing '/' "
        "selects everything under a prefix, a '*' in the last component is a name pattern. Exit codes: 0 ok, "
        "1 an operation failed, 2 usage error.",
    )
    actions = util.add_subparsers(dest="util_command", metavar="ACTION", required=True)
    helps = {
        "health": "list the URI and report how many objects it holds",
        "list": "list objects under a prefix or matching a pattern",
        "stat": "show the size (and mtime, etag) of one object",
        "get": "download a prefix, a pattern or one object and report MB/s and latency",
        "put": "upload random-filled objects and report MB/s and latency",
        "delete": "delete a prefix, a pattern or one object",
    }
    for action in ACTIONS:
        p = actions.add_parser(action, help=helps[action], description=helps[action].capitalize() + ".")
        p.add_argument("--uri", required=True, help="target URI, e.g. s3://bucket/prefix/ or file:///data/x")
        p.add_argument(
            "--driver",
            choices=[d.value for d in Driver],
            default=Driver.AUTO.value,
            help="client for cloud URIs: sdk (boto3/azure/google SDK) or native (obstore); auto = native",
        )
        p.add_argument("--endpoint-url", help="explicit endpoint URL (S3-compatible stores, emulators)")
        p.add_argument("--region", help="cloud region (S3)")
        p.add_argument("--https", action="store_true", help="use https for s3://HOST:PORT/... endpoint URIs")
        if action in ("get", "delete"):
            p.add_argument("--jobs", type=_positive_count, default=4, help="operations in parallel (4)")
        if action == "list":
            p.add_argument(
                "--shallow", action="store_true", help="one level only; sub-prefixes are shown ending in '/'"
            )
        if action == "put":
            p.add_argument("--object-size", type=_size_arg, default=1024, help="bytes per object, e.g. 4KiB")
            p.add_argument("--objects", type=_positive_count, default=1, help="number of objects (1)")
            p.add_argument(
                "--concurrency", "--jobs", type=_positive_count, default=4, help="uploads in parallel (4)"
            )


# -- targets ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What a util URI selects: `object` (one key, or a key prefix for list/health), `prefix` (everything
    under a directory-like prefix) or `glob` (names matching a `*` pattern in one directory)."""

    root: StorageUri
    mode: str
    name: str = ""

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + ".*".join(re.escape(part) for part in self.name.split("*")) + "$")

    def literal_prefix(self) -> str:
        return self.name.split("*", 1)[0]


def resolve_target(uri: str, *, https: bool = False) -> Target:
    parsed = parse_uri(uri, https=https)
    prefix = parsed.prefix
    if not prefix or prefix.endswith("/"):
        return Target(parsed, "prefix")
    directory, _, name = prefix.rpartition("/")
    if parsed.scheme in LOCAL_SCHEMES and not directory:
        directory = "/"
    root = replace(parsed, prefix=directory + "/" if directory and not directory.endswith("/") else directory)
    root = replace(root, raw=root.root)
    if "*" in directory:
        raise ConfigError(
            f"--uri {uri}: '*' is only allowed in the last path component ({name!r}), not in {directory!r}.",
            hint="Put the pattern in the object name, e.g. s3://bucket/dir/obj_*.dat.",
        )
    return Target(root, "glob" if "*" in name else "object", name)


def iter_matches(backend: Backend, target: Target) -> Iterator[tuple[str, int]]:
    """Keys (relative to the target root) of every object the target selects; directories are skipped."""
    if target.mode == "prefix":
        items: Iterable[tuple[str, int]] = backend.list("", recursive=True)
    elif target.mode == "glob":
        regex = target.pattern()
        items = (
            (k, n) for k, n in backend.list(target.literal_prefix(), recursive=False)
            if regex.match(k.rsplit("/", 1)[-1])
        )
    else:
        items = [(target.name, -1)]
    return ((k, n) for k, n in items if not k.endswith("/"))


# -- bulk execution --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a bulk operation did: counts, bytes, latencies (µs) and failures by class."""

    ok: int = 0
    nbytes: int = 0
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def run_bounded(op: Callable[[T], int], items: Iterable[T], jobs: int) -> Outcome:
    """Run `op(item) -> bytes moved` for every item on `jobs` threads with at most 2*jobs calls queued."""
    outcome = Outcome()
    start = time.perf_counter()

    def timed(item: T) -> tuple[int, int]:
        t0 = time.perf_counter_ns()
        moved = op(item)
        return moved, (time.perf_counter_ns() - t0) // 1000

    def collect(fut: Future[tuple[int, int]]) -> None:
        try:
            moved, latency_us = fut.result()
        except StorageError as exc:
            outcome.errors[exc.kind.value] += 1
            if len(outcome.messages) < SHOWN_ERRORS:
                outcome.messages.append(str(exc))
            return
        outcome.ok += 1
        outcome.nbytes += moved
        outcome.hist.record_us(latency_us)

    pending: deque[Future[tuple[int, int]]] = deque()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sbench-util") as pool:
        for item in items:
            pending.append(pool.submit(timed, item))
            if len(pending) >= 2 * jobs:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    pending.remove(fut)
                    collect(fut)
        for fut in pending:
            collect(fut)
    outcome.elapsed_s = time.perf_counter() - start
    return outcome


# -- actions ---------------------------------------------------------------------------------------------


def execute(args: argparse.Namespace) -> int:
    """Run one util action; returns the exit code. Bad URIs and flags raise ConfigError (exit 2)."""
    out = Console(highlight=False, soft_wrap=True, markup=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    target = resolve_target(args.uri, https=args.https)
    options = BackendOptions(
        driver=Driver(args.driver),
        concurrency=getattr(args, "jobs", None) or getattr(args, "concurrency", None) or 4,
        endpoint_url=args.endpoint_url,
        region=args.region,
        https=args.https,
    )
    backend = open_backend(target.root, options)
    try:
        return _ACTIONS[args.util_command](backend, target, args, out, err)
    except StorageError as exc:
        err.print(f"[bold red]error:[/] util {args.util_command}: {escape(str(exc))}")
        return EXIT_RUN_FAILED
    finally:
        backend.close()


def _listing(backend: Backend, target: Target, recursive: bool) -> Iterator[tuple[str, int]]:
    if target.mode == "object":  # a URI without trailing '/' lists as a key prefix, like `aws s3 ls`
        return backend.list(target.name, recursive=recursive)
    if target.mode == "glob" or recursive:
        return iter_matches(backend, target)
    return backend.list("", recursive=False)


def _health(backend: Backend, target: Target, args: argparse.Namespace, out: Console, err: Console) -> int:
    t0 = time.perf_counter()
    count = sum(1 for key, _ in _listing(backend, target, recursive=True) if not key.endswith("/"))
    out.print(f"OK – found {count} objects under {args.uri} ({time.perf_counter() - t0:.2f} s)")
    return EXIT_OK


def _list(backend: Backend, target: Target, args: argparse.Namespace, out: Console, err: Console) -> int:
    count = total = 0
    write = sys.stdout.write  # plain lines: the output is meant for pipes and other tools
    for key, size in _listing(backend, target, recursive=not args.shallow):
        write(backend.uri_of(key) + "\n")
        count += 1
        total += max(size, 0)
    sys.stdout.flush()
    err.print(f"{count} entries, {_human_bytes(total)}")
    return EXIT_OK


def _stat(backend: Backend, target: Target, args: argparse.Namespace, out: Console, err: Console) -> int:
    if target.mode != "object":
        raise ConfigError(
            f"util stat needs one object, but --uri {args.uri} is a {target.mode}.",
            hint="Give the full object URI (no trailing '/', no '*').",
        )
    st = backend.stat(target.name)
    out.print(f"{backend.uri_of(target.name)}")
    out.print(f"  size:  {st.size} bytes ({_human_bytes(st.size)})")
    if st.mtime is not None:
        out.print(f"  mtime: {datetime.fromtimestamp(st.mtime, UTC).isoformat()}")
    if st.etag:
        out.print(f"  etag:  {st.etag}")
    return EXIT_OK


def _get(backend: Backend, target: Target, args: argparse.Namespace, out: Console, err: Console) -> int:
    keys = (k for k, _ in iter_matches(backend, target))
    outcome = run_bounded(lambda key: len(backend.get(key)), keys, args.jobs)
    return _report("GET", args.uri, outcome, out, err)


def _delete(backend: Backend, target: Target, args: argparse.Namespace, out: Console, err: Console) -> int:
    def delete(key: str) -> int:
        backend.delete(key)
        return 0

    # Deleting while the listing streams is safe: S3/Azure/GCS continue after the last key returned, and
    # readdir still returns every entry that is not removed.
    outcome = run_bounded(delete, (k for k, _ in iter_matches(backend, target)), args.jobs)
    return _report("DELETE", args.uri, outcome, out, err)


def _put(backend: Backend, target: Target, args: argparse.Namespace, out: Console, err: Console) -> int:
    if target.mode == "object" and args.objects > 1:
        raise ConfigError(
            f"util put --objects {args.objects} would overwrite the single object {args.uri}.",
            hint="Put a '*' in the name (replaced by a 6-digit index) or end the URI with '/'.",
        )
    if target.mode == "prefix":
        names: Iterable[str] = (f"obj_{i:06d}.dat" for i in range(args.objects))
    elif target.mode == "glob":
        names = (target.name.replace("*", f"{i:06d}") for i in range(args.objects))
    else:
        names = [target.name]

    generator = PayloadGenerator("random", seed=int.from_bytes(os.urandom(8), "little"))
    size = args.object_size
    generator.payload(size, 0)  # build the shared random buffer now, not inside the first timed PUT

    def put(item: tuple[int, str]) -> int:
        index, key = item
        backend.put(key, generator.payload(size, index))  # a different slice of random bytes per object
        return size

    outcome = run_bounded(put, enumerate(names), args.concurrency)
    return _report("PUT", args.uri, outcome, out, err)


def _report(label: str, uri: str, outcome: Outcome, out: Console, err: Console) -> int:
    total = outcome.ok + outcome.failed
    if total == 0:
        err.print(f"[bold red]error:[/] {label}: nothing matches {escape(uri)}")
        return EXIT_RUN_FAILED
    secs = max(outcome.elapsed_s, 1e-9)
    line = f"{label} {outcome.ok} objects, {_human_bytes(outcome.nbytes)} in {outcome.elapsed_s:.3f} s: "
    line += f"{outcome.ok / secs:,.1f} ops/s"
    if outcome.nbytes:
        line += f", {outcome.nbytes / secs / 1e6:,.2f} MB/s"
    out.print(line)
    h = outcome.hist
    if h.count:
        out.print(
            f"  latency ms: mean {h.mean / 1000:.3f}  p50 {h.percentile(50) / 1000:.3f}  "
            f"p90 {h.percentile(90) / 1000:.3f}  p99 {h.percentile(99) / 1000:.3f}  max {h.max / 1000:.3f}"
        )
    if outcome.failed:
        classes = ", ".join(f"{kind}: {n}" for kind, n in sorted(outcome.errors.items()))
        err.print(f"[bold red]error:[/] {outcome.failed} of {total} operations failed ({classes})")
        for message in outcome.messages:
            err.print(f"  {message}", markup=False)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{n} B"


_ACTIONS: dict[str, Callable[[Backend, Target, argparse.Namespace, Console, Console], int]] = {
    "health": _health,
    "list": _list,
    "stat": _stat,
    "get": _get,
    "put": _put,
    "delete": _delete,
}
