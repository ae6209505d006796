"""Session fixtures: real local servers and one Ray instance for the whole test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import servers

#: the `layout` fixture (a target with a sibling victim directory) for the confinement tests
pytest_plugins = ["tests.victim"]

#: The public sai3-bench configs next to the repository; SBENCH_SAI3_CONFIGS points elsewhere (worktrees).
SHARED_CONFIGS = Path(
    os.environ.get("SBENCH_SAI3_CONFIGS")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "sai3-configs"
)


#: Test folders whose tests start Ray clusters, heads and multi-process runs back to back: under
#: `make test`'s two xdist workers they all run on one worker, one after another (two of them at once
#: would starve each other's timing on two cores), while the other worker takes every other file.
RAY_HEAVY = ("tests/cluster/", "tests/submit/")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole files to whichever worker is free (a module's fixtures, a private server for instance, are
    set up once), RAY_HEAVY as one unit. (xdist's `loadgroup` marks do not take with pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class RayHeavyAsOne(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "ray-heavy" if path.startswith(RAY_HEAVY) else path

    return RayHeavyAsOne(config, log)


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sbench-servers-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _server_fixture(start, name: str, root: Path) -> Iterator[servers.LocalServer]:
    try:
        server = start(root / name)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs(server_root: Path) -> Iterator[servers.LocalServer]:
    """SeaweedFS S3 on 127.0.0.1; credentials are servers.S3_ACCESS_KEY / S3_SECRET_KEY."""
    yield from _server_fixture(servers.start_seaweedfs, "seaweedfs", server_root)


@pytest.fixture(scope="session")
def azurite(server_root: Path) -> Iterator[servers.LocalServer]:
    """Azurite Blob on 127.0.0.1 with the well-known devstoreaccount1 key."""
    yield from _server_fixture(servers.start_azurite, "azurite", server_root)


@pytest.fixture(scope="session")
def fake_gcs(server_root: Path) -> Iterator[servers.LocalServer]:
    """fake-gcs-server (in memory) on 127.0.0.1."""
    yield from _server_fixture(servers.start_fake_gcs, "fake-gcs", server_root)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray instance (2 CPUs, no dashboard) shared by every Ray test of the session."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray's processes export their metrics every 10 s by default; the live-metrics test waits for one
    os.environ.setdefault("RAY_metrics_report_interval_ms", "2000")
    ray = pytest.importorskip("ray")
    # address="local" always starts a private instance, even when another Ray cluster runs on this host.
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True,
             log_to_driver=False)
    try:
        yield None
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def shared_configs() -> Path:
    """The public sai3-bench YAML files in ../shared/sai3-configs (skips when absent)."""
    if not SHARED_CONFIGS.is_dir():
        pytest.skip(f"{SHARED_CONFIGS} is absent (public sai3-bench configs are not part of the repo)")
    return SHARED_CONFIGS
