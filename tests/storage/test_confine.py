"""file:// and direct:// keep every key inside the root's real path, symlinks included (issue 10 item 1).

The "victim" is a sibling directory of the target holding files that must come through every test untouched:
a symlinked directory inside the target, a symlink planted after the backend opened, a symlinked file, and
the cache of verified directories after sbench removed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.confine import RootGuard, has_dotdot
from sbench.storage.registry import open_backend
from sbench.storage.uri import uri_under

VICTIM_FILES = {"passwd": b"root:x:0:0", "hosts": b"127.0.0.1 localhost"}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.mkdir()
    for name, data in VICTIM_FILES.items():
        (path / name).write_bytes(data)
    return path


@pytest.fixture(params=["file", "direct"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, Path]]:
    root = tmp_path / "bench"
    (root / "data").mkdir(parents=True)
    (root / "data" / "obj").write_bytes(b"x" * 4096)
    backend = open_backend(f"{request.param}://{root}/")
    try:
        yield backend, root
    finally:
        backend.close()


def _untouched(victim: Path) -> None:
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == VICTIM_FILES


def _refused(call: object) -> StorageError:
    with pytest.raises(StorageError) as excinfo:
        call()  # type: ignore[operator]
    assert excinfo.value.kind is ErrorClass.OUTSIDE_ROOT, excinfo.value
    return excinfo.value


def test_a_symlinked_directory_that_leaves_the_root_is_never_followed(
    target: tuple[Backend, Path], victim: Path
) -> None:
    backend, root = target
    (root / "link").symlink_to(victim, target_is_directory=True)
    _refused(lambda: backend.put("link/new", b"written outside"))
    _refused(lambda: backend.put("link/passwd", b"overwritten"))
    _refused(lambda: backend.get("link/passwd"))
    _refused(lambda: backend.stat("link/hosts"))
    _refused(lambda: backend.delete("link/hosts"))
    _refused(lambda: list(backend.list("link/")))
    _refused(lambda: backend.mkdir("link/sub"))
    _refused(lambda: backend.rmdir("link/", recursive=True))
    err = _refused(lambda: backend.delete("link/passwd"))
    assert str(victim) in str(err)  # the message says where the path really leads
    _untouched(victim)
    # LIST of the root lists the link as a name but never descends into it
    assert sorted(k for k, _ in backend.list("")) == ["data/obj"]
    assert backend.get("data/obj") == b"x" * 4096  # the rest of the root still works


def test_a_symlink_planted_after_the_backend_opened_is_caught(
    target: tuple[Backend, Path], victim: Path
) -> None:
    backend, root = target
    backend.put("uploads/first", b"a")  # the directory is created (and verified) by sbench
    (root / "later").symlink_to(victim, target_is_directory=True)  # planted mid-run, where PUTs go next
    _refused(lambda: backend.put("later/put_x.dat", b"b"))
    backend.rmdir("uploads/", recursive=True)
    (root / "uploads").symlink_to(victim, target_is_directory=True)  # sbench removed it; it comes back a link
    _refused(lambda: backend.put("uploads/second", b"c"))
    _untouched(victim)


def test_symlinked_files_follow_only_inside_and_delete_removes_the_link(
    target: tuple[Backend, Path], victim: Path
) -> None:
    backend, root = target
    (root / "data" / "out").symlink_to(victim / "passwd")
    (root / "data" / "in").symlink_to(root / "data" / "obj")
    _refused(lambda: backend.put("data/out", b"overwritten through a link"))
    _refused(lambda: backend.get("data/out"))
    _refused(lambda: backend.stat("data/out"))
    assert backend.get("data/in") == b"x" * 4096
    assert backend.stat("data/in").size == 4096
    backend.delete("data/out")  # removes the link itself
    assert not (root / "data" / "out").is_symlink()
    _untouched(victim)


def test_the_issue_escapes_are_refused_at_the_storage_layer(
    tmp_path: Path, target: tuple[Backend, Path], victim: Path
) -> None:
    """`../victim/` from the target and a deep `../../..` climb, as sbench's engine would pass them."""
    backend, root = target
    _refused(lambda: backend.delete("../victim/passwd"))
    depth = len(root.relative_to(tmp_path.anchor).parts)
    climb = "../" * depth + str(victim).lstrip("/")
    _refused(lambda: backend.put(climb + "/planted", b"x"))
    _refused(lambda: backend.delete(climb + "/hosts"))
    # a last segment `..` (the root's parent) or `.`: refused as well, not opened
    for key in ("..", "data/..", ".", "data/."):
        _refused(lambda key=key: backend.get(key))
        _refused(lambda key=key: backend.put(key, b"x"))
        _refused(lambda key=key: backend.stat(key))
    _untouched(victim)


def test_root_guard_caches_verified_directories_only(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    guard = RootGuard(str(root))
    guard.check_dir("a", "get", "file://x")
    guard.check_dir("missing", "put", "file://x")  # inside, but not there yet: resolved again next time
    assert "a" in guard.verified and "missing" not in guard.verified
    guard.forget("a", recursive=False)
    assert "a" not in guard.verified


def test_lexical_helpers() -> None:
    assert has_dotdot("a/../b") and has_dotdot("..") and has_dotdot("../x/")
    assert not has_dotdot("a..b/c") and not has_dotdot("..x/y") and not has_dotdot("a/b")
    assert uri_under("s3://b/p/", "s3://b/p/data/*") and uri_under("gcs://b/p", "gs://b/p/x")
    assert not uri_under("s3://b/p/", "s3://b/other/") and not uri_under("file:///t/a", "file:///t/ab/")
