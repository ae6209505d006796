"""The fault proxy itself: clean pass-through with keep-alive for the real clients (boto3, obstore, the Azure
SDK) against the real servers, exact HTTP/1.1 framing (chunked bodies with trailers, 100-continue, HEAD),
and each fault as the client sees it, for a seeded share of the requests it selects."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.config
import botocore.exceptions
import pytest

from tests import servers
from tests.faults.conftest import FAULTS_BUCKET
from tests.faults.proxy import Fault, FaultProxy, delete_rules, rule


def _s3(port: int, read_timeout: float = 5.0):
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=servers.S3_ACCESS_KEY,
        aws_secret_access_key=servers.S3_SECRET_KEY,
        config=botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=2,
        ),
    )


@pytest.fixture
def s3_client(proxy: FaultProxy, faults_bucket: str) -> Iterator:
    client = _s3(proxy.port, read_timeout=1.0)
    yield client
    client.close()


def test_boto3_and_obstore_pass_through_on_kept_alive_connections(
    proxy: FaultProxy, faults_bucket: str
) -> None:
    import obstore
    from obstore.store import S3Store

    client = _s3(proxy.port)
    big = bytes(range(256)) * 8192  # 2 MiB: boto3 sends `Expect: 100-continue`
    client.put_object(Bucket=faults_bucket, Key="proxy/big", Body=big)
    for i in range(10):
        client.put_object(Bucket=faults_bucket, Key=f"proxy/k{i}", Body=b"v%d" % i)
    assert client.get_object(Bucket=faults_bucket, Key="proxy/big")["Body"].read() == big
    assert client.head_object(Bucket=faults_bucket, Key="proxy/k3")["ContentLength"] == 2
    assert proxy.counts["connections"] == 1 and proxy.counts["requests"] == 13

    store = S3Store(
        faults_bucket,
        endpoint=f"http://127.0.0.1:{proxy.port}",
        region="us-east-1",
        access_key_id=servers.S3_ACCESS_KEY,
        secret_access_key=servers.S3_SECRET_KEY,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    assert [bytes(obstore.get(store, f"proxy/k{i}").bytes()) for i in range(10)] == [
        b"v%d" % i for i in range(10)
    ]
    listed = [m["path"] for batch in obstore.list(store, "proxy") for m in batch]
    obstore.delete(store, listed)
    assert not list(obstore.list(store, "proxy"))
    assert proxy.counts["connections"] <= 3  # boto3's one, then obstore's pool
    client.close()


class _Echo(BaseHTTPRequestHandler):
    """An HTTP/1.1 upstream that echoes request bodies (reading chunked ones, trailers included) and
    answers /chunked with a chunked body."""

    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self) -> None:
        body = self._body()
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (body[:2], body[2:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    do_PUT = do_GET = do_HEAD = do_POST

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def echo_proxy() -> Iterator[FaultProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with FaultProxy(server.server_address[1]) as fault_proxy:
            yield fault_proxy
    finally:
        server.shutdown()
        server.server_close()


def _exchange(sock: socket.socket, request: bytes, method: str = "POST") -> tuple[int, bytes]:
    sock.sendall(request)
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response.status, response.read()


def test_chunked_bodies_trailers_continue_and_head_keep_the_connection_in_step(
    echo_proxy: FaultProxy,
) -> None:
    with socket.create_connection(("127.0.0.1", echo_proxy.port)) as sock:
        chunked = (
            b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        assert _exchange(sock, chunked) == (200, b"abcdefg")
        sock.sendall(b"PUT /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert _exchange(sock, b"hello", "PUT") == (200, b"hello")
        assert _exchange(sock, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD") == (200, b"")
        assert _exchange(sock, b"GET /g HTTP/1.1\r\nHost: x\r\n\r\n", "GET") == (200, b"")
    assert echo_proxy.counts["connections"] == 1 and echo_proxy.counts["pass"] == 4


def test_slowdown_is_s3s_own_503_and_only_for_the_selected_requests(proxy: FaultProxy, s3_client) -> None:
    s3_client.put_object(Bucket=FAULTS_BUCKET, Key="proxy/slow", Body=b"x")
    proxy.set_rules(*delete_rules(Fault.SLOWDOWN))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3_client.delete_object(Bucket=FAULTS_BUCKET, Key="proxy/slow")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(botocore.exceptions.ClientError, match="SlowDown"):
        s3_client.delete_objects(Bucket=FAULTS_BUCKET, Delete={"Objects": [{"Key": "proxy/slow"}]})
    assert s3_client.get_object(Bucket=FAULTS_BUCKET, Key="proxy/slow")["Body"].read() == b"x"
    assert proxy.counts["slowdown:DELETE"] == 1 and proxy.counts["slowdown:POST"] == 1
    assert proxy.counts["connections"] == 1  # an error answer keeps the connection alive
    proxy.set_rules()
    s3_client.delete_object(Bucket=FAULTS_BUCKET, Key="proxy/slow")


def test_server_busy_is_azures_own_503(azurite: servers.LocalServer) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobServiceClient

    with FaultProxy(azurite.port, flavor="azure", seed=1) as azure_proxy:
        service = BlobServiceClient.from_connection_string(
            servers.azurite_connection_string(azure_proxy.port), retry_total=0
        )
        container = service.get_container_client("faults-proxy")
        container.create_container()
        azure_proxy.set_rules(rule(Fault.SLOWDOWN, methods=["PUT"], path=r"/faults-proxy/blob"))
        with pytest.raises(HttpResponseError) as caught:
            container.upload_blob("blob", b"data")
        assert caught.value.status_code == 503 and caught.value.error_code == "ServerBusy"
        azure_proxy.set_rules()
        container.upload_blob("blob", b"data")
        assert container.download_blob("blob").readall() == b"data"
        container.delete_container()


def test_reset_stall_and_delay_as_the_client_sees_them(proxy: FaultProxy, s3_client) -> None:
    s3_client.put_object(Bucket=FAULTS_BUCKET, Key="proxy/f", Body=b"x")
    proxy.set_rules(rule(Fault.RESET, methods=["GET"]))
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        s3_client.get_object(Bucket=FAULTS_BUCKET, Key="proxy/f")
    proxy.set_rules(rule(Fault.STALL, methods=["GET"]))
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        s3_client.get_object(Bucket=FAULTS_BUCKET, Key="proxy/f")
    proxy.release_stalls()
    proxy.set_rules(rule(Fault.DELAY, methods=["HEAD"], delay_ms=400))
    t0 = time.monotonic()
    s3_client.head_object(Bucket=FAULTS_BUCKET, Key="proxy/f")
    assert time.monotonic() - t0 >= 0.4
    counts = proxy.counts
    assert counts["reset:GET"] == 1 and counts["stall:GET"] == 1 and counts["delay:HEAD"] == 1
    proxy.set_rules()
    s3_client.delete_object(Bucket=FAULTS_BUCKET, Key="proxy/f")


def test_share_is_seeded_and_rules_switch_at_runtime(echo_proxy: FaultProxy) -> None:
    def faults_of(fault_proxy: FaultProxy, n: int) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", fault_proxy.port, timeout=5)
        statuses = []
        for _ in range(n):
            conn.request("GET", "/x")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        conn.close()
        return statuses

    echo_proxy.set_rules(rule(Fault.SLOWDOWN, share=0.3, methods=["GET"]))
    first = faults_of(echo_proxy, 100)
    with FaultProxy(echo_proxy.upstream_port, seed=0) as twin:
        twin.set_rules(rule(Fault.SLOWDOWN, share=0.3, methods=["GET"]))
        assert faults_of(twin, 100) == first  # same seed, same requests: same faults
    assert 15 <= first.count(503) <= 45 and first.count(503) + first.count(200) == 100
    echo_proxy.set_rules(rule(Fault.SLOWDOWN, methods=["PUT"]))
    assert faults_of(echo_proxy, 5) == [200] * 5


def test_a_dead_server_behind_the_proxy_is_a_refused_connection() -> None:
    with FaultProxy(servers.free_port()) as orphan:
        conn = http.client.HTTPConnection("127.0.0.1", orphan.port, timeout=5)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.request("GET", "/x")
            conn.getresponse()
        assert orphan.counts["upstream_refused"] == 1
