"""`sbench submit` without a cluster: what is submitted (never a secret, the right interpreter), the
archive through a log, the job-side entrypoint's own parts, and the failures that need no Ray: an
unreachable address, something that is not a Ray dashboard, another Ray version, bad usage."""

from __future__ import annotations

import http.server
import json
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.errors import RunFailed
from sbench.submit import jobmain, jobspec, pack
from sbench.submit.jobspec import RuntimeEnvMode
from tests import servers

REPO = Path(__file__).resolve().parents[2]
SECRET = "SubmitUnitSecret0123456789"


def _sbench(*argv: str, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess:
    """`sbench submit ARGV` in this process (nothing here reaches a cluster), as a completed process."""
    code = main(["submit", *argv])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["sbench", "submit", *argv], code, out, err)


def test_local_mode_names_this_interpreter_and_ships_this_package(tmp_path: Path) -> None:
    spec = jobspec.run_job("j1", RuntimeEnvMode.LOCAL, tmp_path, "w.yaml", ["--no-cleanup"])
    words = shlex.split(spec.entrypoint)
    assert words[:3] == [sys.executable, "-m", "sbench.submit.jobmain"]
    assert words[-2:] == ["w.yaml", "--no-cleanup"]
    assert spec.runtime_env["py_executable"] == sys.executable
    assert spec.runtime_env["py_modules"] == [str(REPO / "sbench")]
    assert spec.runtime_env["working_dir"] == str(tmp_path)
    fetch = jobspec.pack_job("j1", RuntimeEnvMode.LOCAL, "10.0.0.5", "/r/j1")
    assert fetch.entrypoint_resources == {"node:10.0.0.5": 0.001}  # where the run's driver wrote it
    assert shlex.split(fetch.entrypoint) == [sys.executable, "-m", "sbench.submit.pack", "/r/j1"]
    assert "working_dir" not in fetch.runtime_env


def test_pip_and_uv_install_the_pins_but_never_ray(tmp_path: Path) -> None:
    for mode, key in ((RuntimeEnvMode.PIP, "pip"), (RuntimeEnvMode.UV, "uv")):
        spec = jobspec.run_job("j", mode, tmp_path, "w.yaml", [])
        packages = spec.runtime_env[key]["packages"]
        assert any(p.startswith("boto3==") for p in packages)
        assert not any(p.lower().startswith("ray") for p in packages)
        assert shlex.split(spec.entrypoint)[0] == "python"  # the virtualenv Ray activates
    installed = jobspec.run_job("j", RuntimeEnvMode.INSTALLED, tmp_path, "w.yaml", [])
    assert set(installed.runtime_env) == {"working_dir"}


def test_no_environment_value_is_submitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AZURE_STORAGE_KEY", SECRET + "az")
    for mode in RuntimeEnvMode:
        spec = jobspec.run_job("j", mode, tmp_path, "w.yaml", ["-v"], env_file="/etc/sbench/creds.env")
        text = json.dumps(spec.submit_kwargs())
        assert SECRET not in text and "env_vars" not in text
        assert "/etc/sbench/creds.env" in spec.entrypoint  # the path travels, never a value


def test_an_archive_survives_the_log_and_a_cut_one_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "results"
    (source / "agents" / "a").mkdir(parents=True)
    (source / "STATUS.txt").write_text("TEST STATUS: SUCCESS\n")
    (source / "agents" / "a" / "perf_log.tsv").write_bytes(bytes(range(256)) * 400)

    class Out:
        text = ""

        def write(self, chunk: str) -> None:
            Out.text += chunk

        def flush(self) -> None:
            pass

    pack.emit(pack.pack_dir(str(source)), Out())
    log = "job noise\n" + Out.text + "(raylet) more noise\n"
    names = pack.unpack(pack.decode(log), tmp_path / "home")
    assert "STATUS.txt" in names
    assert (tmp_path / "home" / "agents" / "a" / "perf_log.tsv").read_bytes() == bytes(range(256)) * 400
    lines = log.splitlines()
    cut = "\n".join(line for line in lines if not line.startswith(pack.LINE)) + "\n"
    with pytest.raises(RunFailed, match="corrupt"):
        pack.decode(cut)
    with pytest.raises(RunFailed, match="no complete"):
        pack.decode("\n".join(lines[:-2]))


def test_the_job_side_reads_its_submission_id_and_an_env_file(tmp_path: Path) -> None:
    env = {jobmain.RAY_JOB_ENV: json.dumps({"metadata": {"job_submission_id": "sbench-x-1"}})}
    assert jobmain.submission_id(env) == "sbench-x-1"
    creds = tmp_path / "creds.env"
    creds.write_text("# storage\nexport AWS_ACCESS_KEY_ID='AK'\nAWS_SECRET_ACCESS_KEY=\"S=1\"\n\n")
    assert jobmain.read_env_file(creds) == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "S=1"}
    creds.write_text("not a pair\n")
    with pytest.raises(ValueError, match=r"creds\.env:1"):
        jobmain.read_env_file(creds)


@pytest.fixture
def not_ray() -> Iterator[tuple[str, list[bytes]]]:
    """An HTTP server on 127.0.0.1 whose /api/version body the test sets (a Ray of another version, or
    no Ray at all): no real cluster of another Ray version can run here."""
    body: list[bytes] = [b"{}"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/api/version" else 404)
            self.end_headers()
            self.wfile.write(body[0])

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", body
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(
        f'target: "file://{tmp_path}/"\nduration: 1s\nworkload:\n  - {{op: stat, path: "", weight: 1}}\n'
    )
    return path


def _one_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return line


def test_an_unreachable_address_is_one_message_and_exit_1(tmp_path: Path, capsys) -> None:
    url = f"http://127.0.0.1:{servers.free_port()}"
    line = _one_error(_sbench(str(_config(tmp_path)), "--address", url, capsys=capsys))
    assert f"cannot reach the Ray dashboard at {url}" in line


def test_another_ray_version_or_no_ray_is_one_message_and_exit_1(tmp_path: Path, not_ray, capsys) -> None:
    url, body = not_ray
    body[0] = json.dumps({"ray_version": "2.9.3", "version": "4"}).encode()
    line = _one_error(_sbench(str(_config(tmp_path)), "--address", url, capsys=capsys))
    assert "runs Ray 2.9.3, but sbench needs Ray 2.60.0" in line
    body[0] = b"<html>hello</html>"
    line = _one_error(_sbench(str(_config(tmp_path)), "--address", url, capsys=capsys))
    assert "not as a Ray dashboard" in line


def test_usage_errors_exit_2_before_any_contact(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path)
    unreachable = f"http://127.0.0.1:{servers.free_port()}"
    cases = [
        ([str(config), "--fetch", "j1"], "one of the two"),
        ([], "one of the two"),
        ([str(config), "--verify", "--skip-prepare"], "cannot be combined"),
        ([str(tmp_path / "missing.yaml")], "does not exist"),
    ]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    cases.append(([str(config), "--results-dir", str(tmp_path / "taken")], "not empty"))
    for argv, message in cases:
        done = _sbench(*argv, "--address", unreachable, capsys=capsys)
        assert done.returncode == 2, (argv, done.stderr)
        assert message in done.stderr, (argv, done.stderr)


def test_the_address_defaults_as_ray_job_submit_does() -> None:
    from sbench.submit.address import dashboard_url, is_this_machine

    assert dashboard_url(None, {}) == "http://127.0.0.1:8265"
    assert dashboard_url(None, {"RAY_ADDRESS": "10.0.0.1:6379"}) == "http://127.0.0.1:8265"  # a GCS address
    assert dashboard_url(None, {"RAY_ADDRESS": "http://10.0.0.1:8265/"}) == "http://10.0.0.1:8265"
    assert dashboard_url("head:8265", {}) == "http://head:8265"
    assert is_this_machine("http://127.0.0.1:8265") and is_this_machine("http://localhost:8265")
    assert not is_this_machine("http://192.0.2.7:8265")  # TEST-NET-1: never this machine
