"""AWS S3 server access log records: parsing one line and what it becomes in an op-log.

The format is AWS's documented "Amazon S3 server access log format": one request per line, fields
separated by spaces, `-` for a value that is unknown or does not apply, the time in brackets
(`[06/Feb/2019:00:00:38 +0000]`, `%d/%b/%Y:%H:%M:%S %z`, one-second resolution), the Request-URI, the
referrer and the user agent in double quotes (they may hold spaces). The fields, in order, are `FIELDS`;
the first 18 are every record's (the original format, up to the version id), the later ones were added
over the years, and AWS may add more at the end: a record needs the first 18 and any fields past them are
ignored. Records are in no particular order, within a file or across files.

What a request becomes (`classify`):

| operation                | op-log row                                                             |
|--------------------------|------------------------------------------------------------------------|
| REST.GET.OBJECT          | GET, bytes = bytes sent; GET_RANGE when the status is 206 (a range)    |
| REST.PUT.OBJECT          | PUT, bytes = object size                                               |
| REST.HEAD.OBJECT         | HEAD (a stat, s3dlio's name; STAT reads the same), bytes = object size |
| REST.DELETE.OBJECT       | DELETE                                                                 |
| REST.GET.BUCKET          | LIST of the request's `prefix` (n_objects 0: the log does not say)     |
| REST.POST.UPLOADS        | multipart initiation: folded into the upload's PUT                     |
| REST.PUT.PART            | multipart part: folded (its object size counts towards the upload's)   |
| REST.POST.UPLOAD         | multipart completion: one PUT of the whole object (see below)          |
| REST.DELETE.UPLOAD       | multipart abort: folded (the upload writes nothing)                    |

- times: start = the request time, end = start + total time (ms), duration = total time (0 when `-`);
- the key is URL-decoded (`%20` -> space; `+` stays `+`, a legal key character); `endpoint` is
  `s3://BUCKET` and `file` `BUCKET/KEY`, as sbench's S3 capture writes them;
- a status other than 2xx is an error: the `error` column says `HTTP 503 SlowDown` (status and S3 error
  code), and the row's bytes are 0 (nothing of the object moved), as in a captured log;
- a multipart upload becomes one PUT of the key at the completion's time, sized by the completion's
  object size or, when that is `-`, by the sum of the upload's parts (matched by `uploadId`); the replay
  writes the object in one PUT rather than re-enacting its parts.

Everything else is skipped with a reason (`SKIP_REASONS`), never silently: other REST operations (ACLs,
copies, versions listings, bucket configuration...), operations that are not a client's REST request
(`WEBSITE.*`, `BATCH.DELETE.OBJECT`, whose one request is a multi-object delete, `SOAP.*`, S3's own
lifecycle `S3.*`), object operations without a key, keys a TSV cannot hold (a tab or newline), and lines
that do not parse.
"""

from __future__ import annotations

import calendar
import re
from typing import NamedTuple
from urllib.parse import parse_qs, unquote

from sbench.oplog.format import DELETE, GET, GET_RANGE, HEAD, LIST, NS, PUT

FIELDS = (
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
    "source_region",
)
#: fields every record has (the original format ends with the version id)
MIN_FIELDS = FIELDS.index("version_id") + 1
_F = {name: i for i, name in enumerate(FIELDS)}

#: why a line gave no row, each with what it means (the import report's keys)
SKIP_REASONS = {
    "blank_line": "an empty line",
    "not_utf8": "the line is not UTF-8 text",
    "bad_quoting": "a quoted or bracketed field is not closed",
    "too_few_fields": f"fewer than the {MIN_FIELDS} fields every record has",
    "bad_time": "the [time] field is not [dd/Mon/yyyy:HH:MM:SS +hhmm]",
    "bad_number": "HTTP status, bytes sent, object size or total time is not a number or '-'",
    "missing_bucket": "the bucket field is '-'",
    "unsupported_operation": "a REST operation that has no op-log equivalent (ACL, copy, versions, ...)",
    "not_a_rest_request": "WEBSITE.*, BATCH.*, SOAP.* or S3's own S3.* (lifecycle) operations",
    "missing_key": "an object operation whose key is '-'",
    "key_not_representable": "the decoded key holds a tab or a newline, which an op-log row cannot",
    "multipart_size_unknown": "a multipart completion with no object size and none of its parts logged",
}

#: multipart steps that are folded into the upload's one PUT (the report counts them apart)
MP_INITIATE, MP_PART, MP_ABORT = "multipart_initiate", "multipart_part", "multipart_abort"
#: a multipart completion: it becomes the upload's PUT
MP_COMPLETE = "multipart_complete"
#: sort rank at equal start seconds: an upload's initiation before its parts, its parts before its end
RANK = {MP_INITIATE: 0, MP_PART: 1, MP_COMPLETE: 2, MP_ABORT: 2}

_OBJECT_OPS = {
    "REST.GET.OBJECT": GET,
    "REST.PUT.OBJECT": PUT,
    "REST.HEAD.OBJECT": HEAD,
    "REST.DELETE.OBJECT": DELETE,
    "REST.POST.UPLOADS": MP_INITIATE,
    "REST.PUT.PART": MP_PART,
    "REST.POST.UPLOAD": MP_COMPLETE,
    "REST.DELETE.UPLOAD": MP_ABORT,
}
_LIST_OP = "REST.GET.BUCKET"
_NOT_REST = ("WEBSITE.", "BATCH.", "SOAP.", "S3.")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
#: a quoted field (backslash escapes inside), a bracketed one, or a bare word; each must end at a space
_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(?=\s|$)|\[([^\]]*)\](?=\s|$)|(\S+)')
_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
#: the first 18 fields as AWS writes them (one space apart, quotes and brackets where documented), then
#: the rest: one match instead of a token at a time, for the common case
_RECORD = re.compile(
    r"(\S+) (\S+) \[([^\]]*)\] (\S+) (\S+) (\S+) (\S+) (\S+) " + _Q
    + r" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) " + _Q + " " + _Q + r" (\S+)(?: (.*))?$"
)


class Skip(NamedTuple):
    """A line that gives no row: the reason (a key of SKIP_REASONS) and, for operations, its name."""

    reason: str
    operation: str = ""


class Request(NamedTuple):
    """A request as the op-log sees it. `op` is an op-log op name or a multipart step (MP_*); `nbytes`
    is what the row's bytes column holds (for a multipart step: its object size, or -1 when '-');
    `upload_id` and `part` (the part number) are a multipart step's."""

    op: str
    start_ns: int
    end_ns: int
    bucket: str
    key: str
    nbytes: int
    n_objects: int
    error: str
    upload_id: str
    part: int
    has_total_time: bool


def split_fields(line: str) -> list[str] | Skip:
    """The fields of one record, quotes and brackets removed; a Skip when the quoting is broken."""
    record = _RECORD.match(line)
    if record is not None:
        fields = list(record.groups())
        tail = fields.pop()
        return fields + tail.split() if tail else fields
    fields = []
    for match in _TOKEN.finditer(line):
        quoted, bracketed, bare = match.groups()
        if bare is not None:
            if bare[0] in '"[':
                return Skip("bad_quoting")
            fields.append(bare)
        else:
            fields.append(quoted if quoted is not None else bracketed)
    return fields


class TimeParser:
    """`06/Feb/2019:00:00:38 +0000` -> ns since the epoch; locale-independent, cached per distinct text
    (the lines of one second share it)."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def ns(self, text: str) -> int:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        if len(text) != 26 or text[2] != "/" or text[6] != "/" or text[11] != ":" or text[20] != " ":
            raise ValueError(text)
        month = _MONTHS.get(text[3:6])
        zone = text[21:]
        if month is None or zone[0] not in "+-" or not zone[1:].isdigit():
            raise ValueError(text)
        day, year = int(text[0:2]), int(text[7:11])
        hour, minute, second = int(text[12:14]), int(text[15:17]), int(text[18:20])
        if not (1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
            raise ValueError(text)
        offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (1 if zone[0] == "+" else -1)
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[text] = seconds * NS
        return seconds * NS


def _number(text: str) -> int:
    """A count field: `-` is 0 (AWS: "or '-' if zero" / not applicable); ValueError otherwise."""
    if text == "-":
        return 0
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def _query(request_uri: str) -> dict[str, list[str]]:
    """The query parameters of the Request-URI (`GET /bucket?prefix=a%2F HTTP/1.1`), decoded."""
    parts = request_uri.split(" ")
    target = parts[1] if len(parts) >= 2 else ""
    return parse_qs(target.partition("?")[2], keep_blank_values=True)


def classify(fields: list[str], times: TimeParser) -> Request | Skip:
    """What one record (from `split_fields`) becomes: a Request, or the reason it gives no row."""
    if len(fields) < MIN_FIELDS:
        return Skip("too_few_fields")
    operation = fields[_F["operation"]]
    try:
        start = times.ns(fields[_F["time"]])
    except ValueError:
        return Skip("bad_time")
    try:
        status = int(fields[_F["http_status"]])
        sent, size = _number(fields[_F["bytes_sent"]]), _number(fields[_F["object_size"]])
        total_text = fields[_F["total_time"]]
        total_ms = _number(total_text)
    except ValueError:
        return Skip("bad_number")
    bucket = fields[_F["bucket"]]
    if bucket == "-":
        return Skip("missing_bucket")
    op = _OBJECT_OPS.get(operation)
    if op is None and operation != _LIST_OP:
        return Skip("not_a_rest_request" if operation.startswith(_NOT_REST) else "unsupported_operation",
                    operation)
    ok = 200 <= status < 300
    code = fields[_F["error_code"]]
    error = "" if ok else f"HTTP {status}" + (f" {code}" if code != "-" else "")
    upload_id, part = "", 0
    if op is None:  # a listing: its prefix is a query parameter, not the key field
        op, key, nbytes, n_objects = LIST, _query(fields[_F["request_uri"]]).get("prefix", [""])[0], 0, 0
    else:
        raw_key = fields[_F["key"]]
        if raw_key == "-":
            return Skip("missing_key", operation)
        key, n_objects = unquote(raw_key), 1
        if op in RANK:
            nbytes = size if fields[_F["object_size"]] != "-" else -1
            query = _query(fields[_F["request_uri"]])
            upload_id = query.get("uploadId", [""])[0]
            number = query.get("partNumber", ["0"])[0]
            part = int(number) if number.isdigit() else 0
        elif not ok:
            nbytes = 0
        elif op == GET:
            nbytes = sent
            op = GET_RANGE if status == 206 else GET
        else:
            nbytes = size if op in (PUT, HEAD) else 0
    if "\t" in key or "\n" in key or "\r" in key:
        return Skip("key_not_representable", operation)
    duration = total_ms * 1_000_000
    return Request(op, start, start + duration, bucket, key, nbytes, n_objects, error, upload_id, part,
                   total_text != "-")
