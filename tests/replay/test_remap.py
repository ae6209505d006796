"""Remap rules (sai3's four kinds, first match wins), `--target`, and the YAML files' error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbench.cli import main
from sbench.replay.remap import Remapper, UriParts, retarget
from sbench.replay.settings import RemapFile, load_backpressure
from tests.replay.logs import write_log


def _remapper(rules: list[dict]) -> Remapper:
    return Remapper(RemapFile.model_validate({"rules": rules}))


def test_uri_parts_round_trip() -> None:
    for uri in ("s3://b/p/q/k.dat", "s3://127.0.0.1:9000/b/p/k", "file:///tmp/d/k", "az://acct/c/k",
                "null:///b/p/k?latency=1ms", "gs://b/k"):
        assert UriParts.parse(uri).uri() == uri
    parts = UriParts.parse("s3://127.0.0.1:9000/b/p/q/k")
    assert (parts.host, parts.bucket, parts.prefix, parts.key) == ("127.0.0.1:9000", "b", "p/q/", "k")


def test_simple_consolidate_and_first_match_wins() -> None:
    remap = _remapper([
        {"match": {"bucket": "src", "prefix": "old/"}, "map_to": {"bucket": "dst", "prefix": "new/"}},
        {"match": {"bucket": "src"}, "map_to": {"bucket": "other"}},
        {"match_any": [{"bucket": "a"}, {"bucket": "b"}], "map_to": {"bucket": "one"}},
    ])
    assert remap("s3://src/old/x/f.dat") == "s3://dst/new/f.dat"
    assert remap("s3://src/keep/f.dat") == "s3://other/keep/f.dat"  # empty prefix keeps the source's
    assert remap("s3://a/k") == "s3://one/k" and remap("s3://b/d/k") == "s3://one/d/k"
    assert remap("s3://zzz/k") == "s3://zzz/k"
    assert remap.report() == {"rules": [{"kind": "simple", "ops": 1}, {"kind": "simple", "ops": 1},
                                        {"kind": "consolidate", "ops": 2}], "unmatched": 1}


@pytest.mark.parametrize("strategy", ["round_robin", "random", "sticky_key"])
def test_fan_out_strategies(strategy: str) -> None:
    remap = _remapper([{"match": {"bucket": "src"},
                        "map_to_many": {"targets": [{"bucket": "r1"}, {"bucket": "r2"}],
                                        "strategy": strategy}}])
    keys = [f"s3://src/d/k{i}" for i in range(40)]
    out = [remap(k) for k in keys]
    buckets = [UriParts.parse(u).bucket for u in out]
    assert set(buckets) == {"r1", "r2"}
    if strategy == "round_robin":
        assert buckets[:4] == ["r1", "r2", "r1", "r2"]
    if strategy == "sticky_key":
        assert [remap(k) for k in keys] == out  # one key, one target, always


def test_regex_with_captures() -> None:
    remap = _remapper([{"regex": "^s3://prod-([^/]+)/(.*)$", "replace": "s3://staging-$1/${2}"}])
    assert remap("s3://prod-db/data/f.dat") == "s3://staging-db/data/f.dat"


def test_target_is_sai3_one_to_one_retarget() -> None:
    assert retarget("file:///tmp/r/", "s3://bench", "bench/data/x") == "file:///tmp/r/data/x"
    assert retarget("s3://new/p", "file://", "/mnt/d/x") == "s3://new/p/mnt/d/x"
    assert retarget("null:///r/?latency=1ms", "s3://b", "b/k") == "null:///r/k?latency=1ms"


def test_a_remap_typo_exits_2_with_line_and_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    log = write_log(tmp_path / "l.tsv", [(0.0, "PUT", "bench/k", 10)])
    remap = tmp_path / "remap.yaml"
    remap.write_text("rules:\n  - match: {bucket: bench}\n    map_too: {bucket: x}\n")
    assert main(["replay", "--op-log", str(log), "--remap", str(remap), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{remap}:3: rules[0].map_too: unknown key `map_too`. Did you mean `map_to`?" in err
    remap.write_text(
        "rules:\n  - match: {bucket: b}\n    map_to_many: {targets: [{bucket: x}], strategy: rr}\n"
    )
    assert main(["replay", "--op-log", str(log), "--remap", str(remap), "--dry-run"]) == 2
    assert f"{remap}:3: rules[0].map_to_many.strategy" in capsys.readouterr().err


def test_backpressure_file_typo_and_hysteresis(tmp_path: Path) -> None:
    from sbench.errors import ConfigError

    path = tmp_path / "bp.yaml"
    path.write_text("lag_threshold: 2s\nrecovery_treshold: 1s\n")
    typo = r"bp.yaml:2: recovery_treshold: .*Did you mean `recovery_threshold`"
    with pytest.raises(ConfigError, match=typo):
        load_backpressure(path)
    path.write_text("lag_threshold: 1s\nrecovery_threshold: 2s\n")
    with pytest.raises(ConfigError, match="must be below lag_threshold"):
        load_backpressure(path)
    path.write_text("lag_threshold: 500ms\nrecovery_threshold: 100ms\nmax_concurrent: 2\n")
    assert load_backpressure(path).lag_threshold == 0.5


def test_a_batch_of_the_logs_own_uris_maps_as_row_by_row() -> None:
    from sbench.replay.remap import map_column, source_uri

    cases = [
        (["s3://h:9000"] * 3, ["b/k1", "b/k2", "b/d/k3"]),  # the usual batch: one endpoint, no schemes
        (["file://", "file://"], ["/tmp/a", "/tmp/b"]),
        (["s3://h:9000", "az://acct"], ["b/k", "c/k"]),  # two endpoints
        (["s3://h", "s3://h"], ["b/k", "gs://other/k"]),  # a file with its own scheme
        (["", ""], ["/x", "/y"]),  # no endpoint: file://
    ]
    for endpoints, files in cases:
        assert map_column(source_uri, endpoints, files) == list(map(source_uri, endpoints, files))
    target = "file:///t/"
    mapped = map_column(lambda e, f: retarget(target, e, f), ["s3://h"], ["b/k"])
    assert mapped == [retarget(target, "s3://h", "b/k")]
