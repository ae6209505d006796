"""Workers on a plain file:// store run their GETs and fixed-size PUTs in native batches (engine.batchloops):
the same keys, bytes and records as the inline Python loop, every op the batch hands back run through
FileBackend and the retry path, and the stage's details say which loop ran and why."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.batchloops import NATIVE_BATCHES
from sbench.engine.workload import WorkloadResult, run_workload
from sbench.engine.workload import _seed as workload_seed
from sbench.layout.naming import parse_put_key
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import ErrorClass
from sbench.storage.filebatch import native
from tests.engine.helpers import config_from, make_files

pytestmark = pytest.mark.skipif(
    native is None, reason="sbench.storage._filebatch is not built (no C compiler)"
)

NATIVE = NATIVE_BATCHES
#: errors do not end the stage
TOLERANT = "{min_success_ratio: 0, error_rate_threshold: 0, max_total_errors: 1000000000}"


def _cfg(root: Path, body: str, *, native_io: bool = True, extra: str = "", concurrency: int = 2) -> object:
    return config_from(
        f"duration: 5s\nconcurrency: {concurrency}\ntarget: file://{root}/\n"
        f"workers: {{native_file_io: {str(native_io).lower()}}}\n{extra}workload:\n{body}"
    )


def _run(
    root: Path,
    body: str,
    *,
    native_io: bool = True,
    extra: str = "",
    duration_s: float = 0.5,
    concurrency: int = 2,
    **kwargs: object,
) -> WorkloadResult:
    cfg = kwargs.pop("cfg", None)
    cfg = cfg or _cfg(root, body, native_io=native_io, extra=extra, concurrency=concurrency)
    control = kwargs.pop("control", None) or RunControl()
    return run_workload(
        cfg, AgentIdentity(run_id="batch", agent_id="a1"), control, duration_s=duration_s, **kwargs
    )


def _puts_by_worker(directory: Path) -> dict[int, list[int]]:
    seqs: dict[int, list[int]] = defaultdict(list)
    for f in directory.iterdir():
        key = parse_put_key(f.name)
        assert key is not None and key.run_id == "batch" and key.agent_id == "a1", f.name
        seqs[key.worker].append(key.seq)
    return seqs


@pytest.mark.parametrize("native_io", [True, False], ids=["native", "python"])
def test_fixed_size_puts_are_the_same_objects_on_both_loops(tmp_path: Path, native_io: bool) -> None:
    """Every op recorded is a file; each worker's keys are its sequence 0..n-1 with none skipped (keys a
    batch made but a stop left unused are not counted as used); the bytes are the payload generator's."""
    res = _run(
        tmp_path, '  - {op: put, path: "new/sub/", object_size: 3000, weight: 1}\n', native_io=native_io
    )
    assert res.extra["file_loop"] == (NATIVE if native_io else "python: workers.native_file_io: false")
    files = list((tmp_path / "new" / "sub").iterdir())  # the missing directories made by the handed-back op
    assert res.snapshot.ops == {(OpClass.PUT, 1): len(files)} and len(files) > 200
    assert res.snapshot.errors_total() == 0
    seqs = _puts_by_worker(tmp_path / "new" / "sub")
    assert sorted(seqs) == [0, 1]
    for worker, numbers in seqs.items():
        assert sorted(numbers) == list(range(len(numbers))), worker
    gen = PayloadGenerator("random", seed=workload_seed(AgentIdentity(run_id="batch", agent_id="a1")))
    for f in files[:: max(1, len(files) // 100)]:
        key = parse_put_key(f.name)
        assert key is not None
        assert f.read_bytes() == bytes(gen.payload(3000, (key.worker << 40) | key.seq)), f.name


def test_batched_gets_bucket_each_op_by_its_own_size(tmp_path: Path) -> None:
    sizes = {"a": 100, "b": 5000, "c": 20_000}  # buckets 1, 1 and 2
    for prefix, size in sizes.items():
        make_files(tmp_path / "d", [f"{prefix}{i:02d}" for i in range(10)], size=size)
    res = _run(tmp_path, '  - {op: get, path: "d/*", weight: 1}\n')
    assert res.extra["file_loop"] == NATIVE
    (b1, ops1, bytes1), (b2, ops2, bytes2) = res.snapshot.bucket_counts(OpClass.GET)
    assert (b1, b2) == (1, 2) and ops1 > 100 and ops2 > 50
    assert bytes2 == 20_000 * ops2
    small_b = (bytes1 - 100 * ops1) // 4900  # how many of bucket 1's ops were 5000-byte reads
    assert 0 < small_b < ops1 and bytes1 == 100 * (ops1 - small_b) + 5000 * small_b


def test_gets_the_batch_hands_back_run_through_the_driver(tmp_path: Path) -> None:
    """A symlink inside the root and a name that is not UTF-8 on disk are read (through FileBackend, which
    checks where the link leads and opens the name with surrogateescape); files deleted or replaced by a
    directory mid-run fail with the driver's error classes; the workers go on."""
    make_files(tmp_path / "d", [f"o{i:02d}" for i in range(12)], size=4096)
    (tmp_path / "d" / "link").symlink_to(tmp_path / "d" / "o00")
    with open(os.fsencode(tmp_path / "d") + b"/bad\xff", "wb") as f:
        f.write(b"b" * 4096)
    res = _run(tmp_path, '  - {op: get, path: "d/*", weight: 1}\n', duration_s=0.3)
    assert res.extra["file_loop"] == NATIVE
    assert res.snapshot.errors_total() == 0 and res.snapshot.total_ops(OpClass.GET) > 500
    assert res.snapshot.total_bytes(OpClass.GET) == 4096 * res.snapshot.total_ops(OpClass.GET)

    def break_some() -> None:
        for i in (1, 2, 3):
            os.unlink(tmp_path / "d" / f"o{i:02d}")
        os.unlink(tmp_path / "d" / "o04")
        os.mkdir(tmp_path / "d" / "o04")

    timer = threading.Timer(0.2, break_some)
    timer.start()
    res = _run(
        tmp_path,
        '  - {op: get, path: "d/*", weight: 1}\n',
        duration_s=0.8,
        extra=f"error_handling: {TOLERANT}\n",
    )
    timer.join()
    errors = res.snapshot.errors_by_class()
    assert errors.get(ErrorClass.NOT_FOUND, 0) > 10 and sum(errors.values()) > errors[ErrorClass.NOT_FOUND]
    assert res.snapshot.total_ops(OpClass.GET) > 500 and res.ended_by == "duration"


def test_a_put_whose_directory_leads_out_of_the_root_writes_nothing_there(tmp_path: Path) -> None:
    """The directory becomes a symlink out of the root after the config was checked: FileBackend.path_of
    refuses every key in it, so no batch is made and each op fails through the driver as OUTSIDE_ROOT."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    body = '  - {op: put, path: "up/", object_size: 100, weight: 1}\n'
    cfg = _cfg(root, body, extra=f"error_handling: {TOLERANT}\n")
    (root / "up").symlink_to(outside)
    res = _run(root, body, cfg=cfg, duration_s=0.3)
    assert res.extra["file_loop"] == NATIVE
    assert list(outside.iterdir()) == []
    assert res.snapshot.total_ops() == 0
    assert res.snapshot.errors_by_class().get(ErrorClass.OUTSIDE_ROOT, 0) > 100


def test_a_put_whose_write_fails_raises_the_drivers_error_once(tmp_path: Path) -> None:
    """The first key of worker 0 is a device node like /dev/full, which opens and then fails the write with
    ENOSPC: the batch reports it and the op fails with the driver's no_space error and message (no retry:
    a full disk stays full); every other PUT succeeds."""
    (tmp_path / "up").mkdir()
    try:
        os.mknod(tmp_path / "up" / "put_batch_a1_0_0.dat", 0o600 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("mknod is not permitted here (it makes the /dev/full node the test writes to)")
    res = _run(
        tmp_path,
        '  - {op: put, path: "up/", object_size: 100, weight: 1}\n',
        extra="error_handling: {retry_on_error: true, max_retries: 3, max_total_errors: 1000}\n",
        duration_s=0.3,
        concurrency=1,
    )
    assert res.extra["file_loop"] == NATIVE
    assert res.snapshot.errors_by_class() == {ErrorClass.NO_SPACE: 1}
    assert res.extra["retries"] == 0
    assert "[ENOSPC]" in res.first_error and "put_batch_a1_0_0.dat" in res.first_error
    files = [f for f in (tmp_path / "up").iterdir() if f.is_file()]
    assert res.snapshot.total_ops() == len(files) > 100


def test_a_stop_ends_batched_workers_within_the_stop_bound(tmp_path: Path) -> None:
    """An abort once ops are flowing (the first interval that has some) ends the stage well within the 2 s
    stop bound, with no op left in flight."""
    make_files(tmp_path / "d", [f"o{i:02d}" for i in range(20)])
    control = RunControl()
    aborted_at: list[float] = []

    def abort_once_busy(snapshot: Snapshot) -> None:
        if snapshot.total_ops() and not aborted_at:
            aborted_at.append(time.monotonic())
            control.abort("test abort")

    res = _run(
        tmp_path, '  - {op: get, path: "d/*", weight: 1}\n', duration_s=30.0, control=control,
        on_interval=abort_once_busy, interval_s=0.1,
    )  # fmt: skip
    assert aborted_at and time.monotonic() - aborted_at[0] < 2.0
    assert res.extra["file_loop"] == NATIVE
    assert res.ended_by == "aborted" and res.snapshot.total_ops() > 0 and res.extra["unfinished_ops"] == 0


@pytest.mark.parametrize(
    ("body", "extra", "why"),
    [
        (
            '  - {op: get, path: "d/*", weight: 1}\n  - {op: stat, path: "d/*", weight: 1}\n',
            "",
            "more than one",
        ),
        ('  - {op: get, path: "d/*", weight: 1}\n', "io_rate: {iops: 1000}\n", "open"),
        ('  - {op: get, path: "d/*", weight: 1, concurrency: 1}\n', "", "limited"),
        ('  - {op: get, path: "d/*", weight: 1}\n', "page_cache_mode: random\n", "page_cache_mode"),
    ],
    ids=["mixed", "open-loop", "limited", "page-cache-hint"],
)
def test_workers_that_cannot_batch_say_why(tmp_path: Path, body: str, extra: str, why: str) -> None:
    make_files(tmp_path / "d", [f"o{i:02d}" for i in range(5)])
    res = _run(tmp_path, body, extra=extra, duration_s=0.2)
    assert res.extra["file_loop"].startswith("python: ") and why in res.extra["file_loop"]
    assert res.snapshot.total_ops() > 0


def test_a_store_other_than_file_has_no_file_loop(tmp_path: Path) -> None:
    cfg = config_from(
        "duration: 5s\nconcurrency: 1\ntarget: null://bench/\nworkload:\n"
        "  - {op: put, path: p/, object_size: 100, weight: 1}\n"
    )
    res = run_workload(cfg, AgentIdentity(run_id="batch"), RunControl(), duration_s=0.1)
    assert res.extra["file_loop"] is None
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_whole_run_says_which_file_loop_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sbench run` on file://: the workload table's title and summary.json say the workers made their
    calls in native batches, and the figures written are the batch loop's records."""
    root = tmp_path / "store"
    root.mkdir()
    cfg = tmp_path / "get.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 0.5s\nconcurrency: 2\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: 50, size_spec: 4096}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
    )
    results = tmp_path / "results"
    assert main(["run", str(cfg), "--no-report", "--results-dir", str(results)]) == 0
    assert "on threads with native file:// batches" in capsys.readouterr().out
    summary = json.loads((results / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    assert execute["details"]["file_loop"] == NATIVE
    totals = execute["totals"]
    assert totals["ops"] > 1000 and totals["errors"] == 0 and totals["bytes"] == 4096 * totals["ops"]


def test_without_the_extension_file_runs_the_python_loop_and_says_why(tmp_path: Path) -> None:
    """Where the extension cannot be imported (no C compiler at install, another Python), a run still
    works, on the Python loop, and its details say why."""
    make_files(tmp_path / "d", [f"o{i:02d}" for i in range(5)])
    script = (
        "import sys; sys.modules['sbench.storage._filebatch'] = None\n"
        "from sbench.config.loader import load_config_text\n"
        "from sbench.control import RunControl\n"
        "from sbench.engine.workload import run_workload\n"
        "from sbench.plan.agents import AgentIdentity\n"
        f"cfg = load_config_text('target: file://{tmp_path}/\\nduration: 1s\\nconcurrency: 2\\n"
        "workload:\\n  - {op: get, path: d/, weight: 1}\\n').config\n"
        "res = run_workload(cfg, AgentIdentity(run_id='nb'), RunControl(), duration_s=0.2)\n"
        "print(res.extra['file_loop']); print(res.snapshot.total_ops())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    why, ops = out.strip().splitlines()
    assert why.startswith("python: the native file loop (sbench.storage._filebatch) cannot be imported")
    assert int(ops) > 100
