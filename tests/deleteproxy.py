"""A minimal loopback HTTP proxy in front of one local server that answers an error (503 SlowDown by default)
for a chosen share of the delete requests, and forwards everything else unchanged.

A delete request is a `DELETE`, or a `POST ...?delete` (S3 DeleteObjects, which obstore sends even for a
single key).

Small on purpose: the cleanup tests need "20 % of DELETEs are throttled" now; the general fault proxy of
the fault-injection suite (tests/faults/) can replace it. Requests are forwarded with their own Host header,
so S3 signatures made for the proxy's address still verify upstream.
"""

from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
}
_S3_ERRORS = {
    503: ("SlowDown", "Please reduce your request rate."),
    403: ("AccessDenied", "Access Denied"),
    500: ("InternalError", "We encountered an internal error. Please try again."),
}


class DeleteProxy:
    """`share` of the delete requests get `status` (an S3 error body); the rest go to 127.0.0.1:upstream."""

    def __init__(
        self,
        upstream_port: int,
        *,
        share: float = 0.0,
        status: int = 503,
        seed: int = 1,
    ) -> None:
        self.upstream_port = upstream_port
        self.share = share
        self.status = status
        self.injected = 0
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: the test output is enough
                return

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                if proxy._inject(self.command, self.path):
                    code, message = _S3_ERRORS.get(proxy.status, ("Error", "injected by the test proxy"))
                    payload = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>{message}</Message></Error>"
                    ).encode()
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                status, headers, data = proxy._forward(self.command, self.path, self.headers.items(), body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                length = dict((k.lower(), v) for k, v in headers).get("content-length")
                head = self.command == "HEAD" and length
                self.send_header("Content-Length", length if head else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="delete-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _inject(self, method: str, path: str) -> bool:
        query = path.partition("?")[2].split("&")
        if not (method == "DELETE" or (method == "POST" and "delete" in query)):
            return False
        with self._lock:
            hit = self._rng.random() < self.share
            if hit:
                self.injected += 1
            else:
                self.forwarded += 1
            return hit

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):  # a kept-alive upstream connection may have been closed meanwhile
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
                self._local.conn = conn
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                sized = bool(body)
                for name, value in headers:
                    sized = sized or name.lower() == "content-length"
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        conn.putheader(name, value)
                if sized:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def __enter__(self) -> DeleteProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
