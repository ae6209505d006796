"""Writing op-logs: the header, rows numbered in file order, zstd when the name ends in `.zst`.

The file appears under its name only when it is complete (written as `NAME.tmp`, renamed on close), so a
reader never sees half a log. `idx` is the row's position in the file: a sorted or merged log is numbered
afresh, and a merged log's numbers never repeat.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import zstandard

from sbench.oplog.format import GET, GET_RANGE, HEADER, OP_NAMES, PUT, TimeFormat

#: zstd level of the logs users keep (s3dlio writes level 1 while capturing; these are written once, after)
LEVEL = 3
_BUFFER = 1 << 20


def compressed_name(path: Path) -> bool:
    return path.name.endswith(".zst")


class LogWriter:
    """An op-log being written: `add(rest)` appends a row given without its idx column."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._tmp = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._tmp, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed by close()/discard()
        self._out: BinaryIO = self._file
        if compressed_name(path):
            self._out = zstandard.ZstdCompressor(level=LEVEL).stream_writer(self._file, closefd=False)  # type: ignore[assignment]
        self._pending: list[str] = [HEADER]
        self._pending_size = 0

    def add(self, rest: str) -> None:
        """One row: `rest` is everything after the idx column, ending in a newline."""
        self._pending.append(f"{self.rows}\t{rest}")
        self.rows += 1
        self._pending_size += 1
        if self._pending_size >= 4096:
            self._flush()

    def _flush(self) -> None:
        self._out.write("".join(self._pending).encode("utf-8"))
        self._pending = []
        self._pending_size = 0

    def close(self) -> Path:
        """Finish the file and give it its name."""
        self._flush()
        if self._out is not self._file:
            self._out.close()
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Drop a log that could not be completed."""
        try:
            if self._out is not self._file:
                self._out.close()
        finally:
            self._file.close()
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


class RawFormat:
    """A captured call (see oplog.capture for its tuple) as the text of its row after the idx column."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.times = TimeFormat()

    def rest(self, row: tuple) -> str:  # type: ignore[type-arg]
        t0, t1, code, site, key, nbytes, nobj, error, thread = row
        times = self.times
        start, end = times.text(t0), times.text(t1)
        op = OP_NAMES[code]
        first = end if op in (GET, GET_RANGE) else start if op == PUT else ""
        endpoint, prefix = site
        return (
            f"{thread}\t{op}\t{self.client_id}\t{nobj}\t{nbytes}\t{endpoint}\t{prefix}{key}\t{error or ''}\t"
            f"{start}\t{first}\t{end}\t{max(0, t1 - t0)}\n"
        )
