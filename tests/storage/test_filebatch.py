"""The native file:// batch calls (sbench/storage/filebatch.c) on a real file system: each op's record is the
engine sink's (latency << SLOT_BITS | slot, bytes per slot), a PUT writes exactly its payload slice, and
everything but the common case stops the batch before the op, with nothing recorded for it, so FileBackend
can run it."""

from __future__ import annotations

import errno
import os
import time
from array import array
from bisect import bisect_left
from pathlib import Path

import pytest

from sbench.metrics.buckets import BUCKET_UPPER_BOUNDS, NUM_BUCKETS
from sbench.metrics.recorder import SLOT_BITS
from sbench.storage.file import FileBackend
from sbench.storage.filebatch import FILE_MODE, READ_FLAGS, WRITE_FLAGS, batch_refusal, native
from sbench.storage.options import BackendOptions, PageCacheMode
from sbench.storage.uri import parse_uri

pytestmark = pytest.mark.skipif(
    native is None, reason="sbench.storage._filebatch is not built (no C compiler)"
)

BOUNDS = array("q", BUCKET_UPPER_BOUNDS)
BASE = 3 * NUM_BUCKETS  # any op class's first slot
NEVER = 2**62  # a deadline and a budget that do not end a batch
SLOT_MASK = (1 << SLOT_BITS) - 1


def _get(
    paths: list[str], start: int = 0, *, scratch: int = 1 << 20, deadline: int = NEVER, budget: int = NEVER
):
    raw: list[int] = []
    by_slot = [0] * (BASE + NUM_BUCKETS)
    index, status, _, _ = native.get_batch(
        paths, start, READ_FLAGS, bytearray(scratch), BOUNDS, BASE, SLOT_BITS, raw, by_slot, deadline, budget
    )
    return index, status, raw, by_slot


def test_a_batch_of_gets_records_each_op_in_its_size_bucket(tmp_path: Path) -> None:
    sizes = [100, 5000, 20_000, 5000, 0, 3 * (1 << 20) + 7]  # the last one larger than the scratch buffer
    paths = []
    for i, size in enumerate(sizes):
        (tmp_path / f"o{i}").write_bytes(os.urandom(size))
        paths.append(str(tmp_path / f"o{i}"))
    index, status, raw, by_slot = _get(paths)
    assert (index, status) == (len(paths), native.ALL_DONE)
    slots = [BASE + bisect_left(BUCKET_UPPER_BOUNDS, size) for size in sizes]
    assert [value & SLOT_MASK for value in raw] == slots
    assert all(value >> SLOT_BITS < 10_000_000 for value in raw)  # microseconds, not nanoseconds
    expected = [0] * len(by_slot)
    for slot, size in zip(slots, sizes, strict=True):
        expected[slot] += size
    assert by_slot == expected


def test_a_batch_continues_from_its_start_and_adds_to_the_sink(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"o{i}") for i in range(5)]
    for p in paths:
        Path(p).write_bytes(b"y" * 10)
    raw = [12345]
    by_slot = [0] * (BASE + NUM_BUCKETS)
    by_slot[BASE + 1] = 7
    index, status, _, _ = native.get_batch(
        paths, 2, READ_FLAGS, bytearray(64), BOUNDS, BASE, SLOT_BITS, raw, by_slot, NEVER, NEVER
    )
    assert (index, status) == (5, native.ALL_DONE)
    assert raw[0] == 12345 and len(raw) == 4
    assert by_slot[BASE + 1] == 7 + 30


@pytest.mark.parametrize("odd", ["missing", "symlink", "directory"])
def test_an_op_that_is_not_the_common_case_stops_the_batch_before_it(tmp_path: Path, odd: str) -> None:
    """A missing file, a final symlink (O_NOFOLLOW: FileBackend decides whether it stays inside the root)
    and a directory (ext4 opens it and sizes it 2**63 - 1, tmpfs refuses to seek it) are handed back
    unrecorded."""
    for name in ("a", "c"):
        (tmp_path / name).write_bytes(b"z" * 50)
    if odd == "symlink":
        (tmp_path / "b").symlink_to(tmp_path / "a")
    elif odd == "directory":
        (tmp_path / "b").mkdir()
    paths = [str(tmp_path / name) for name in ("a", "b", "c")]
    index, status, raw, by_slot = _get(paths)
    assert (index, status) == (1, native.FALLBACK)
    assert len(raw) == 1 and sum(by_slot) == 50
    index, status, raw, by_slot = _get(paths, 2)
    assert (index, status, len(raw), sum(by_slot)) == (3, native.ALL_DONE, 1, 50)


def test_a_name_that_is_not_utf8_on_disk_is_handed_back(tmp_path: Path) -> None:
    """os.fsdecode gives a non-UTF-8 name lone surrogates, which have no UTF-8: the batch runs the paths
    before it and hands that op back (FileBackend opens it with surrogateescape)."""
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/bad\xff")
    with open(odd, "wb") as f:
        f.write(b"w" * 20)
    (tmp_path / "ok").write_bytes(b"v" * 30)
    paths = [str(tmp_path / "ok"), odd, str(tmp_path / "ok")]
    index, status, raw, by_slot = _get(paths)
    assert (index, status, len(raw), sum(by_slot)) == (1, native.FALLBACK, 1, 30)
    index, status, raw, _ = _get(paths, 1)  # it comes first: nothing run, handed back
    assert (index, status, raw) == (1, native.FALLBACK, [])
    index, status, raw, _ = _get(paths, 2)
    assert (index, status, len(raw)) == (3, native.ALL_DONE, 1)


def test_deadline_and_budget_end_a_batch_after_the_op_that_reached_them(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"o{i}") for i in range(4)]
    for p in paths:
        Path(p).write_bytes(b"q")
    assert _get(paths, deadline=0)[:2] == (1, native.DEADLINE)
    assert _get(paths, budget=0)[:2] == (1, native.BUDGET)
    index, status, raw, _ = _get(paths, 1, budget=0)
    assert (index, status, len(raw)) == (2, native.BUDGET, 1)


def test_a_batch_of_puts_writes_each_payload_slice(tmp_path: Path) -> None:
    payload = os.urandom(1 << 16)
    offsets = array("q", [0, 17, 40_000, 65_536 - 3000])
    paths = [str(tmp_path / f"p{i}") for i in range(4)]
    raw: list[int] = []
    by_slot = [0] * (BASE + NUM_BUCKETS)
    index, status, _, _ = native.put_batch(
        paths,
        0,
        WRITE_FLAGS,
        FILE_MODE,
        memoryview(payload),
        offsets,
        3000,
        BASE + 1,
        SLOT_BITS,
        raw,
        by_slot,
        NEVER,
        NEVER,
    )
    assert (index, status) == (4, native.ALL_DONE)
    for p, off in zip(paths, offsets, strict=True):
        assert Path(p).read_bytes() == payload[off : off + 3000]
        assert Path(p).stat().st_mode & 0o777 == FILE_MODE & ~_umask()
    assert [v & SLOT_MASK for v in raw] == [BASE + 1] * 4 and by_slot[BASE + 1] == 12_000


def test_a_put_into_a_missing_directory_or_through_a_symlink_is_handed_back(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(outside)
    payload = memoryview(b"n" * 100)
    for name in ("nodir/p", "link"):
        raw: list[int] = []
        index, status, _, _ = native.put_batch(
            [str(tmp_path / name)],
            0,
            WRITE_FLAGS,
            FILE_MODE,
            payload,
            array("q", [0]),
            10,
            BASE,
            SLOT_BITS,
            raw,
            [0] * (BASE + 1),
            NEVER,
            NEVER,
        )
        assert (index, status, raw) == (0, native.FALLBACK, [])
    assert outside.read_bytes() == b"keep"  # O_NOFOLLOW: never written through


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full (it fails every write with ENOSPC)")
def test_a_write_that_fails_after_the_open_stops_the_batch_with_its_errno(tmp_path: Path) -> None:
    """/dev/full opens and then fails the write with ENOSPC: the batch stops at that op with FAILED, its
    errno and when it began, records nothing for it, and the ops before it stay recorded."""
    paths = [str(tmp_path / "p0"), "/dev/full", str(tmp_path / "p2")]
    raw: list[int] = []
    by_slot = [0] * (BASE + 1)
    before = time.monotonic_ns()
    index, status, err, began = native.put_batch(
        paths, 0, WRITE_FLAGS, FILE_MODE, memoryview(b"f" * 10), array("q", [0, 0, 0]), 10, BASE, SLOT_BITS,
        raw, by_slot, NEVER, NEVER,
    )  # fmt: skip
    assert (index, status, err) == (1, native.FAILED, errno.ENOSPC)
    assert before <= began <= time.monotonic_ns()
    assert len(raw) == 1 and by_slot[BASE] == 10
    assert native.put_batch(
        paths, 2, WRITE_FLAGS, FILE_MODE, memoryview(b"f" * 10), array("q", [0, 0, 0]), 10, BASE, SLOT_BITS,
        raw, by_slot, NEVER, NEVER,
    )[:2] == (3, native.ALL_DONE)  # fmt: skip


@pytest.mark.parametrize(
    ("offset", "size"), [(5, 10), (-1, 4), (1, 2**63 - 1)], ids=["past-the-end", "negative", "size-overflows"]
)
def test_put_offsets_outside_the_payload_are_refused_before_any_write(
    tmp_path: Path, offset: int, size: int
) -> None:
    with pytest.raises(ValueError, match="inside the payload"):
        native.put_batch(
            [str(tmp_path / "p")], 0, WRITE_FLAGS, FILE_MODE, memoryview(b"x" * 10), array("q", [offset]),
            size, BASE, SLOT_BITS, [], [0] * (BASE + 1), NEVER, NEVER,
        )  # fmt: skip
    assert not (tmp_path / "p").exists()


def test_which_file_stores_run_batches(tmp_path: Path) -> None:
    plain = FileBackend(parse_uri(f"file://{tmp_path}/"), BackendOptions())
    assert batch_refusal(plain) == ""
    hinted = FileBackend(
        parse_uri(f"file://{tmp_path}/"), BackendOptions(page_cache_mode=PageCacheMode.RANDOM)
    )
    assert "page_cache_mode" in batch_refusal(hinted)

    class Wrapped(FileBackend):
        pass

    assert "not a plain file://" in batch_refusal(Wrapped(parse_uri(f"file://{tmp_path}/"), BackendOptions()))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
