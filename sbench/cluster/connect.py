"""Connecting the driver to Ray: a cluster only when the user names it, otherwise a private local instance.

Ray's own `ray.init()` joins whatever cluster `/tmp/ray/ray_current_cluster` points to, and `/tmp/ray` is
world-writable, so a plain `sbench run` could hand its credentials and load to a cluster nobody chose. sbench
joins an existing cluster only when `--ray-address ADDR` or `RAY_ADDRESS` says so (the flag wins; Ray's job
supervisor sets RAY_ADDRESS for a `ray job submit` entrypoint, so submitted jobs join their cluster). Any
other run starts a private local instance in its own temp dir (mode 0700, never /tmp/ray) with a reaper
(`cluster.reaper`) that ends every process of it within seconds of the driver's exit, however the driver
ends. A joined cluster is never torn down: only the run's own actors and placement group are removed.
Which cluster was used (address, node count, where it came from) is printed and kept in metadata.json.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import ray

from sbench.cluster.reaper import start_reaper, stop_reaper
from sbench.errors import RunFailed

ENV_ADDRESS = "RAY_ADDRESS"
FLAG_ADDRESS = "--ray-address"
#: Ray puts unix sockets at <temp dir>/session_<38 chars>/sockets/plasma_store, and a socket path is at
#: most 107 bytes: a longer temp root (a deep TMPDIR) falls back to /tmp.
MAX_TEMP_ROOT = 40


@dataclass(frozen=True, slots=True)
class RayConnection:
    """Which Ray the run uses, for the console header and metadata.json."""

    #: joined (an existing cluster) | local (a private instance sbench started) | existing (the caller's)
    mode: str
    address: str
    nodes: int
    #: what named the cluster: --ray-address, RAY_ADDRESS, or "" (local / the caller's connection)
    source: str = ""
    #: the private instance's temp dir (its session logs), local mode only
    temp_dir: str | None = None

    def describe(self) -> str:
        nodes = f"{self.nodes} node{'s' if self.nodes != 1 else ''}"
        if self.mode == "joined":
            return f"joined the cluster at {self.address} ({self.source}), {nodes}"
        if self.mode == "local":
            return f"private local instance at {self.address}, {nodes}, logs in {self.temp_dir}"
        return f"the caller's connection to {self.address}, {nodes}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chosen_address(flag: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(address, what named it) of the cluster to join, or None for a private local instance.
    `--ray-address` beats RAY_ADDRESS; the address `local` asks for a private instance explicitly."""
    environ = os.environ if environ is None else environ
    if flag:
        address, source = flag, FLAG_ADDRESS
    elif environ.get(ENV_ADDRESS):
        address, source = environ[ENV_ADDRESS], ENV_ADDRESS
    else:
        return None
    return None if address == "local" else (address, source)


@contextlib.contextmanager
def ray_connection(flag_address: str | None = None) -> Iterator[RayConnection]:
    """Connect (see module docstring) and disconnect at the end; a connection the caller already made
    (e.g. a test's) is used as it is and left alone."""
    if ray.is_initialized():
        yield RayConnection("existing", _gcs_address(), _alive_nodes())
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    named = chosen_address(flag_address)
    if named is not None:
        with _joined(*named, quiet) as connection:
            yield connection
        return
    temp_dir = tempfile.mkdtemp(prefix="sbench-ray-", dir=_temp_root())
    reaper = start_reaper(temp_dir)  # first: it also ends what a failing ray.init leaves behind
    try:
        # address="local": never the cluster of a ray_current_cluster file; RAY_ADDRESS is unset here
        ray.init(
            address="local",
            num_cpus=os.cpu_count() or 2,
            include_dashboard=False,
            _temp_dir=temp_dir,
            **quiet,
        )
        try:
            yield RayConnection("local", _gcs_address(), _alive_nodes(), temp_dir=temp_dir)
        finally:
            ray.shutdown()
    finally:
        stop_reaper(reaper)


@contextlib.contextmanager
def _joined(address: str, source: str, quiet: dict[str, Any]) -> Iterator[RayConnection]:
    problem = _unreachable(address)
    if problem:
        raise RunFailed(
            f"could not connect to the Ray cluster at {source}={address}: {problem}",
            hint="give the head's GCS host:port (e.g. 10.0.0.10:6379) and check that `ray status` works on "
            f"this host, or drop {source} to run on a private local Ray instance",
        )
    # ray.init prefers RAY_ADDRESS over its argument: make the environment say what was chosen.
    previous = os.environ.get(ENV_ADDRESS)
    os.environ[ENV_ADDRESS] = address
    try:
        ray.init(address=address, **quiet)
        try:
            yield RayConnection("joined", _gcs_address() or address, _alive_nodes(), source=source)
        finally:
            ray.shutdown()
    finally:
        if previous is None:
            os.environ.pop(ENV_ADDRESS, None)
        else:
            os.environ[ENV_ADDRESS] = previous


def _temp_root() -> str:
    """Where Ray would put its temp dir (RAY_TMPDIR, then TMPDIR, then /tmp), unless too deep for sockets."""
    root = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return root if len(root) <= MAX_TEMP_ROOT else "/tmp"


def _gcs_address() -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # a client-mode (ray://) connection has no GCS address of its own
        return ""


def _alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _unreachable(address: str) -> str:
    """Why a host:port GCS address cannot be reached ("" when it answers, or when it is not host:port).

    `ray.init` would otherwise retry an unreachable address for minutes before failing."""
    if "://" in address or address == "auto" or ":" not in address:
        return ""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3.0):
            return ""
    except ValueError:
        return f"{port!r} is not a port number"
    except OSError as exc:
        return exc.strerror or str(exc)
