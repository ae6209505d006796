"""What a run reports as left on the storage when no cleanup stage removed its objects: counted from what it
created, exact when it can be, a lower bound when it cannot, with commands that remove exactly those."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from sbench.cli import main
from sbench.config import load_config_text
from sbench.engine.leftovers import Leftover, lines, report
from sbench.engine.rangeset import RangeSet
from sbench.engine.state import PreparedRecord
from sbench.engine.uncleaned import not_cleaned, with_known_puts
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot


def _record(
    entry: int, base: str, created: int, pools: tuple[str, ...] = ("prepared",), count: int = 10
) -> PreparedRecord:
    made = RangeSet(0, count * len(pools), [(0, created)])
    return PreparedRecord(entry, base, pools, count, made, complete=True)


def test_created_objects_and_puts_are_counted_exactly_when_nothing_was_in_doubt() -> None:
    items = not_cleaned(
        [_record(0, "s3://b/p/data", 10), _record(1, "s3://b/p/more/", 0)], ["s3://b/p/out/put_r1_"], 7
    )
    assert [(i.location, i.left, i.exact) for i in items] == [
        ("s3://b/p/data/", 10, True),
        ("s3://b/p/out/put_r1_*", 7, True),
    ]
    assert items[0].remove == "sbench util delete --uri 's3://b/p/data/prepared-*'"
    assert items[1].remove == "sbench util delete --uri 's3://b/p/out/put_r1_*'"


def test_doubt_makes_the_count_a_lower_bound_where_it_applies() -> None:
    prepared = [_record(0, "file:///t/a/", 4), _record(1, "file:///t/b/", 20, ("prepared", "deletable"))]
    items = not_cleaned(prepared, ["file:///t/out/put_r_"], 0, put_unsure=True, deleted_in_workload=5)
    by_place = {i.location: (i.left, i.exact) for i in items}
    # DELETE draws from the deletable pool only: entry 0 is untouched and exact
    assert by_place == {
        "file:///t/a/": (4, True),
        "file:///t/b/": (15, False),
        "file:///t/out/put_r_*": (0, False),
    }
    data = report("tolerant", items, not_run="the run ended before its cleanup stage (ABORTED: Ctrl-C)")
    assert data["total"] == 19 and not data["exact"] and not data["fails_run"]
    assert lines(data)[0].startswith("Objects left: at least 19 (not cleaned up: the run ended before")


def test_a_record_shared_by_agents_is_counted_once_and_preexisting_objects_are_named() -> None:
    shared = _record(0, "s3://b/p/", 6)
    items = not_cleaned([shared, shared], [], 0)
    assert [i.left for i in items] == [6]
    assert "also deletes up to 4 prepared objects that existed before this run" in items[0].remove


def test_a_kept_run_reports_what_stays_and_the_command_removes_exactly_that(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "out").mkdir(parents=True)
    foreign = root / "out" / "someone-elses.dat"
    foreign.write_bytes(b"x")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 1s\nconcurrency: 2\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: 20, size_spec: 1024}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
        "  - {op: put, path: 'out/', weight: 1, object_size: 512}\n"
    )
    results = tmp_path / "r"
    assert main(["run", str(cfg), "--results-dir", str(results)]) == 0  # keeping objects is not a failure
    left = json.loads((results / "summary.json").read_text())["left_behind"]
    puts = len(list((root / "out").glob("put_*")))
    assert left["exact"] and left["total"] == 20 + puts and puts > 0
    assert "no cleanup stage" in left["cleanup_not_run"] and not left["fails_run"]
    status = (results / "STATUS.txt").read_text()
    assert status.startswith("TEST STATUS: SUCCESS") and f"Objects left: {20 + puts:,}" in status
    for place in left["locations"]:
        for command in place["remove"].split("; "):
            argv = shlex.split(command)
            assert argv[:3] == ["sbench", "util", "delete"]
            assert main(argv[1:]) == 0
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [foreign.name]


def _puts(n: int) -> Snapshot:
    rec = Recorder()
    for _ in range(n):
        rec.record(OpClass.PUT, 512, 100)
    return rec.take_interval()


def test_a_cut_off_put_listing_is_floored_by_the_puts_the_run_made() -> None:
    config = load_config_text(
        "target: file:///t/\nworkload: [{op: put, path: out/, object_size: 512, weight: 1}]\n"
    ).config
    place = "file:///t/out/put_r1_standalone_"
    listed = [Leftover(place, 40, False), Leftover("file:///t/data/", 10, True)]
    cut = report("tolerant", listed, aborted=True)
    # 500 PUTs, 300 confirmed gone, none in flight: 200 stay, exactly
    floored = with_known_puts(cut, config, "r1", _puts(500), put_gone=300, deletes_in_flight=0)
    assert floored["total"] == 210 and floored["exact"] and floored["aborted"]
    # deletes in flight may land: 200 - 8 at least
    unsure = with_known_puts(cut, config, "r1", _puts(500), put_gone=300, deletes_in_flight=8)
    assert unsure["total"] == 202 and not unsure["exact"]
    # a lost cleanup task: nothing more is known; a listing that saw more than the floor is kept
    assert with_known_puts(cut, config, "r1", _puts(500), put_gone=300, deletes_in_flight=None) is cut
    assert with_known_puts(cut, config, "r1", _puts(60), put_gone=30, deletes_in_flight=0) is cut
