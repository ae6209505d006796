"""file:// driver: plain os calls on a local or mounted file system, rooted at an absolute directory.

Raw `os.open`/`os.pread`/`os.write` instead of Python file objects: no buffered-IO layer between
the benchmark and the kernel, one syscall per op where the kernel allows it, and an fd for posix_fadvise.
Keys map to paths under the root with `/` as separator; PUT creates missing parent directories, as object
stores create "directories" implicitly. `request_timeout_s` does not apply: a blocked syscall cannot be
interrupted from Python, so hung mounts are caught by the engine's stuck detection instead.

Every key stays under the root (sbench.storage.confine): the directory of each key is resolved once and
cached, a final component is opened with O_NOFOLLOW (a symlink is followed only when it resolves inside the
root), STAT looks at a symlink before following it, DELETE unlinks a symlink itself, and LIST never descends
into a symlinked directory. A key that would leave the root fails with ErrorClass.OUTSIDE_ROOT.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_mod
from collections.abc import Iterator
from typing import ClassVar

from sbench.storage.base import Backend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.confine import RootGuard, outside_root
from sbench.storage.errors_map import storage_error_from_os
from sbench.storage.options import BackendOptions, PageCacheMode
from sbench.storage.uri import StorageUri

#: `page_cache_mode: auto` reads files at least this large with a sequential hint, smaller ones as random
#: (s3dlio's rule, which sai3 relies on).
AUTO_SEQUENTIAL_MIN = 64 * 1024 * 1024

_HAS_FADVISE = hasattr(os, "posix_fadvise")
_ADVICE = {
    PageCacheMode.SEQUENTIAL: getattr(os, "POSIX_FADV_SEQUENTIAL", 0),
    PageCacheMode.RANDOM: getattr(os, "POSIX_FADV_RANDOM", 0),
    PageCacheMode.NORMAL: getattr(os, "POSIX_FADV_NORMAL", 0),
}
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 0)
#: lseek(SEEK_END) at or above this is no file's size (an ext4 htree directory reports 2**63 - 1)
_NOT_A_SIZE = 1 << 56
#: O_NOFOLLOW: a final component that is a symlink fails with ELOOP, and `_reopen` decides (never blindly)
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
#: permissions of a file a PUT creates (before the umask)
FILE_MODE = 0o644


class FileBackend(Backend):
    """Local file system backend. Thread-safe: it holds no per-op state."""

    scheme: ClassVar[str] = "file"
    has_directories: ClassVar[bool] = True

    def __init__(self, parsed: StorageUri, options: BackendOptions) -> None:
        super().__init__(parsed.root)
        self.root = parsed.prefix.rstrip("/") or "/"
        #: the root with one trailing `/`: keys are appended to it (os.path.join costs ~0.3 µs per op)
        self._root_slash = self.root if self.root.endswith("/") else self.root + "/"
        self.page_cache_mode = options.page_cache_mode
        self._guard = RootGuard(self.root)
        #: the guard's cache of directories known to resolve inside the root, looked up on every op
        self._verified = self._guard.verified

    # -- paths -------------------------------------------------------------------------------------------

    def path_of(self, key: str, action: str = "access") -> str:
        """The absolute path of a key; OUTSIDE_ROOT when the key's directory resolves outside the root (one
        set lookup per op once the directory is known)."""
        key = key.lstrip("/")
        if not key:
            return self.root
        directory, _, name = key.rpartition("/")
        if directory not in self._verified:
            self._guard.check_dir(directory, action, self.uri_of(key))
        if name[-1] == "." and name in (".", ".."):  # `..` would be the root's parent; `.` not an object
            raise outside_root(action, self.uri_of(key), f"the key {key!r} ends in a {name!r} segment")
        return self._root_slash + key

    def _dir(self, rel: str, action: str) -> str:
        """The absolute path of a directory key, the directory itself resolved (LIST, MKDIR, RMDIR)."""
        rel = rel.strip("/")
        self._guard.check_dir(rel, action, self.uri_of(rel))
        return self._root_slash + rel if rel else self.root

    def _reopen(self, exc: OSError, key: str, path: str, flags: int, action: str) -> int:
        """The slow path after a failed open: a final symlink (ELOOP under O_NOFOLLOW) is opened only when it
        resolves inside the root; a missing parent of a new file is created once its path is resolved again
        (a symlink planted there since would lead out). Anything else re-raises the OSError."""
        rel = key.lstrip("/")
        if exc.errno == errno.ELOOP:
            real = self._guard.check_path(rel, action, self.uri_of(key))
            return os.open(real, flags & ~os.O_NOFOLLOW, FILE_MODE)
        if exc.errno == errno.ENOENT and flags & os.O_CREAT:
            self._guard.check_path(rel.rpartition("/")[0], action, self.uri_of(key))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return os.open(path, flags, FILE_MODE)
        raise exc

    def _error(self, exc: OSError, key: str, action: str) -> StorageError:
        return storage_error_from_os(exc, self.uri_of(key), action)

    # -- reads -------------------------------------------------------------------------------------------

    def get(self, key: str) -> Buffer:
        path = self.path_of(key, "get")
        try:
            try:
                fd = os.open(path, READ_FLAGS)
            except OSError as exc:
                fd = self._reopen(exc, key, path, READ_FLAGS, "get")
        except OSError as exc:
            raise self._error(exc, key, "get") from exc
        try:
            size = _size_of(fd)
            if self.page_cache_mode is None:
                return _pread_all(fd, size, 0)
            self._advise_before(fd, 0, size, size)
            data = _pread_all(fd, size, 0)
            self._advise_after(fd, 0, size)
            return data
        except OSError as exc:
            raise self._error(exc, key, "get") from exc
        finally:
            os.close(fd)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        self._check_range(key, offset, length)
        path = self.path_of(key, "get_range")
        try:
            try:
                fd = os.open(path, READ_FLAGS)
            except OSError as exc:
                fd = self._reopen(exc, key, path, READ_FLAGS, "get_range")
        except OSError as exc:
            raise self._error(exc, key, "get_range") from exc
        try:
            if self.page_cache_mode is PageCacheMode.AUTO:
                self._advise_before(fd, offset, length, _size_of(fd))
            elif self.page_cache_mode is not None:
                self._advise_before(fd, offset, length, 0)
            data = _pread_all(fd, length, offset)
            self._advise_after(fd, offset, length)
            return data
        except OSError as exc:
            raise self._error(exc, key, "get_range") from exc
        finally:
            os.close(fd)

    def _check_range(self, key: str, offset: int, length: int) -> None:
        """A negative offset or length is a caller bug: pread would fail with a less helpful EINVAL."""
        if offset < 0 or length < 0:
            raise StorageError(
                ErrorClass.OTHER, f"invalid range offset={offset} length={length}", uri=self.uri_of(key)
            )

    def _advise_before(self, fd: int, offset: int, length: int, file_size: int) -> None:
        mode = self.page_cache_mode
        if mode is None or mode is PageCacheMode.DONTNEED or not _HAS_FADVISE:
            return
        if mode is PageCacheMode.AUTO:
            mode = PageCacheMode.SEQUENTIAL if file_size >= AUTO_SEQUENTIAL_MIN else PageCacheMode.RANDOM
        os.posix_fadvise(fd, offset, length, _ADVICE[mode])

    def _advise_after(self, fd: int, offset: int, length: int) -> None:
        """`dontneed` drops what was just read, so the next read of the same file goes to the device."""
        if self.page_cache_mode is PageCacheMode.DONTNEED and _HAS_FADVISE:
            os.posix_fadvise(fd, offset, length, _DONTNEED)

    # -- writes ------------------------------------------------------------------------------------------

    def put(self, key: str, data: Buffer) -> None:
        # The common case written out (open, one write, close): on tmpfs a create costs ~6 µs of kernel
        # time, so each Python call saved here is a measurable share of the op.
        path = self.path_of(key, "put")
        try:
            try:
                fd = os.open(path, WRITE_FLAGS, FILE_MODE)
            except OSError as exc:
                fd = self._reopen(exc, key, path, WRITE_FLAGS, "put")
            try:
                written = os.write(fd, data)
                if written != len(data):  # a short write, or a buffer whose items are not bytes
                    _write_rest(fd, data, written)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._error(exc, key, "put") from exc

    # -- metadata ----------------------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectStat:
        try:
            st = os.lstat(self.path_of(key, "stat"))
            if stat_mod.S_ISLNK(st.st_mode):  # a symlink is followed only when it resolves inside the root
                st = os.stat(self._guard.check_path(key.lstrip("/"), "stat", self.uri_of(key)))
        except OSError as exc:
            raise self._error(exc, key, "stat") from exc
        return ObjectStat(key=key, size=st.st_size, mtime=st.st_mtime)

    def delete(self, key: str) -> None:
        path = self.path_of(key, "delete")  # unlink removes a symlink itself, never what it points to
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.EPERM) and os.path.isdir(path):  # Linux says EISDIR or EPERM
                exc = IsADirectoryError(errno.EISDIR, "is a directory (use rmdir)", path)
            raise self._error(exc, key, "delete") from exc

    def mkdir(self, path: str) -> None:
        try:
            os.makedirs(self._dir(path, "mkdir"), exist_ok=True)
        except OSError as exc:
            raise self._error(exc, path, "mkdir") from exc

    def rmdir(self, path: str, recursive: bool = False) -> None:
        target = self._dir(path, "rmdir")
        if os.path.realpath(target) == "/":  # a join bug or `file:///` must never become `rm -rf /`
            raise StorageError(
                ErrorClass.OTHER, "refusing to remove the file system root /", uri=self.uri_of(path)
            )
        try:
            if recursive:
                shutil.rmtree(target)  # never follows a symlink (it refuses one as the top directory)
            else:
                os.rmdir(target)
        except OSError as exc:
            raise self._error(exc, path, "rmdir") from exc
        finally:
            self._guard.forget(path.strip("/"), recursive)

    # -- listing -----------------------------------------------------------------------------------------

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        """Stream entries whose key starts with `prefix`, directory by directory with os.scandir.

        Memory is bounded by the directory depth, not the entry count; the order is the file system's (not
        sorted, since sorting would need a whole directory in memory).
        """
        prefix = prefix.lstrip("/")
        dir_part, _, name_start = prefix.rpartition("/")
        base_key = dir_part + "/" if dir_part else ""
        try:
            yield from self._scan(self._dir(dir_part, "list"), base_key, name_start, recursive)
        except OSError as exc:
            raise self._error(exc, prefix, "list") from exc

    def _scan(
        self, directory: str, base_key: str, name_start: str, recursive: bool
    ) -> Iterator[tuple[str, int]]:
        stack: list[tuple[str, str, str]] = [(directory, base_key, name_start)]
        while stack:
            path, key_base, starts = stack.pop()
            try:
                it = os.scandir(path)
            except (FileNotFoundError, NotADirectoryError):
                continue  # a missing prefix lists as empty, as on object stores
            with it:
                for entry in it:
                    if starts and not entry.name.startswith(starts):
                        continue
                    key = key_base + entry.name
                    # never descends into a symlinked directory (it may lead out of the root)
                    if entry.is_dir(follow_symlinks=False):
                        if recursive:
                            stack.append((entry.path, key + "/", ""))
                        else:
                            yield key + "/", 0
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # deleted between readdir and stat by a concurrent worker
                    if stat_mod.S_ISDIR(st.st_mode):  # a symlink to a directory: listed, not followed
                        if not recursive:
                            yield key + "/", 0
                        continue
                    yield key, st.st_size


def _size_of(fd: int) -> int:
    """The size of an open file, as `os.fstat(fd).st_size` would say, ~1 µs cheaper: lseek(SEEK_END) is one
    light syscall that returns an int, where fstat is glibc's newfstatat(AT_EMPTY_PATH) plus a 20-field
    stat_result with float times, a sixth of a 4 KiB page-cache GET (bench/file_op_cost.py). It moves the
    file position, so the reads after it are preads. A directory fails here with EISDIR, as reading it
    would: tmpfs refuses SEEK_END on one, and an ext4 htree directory reports 2**63 - 1."""
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        size = _NOT_A_SIZE  # decided below with fstat, as for any size no file has
    if size < _NOT_A_SIZE:
        return size
    st = os.fstat(fd)
    if stat_mod.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    return st.st_size


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes at `offset`, fewer at EOF: one pread in the common case (short reads happen on some
    network file systems)."""
    data = os.pread(fd, length, offset)
    if len(data) == length or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


def _write_rest(fd: int, data: Buffer, written: int) -> None:
    """Finish a write after `written` bytes went out (len() counts items, not bytes, for other formats)."""
    view = memoryview(data).cast("B")
    while written < len(view):
        written += os.write(fd, view[written:])


def open_file(parsed: StorageUri, options: BackendOptions) -> FileBackend:
    """Registry factory for file://."""
    return FileBackend(parsed, options)
