"""Reading, sorting, merging and the figures of op-logs: a hand-written log in s3dlio's format (unsorted,
zstd), the CLI tools on it, and the exit 2 of a malformed log naming its file and line."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import zstandard

from sbench.cli import main
from sbench.oplog import sort as sort_module
from sbench.oplog.format import HEADER, TimeFormat
from sbench.oplog.reader import ZSTD_MAGIC, OpLogFormatError, read_rows
from sbench.oplog.stats import EXACT_KEYS, DistinctCounter
from sbench.oplog.writer import LogWriter

FIXTURES = Path(__file__).parent / "fixtures"
#: the hand-written log, zstd-compressed (s3dlio_unsorted.tsv is its text)
FIXTURE = FIXTURES / "s3dlio_unsorted.tsv.zst"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "ops.tsv.zst"
    shutil.copy(FIXTURE, path)
    return path


def test_the_fixture_is_the_hand_written_text_in_zstd() -> None:
    data = FIXTURE.read_bytes()
    assert data[:4] == ZSTD_MAGIC
    text = zstandard.ZstdDecompressor().decompress(data)
    assert text == (FIXTURES / "s3dlio_unsorted.tsv").read_bytes()


def test_rows_are_typed_with_times_in_nanoseconds(log: Path) -> None:
    rows = list(read_rows(log))
    assert [r.op for r in rows] == ["PUT", "GET", "HEAD", "LIST", "GET", "DELETE", "GET_RANGE", "PUT"]
    get = rows[1]
    assert get.thread == 18147521187885925800 and get.client_id == "host-a" and get.bytes == 4096
    assert get.uri == "s3://bench/data/obj-0001.dat"
    assert get.first_byte_ns == get.end_ns and get.end_ns - get.start_ns == 4_000_000 == get.duration_ns
    assert rows[2].first_byte_ns is None and rows[3].n_objects == 3
    assert rows[4].error.startswith("NoSuchKey")
    assert rows[7].client_id == "" and rows[7].uri == "file:///mnt/data/big.bin"
    assert TimeFormat().text(rows[7].start_ns) == "2026-03-01T09:59:59.999999999Z"
    assert [r.op_class.label for r in rows] == ["PUT", "GET", "META", "META", "GET", "META", "GET", "PUT"]


def _starts(path: Path) -> list[int]:
    return [r.start_ns for r in read_rows(path)]


def test_sort_orders_the_fixture_and_numbers_rows_afresh(log: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sort", "--files", str(log)]) == 0
    out = log.with_name("ops.sorted.tsv.zst")
    assert out.read_bytes()[:4] == ZSTD_MAGIC
    rows = list(read_rows(out))
    assert [r.start_ns for r in rows] == sorted(_starts(log)) and _starts(log) != sorted(_starts(log))
    assert [r.idx for r in rows] == list(range(8))
    assert [r.op for r in rows] == ["PUT", "LIST", "GET", "HEAD", "GET", "PUT", "GET_RANGE", "DELETE"]
    key = lambda r: (r.start_ns, r.op, r.file, r.error, r.thread)  # noqa: E731
    assert sorted(map(key, rows)) == sorted(map(key, read_rows(log)))  # the same rows, nothing lost
    assert "8 rows sorted" in capsys.readouterr().out


def test_sort_in_place_and_a_plain_text_log(tmp_path: Path) -> None:
    plain = tmp_path / "ops.tsv"
    shutil.copy(FIXTURES / "s3dlio_unsorted.tsv", plain)
    assert main(["sort", "--files", str(plain), "--in-place"]) == 0
    assert plain.read_bytes()[:3] == b"idx" and _starts(plain) == sorted(_starts(plain))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.tsv"]  # no temporary file left


def _random_log(path: Path, rows: int, seed: int = 7) -> list[tuple[int, str]]:
    """A log of `rows` rows with random starts (many equal, to check stability); (start, file) in order."""
    rng = random.Random(seed)
    times, out = TimeFormat(), []
    with LogWriter(path) as writer:
        for i in range(rows):
            start = 1_700_000_000 * 10**9 + rng.randrange(50) * 1000
            end = start + 5000
            name = f"k{i}"
            out.append((start, name))
            writer.add(f"1\tGET\tc\t1\t10\ts3://b\tb/{name}\t\t{times.text(start)}\t{times.text(end)}\t"
                       f"{times.text(end)}\t5000\n")
    return out


def test_external_sort_with_many_runs_and_merge_passes_is_exact_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sort_module, "FAN_IN", 3)  # 40 runs of 5 rows: merged in passes
    monkeypatch.setattr(sort_module, "RUN_CHUNK", 2)
    written = _random_log(tmp_path / "r.tsv.zst", 200)
    assert main(["sort", "--files", str(tmp_path / "r.tsv.zst"), "--window-size", "5"]) == 0
    got = [(r.start_ns, r.file.split("/")[-1]) for r in read_rows(tmp_path / "r.sorted.tsv.zst")]
    assert got == sorted(written, key=lambda t: t[0])  # stable: equal starts keep file order
    assert not list(tmp_path.glob(".sbench-sort-*"))  # the runs are gone


def test_merge_of_unsorted_logs(tmp_path: Path, log: Path) -> None:
    other = tmp_path / "other.tsv"
    written = _random_log(other, 30)
    out = tmp_path / "merged.tsv.zst"
    assert main(["oplog", "merge", str(log), str(other), "-o", str(out), "--window-size", "4"]) == 0
    rows = list(read_rows(out))
    assert len(rows) == 38 and [r.start_ns for r in rows] == sorted(r.start_ns for r in rows)
    assert [r.idx for r in rows] == list(range(38))
    assert sum(r.client_id == "c" for r in rows) == len(written)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("0\t1\tGET\tc\t1\t10\ts3://b\tb/k\t\t2026-03-01T10:00:00Z\t\t2026-03-01T10:00:00Z", "12 columns"),
        ("0\t1\tGET\tc\t1\tten\ts3://b\tb/k\t\t2026-03-01T10:00:00Z\t\t2026-03-01T10:00:00Z\t1", "bytes"),
        ("0\t1\tGET\tc\t1\t10\ts3://b\tb/k\t\tyesterday\t\t2026-03-01T10:00:00Z\t1", "start"),
        ("0\t1\tCOPY\tc\t1\t10\ts3://b\tb/k\t\t2026-03-01T10:00:00Z\t\t2026-03-01T10:00:00Z\t1", "op 'COPY'"),
    ],
)
def test_a_malformed_line_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, line: str, why: str
) -> None:
    text = (FIXTURES / "s3dlio_unsorted.tsv").read_text().splitlines(keepends=True)
    text.insert(4, line + "\n")  # line 5 of the file
    bad = tmp_path / "bad.tsv.zst"
    bad.write_bytes(zstandard.ZstdCompressor().compress("".join(text).encode()))
    for argv in (["sort", "--files", str(bad)], ["oplog", "stats", str(bad)],
                 ["oplog", "merge", str(bad), "-o", str(tmp_path / "m.tsv")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{bad}:5:" in err and why in err and "Traceback" not in err
    assert not (tmp_path / "m.tsv").exists() and not (tmp_path / "bad.sorted.tsv.zst").exists()


def test_not_a_log_and_a_truncated_one(tmp_path: Path) -> None:
    wrong = tmp_path / "x.tsv"
    wrong.write_text("operation\tsize_bucket\n")
    with pytest.raises(OpLogFormatError, match=r"x.tsv:1: not an op-log header"):
        list(read_rows(wrong))
    cut = tmp_path / "cut.tsv.zst"
    data = zstandard.ZstdCompressor().compress((HEADER + "junk\n" * 2000).encode())
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(OpLogFormatError, match=r"cut\.tsv\.zst"):
        list(read_rows(cut))


def test_stats_of_the_fixture(log: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["oplog", "stats", str(log), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["rows"] == 8 and stats["errors"] == 1 and stats["sorted_by_start"] is False
    assert stats["by_class"] == {
        "GET": {"rows": 3, "errors": 1, "bytes": 5120},
        "PUT": {"rows": 2, "errors": 0, "bytes": 69632},
        "META": {"rows": 3, "errors": 0, "bytes": 4096},
    }
    assert stats["by_op"]["GET"]["latency_us"]["max"] >= 4000
    assert stats["distinct_objects"] == 5 and not stats["distinct_objects_estimated"]
    assert stats["size_histogram"] == {"GET": {"1B-8KiB": 2}, "PUT": {"1B-8KiB": 1, "8KiB-64KiB": 1}}
    assert stats["read_write"]["ops_ratio"] == 1.5
    assert stats["span_s"] == pytest.approx(1.003000001)
    assert stats["clients"] == {"host-a": 7, "": 1}
    assert sum(b["ops"] for b in stats["rate"]["buckets"]) == 8
    assert main(["oplog", "stats", str(log)]) == 0
    assert "NOT sorted" in capsys.readouterr().out


def test_distinct_count_turns_into_an_estimate_past_the_exact_limit() -> None:
    counter = DistinctCounter()
    n = EXACT_KEYS + 50_000
    for i in range(n):
        counter.add(f"s3://b\tkey-{i}")
        counter.add(f"s3://b\tkey-{i}")  # repeats do not count
    assert counter.estimated and counter.count() == pytest.approx(n, rel=0.03)
