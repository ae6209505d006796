"""Reading op-logs as a stream: lines with their numbers, or typed rows, in constant memory.

A log is zstd-compressed when its first bytes are zstd's magic number (whatever its name: a `.zst` name is
what writers go by, a reader need not trust it), plain text otherwise. The first line must be the 13-column
header; empty lines and `#` comments are skipped, as s3dlio's reader does. Anything else that does not
parse stops the read with `OpLogFormatError` naming the file and the line (exit 2 in every tool), so a
damaged log is never half-used. Replay streams from `read_rows` (an iterator of `OpRow`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from sbench.errors import ConfigError
from sbench.oplog.format import COLUMNS, HEADER, OP_CLASS, START_COLUMN, OpRow, TimeFormat

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_BUFFER = 1 << 20


class OpLogFormatError(ConfigError):
    """A log that is not in s3dlio's op-log format, at a file and line (exit 2)."""

    def __init__(self, path: Path | str, line: int, why: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(
            f"{where}: {why}",
            hint="an op-log is s3dlio's 13-column TSV (header: " + " ".join(COLUMNS) + "), plain or zstd",
        )
        self.path = str(path)
        self.line = line


def open_binary(path: Path) -> BinaryIO:
    """The log's bytes, decompressed when it is a zstd stream."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    except OSError as exc:
        raise OpLogFormatError(path, 0, f"cannot open: {exc.strerror or exc}") from exc
    return decompressed(raw)


def decompressed(raw: io.BufferedReader) -> BinaryIO:
    """`raw`'s bytes, decompressed when they start as a zstd stream (closing the result closes `raw`)."""
    if raw.peek(4)[:4] == ZSTD_MAGIC:
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(stream, _READ_BUFFER)  # type: ignore[arg-type]
    return raw


def iter_lines(path: Path | str, stream: BinaryIO | None = None) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) of every data row, after checking the header; from the
    file at `path`, or from `stream` (decompressed bytes) named `path` in messages."""
    stream = stream if stream is not None else open_binary(Path(path))
    lineno = 0
    try:
        try:
            for lineno, raw in enumerate(stream, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise OpLogFormatError(path, lineno, f"not UTF-8 text ({exc.reason})") from exc
                if lineno == 1:
                    if line.rstrip("\r\n") != HEADER.rstrip("\n"):
                        raise OpLogFormatError(path, 1, f"not an op-log header: {line.rstrip()[:120]!r}")
                    continue
                line = line.rstrip("\r\n")
                if not line or line.startswith("#"):
                    continue
                yield lineno, line
        except zstandard.ZstdError as exc:
            raise OpLogFormatError(path, lineno + 1, f"damaged zstd stream ({exc})") from exc
        if lineno == 0:
            raise OpLogFormatError(path, 1, "empty file (no header)")
    finally:
        stream.close()


class RowParser:
    """Turns one data line into an OpRow (or says why it cannot), keeping the time cache between lines."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.times = TimeFormat()

    def fields(self, lineno: int, line: str) -> list[str]:
        fields = line.split("\t")
        if len(fields) != len(COLUMNS):
            raise OpLogFormatError(self.path, lineno, f"{len(fields)} columns, expected {len(COLUMNS)}")
        return fields

    def start_ns(self, lineno: int, line: str) -> int:
        """Only the start time (for sorting), checking the column count."""
        fields = self.fields(lineno, line)
        return self._time(lineno, "start", fields[START_COLUMN])

    def row(self, lineno: int, line: str) -> OpRow:
        f = self.fields(lineno, line)
        op = f[2]
        if op not in OP_CLASS:
            raise OpLogFormatError(self.path, lineno, f"unknown op {op!r} (known: {', '.join(OP_CLASS)})")
        start = self._time(lineno, "start", f[9])
        end = self._time(lineno, "end", f[11])
        return OpRow(
            idx=self._int(lineno, "idx", f[0]),
            thread=self._int(lineno, "thread", f[1]),
            op=op,
            client_id=f[3],
            n_objects=self._int(lineno, "n_objects", f[4]),
            bytes=self._int(lineno, "bytes", f[5]),
            endpoint=f[6],
            file=f[7],
            error=f[8],
            start_ns=start,
            first_byte_ns=self._time(lineno, "first_byte", f[10]) if f[10] else None,
            end_ns=end,
            duration_ns=self._int(lineno, "duration_ns", f[12]) if f[12] else max(0, end - start),
        )

    def _int(self, lineno: int, column: str, text: str) -> int:
        if not text.isdigit():
            raise OpLogFormatError(self.path, lineno, f"{column}: not a whole number: {text!r}")
        return int(text)

    def _time(self, lineno: int, column: str, text: str) -> int:
        try:
            return self.times.ns(text)
        except ValueError as exc:
            raise OpLogFormatError(self.path, lineno, f"{column}: {exc}") from exc


def read_rows(path: Path) -> Iterator[OpRow]:
    """Every row of the log at `path`, typed, in file order (constant memory)."""
    parser = RowParser(path)
    for lineno, line in iter_lines(path):
        yield parser.row(lineno, line)
