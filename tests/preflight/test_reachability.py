"""Endpoint reachability before any API call: DNS, TCP and a real TLS handshake against a local TLS server."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.preflight.object_storage import Access, check_reachable
from sbench.preflight.plan import RootPlan
from sbench.preflight.result import CheckList, ErrorType, Level


def reach(endpoint: str) -> CheckList:
    checks = CheckList(endpoint="s3://bucket/p/")
    access = Access(endpoint, "AWS_ENDPOINT_URL", "env", ("AWS_ENDPOINT_URL",))
    check_reachable("s3", access, RootPlan(uri="s3://bucket/p/", source="target"), checks)
    return checks


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 with a self-signed certificate for IP 127.0.0.1 (made with openssl)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr.strip()[-300:]}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], cert
    stop.set()
    thread.join(5)
    listener.close()


def test_untrusted_certificate_is_a_network_error_naming_the_ca_setting(tls_server, monkeypatch) -> None:
    port, _cert = tls_server
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    (check,) = reach(f"https://127.0.0.1:{port}").checks
    assert (check.level, check.error_type) == (Level.ERROR, ErrorType.NETWORK)
    assert "TLS handshake" in check.message and "AWS_CA_BUNDLE" in check.suggestion


def test_trusted_certificate_passes_with_the_tls_version(tls_server, monkeypatch) -> None:
    port, cert = tls_server
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    (check,) = reach(f"https://127.0.0.1:{port}").checks
    assert check.level is Level.SUCCESS and check.details["tls_version"].startswith("TLS")


def test_unresolvable_host_is_a_network_error() -> None:
    (check,) = reach("http://no-such-endpoint.invalid:9000").checks
    assert (check.level, check.error_type) == (Level.ERROR, ErrorType.NETWORK)
    assert "cannot resolve no-such-endpoint.invalid" in check.message
    assert "AWS_ENDPOINT_URL" in check.suggestion and "`target`" in check.suggestion


def test_closed_port_is_a_network_error_asking_whether_the_endpoint_is_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (check,) = reach(f"http://127.0.0.1:{port}").checks
    assert check.error_type is ErrorType.NETWORK and "refused" in check.message
    assert f"is the endpoint http://127.0.0.1:{port} up?" in check.suggestion
