"""A loopback HTTP/1.1 fault proxy: put it between sbench and a real server to inject storage faults.

Every request is parsed (request line, headers, a Content-Length or chunked body), so client connections stay
keep-alive exactly as boto3 and obstore use them, and each request can be answered on its own terms: passed
to the server, delayed, refused with the store's throttling error (S3 `503 SlowDown`, Azure `503 ServerBusy`),
cut with a TCP reset, or stalled (accepted and never answered). Which requests get which fault is a list of
rules the test swaps at runtime (one phase of a run at a time), each for a share of the requests it matches,
drawn from a seeded random generator so a scenario is repeatable.

Each forwarded request opens its own connection to the server: a server killed and restarted behind the
proxy is then seen by the client exactly as it would be without the proxy (refused while down, fine after),
and no stale server connection ever turns into a spurious client error. A request whose server connection
is refused is answered with a reset, as the dead server itself would.

`Expect: 100-continue` (boto3 sends it for large PUTs) is answered by the proxy itself and dropped from the
forwarded request; SigV4 never signs that header, so signatures stay valid.
"""

from __future__ import annotations

import asyncio
import enum
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate

_HEAD_LIMIT = 1 << 20
_RELAY_CHUNK = 1 << 16


class Fault(enum.Enum):
    """What the proxy does with one request."""

    PASS = "pass"
    DELAY = "delay"
    SLOWDOWN = "slowdown"
    RESET = "reset"
    STALL = "stall"


@dataclass(frozen=True)
class Rule:
    """Apply `fault` to `share` of the requests whose method is in `methods` (all when empty) and whose
    request target (path and query) matches the regular expression `path` (all when None)."""

    fault: Fault
    share: float = 1.0
    methods: frozenset[str] = frozenset()
    path: str | None = None
    delay_ms: int = 0

    def matches(self, method: str, target: str) -> bool:
        return (not self.methods or method in self.methods) and (
            self.path is None or re.search(self.path, target) is not None
        )


def rule(
    fault: Fault, share: float = 1.0, methods: Iterable[str] = (), path: str | None = None, delay_ms: int = 0
) -> Rule:
    """A Rule with `methods` given as any iterable of method names."""
    return Rule(fault, share, frozenset(m.upper() for m in methods), path, delay_ms)


def delete_rules(fault: Fault, share: float = 1.0) -> tuple[Rule, Rule]:
    """Rules for every way a client deletes: DELETE, and the bulk deletes (S3 `POST /bucket?delete`, Azure
    `POST /container?restype=container&comp=batch`), which obstore uses even for one key."""
    return rule(fault, share, ["DELETE"]), rule(
        fault, share, ["POST"], path=r"[?&](delete(=|&|$)|comp=batch)"
    )


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    raw_head: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        return "close" not in connection and (self.version == "HTTP/1.1" or "keep-alive" in connection)

    def forwarded_head(self) -> bytes:
        """The head as sent to the server: without Expect (the proxy answered it)."""
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "expect"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """One message head up to and including the blank line; None on a clean end of stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None


async def _relay_body(
    reader: asyncio.StreamReader, headers: list[tuple[str, str]], writer: asyncio.StreamWriter | None
) -> None:
    """Copy one message body (Content-Length or chunked, trailers included) from reader to writer (or
    discard it when writer is None). A message with neither header has no body (requests) - responses that
    end at close are handled by the caller."""
    values = {k.lower(): v for k, v in headers}
    if "chunked" in values.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            await _send(writer, size_line)
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    line = await reader.readuntil(b"\r\n")
                    await _send(writer, line)
                    if line == b"\r\n":
                        return
            await _copy(reader, writer, size + 2)
    await _copy(reader, writer, int(values.get("content-length", "0") or 0))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, count: int) -> None:
    while count > 0:
        data = await reader.readexactly(min(count, _RELAY_CHUNK))
        count -= len(data)
        await _send(writer, data)


async def _send(writer: asyncio.StreamWriter | None, data: bytes) -> None:
    if writer is not None:
        writer.write(data)
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed server or a middlebox dropping state does."""
    if writer.transport.is_closing():
        return  # the peer is gone already
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """The proxy: `FaultProxy(server_port, flavor="s3"|"azure", seed=N)`, then `.port`, `.set_rules(...)`,
    `.counts`, `.release_stalls()`, `.close()`. It runs its own event loop on a daemon thread."""

    def __init__(self, upstream_port: int, flavor: str = "s3", seed: int = 0) -> None:
        if flavor not in ("s3", "azure"):
            raise ValueError(f"flavor must be 's3' or 'azure', not {flavor!r}")
        self.upstream_port = upstream_port
        self.flavor = flavor
        self._random = random.Random(seed)
        self._rules: tuple[Rule, ...] = ()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._stalled: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        )
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._thread.start()

    # --- control, from the test's thread -------------------------------------------------------------------

    def set_rules(self, *rules: Rule) -> None:
        """Replace the rules (no rule: every request passes). The first rule that matches a request decides
        it: that request gets the rule's fault with the rule's probability, else it passes."""
        with self._lock:
            self._rules = tuple(rules)

    @property
    def counts(self) -> Counter[str]:
        """A copy of the counters: `requests`, `seen:<METHOD>`, `connections`, `upstream_refused`, and per
        fault both `<fault>` and `<fault>:<METHOD>` (e.g. `slowdown:DELETE`)."""
        with self._lock:
            return Counter(self._counts)

    def release_stalls(self) -> None:
        """Reset every stalled connection (the client then sees its request fail)."""
        self._call(self._release_stalls)

    def close(self) -> None:
        """Stop listening, cut every connection, stop the loop."""
        if not self._loop.is_running():
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(fn(), self._loop).result(5)

    async def _release_stalls(self) -> None:
        for writer in list(self._stalled):
            _reset(writer)
        self._stalled.clear()

    async def _shutdown(self) -> None:
        self._server.close()
        await self._release_stalls()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- the event loop's side ------------------------------------------------------------------------------

    def _decide(self, method: str, target: str) -> Rule | None:
        with self._lock:
            self._counts["requests"] += 1
            self._counts[f"seen:{method}"] += 1
            for candidate in self._rules:
                if candidate.matches(method, target):
                    if self._random.random() < candidate.share:
                        self._counts[candidate.fault.value] += 1
                        self._counts[f"{candidate.fault.value}:{method}"] += 1
                        return candidate
                    break
            self._counts["pass"] += 1
            return None

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count("connections")
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            _reset(writer)  # a broken or garbled exchange: drop the client as a real server would
        except asyncio.CancelledError:  # the proxy is closing: end quietly (asyncio logs a re-raised one)
            _reset(writer)
        finally:
            if writer in self._stalled:
                self._stalled.discard(writer)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; True when the client connection stays open for the next one."""
        raw = await _read_head(reader)
        if raw is None:
            return False
        request_line, headers = _parse_head(raw)
        method, target, version = request_line.split(" ", 2)
        request = _Request(method.upper(), target, version, headers, raw)
        chosen = self._decide(request.method, target)
        fault = chosen.fault if chosen else Fault.PASS
        if fault is Fault.RESET:
            _reset(writer)
            return False
        if fault is Fault.STALL:
            self._stalled.add(writer)
            while await reader.read(_RELAY_CHUNK):  # swallow whatever comes, answer nothing
                pass
            return False
        if fault is Fault.DELAY:
            await asyncio.sleep(chosen.delay_ms / 1000)  # type: ignore[union-attr]
        expects_continue = (request.header("expect") or "").lower() == "100-continue"
        if fault is Fault.SLOWDOWN:
            if expects_continue:  # the client holds its body back: answer now and close
                await _send(writer, self._throttle_response(request, keep_alive=False))
                return False
            await _relay_body(reader, headers, None)
            await _send(writer, self._throttle_response(request, keep_alive=request.keep_alive))
            return request.keep_alive
        return await self._forward(request, reader, writer, expects_continue)

    async def _forward(
        self,
        request: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        expects_continue: bool,
    ) -> bool:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port, limit=_HEAD_LIMIT
            )
        except OSError:
            self._count("upstream_refused")
            _reset(writer)
            return False
        try:
            if expects_continue:
                await _send(writer, b"HTTP/1.1 100 Continue\r\n\r\n")
            await _send(up_writer, request.forwarded_head())
            await _relay_body(reader, request.headers, up_writer)
            while True:
                head = await _read_head(up_reader)
                if head is None:
                    raise ConnectionResetError("the server closed the connection before answering")
                status_line, headers = _parse_head(head)
                await _send(writer, head)
                status = int(status_line.split(" ", 2)[1])
                if status >= 200 or status == 101:
                    break
            keep_alive = request.keep_alive and "close" not in {
                v.lower() for k, v in headers if k.lower() == "connection"
            }
            values = {k.lower() for k, _ in headers}
            if request.method == "HEAD" or status in (204, 304):
                return keep_alive
            if "content-length" in values or "transfer-encoding" in values:
                await _relay_body(up_reader, headers, writer)
                return keep_alive
            while data := await up_reader.read(_RELAY_CHUNK):  # body ends when the server closes
                await _send(writer, data)
            return False
        finally:
            up_writer.close()

    def _throttle_response(self, request: _Request, keep_alive: bool) -> bytes:
        """The store's own throttling answer, so each SDK classifies it as it would a real one."""
        with self._lock:
            number = self._counts["requests"]
        if self.flavor == "s3":
            code, extra = "SlowDown", [("x-amz-request-id", f"FAULT{number:012d}")]
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please '
                f"reduce your request rate.</Message><Resource>{request.target}</Resource>"
                f"<RequestId>FAULT{number:012d}</RequestId></Error>"
            )
        else:
            code, extra = (
                "ServerBusy",
                [("x-ms-error-code", "ServerBusy"), ("x-ms-request-id", f"fault-{number:012d}")],
            )
            body = (
                '<?xml version="1.0" encoding="utf-8"?>\n<Error><Code>ServerBusy</Code><Message>The '
                "server is currently unable to receive requests. Please retry your request.</Message>"
                "</Error>"
            )
        payload = body.encode()
        headers = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(payload))),
            ("Date", formatdate(usegmt=True)),
            *extra,
            ("Connection", "keep-alive" if keep_alive else "close"),
        ]
        head = f"HTTP/1.1 503 {'Slow Down' if code == 'SlowDown' else 'Server Busy'}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        return head.encode() + (b"" if request.method == "HEAD" else payload)
