"""s3dlio's op-log format, stated once: the 13 columns, the op names, the time format, and a typed row.

The format is what s3dlio (the Rust library under sai3-bench) writes in `s3_logger.rs` and
`object_store_logger.rs`, so sai3-bench, s3dlio and sbench read each other's logs:

    idx thread op client_id n_objects bytes endpoint file error start first_byte end duration_ns

- tab-separated, one header line, one row per storage call, not sorted at capture;
- `start`, `first_byte`, `end` are RFC 3339 UTC times with exactly nine fractional digits and `Z`
  (humantime's `format_rfc3339_nanos`), so for these rows text order is time order;
- `first_byte` is the end for a GET, the start for a PUT, empty for metadata calls;
- `endpoint` is the scheme and bucket (`s3://bucket`, `az://account`; `file://` alone for local paths) and
  `file` the URI without its scheme (`bucket/key`, `/abs/path`), so `scheme://file` is the object's URI;
- op names: GET, GET_RANGE, PUT, LIST, HEAD (a stat), DELETE, and s3dlio's DELETE_BATCH, DELETE_PREFIX,
  CREATE_CONTAINER, DELETE_CONTAINER; sbench adds MKDIR and RMDIR (its directory ops) and reads STAT as
  HEAD, as s3dlio's reader does.
"""

from __future__ import annotations

import calendar
import time
from typing import NamedTuple

from sbench.metrics.buckets import OpClass

COLUMNS = (
    "idx",
    "thread",
    "op",
    "client_id",
    "n_objects",
    "bytes",
    "endpoint",
    "file",
    "error",
    "start",
    "first_byte",
    "end",
    "duration_ns",
)
HEADER = "\t".join(COLUMNS) + "\n"
#: the index of `start`, the column logs are sorted by
START_COLUMN = COLUMNS.index("start")

GET, GET_RANGE, PUT, LIST, HEAD, DELETE, MKDIR, RMDIR = (
    "GET",
    "GET_RANGE",
    "PUT",
    "LIST",
    "HEAD",
    "DELETE",
    "MKDIR",
    "RMDIR",
)
#: what sbench writes, by the small code its capture stores per call (the index into this tuple)
OP_NAMES = (GET, GET_RANGE, PUT, LIST, HEAD, DELETE, MKDIR, RMDIR)
OP_CODE = {name: code for code, name in enumerate(OP_NAMES)}
#: every op name a log may hold, and the result class (GET, PUT, META) each one counts in
OP_CLASS: dict[str, OpClass] = {
    GET: OpClass.GET,
    GET_RANGE: OpClass.GET,
    PUT: OpClass.PUT,
    LIST: OpClass.META,
    HEAD: OpClass.META,
    "STAT": OpClass.META,
    DELETE: OpClass.META,
    MKDIR: OpClass.META,
    RMDIR: OpClass.META,
    "DELETE_BATCH": OpClass.META,
    "DELETE_PREFIX": OpClass.META,
    "CREATE_CONTAINER": OpClass.META,
    "DELETE_CONTAINER": OpClass.META,
}
NS = 1_000_000_000


class OpRow(NamedTuple):
    """One row of an op-log, typed: times are integer nanoseconds since the Unix epoch (UTC)."""

    idx: int
    thread: int
    op: str
    client_id: str
    n_objects: int
    bytes: int
    endpoint: str
    file: str
    error: str
    start_ns: int
    first_byte_ns: int | None
    end_ns: int
    duration_ns: int

    @property
    def op_class(self) -> OpClass:
        return OP_CLASS[self.op]

    @property
    def uri(self) -> str:
        """The object's (or prefix's) full URI: the endpoint's scheme and the file column."""
        scheme = self.endpoint.split("://", 1)[0]
        return f"{scheme}://{self.file}"


# -- where a call went ------------------------------------------------------------------------------------


def endpoint_of(uri: str) -> str:
    """s3dlio's `extract_endpoint`: `s3://bucket/key` -> `s3://bucket`; `file:///p` -> `file://`."""
    if "://" not in uri:
        return "unknown"
    scheme, rest = uri.split("://", 1)
    if scheme in ("file", "direct"):
        return f"{scheme}://"
    cut = rest.find("/")
    return f"{scheme}://{rest[:cut]}" if cut >= 0 else uri


def file_prefix(root_uri: str) -> str:
    """What the `file` column of a key under backend root `root_uri` starts with: the root without its
    scheme (s3dlio's `strip_uri_scheme`), without a query (`null:///b/?latency=1ms`), ending in `/`."""
    root = root_uri.split("?", 1)[0]
    rest = root.split("://", 1)[1] if "://" in root else root
    return rest.rstrip("/") + "/"


# -- times ------------------------------------------------------------------------------------------------


class TimeFormat:
    """Nanosecond epoch times <-> RFC 3339 text, caching the date-and-second part: rows of one second share
    it, so formatting or parsing a time costs one division and one small integer conversion."""

    __slots__ = ("_parsed", "_prefix", "_prefix_s")

    def __init__(self) -> None:
        self._prefix_s = -1
        self._prefix = ""
        self._parsed: dict[str, int] = {}

    def text(self, ns: int) -> str:
        seconds, frac = divmod(ns, NS)
        if seconds != self._prefix_s:
            self._prefix_s = seconds
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        return f"{self._prefix}{frac:09d}Z"

    def ns(self, text: str) -> int:
        """Parse `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)`; ValueError for anything else."""
        if len(text) < 20 or text[10] != "T" or text[19] not in ".Z+-":
            raise ValueError(f"not an RFC 3339 time: {text!r}")
        head = text[:19]
        seconds = self._parsed.get(head)
        if seconds is None:
            seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
            if len(self._parsed) > 4096:
                self._parsed.clear()
            self._parsed[head] = seconds
        tail = text[19:]
        frac = 0
        if tail.startswith("."):
            end = 1
            while end < len(tail) and tail[end].isdigit():
                end += 1
            digits = tail[1:end]
            if not digits or len(digits) > 9:
                raise ValueError(f"bad fraction of a second in {text!r}")
            frac = int(digits.ljust(9, "0"))
            tail = tail[end:]
        if tail == "Z":
            offset = 0
        elif len(tail) == 6 and tail[0] in "+-" and tail[3] == ":" and (tail[1:3] + tail[4:]).isdigit():
            offset = (int(tail[1:3]) * 3600 + int(tail[4:]) * 60) * (1 if tail[0] == "+" else -1)
        else:
            raise ValueError(f"no time zone (Z or +HH:MM) in {text!r}")
        return (seconds - offset) * NS + frac


def error_text(exc: BaseException) -> str:
    """The `error` column of a failed call: its class and message on one line, credentials removed (a
    StorageError's class is sbench's error class, `not_found: ...`; anything else its type name)."""
    from sbench.storage.base import StorageError
    from sbench.storage.scrub import scrub_message

    if isinstance(exc, StorageError):
        text = f"{exc.kind.value}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(scrub_message(text).split())
