"""Files of records for sbench's own passing use: a capture's raw part and the runs of an external sort.

A record is one `marshal` dump (tuples of ints, strings and None, dumped and loaded in C, a fraction of
what formatting a TSV line costs) behind a 4-byte length, in one zstd stream at level 1, so the writer
spends its time in C with the GIL released. These files are transient (read back by the same sbench
version, then deleted), which is what marshal's format allows; what users read is the TSV op-log.
"""

from __future__ import annotations

import io
import marshal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zstandard

_LEN = 4
#: zstd level for transient files: the fastest level still shrinks raw rows 4-6x
LEVEL = 1


class RecordWriter:
    """Appends records to `path`; `write` may be called from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._stream = zstandard.ZstdCompressor(level=LEVEL).stream_writer(self._file, closefd=False)
        self._lock = threading.Lock()
        self.records = 0

    def write(self, record: Any) -> None:
        data = marshal.dumps(record)
        with self._lock:
            self._stream.write(len(data).to_bytes(_LEN, "little"))
            self._stream.write(data)
            self.records += 1

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            try:
                self._stream.close()
            finally:
                self._file.close()


def read_records(path: Path) -> Iterator[Any]:
    """The records of a file written by RecordWriter, one at a time (constant memory)."""
    with open(path, "rb") as raw:
        reader = io.BufferedReader(
            zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), 1 << 16
        )
        while True:
            head = reader.read(_LEN)
            if not head:
                return
            size = int.from_bytes(head, "little")
            data = reader.read(size)
            if len(head) != _LEN or len(data) != size:
                raise EOFError(f"{path}: truncated record file")
            yield marshal.loads(data)
