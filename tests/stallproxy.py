"""A minimal fault server for the stop, stall and retry tests: an HTTP proxy on 127.0.0.1 in front of a real
server (SeaweedFS) that passes requests through, stalls them (reads the request, never answers), delays them,
or answers a given status (503 SlowDown) to the next N of them. Without an upstream it is a server that
accepts and never answers.

It is small on purpose (the general fault proxy of the fault-injection suite lives in tests/faults/). Each
client connection carries one request: the request is forwarded with `Connection: close` and the upstream's
answer is piped back until the upstream closes, so the proxy never has to parse a response. The mode is read
when a request has arrived, so switching it affects the next request of every client at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class Counts:
    """What the proxy saw: requests received, and how many it stalled, failed, delayed or passed."""

    requests: int = 0
    stalled: int = 0
    failed: int = 0
    passed: int = 0


class StallProxy:
    """`mode` is one of pass | stall | delay; `fail_next(n)` answers the next n requests with `status`."""

    def __init__(self, upstream_port: int | None = None, *, mode: str = "pass", delay_s: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.mode = mode if upstream_port is not None else "stall"
        self.delay_s = delay_s
        self.status = 503
        self.counts = Counts()
        self._fail = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="stallproxy-accept", daemon=True).start()

    # -- control --

    def set_mode(self, mode: str, delay_s: float | None = None) -> None:
        if mode not in ("pass", "stall", "delay"):
            raise ValueError(f"unknown mode {mode!r}")
        if delay_s is not None:
            self.delay_s = delay_s
        self.mode = mode

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next `n` requests with `status` (then go back to the mode)."""
        with self._lock:
            self._fail, self.status = n, status

    def close(self) -> None:
        """Stop accepting and drop every connection (stalled clients see the connection close)."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> StallProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving --

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="stallproxy-conn", daemon=True).start()

    def _decide(self) -> str:
        with self._lock:
            self.counts.requests += 1
            if self._fail > 0:
                self._fail -= 1
                self.counts.failed += 1
                return "fail"
            if self.mode == "stall":
                self.counts.stalled += 1
            else:
                self.counts.passed += 1
            return self.mode

    def _serve(self, conn: socket.socket) -> None:
        try:
            head, rest = _read_head(conn)
            if head is None:
                return
            action = self._decide()
            if action == "stall":
                self._closed.wait()
                return
            lines = head.split(b"\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
            expects = headers.get(b"expect", b"").lower() == b"100-continue"
            if action == "fail":
                if not expects:
                    _read_body(conn, headers, rest)
                conn.sendall(
                    b"HTTP/1.1 %d SlowDown\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n%s" % (self.status, len(_SLOW_DOWN), _SLOW_DOWN)
                )
                return
            if expects:
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = _read_body(conn, headers, rest)
            if action == "delay" and self._closed.wait(self.delay_s):
                return
            self._forward(conn, lines, body)
        except OSError:
            return
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _forward(self, conn: socket.socket, lines: list[bytes], body: bytes) -> None:
        assert self.upstream_port is not None
        kept = [
            ln
            for ln in lines[1:]
            if ln and ln.split(b":", 1)[0].strip().lower() not in (b"connection", b"expect", b"keep-alive")
        ]
        request = b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""]) + body
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
            up.sendall(request)
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    return
                conn.sendall(chunk)


def _read_head(conn: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_body(conn: socket.socket, headers: dict[bytes, bytes], rest: bytes) -> bytes:
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        data = rest
        while not data.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data  # forwarded as it came, still chunked
    length = int(headers.get(b"content-length", b"0") or 0)
    data = rest
    while len(data) < length:
        chunk = conn.recv(min(65536, length - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def wait_for(predicate, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll `predicate()` until it is true or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
