"""`sbench oplog import --format s3-access-log`: a hand-made access log fixture in AWS's documented format
(tests/oplog/fixtures/make_access_logs.py writes it) imports into a sorted op-log, every line is accounted
for by reason, and the log reads back with the op-log reader and `oplog stats`.

`build_fixture_log` is the helper for tests that replay the imported traffic (every key under `PREFIX`).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import zstandard

from sbench.cli import main
from sbench.errors import RunFailed
from sbench.oplog.accessimport import import_access_logs, import_report_path
from sbench.oplog.accesslog import MIN_FIELDS, Request, Skip, TimeParser, classify, split_fields
from sbench.oplog.format import TimeFormat
from sbench.oplog.reader import ZSTD_MAGIC, open_binary, read_rows
from tests.oplog.fixtures import make_access_logs as fixture

BUCKET, PREFIX = fixture.BUCKET, fixture.PREFIX
#: the fixture in the order the tests give it: the later file first
FILES = [fixture.LATER, fixture.EARLIER]


def _text(log: Path) -> bytes:
    with open_binary(log) as stream:
        return stream.read()


def build_fixture_log(directory: Path, name: str = "access.tsv.zst") -> Path:
    """Import the fixture into an op-log in `directory`; its path (the report is beside it)."""
    out = directory / name
    import_access_logs(FILES, out)
    return out


def _import(tmp_path: Path, *files: Path, name: str = "access.tsv.zst", extra: tuple[str, ...] = ()) -> int:
    argv = ["oplog", "import", "--format", "s3-access-log", *map(str, files), "-o", str(tmp_path / name)]
    return main([*argv, *extra])


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixture_log(tmp_path_factory.mktemp("accesslog"))


def test_the_committed_fixture_is_what_its_generator_writes(tmp_path: Path) -> None:
    later, earlier = fixture.write(tmp_path)
    assert later.read_bytes() == fixture.LATER.read_bytes()
    assert earlier.read_bytes() == fixture.EARLIER.read_bytes()
    assert len(later.read_bytes().splitlines()) + len(earlier.read_bytes().splitlines()) == 301


def test_every_line_is_counted_as_a_row_a_folded_multipart_step_or_a_skip_by_reason(imported: Path) -> None:
    report = json.loads(import_report_path(imported).read_text())
    assert import_report_path(imported).name == "access.import.json"
    assert report["lines"] == 301 and report["rows"] == 263
    assert report["rows_by_op"] == {
        "DELETE": 15, "GET": 138, "GET_RANGE": 5, "HEAD": 30, "LIST": 8, "PUT": 67}
    assert report["folded"] == {"multipart_abort": 1, "multipart_initiate": 4, "multipart_part": 9}
    assert report["skipped"] == {
        "bad_number": 1,
        "bad_quoting": 1,
        "bad_time": 1,
        "blank_line": 1,
        "key_not_representable": 1,
        "missing_key": 1,
        "multipart_size_unknown": 1,
        "not_a_rest_request": 5,
        "not_utf8": 1,
        "too_few_fields": 1,
        "unsupported_operation": 10,
    }
    assert report["skipped_operations"]["unsupported_operation"] == {
        "REST.GET.ACL": 3, "REST.PUT.ACL": 2, "REST.GET.LOGGING_STATUS": 2, "REST.COPY.OBJECT": 2,
        "REST.GET.BUCKETVERSIONS": 1,
    }
    assert report["skipped_operations"]["not_a_rest_request"] == {
        "WEBSITE.GET.OBJECT": 2, "BATCH.DELETE.OBJECT": 2, "S3.EXPIRE.OBJECT": 1,
    }
    assert report["multipart"] == {"uploads_completed": 2, "uploads_aborted": 1, "uploads_not_completed": 1}
    assert report["rows_without_total_time"] == 2
    later, earlier = report["files"]
    assert later["path"] == str(fixture.LATER) and later["lines"] == 206 and later["rows"] == 194
    assert later["folded"] == {"multipart_initiate": 3, "multipart_part": 5, "multipart_abort": 1}
    assert later["skipped"] == {"multipart_size_unknown": 1, "missing_key": 1, "key_not_representable": 1}
    assert earlier["lines"] == 95 and earlier["rows"] == 69
    assert earlier["folded"] == {"multipart_initiate": 1, "multipart_part": 4}
    for counts in report["files"]:
        accounted = counts["rows"] + sum(counts["folded"].values()) + sum(counts["skipped"].values())
        assert counts["lines"] == accounted
    # each reason points at a line that has it
    where, line = report["first_skipped_at"]["bad_time"].rsplit(":", 1)
    assert b"[31/Foo/2026" in Path(where).read_bytes().splitlines()[int(line) - 1]
    assert set(report["skip_reasons"]) == set(report["skipped"])


def test_the_log_reads_back_sorted_with_the_requests_mapped(imported: Path) -> None:
    assert imported.read_bytes()[:4] == ZSTD_MAGIC
    rows = list(read_rows(imported))
    assert len(rows) == 263 and [r.idx for r in rows] == list(range(263))
    assert [r.start_ns for r in rows] == sorted(r.start_ns for r in rows)
    times = TimeFormat()
    assert times.text(rows[0].start_ns) == "2026-03-01T09:55:00.000000000Z"  # from the file given second
    assert times.text(rows[-1].start_ns) == "2026-03-01T10:04:44.000000000Z"
    assert {r.endpoint for r in rows} == {f"s3://{BUCKET}"}
    assert all(r.file.startswith(f"{BUCKET}/{PREFIX}") for r in rows)
    assert {r.client_id for r in rows} == {"s3-access-log"}
    assert all(r.end_ns - r.start_ns == r.duration_ns for r in rows)
    by_key: dict[str, list] = {}
    for r in rows:
        by_key.setdefault(r.file.removeprefix(f"{BUCKET}/"), []).append(r)
    for key in fixture.SPECIAL_KEYS:  # decoded: "my cat é.jpg", "a+b%.txt", "x=1&y=2.csv"
        assert [r.op for r in by_key[key]] == ["PUT", "GET"] and by_key[key][0].bytes == by_key[key][1].bytes
    # multipart: one PUT per completed upload, at its completion, sized by its parts or by the completion
    assert [(r.op, r.bytes) for r in by_key[PREFIX + "big/video-1.mp4"]] == [("PUT", 11 * 1024 * 1024)]
    assert times.text(by_key[PREFIX + "big/video-1.mp4"][0].start_ns) == "2026-03-01T09:57:13.000000000Z"
    assert [(r.op, r.bytes) for r in by_key[PREFIX + "big/video-2.mp4"]] == [("PUT", 10 * 1024 * 1024)]
    unwritten = {PREFIX + f"big/{name}" for name in ("aborted.bin", "never-done.bin", "orphan.bin")}
    assert not unwritten & set(by_key)
    obj0 = by_key[PREFIX + "obj-0000.bin"]
    assert [r.op for r in obj0] == ["PUT", "HEAD", "GET", "GET", "GET", "GET_RANGE", "GET", "GET", "DELETE"]
    put, head, get, ranged = obj0[0], obj0[1], obj0[2], obj0[5]
    assert head.bytes == get.bytes == put.bytes and ranged.bytes == put.bytes // 2
    assert get.first_byte_ns == get.end_ns and put.first_byte_ns == put.start_ns
    assert head.first_byte_ns is None
    errors = [r.error for r in rows if r.error]
    assert sorted(set(errors)) == ["HTTP 403 AccessDenied", "HTTP 404 NoSuchKey", "HTTP 503 SlowDown"]
    assert (errors.count("HTTP 404 NoSuchKey"), errors.count("HTTP 403 AccessDenied"),
            errors.count("HTTP 503 SlowDown")) == (6, 4, 7)
    assert all(r.bytes == 0 for r in rows if r.error)
    lists = [r for r in rows if r.op == "LIST"]
    assert sorted({r.file for r in lists}) == [f"{BUCKET}/{PREFIX}", f"{BUCKET}/{PREFIX}big/",
                                               f"{BUCKET}/{PREFIX}photos/"]
    assert sum(r.duration_ns == 0 for r in rows if r.op == "HEAD") == 2  # total time '-'


def test_oplog_stats_of_the_imported_log(imported: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["oplog", "stats", str(imported), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["rows"] == 263 and stats["errors"] == 17 and stats["sorted_by_start"]
    assert {c: (v["rows"], v["errors"]) for c, v in stats["by_class"].items()} == {
        "GET": (143, 15), "PUT": (67, 2), "META": (53, 0)}
    assert {op: f["rows"] for op, f in stats["by_op"].items()} == {
        "DELETE": 15, "GET": 138, "GET_RANGE": 5, "HEAD": 30, "LIST": 8, "PUT": 67}


def test_the_command_prints_the_counts_and_a_small_window_gives_the_same_log(
    tmp_path: Path, imported: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _import(tmp_path, *FILES, extra=("--window-size", "7")) == 0  # 40 sorted runs, merged
    out = capsys.readouterr().out
    assert "301 lines in 2 file(s): 263 rows" in out and "report: " in out
    assert "unsupported_operation           10" in out and "REST.GET.ACL 3" in out
    assert f"multipart_size_unknown           1  (first at {fixture.LATER}:" in out
    assert _text(tmp_path / "access.tsv.zst") == _text(imported)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["access.import.json", "access.tsv.zst"]


def test_compressed_inputs_and_a_plain_output(tmp_path: Path, imported: Path) -> None:
    gz, zst = tmp_path / "later.log.gz", tmp_path / "earlier.log.zst"
    gz.write_bytes(gzip.compress(fixture.LATER.read_bytes()))
    zst.write_bytes(zstandard.ZstdCompressor().compress(fixture.EARLIER.read_bytes()))
    assert _import(tmp_path, gz, zst, name="plain.tsv") == 0
    assert (tmp_path / "plain.tsv").read_bytes() == _text(imported)
    assert json.loads((tmp_path / "plain.import.json").read_text())["rows"] == 263


def test_a_multipart_completion_logged_before_its_parts_in_the_same_second(tmp_path: Path) -> None:
    """The completion sorts after its parts (the log's times have one-second resolution), so the parts
    still size the PUT; a part uploaded again (after a failure, or twice) counts once, as S3 keeps the
    last upload of a part number."""
    log = fixture.Log(fixture.random.Random(1), "12:00")
    fixture._multipart(log, 0, PREFIX + "m.bin", "U1", [(1, 1, 100), (1, 2, 0), (1, 2, 150), (1, 2, 200)],
                         "complete")
    complete = log.lines.pop()
    path = tmp_path / "mp.log"
    path.write_bytes(complete + b"\n" + b"\n".join(log.lines) + b"\n")
    import_access_logs([path], tmp_path / "mp.tsv")
    assert [(r.op, r.bytes) for r in read_rows(tmp_path / "mp.tsv")] == [("PUT", 300)]


def test_nothing_importable_exits_1_and_keeps_no_log(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wrong = tmp_path / "ops.tsv"  # an op-log given by mistake
    wrong.write_text("idx\tthread\top\n0\t0\tGET\n")
    assert _import(tmp_path, wrong) == 1
    err = capsys.readouterr().err
    assert f"nothing importable in {wrong}" in err and "too_few_fields" in err and "Traceback" not in err
    assert not (tmp_path / "access.tsv.zst").exists()
    assert json.loads((tmp_path / "access.import.json").read_text())["skipped"] == {"too_few_fields": 2}
    with pytest.raises(RunFailed):
        import_access_logs([wrong], tmp_path / "again.tsv")


def test_an_unreadable_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no-such-log"
    assert _import(tmp_path, fixture.LATER, missing) == 2
    err = capsys.readouterr().err
    assert f"{missing}: cannot read" in err and "Traceback" not in err
    assert _import(tmp_path, tmp_path) == 2  # a directory
    assert f"{tmp_path}: cannot read" in capsys.readouterr().err
    cut = tmp_path / "cut.gz"
    data = gzip.compress(fixture.LATER.read_bytes())
    cut.write_bytes(data[: len(data) // 2])
    assert _import(tmp_path, cut) == 2
    assert f"{cut}:" in capsys.readouterr().err
    damaged = tmp_path / "damaged.gz"  # a deflate stream that does not decode (zlib.error)
    damaged.write_bytes(data[:2000] + bytes(b ^ 0xFF for b in data[2000:2100]) + data[2100:])
    assert _import(tmp_path, damaged) == 2
    err = capsys.readouterr().err
    assert f"{damaged}:" in err and "Traceback" not in err
    assert not (tmp_path / "access.tsv.zst").exists() and not (tmp_path / "access.import.json").exists()


# -- single records -------------------------------------------------------------------------------------

OWNER = "a" * 64


def _record(op: str, key: str, uri: str, status: str, error: str, sent: str, size: str, total: str,
            tail: str = ' "-" "S3Console/0.4" -') -> str:
    return (f"{OWNER} photos [04/Aug/2026:22:34:02 +0000] 198.51.100.7 {OWNER} 3E57427F33A59F07 {op} {key} "
            f'"{uri}" {status} {error} {sent} {size} {total} 12{tail}')


def test_a_record_in_the_original_18_field_format() -> None:
    fields = split_fields(_record("REST.PUT.OBJECT", "2026/puppy.jpg", "PUT /photos/2026/puppy.jpg HTTP/1.1",
                                  "200", "-", "-", "4406583", "41754"))
    assert isinstance(fields, list) and len(fields) == MIN_FIELDS == 18
    req = classify(fields, TimeParser())
    assert isinstance(req, Request)
    assert (req.op, req.bucket, req.key, req.nbytes, req.error) == (
        "PUT", "photos", "2026/puppy.jpg", 4406583, "")
    assert TimeFormat().text(req.start_ns) == "2026-08-04T22:34:02.000000000Z"
    assert req.end_ns - req.start_ns == 41_754_000_000


def test_fields_in_quotes_and_brackets() -> None:
    fields = split_fields('a [01/Mar/2026:10:00:00 +0000] "GET /b/k HTTP/1.1" "agent \\"x\\" y" - ""')
    assert fields == ["a", "01/Mar/2026:10:00:00 +0000", "GET /b/k HTTP/1.1", 'agent \\"x\\" y', "-", ""]
    assert split_fields('a "open quote b') == Skip("bad_quoting")
    assert split_fields("a [01/Mar/2026:10:00:00 +0000 b") == Skip("bad_quoting")


def test_times_with_an_offset_and_bad_times() -> None:
    times = TimeParser()
    assert times.ns("01/Mar/2026:11:00:00 +0100") == times.ns("01/Mar/2026:10:00:00 +0000")
    assert times.ns("01/Mar/2026:10:00:00 -0230") - times.ns("01/Mar/2026:10:00:00 +0000") == 9000 * 10**9
    for bad in ("01/Mär/2026:10:00:00 +0000", "2026-03-01T10:00:00Z", "01/Mar/2026:25:00:00 +0000",
                "01/Mar/2026:10:00:00 UTC!!"):
        with pytest.raises(ValueError):
            times.ns(bad)


@pytest.mark.parametrize(
    ("op", "key", "uri", "status", "error", "expect"),
    [
        ("REST.GET.OBJECT", "k", "GET /photos/k HTTP/1.1", "304", "-", ("GET", "HTTP 304")),
        ("REST.GET.OBJECT", "k", "GET /photos/k HTTP/1.1", "500", "InternalError",
         ("GET", "HTTP 500 InternalError")),
        ("REST.DELETE.OBJECT", "a%2Fb%20c", "DELETE /photos/a/b%20c HTTP/1.1", "204", "-", ("DELETE", "")),
        ("REST.GET.BUCKET", "-", "GET /photos HTTP/1.1", "200", "-", ("LIST", "")),
        ("REST.GET.OBJECT", "k", "GET /photos/k HTTP/1.1", "2OO", "-", Skip("bad_number")),
        ("REST.GET.BUCKETPOLICY", "-", "GET /photos?policy HTTP/1.1", "404", "NoSuchBucketPolicy",
         Skip("unsupported_operation", "REST.GET.BUCKETPOLICY")),
        ("SOAP.CreateBucket", "-", "POST /soap/ HTTP/1.1", "200", "-",
         Skip("not_a_rest_request", "SOAP.CreateBucket")),
    ],
)
def test_statuses_listings_and_skipped_operations(
    op: str, key: str, uri: str, status: str, error: str, expect: tuple[str, str] | Skip
) -> None:
    fields = split_fields(_record(op, key, uri, status, error, "120", "120", "5"))
    assert isinstance(fields, list)
    got = classify(fields, TimeParser())
    if isinstance(expect, Skip):
        assert got == expect
    else:
        assert isinstance(got, Request) and (got.op, got.error) == expect
        assert got.key == {"k": "k", "a%2Fb%20c": "a/b c", "-": ""}[key]
        assert got.nbytes == (120 if got.op == "GET" and not got.error else 0)
