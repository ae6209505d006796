"""Which cluster `sbench submit` talks to, and whether it runs on this machine (no Ray imported: usage
errors are reported before Ray's seconds of import)."""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.parse

import psutil

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


def dashboard_url(address: str | None, environ: dict[str, str] | None = None) -> str:
    """--address, else RAY_API_SERVER_ADDRESS, else an http(s) RAY_ADDRESS, else Ray's default."""
    env = os.environ if environ is None else environ
    ray_address = env.get("RAY_ADDRESS", "")
    address = (
        address
        or env.get("RAY_API_SERVER_ADDRESS")
        or (ray_address if ray_address.startswith(("http://", "https://")) else "")
        or DEFAULT_ADDRESS
    )
    if "://" not in address:
        address = f"http://{address}"
    return address.rstrip("/")


def is_this_machine(url: str) -> bool:
    """The dashboard's host is a loopback address or one of this machine's own addresses."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        try:
            host = socket.gethostbyname(host)
        except OSError:
            return False
    own = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    return host in own
