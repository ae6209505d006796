"""Shared pieces of the engine tests: configs from YAML text, prepared files, and a probing file backend.

ProbeBackend is the real file:// backend with two test hooks around each call: it counts calls in flight per
method (to check per-op concurrency limits) and can pause every call during a time window (an injected
server stall, which no real component can produce on demand).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sbench.config.loader import load_config_text
from sbench.engine.backends import BackendSet
from sbench.storage.file import FileBackend
from sbench.storage.options import BackendOptions
from sbench.storage.uri import parse_uri


def config_from(text: str) -> Any:
    return load_config_text(text).config


def make_files(directory: Path, names: list[str], size: int = 1024) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x" * size)


class ProbeBackend(FileBackend):
    """file:// backend that measures concurrency per method and can stall all calls in a window."""

    def __init__(self, root_uri: str, *, op_sleep_s: float = 0.0) -> None:
        super().__init__(parse_uri(root_uri), BackendOptions())
        self.op_sleep_s = op_sleep_s
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.calls: dict[str, list[str]] = {}
        self.stall_from = 0.0
        self.stall_until = 0.0

    def stall(self, start_in_s: float, length_s: float) -> None:
        """Every call that starts inside [now+start, now+start+length) waits until the window ends."""
        self.stall_from = time.monotonic() + start_in_s
        self.stall_until = self.stall_from + length_s

    def _enter(self, name: str, key: str) -> None:
        with self._lock:
            n = self.in_flight.get(name, 0) + 1
            self.in_flight[name] = n
            self.max_in_flight[name] = max(self.max_in_flight.get(name, 0), n)
            self.calls.setdefault(name, []).append(key)
        now = time.monotonic()
        if self.stall_from <= now < self.stall_until:
            time.sleep(self.stall_until - now)
        if self.op_sleep_s:
            time.sleep(self.op_sleep_s)

    def _exit(self, name: str) -> None:
        with self._lock:
            self.in_flight[name] -= 1

    def get(self, key: str):  # type: ignore[no-untyped-def]
        self._enter("get", key)
        try:
            return super().get(key)
        finally:
            self._exit("get")

    def stat(self, key: str):  # type: ignore[no-untyped-def]
        self._enter("stat", key)
        try:
            return super().stat(key)
        finally:
            self._exit("stat")

    def put(self, key: str, data) -> None:  # type: ignore[no-untyped-def]
        self._enter("put", key)
        try:
            super().put(key, data)
        finally:
            self._exit("put")

    def delete(self, key: str) -> None:
        self._enter("delete", key)
        try:
            super().delete(key)
        finally:
            self._exit("delete")


def backends_with(config: Any, uri: str, backend: Any) -> BackendSet:
    """A BackendSet whose `uri` root is served by `backend`."""
    bs = BackendSet(config)
    bs.adopt(uri, backend)
    return bs
