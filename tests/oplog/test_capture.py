"""The capture: every call of a wrapped backend becomes one row (errors included, credentials removed),
nothing is wrapped without a capture, the worker loops bind the wrapper's methods, a slow writer holds the
workers back instead of losing rows, and a clock offset moves the times of the calls after it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sbench.control import RunControl
from sbench.engine.backends import BackendSet
from sbench.engine.binding import build_ops
from sbench.engine.workload import run_workload
from sbench.metrics.buckets import OpClass
from sbench.oplog.agentlog import AgentLog, PartSink
from sbench.oplog.capture import Capture, CapturedBackend, active, wrap
from sbench.oplog.clock import measure_offset
from sbench.oplog.reader import read_rows
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.registry import open_backend
from tests.engine.helpers import config_from


@pytest.fixture
def agent_log(tmp_path: Path):  # type: ignore[no-untyped-def]
    log = AgentLog(tmp_path / "ops.tsv.zst", "standalone")
    yield log
    if active() is log.capture:
        log.abandon()


def test_nothing_is_wrapped_without_a_capture(tmp_path: Path) -> None:
    assert active() is None
    backend = open_backend(f"file://{tmp_path}/")
    assert wrap(backend) is backend  # no wrapper, no cost per op
    text = f"target: file://{tmp_path}/\nworkload:\n  - {{op: put, path: x/, weight: 1, object_size: 1}}\n"
    backends = BackendSet(config_from(text))
    assert type(backends.target()).__name__ == "FileBackend"


def test_every_call_is_a_row_with_its_error(tmp_path: Path, agent_log: AgentLog) -> None:
    root = tmp_path / "d"
    root.mkdir()
    backend = wrap(open_backend(f"file://{root}/"))
    assert isinstance(backend, CapturedBackend)
    backend.put("a", b"x" * 100)
    backend.put("b", memoryview(b"y" * 7))
    assert bytes(backend.get_range("a", 10, 5)) == b"xxxxx"
    assert backend.stat("a").size == 100
    listing = backend.list("")
    next(listing)
    listing.close()  # a LIST dropped early is still one finished row, with what it yielded
    backend.mkdir("sub/dir")
    backend.rmdir("sub/dir")
    backend.delete("b")
    with pytest.raises(StorageError):
        backend.get("missing")
    summary = agent_log.finish()
    rows = list(read_rows(Path(summary.path)))
    assert summary.rows == len(rows) == summary.calls == 9
    ops = ["PUT", "PUT", "GET_RANGE", "HEAD", "LIST", "MKDIR", "RMDIR", "DELETE", "GET"]
    assert [r.op for r in rows] == ops
    assert [r.bytes for r in rows] == [100, 7, 5, 100, 0, 0, 0, 0, 0]
    assert rows[4].n_objects == 1 and rows[4].file == f"{root}/"
    assert all(r.endpoint == "file://" and r.client_id == "standalone" for r in rows)
    assert rows[0].file == f"{root}/a" and rows[0].first_byte_ns == rows[0].start_ns
    assert rows[2].first_byte_ns == rows[2].end_ns and rows[3].first_byte_ns is None
    assert rows[8].error.startswith("not_found: ") and all(not r.error for r in rows[:8])
    assert [r.idx for r in rows] == list(range(9))
    assert [r.start_ns for r in rows] == sorted(r.start_ns for r in rows)
    assert active() is None and not list(tmp_path.glob(".*.part"))


class _Failing(CapturedBackend):
    """The inner call fails with a message quoting a signed URL and an access key id."""


def test_error_text_has_no_credentials(tmp_path: Path, agent_log: AgentLog) -> None:
    inner = open_backend(f"file://{tmp_path}/")

    def leak(key: str) -> None:
        raise StorageError(
            ErrorClass.AUTH,
            "403 for https://h/b/k?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAABCDEFGHIJKLMNOP\tx",
        )

    inner.delete = leak  # type: ignore[method-assign]
    backend = wrap(inner)
    with pytest.raises(StorageError):
        backend.delete("k")
    summary = agent_log.finish()
    (row,) = read_rows(Path(summary.path))
    assert row.error.startswith("auth: 403 for https://h/b/k")
    assert "deadbeef" not in row.error and "AKIAABCDEFGHIJKLMNOP" not in row.error and "\t" not in row.error


def test_the_worker_loops_bind_the_wrappers_methods(tmp_path: Path, agent_log: AgentLog) -> None:
    """The inline loops (a fixed-size PUT, a GET of an unchanging pool) call methods bound at bind time."""
    (tmp_path / "data").mkdir()
    for i in range(5):
        (tmp_path / "data" / f"f{i}").write_bytes(b"z" * 64)
    text = (f"target: file://{tmp_path}/\nconcurrency: 1\nduration: 1s\n"
            "workload:\n  - {op: put, path: out/, object_size: 32, weight: 1}\n")
    cfg = config_from(text)
    backends = BackendSet(cfg)
    (put,) = build_ops(cfg, AgentIdentity(run_id="bind"), backends, None, 1)
    assert put.inline is not None and isinstance(put.inline.put.__self__, CapturedBackend)
    get_cfg = config_from(text.replace("put, path: out/, object_size: 32", "get, path: 'data/f*'"))
    (get,) = build_ops(get_cfg, AgentIdentity(run_id="bind"), BackendSet(get_cfg), None, 1)
    assert get.inline is not None and isinstance(get.inline.get.__self__, CapturedBackend)
    # and a real stage of each: one row per op the engine counted
    counted = 0
    for c in (cfg, get_cfg):
        res = run_workload(c, AgentIdentity(run_id="bind"), RunControl(), duration_s=0.3)
        counted += res.snapshot.total_ops(OpClass.PUT) + res.snapshot.total_ops(OpClass.GET)
    rows = list(read_rows(Path(agent_log.finish().path)))
    ops = [r.op for r in rows]
    assert counted > 20 and ops.count("PUT") + ops.count("GET") == counted
    assert ops.count("LIST") == 2  # the GET pool's listing, by the build_ops above and by the stage


class _SlowSink(PartSink):
    """A part whose writes take a while: the writer falls behind the workers."""

    def write(self, rows: list[tuple[Any, ...]], offset_ns: int, source: int) -> None:
        time.sleep(0.05)
        super().write(rows, offset_ns, source)


def test_a_slow_writer_holds_the_workers_back_and_loses_nothing(tmp_path: Path) -> None:
    capture = Capture(_SlowSink(tmp_path / "part"), limit=64)
    backend = capture.wrap(open_backend(f"file://{tmp_path}/"))
    (tmp_path / "k").write_bytes(b"1")

    def work() -> None:
        for _ in range(1500):
            backend.get("k")

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, len(capture.rows))
        time.sleep(0.001)
    capture.close()
    assert capture.calls == 3000 and capture.backpressure_waits > 0 and capture.unwritten == 0
    assert peak <= 64 + 2  # bounded: a worker appends once more before it sees the queue full
    from sbench.oplog.records import read_records

    assert sum(len(rows) for _o, _s, rows in read_records(tmp_path / "part")) == 3000


def test_a_clock_offset_moves_the_times_of_later_calls(tmp_path: Path, agent_log: AgentLog) -> None:
    backend = wrap(open_backend(f"file://{tmp_path}/"))
    backend.put("early", b"1")
    agent_log.set_offset(3_600 * 10**9)  # this node's clock is an hour ahead of the driver's
    backend.put("late", b"2")
    rows = {r.file.rsplit("/", 1)[1]: r for r in read_rows(Path(agent_log.finish().path))}
    now = time.time_ns()
    assert abs(rows["early"].start_ns - now) < 60 * 10**9
    assert abs(rows["late"].start_ns - (now - 3_600 * 10**9)) < 60 * 10**9
    assert rows["late"].duration_ns == rows["late"].end_ns - rows["late"].start_ns


def test_ntp_offset_takes_the_shortest_round_trip() -> None:
    """Remote clock 5 ms ahead; the probes' delays are asymmetric except the shortest one."""
    now = [1_000_000_000]
    delays = iter([(3_000_000, 1_000_000), (200_000, 200_000), (900_000, 100_000)])

    def local() -> int:
        return now[0]

    def remote() -> int:
        out_delay, back_delay = next(delays)
        now[0] += out_delay
        reading = now[0] + 5_000_000
        now[0] += back_delay
        return reading

    offset, uncertainty = measure_offset(remote, probes=3, now_ns=local)
    assert (offset, uncertainty) == (5_000_000, 200_000)
