"""Name resolution with a deadline: getaddrinfo has no timeout of its own, and a preflight must not hang on a
dead resolver for the libc default of tens of seconds."""

from __future__ import annotations

import queue
import socket
import threading

DNS_TIMEOUT_S = 3.0


def resolve_host(host: str, port: int, timeout: float = DNS_TIMEOUT_S) -> list[str]:
    """Addresses of `host` in resolver order; OSError or TimeoutError. A lookup that times out is left to
    finish in its daemon thread."""
    box: queue.Queue[list[str] | OSError] = queue.Queue(1)

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            box.put(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except OSError as exc:
            box.put(exc)

    threading.Thread(target=lookup, name="preflight-dns", daemon=True).start()
    try:
        got = box.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"DNS lookup of {host} took longer than {timeout:g} s") from None
    if isinstance(got, OSError):
        raise got
    return got
