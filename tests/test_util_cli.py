"""`sbench util ...` on file:// roots: in-process through sbench.cli.main, plus real subprocesses for the
entry point and exit codes."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.commands.util import resolve_target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["util", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_put_names_and_random_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "put", "--uri", f"file://{tmp_path}/d/", "--objects", "5", "--object-size", "8KiB",
        "--concurrency", "3",
    )
    assert code == 0
    assert "PUT 5 objects" in out and "MB/s" in out and "p99" in out
    files = sorted((tmp_path / "d").iterdir())
    assert [f.name for f in files] == [f"obj_{i:06d}.dat" for i in range(5)]
    blobs = [f.read_bytes() for f in files]
    assert all(len(b) == 8192 for b in blobs)
    assert len(set(blobs)) == 5  # every object differs
    for blob in blobs:  # random, never zeros: incompressible
        assert blob.count(0) < 200
        assert len(zlib.compress(blob)) > 8000


def test_put_star_pattern_and_size_string(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "put", "--uri", f"file://{tmp_path}/img_*.raw", "--objects", "3",
                     "--object-size", "1,000")
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"img_{i:06d}.raw" for i in range(3)]
    assert all(p.stat().st_size == 1000 for p in tmp_path.iterdir())


def test_put_single_object_and_stat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "put", "--uri", f"file://{tmp_path}/one.bin", "--object-size", "3000")[0] == 0
    code, out, _ = run(capsys, "stat", "--uri", f"file://{tmp_path}/one.bin")
    assert code == 0
    assert "size:  3000 bytes" in out and "mtime:" in out


def test_put_many_objects_to_one_name_is_usage_error(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "put", "--uri", f"file://{tmp_path}/one.bin", "--objects", "2")
    assert code == 2
    assert "overwrite" in err and "'*'" in err


def test_health_list_get_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for i in range(4):
            (tmp_path / sub / f"f{i}.dat").write_bytes(b"x" * (10 + i))
    (tmp_path / "a" / "other.txt").write_bytes(b"y")

    code, out, _ = run(capsys, "health", "--uri", f"file://{tmp_path}/")
    assert code == 0 and "OK – found 9 objects" in out

    code, out, err = run(capsys, "list", "--uri", f"file://{tmp_path}/a/f*.dat")
    assert code == 0
    assert sorted(out.split()) == [f"file://{tmp_path}/a/f{i}.dat" for i in range(4)]
    assert "4 entries" in err

    code, out, _ = run(capsys, "list", "--uri", f"file://{tmp_path}/", "--shallow")
    assert sorted(out.split()) == [f"file://{tmp_path}/a/", f"file://{tmp_path}/b/"]

    code, out, _ = run(capsys, "get", "--uri", f"file://{tmp_path}/b/", "--jobs", "2")
    assert code == 0 and "GET 4 objects, 46 B" in out

    code, out, _ = run(capsys, "delete", "--uri", f"file://{tmp_path}/a/f*")
    assert code == 0 and "DELETE 4 objects" in out
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["other.txt"]

    code, out, _ = run(capsys, "delete", "--uri", f"file://{tmp_path}/b/")
    assert code == 0 and "DELETE 4 objects" in out
    assert list((tmp_path / "b").iterdir()) == []


def test_get_of_nothing_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "get", "--uri", f"file://{tmp_path}/empty/")
    assert code == 1 and "nothing matches" in err


def test_failures_are_counted_by_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "get", "--uri", f"file://{tmp_path}/missing.bin")
    assert code == 1
    assert "1 of 1 operations failed (not_found: 1)" in err
    assert "missing.bin" in err


def test_stat_of_missing_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "stat", "--uri", f"file://{tmp_path}/nope")
    assert code == 1 and "not_found" in err and "nope" in err


def test_stat_needs_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "stat", "--uri", f"file://{tmp_path}/")
    assert code == 2 and "needs one object" in err


def test_direct_uri(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "put", "--uri", f"direct://{tmp_path}/", "--objects", "3", "--object-size", "5K")
    assert code == 0
    code, out, _ = run(capsys, "get", "--uri", f"direct://{tmp_path}/")
    assert code == 0 and "GET 3 objects" in out


@pytest.mark.parametrize(
    ("uri", "mode", "root", "name"),
    [
        ("s3://b/p/", "prefix", "s3://b/p/", ""),
        ("s3://b", "prefix", "s3://b", ""),
        ("s3://b/p/obj.dat", "object", "s3://b/p/", "obj.dat"),
        ("s3://b/obj.dat", "object", "s3://b", "obj.dat"),
        ("s3://h:9000/b/p/o_*.dat", "glob", "s3://h:9000/b/p/", "o_*.dat"),
        ("file:///data/x/f*", "glob", "file:///data/x/", "f*"),
        ("file:///top.bin", "object", "file:///", "top.bin"),
        ("az://acct/cont/dir/obj", "object", "az://acct/cont/dir/", "obj"),
    ],
)
def test_resolve_target(uri: str, mode: str, root: str, name: str) -> None:
    target = resolve_target(uri)
    assert (target.mode, target.root.root, target.name) == (mode, root, name)


def test_star_outside_last_component_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list", "--uri", "file:///data/*/x")
    assert code == 2 and "last path component" in err


def test_unbuilt_or_bad_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "health", "--uri", "ftp://host/x")
    assert code == 2 and "unknown scheme 'ftp'" in err


def _sbench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbench", "util", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_subprocess_round_trip(tmp_path: Path) -> None:
    put = _sbench("put", "--uri", f"file://{tmp_path}/s/", "--objects", "4", "--object-size", "2KiB")
    assert put.returncode == 0, put.stderr
    health = _sbench("health", "--uri", f"file://{tmp_path}/s/")
    assert health.returncode == 0 and "OK – found 4 objects" in health.stdout
    listing = _sbench("list", "--uri", f"file://{tmp_path}/s/")
    assert len(listing.stdout.split()) == 4


def test_subprocess_errors_have_no_traceback(tmp_path: Path) -> None:
    missing = _sbench("stat", "--uri", f"file://{tmp_path}/missing")
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr and "not_found" in missing.stderr
    bad = _sbench("list", "--uri", "file://relative/x")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "absolute path" in bad.stderr
