"""file:// and direct:// specifics the contract suite does not cover: page-cache hints, O_DIRECT alignment and
chunking, OS error classes, directory semantics, and the refusal of O_DIRECT by a file system."""

from __future__ import annotations

import ctypes
import errno
import os
import tracemalloc
from pathlib import Path

import pytest

from sbench.errors import ConfigError
from sbench.storage import direct as direct_mod
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.errors_map import classify_errno, storage_error_from_os
from sbench.storage.options import BackendOptions, PageCacheMode
from sbench.storage.registry import open_backend

MIB = 1024 * 1024
DATA = os.urandom(21 * MIB + 5)


@pytest.mark.parametrize("mode", [None, *PageCacheMode])
def test_page_cache_modes_read_correct_bytes(tmp_path: Path, mode: PageCacheMode | None) -> None:
    backend = open_backend(f"file://{tmp_path}/", BackendOptions(page_cache_mode=mode))
    backend.put("f", DATA[:MIB])
    assert bytes(backend.get("f")) == DATA[:MIB]
    assert bytes(backend.get_range("f", 4000, 5000)) == DATA[4000:9000]


@pytest.mark.parametrize("entries", [1, 400])
def test_get_of_a_directory_is_eisdir(tmp_path: Path, entries: int) -> None:
    """GET finds a file's size with lseek(SEEK_END), which a directory answers with a block size, an error
    (tmpfs) or 2**63 - 1 (an ext4 directory grown into an htree): each must fail as reading it does."""
    backend = open_backend(f"file://{tmp_path}/")
    for i in range(entries):
        backend.put(f"d/{'n' * 120}{i}", b"1")
    with pytest.raises(StorageError) as excinfo:
        backend.get("d")
    assert excinfo.value.kind is ErrorClass.OTHER and "directory" in str(excinfo.value)


def test_get_keeps_reading_after_a_short_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network file system may return fewer bytes than asked: GET reads on until it has the whole file."""
    backend = open_backend(f"file://{tmp_path}/")
    backend.put("f", DATA[:MIB])
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: pread(fd, min(n, 1000), offset))
    assert bytes(backend.get("f")) == DATA[:MIB]


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 8 * MIB, 8 * MIB + 1, 21 * MIB + 5])
def test_direct_alignment_and_chunking(tmp_path: Path, size: int) -> None:
    """Sizes around the 4 KiB alignment and the 8 MiB chunking threshold; the padding never leaks."""
    backend = open_backend(f"direct://{tmp_path}/")
    backend.put("d/obj", memoryview(DATA)[:size])
    assert os.path.getsize(tmp_path / "d" / "obj") == size
    assert bytes(backend.get("d/obj")) == DATA[:size]
    for offset, length in [(size // 3, 4 * MIB + 17), (max(size - 4097, 0), 8192)]:
        assert bytes(backend.get_range("d/obj", offset, length)) == DATA[:size][offset:offset + length]


def test_direct_files_are_plain_files_for_file_backend(tmp_path: Path) -> None:
    """Both drivers see the same tree: prepare with one, read with the other."""
    direct = open_backend(f"direct://{tmp_path}/")
    plain = open_backend(f"file://{tmp_path}/")
    direct.put("x/a", DATA[:10_000])
    assert bytes(plain.get("x/a")) == DATA[:10_000]
    plain.put("x/b", DATA[:5])
    assert bytes(direct.get("x/b")) == DATA[:5]


def test_direct_refused_by_file_system_names_the_path() -> None:
    """procfs refuses O_DIRECT with EINVAL on open, as tmpfs did before Linux 6.6."""
    backend = open_backend("direct:///proc/self/")
    with pytest.raises(ConfigError) as excinfo:
        backend.get("status")
    assert "/proc/self/status" in str(excinfo.value)
    assert "file://" in str(excinfo.value)


def test_direct_scratch_buffer_is_page_aligned() -> None:
    scratch = direct_mod._Scratch()
    view = scratch.get(5000)
    address = ctypes.addressof(ctypes.c_char.from_buffer(view.obj))
    assert address % direct_mod.ALIGN == 0
    assert len(view) >= 5000


def test_disk_full_is_no_space_with_clear_message() -> None:
    """/dev/full answers every write with ENOSPC: a real disk-full condition without filling a disk."""
    backend = open_backend("file:///dev/")
    with pytest.raises(StorageError) as excinfo:
        backend.put("full", b"payload")
    assert excinfo.value.kind is ErrorClass.NO_SPACE
    assert "disk full" in str(excinfo.value)
    assert not excinfo.value.retryable


def test_permission_denied_is_auth() -> None:
    """Tests run as root, which bypasses file modes; sysfs still refuses write access to a read-only node."""
    backend = open_backend("file:///sys/kernel/")
    with pytest.raises(StorageError) as excinfo:
        backend.put("notes", b"x")
    assert excinfo.value.kind is ErrorClass.AUTH
    assert "permission denied" in str(excinfo.value).lower()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.ENOENT, ErrorClass.NOT_FOUND),
        (errno.ENOTDIR, ErrorClass.NOT_FOUND),
        (errno.EACCES, ErrorClass.AUTH),
        (errno.EPERM, ErrorClass.AUTH),
        (errno.ETIMEDOUT, ErrorClass.TIMEOUT),
        (errno.ESTALE, ErrorClass.NETWORK),
        (errno.EHOSTUNREACH, ErrorClass.NETWORK),
        (errno.EAGAIN, ErrorClass.THROTTLED),
        (errno.ENOSPC, ErrorClass.NO_SPACE),
        (errno.EDQUOT, ErrorClass.NO_SPACE),
        (errno.EIO, ErrorClass.OTHER),
        (None, ErrorClass.OTHER),
    ],
)
def test_errno_classes(code: int | None, kind: ErrorClass) -> None:
    assert classify_errno(code) is kind


def test_os_error_message_keeps_original_text() -> None:
    exc = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/x")
    err = storage_error_from_os(exc, "file:///data/x", "put")
    assert os.strerror(errno.EDQUOT) in err.message
    assert "EDQUOT" in err.message and "quota" in err.message
    assert err.uri == "file:///data/x"


def test_missing_parent_is_created_on_put(tmp_path: Path) -> None:
    backend = open_backend(f"file://{tmp_path}/root/")
    backend.put("a/b/c/d.bin", b"xyz")
    assert (tmp_path / "root" / "a" / "b" / "c" / "d.bin").read_bytes() == b"xyz"


def test_directory_errors(tmp_path: Path) -> None:
    backend = open_backend(f"file://{tmp_path}/")
    backend.mkdir("d/e")
    backend.put("d/e/f", b"1")
    with pytest.raises(StorageError) as excinfo:
        backend.delete("d/e")
    assert excinfo.value.kind is ErrorClass.OTHER and "directory" in str(excinfo.value)
    with pytest.raises(StorageError) as excinfo:
        backend.rmdir("d/e")
    assert excinfo.value.kind is ErrorClass.OTHER and "not empty" in str(excinfo.value)
    with pytest.raises(StorageError) as excinfo:
        backend.rmdir("nope")
    assert excinfo.value.kind is ErrorClass.NOT_FOUND
    backend.delete("d/e/f")
    backend.rmdir("d/e")
    assert not (tmp_path / "d" / "e").exists()
    with pytest.raises(StorageError) as excinfo:
        backend.get_range("d/missing", 0, 1)
    assert excinfo.value.kind is ErrorClass.NOT_FOUND


def test_rmdir_refuses_the_file_system_root() -> None:
    backend = open_backend("file:///")
    with pytest.raises(StorageError) as excinfo:
        backend.rmdir("", recursive=True)
    assert "refusing" in str(excinfo.value)


def test_list_with_partial_name_prefix(tmp_path: Path) -> None:
    """A prefix that ends inside a name filters like an object-store prefix."""
    backend = open_backend(f"file://{tmp_path}/")
    for key in ["p/abc-1", "p/abc-2", "p/abd-1", "p/abc-dir/x"]:
        backend.put(key, b"..")
    files = [("p/abc-1", 2), ("p/abc-2", 2)]
    assert sorted(backend.list("p/abc", recursive=True)) == [*files, ("p/abc-dir/x", 2)]
    assert sorted(backend.list("p/abc", recursive=False)) == [*files, ("p/abc-dir/", 0)]


def test_list_keeps_constant_memory(tmp_path: Path) -> None:
    """Listing holds one scandir iterator per directory level, never the entries (a list of these 5,000
    would take about 600 KB)."""
    root = tmp_path / "many"
    root.mkdir()
    for i in range(5_000):
        (root / f"f{i:06d}").touch()
    backend = open_backend(f"file://{tmp_path}/")
    tracemalloc.start()
    count = sum(1 for _ in backend.list("many/", recursive=True))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 5_000
    assert peak < 64 * 1024, peak
