"""Checks for file:// and direct:// targets, run on the agent's own host before any benchmark I/O.

Order follows what a user would debug by hand: who am I, is this a sane place, does it exist, who owns it,
what is mounted there, can I list/read it, and (only when the workload writes) can I write, mkdir and delete,
is there room for what prepare and PUTs will write, and does a quota stop me first. A fatal failure (missing
directory, unlistable, unwritable) ends the checks for that target, since every later probe would fail the
same way. Probes use unique `.sbench-preflight-<uuid>` names and are removed even when a probe fails.
"""

from __future__ import annotations

import errno
import grp
import itertools
import mmap
import os
import pwd
import stat
import uuid
from dataclasses import dataclass, field

from sbench.preflight.mounts import MountInfo, mount_of
from sbench.preflight.need import SpaceNeed, human_bytes
from sbench.preflight.quota import QuotaReading, QuotaStatus, read_quotas, write_ids
from sbench.preflight.result import CheckList, ErrorType

PROBE_PREFIX = ".sbench-preflight-"
PROBE_SIZE = 4096
DIRECT_ALIGN = 4096  # a multiple of every logical block size in use (512, 4096)
LIST_SAMPLE = 1000  # entries looked at by the list probe; enough to find a file, bounded for huge dirs
READ_SAMPLE = 64 * 1024
SPACE_WARN_FRACTION = 0.9  # warn when the need takes more than this share of the free space

#: Trees that are system-owned or not real storage; anything below them is refused too.
PROTECTED_TREES = (
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
)
#: Directories a benchmark must never write into (exact path): the protected trees' roots, plus parents of
#: legitimate storage (a dataset under /var/tmp or /run/user is fine, /var itself is not).
PROTECTED_EXACT = frozenset({*PROTECTED_TREES, "/", "/run", "/var", "/var/lib", "/var/log"})
#: Places under a protected tree that are legitimate scratch storage.
PROTECTED_EXCEPTIONS = ("/dev/shm",)


@dataclass(frozen=True, slots=True)
class FsTarget:
    """One directory the run will use, and what the run will do there."""

    uri: str
    path: str
    #: Config key that names this directory (for suggestions), e.g. "target" or "multi_endpoint.endpoints[1]".
    source: str = "target"
    direct: bool = False
    write: bool = False
    need: SpaceNeed = field(default_factory=SpaceNeed)


def check_identity(checks: CheckList) -> None:
    """Who the agent runs as: permission problems are only readable with this in view."""
    uid, gid = os.geteuid(), os.getegid()
    groups = sorted(set(os.getgroups()) | {gid})
    details = {
        "uid": uid,
        "gid": gid,
        "user": _user_name(uid),
        "group": _group_name(gid),
        "groups": {str(g): _group_name(g) for g in groups},
    }
    note = (
        " (root: permission bits do not limit access, read-only mounts and immutable files still do)"
        if uid == 0
        else ""
    )
    checks.info(
        "fs.identity",
        f"running as uid {uid} ({details['user']}), gid {gid} ({details['group']}), "
        f"groups {', '.join(details['groups'].values())}{note}",
        details=details,
        endpoint="",
    )


def check_filesystem(target: FsTarget, checks: CheckList) -> None:
    """Run every filesystem check for one target directory, appending to `checks`."""
    path = os.path.abspath(target.path)
    if not _check_protected(target, path, checks):
        return
    st = _check_stat(target, path, checks)
    if st is None:
        return
    mount = _check_mount(path, checks)
    _check_ownership(target, path, st, mount, checks)
    entries = _check_list(target, path, checks)
    if entries is None:
        return
    sample_file = _check_read(path, entries, checks)
    if target.direct:
        _check_direct(target, path, sample_file, mount, checks)
    if target.write:
        if not _check_write_probes(target, path, mount, checks):
            return
        _check_free_space(target, path, mount, checks)
        _check_quotas(target, path, st, mount, checks)


# -- where -----------------------------------------------------------------------------------------------


def protected_reason(path: str) -> str | None:
    """Why `path` must not be a benchmark target, or None when it may be."""
    real = os.path.realpath(path)
    for candidate in {path.rstrip("/") or "/", real}:
        if any(candidate == e or candidate.startswith(e + "/") for e in PROTECTED_EXCEPTIONS):
            continue
        if candidate in PROTECTED_EXACT:
            return f"{candidate} is a system directory"
        for tree in PROTECTED_TREES:
            if candidate.startswith(tree + "/"):
                return f"{candidate} is inside the system tree {tree}"
    return None


def _check_protected(target: FsTarget, path: str, checks: CheckList) -> bool:
    reason = protected_reason(path)
    if reason is None:
        checks.success("fs.protected_path", "not a protected system path")
        return True
    checks.error(
        "fs.protected_path",
        f"{reason}; sbench will not run I/O there",
        ErrorType.CONFIGURATION,
        f"point `{target.source}` at a dedicated benchmark directory (for example /data/sbench/ or "
        f"a mount of the storage under test)",
        details={"path": path},
    )
    return False


def _check_stat(target: FsTarget, path: str, checks: CheckList) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = _nearest_existing(path)
        checks.error(
            "fs.stat",
            f"directory {path} does not exist (nearest existing parent: {parent})",
            ErrorType.CONFIGURATION,
            f"create it (mkdir -p {path}) or fix `{target.source}`",
            details={"path": path, "nearest_existing_parent": parent},
        )
        return None
    except NotADirectoryError:
        checks.error(
            "fs.stat",
            f"a component of {path} is a file, not a directory",
            ErrorType.CONFIGURATION,
            f"fix `{target.source}`: every component of {path} must be a directory",
            details={"path": path},
        )
        return None
    except PermissionError as exc:
        checks.error(
            "fs.stat",
            f"cannot reach {path}: {exc.strerror}",
            ErrorType.PERMISSION,
            f"give uid {os.geteuid()} search (x) permission on every parent of {path}",
            details={"path": path},
        )
        return None
    if not stat.S_ISDIR(st.st_mode):
        kind = "a regular file" if stat.S_ISREG(st.st_mode) else "not a directory"
        checks.error(
            "fs.stat",
            f"{path} is {kind}, not a directory",
            ErrorType.CONFIGURATION,
            f"point `{target.source}` at a directory (for example {os.path.dirname(path)}/"
            f"sbench/), or remove the file {path}",
            details={"path": path, "mode": oct(st.st_mode)},
        )
        return None
    checks.success(
        "fs.stat", f"{path} is a directory", details={"path": path, "mode": oct(stat.S_IMODE(st.st_mode))}
    )
    return st


def _check_ownership(
    target: FsTarget, path: str, st: os.stat_result, mount: MountInfo | None, checks: CheckList
) -> None:
    uid, gid = os.geteuid(), os.getegid()
    groups = set(os.getgroups()) | {gid}
    mode = stat.S_IMODE(st.st_mode)
    relation = "owner" if st.st_uid == uid else "group member" if st.st_gid in groups else "other"
    details = {
        "owner": f"{st.st_uid} ({_user_name(st.st_uid)})",
        "group": f"{st.st_gid} ({_group_name(st.st_gid)})",
        "mode": f"{mode:04o}",
        "we_are": relation,
    }
    # A read-only mount denies W_OK whatever the owner; the write probe reports that with its own fix.
    writes = target.write and not (mount is not None and mount.read_only)
    wanted = os.R_OK | os.X_OK | (os.W_OK if writes else 0)
    text = (
        f"owned by {details['owner']}, group {details['group']}, mode {mode:04o}; "
        f"uid {uid} is {'root' if uid == 0 else relation}"
    )
    if os.access(path, wanted, effective_ids=True):
        checks.info("fs.ownership", text, details=details)
        return
    need = "read, write and search" if writes else "read and search"
    checks.warning(
        "fs.ownership",
        f"{text}: mode bits and ACLs do not grant {need} access",
        ErrorType.PERMISSION,
        f"chown/chmod {path} (or add uid {uid} to group {_group_name(st.st_gid)}) so it may {need}",
        details=details,
    )


def _check_mount(path: str, checks: CheckList) -> MountInfo | None:
    try:
        mount = mount_of(path)
    except OSError as exc:
        checks.info("fs.mount", f"mount table unreadable ({exc}); mount point and type unknown")
        return None
    if mount is None:
        checks.info("fs.mount", "no mount found for this path in /proc/self/mountinfo")
        return None
    flags = "read-only" if mount.read_only else "read-write"
    remote = ", network file system: free space and quotas are the server's" if mount.is_network else ""
    checks.info(
        "fs.mount",
        f"on {mount.mount_point} ({mount.fs_type} from {mount.source}, {flags}{remote})",
        details=mount.to_details(),
    )
    return mount


def _check_list(target: FsTarget, path: str, checks: CheckList) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(path) as it:
            entries = [
                e for e in itertools.islice(it, LIST_SAMPLE + 1) if not e.name.startswith(PROBE_PREFIX)
            ]
    except OSError as exc:
        checks.error(
            "fs.list",
            f"cannot list {path}: {exc.strerror}",
            _error_type(exc),
            _suggest(exc, target, path, "read and search (r-x)"),
            details={"errno": _errno_name(exc)},
        )
        return None
    more = len(entries) > LIST_SAMPLE
    shown = f"{LIST_SAMPLE}+" if more else str(len(entries))
    checks.success(
        "fs.list",
        f"listed {shown} entries",
        details={"entries_seen": min(len(entries), LIST_SAMPLE), "more": more},
    )
    return entries[:LIST_SAMPLE]


def _check_read(path: str, entries: list[os.DirEntry[str]], checks: CheckList) -> str | None:
    sample = next((e.path for e in entries if _is_file(e)), None)
    if sample is None:
        checks.info("fs.read", "no file to read yet (prepare or the workload will create them)")
        return None
    try:
        with open(sample, "rb", buffering=0) as fh:
            got = len(fh.read(READ_SAMPLE))
    except OSError as exc:
        checks.error(
            "fs.read",
            f"cannot read {sample}: {exc.strerror}",
            _error_type(exc),
            f"give uid {os.geteuid()} read permission on the files in {path}",
            details={"file": sample, "errno": _errno_name(exc)},
        )
        return None
    checks.success("fs.read", f"read {got} bytes of {os.path.basename(sample)}", details={"file": sample})
    return sample


# -- writes ----------------------------------------------------------------------------------------------


def _check_write_probes(target: FsTarget, path: str, mount: MountInfo | None, checks: CheckList) -> bool:
    """write, mkdir, delete probes; False when writing is impossible (later space checks are moot)."""
    name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    probe_file = os.path.join(path, name)
    probe_dir = probe_file + ".d"
    payload = os.urandom(PROBE_SIZE)
    try:
        try:
            fd = os.open(probe_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            with open(probe_file, "rb") as fh:
                if fh.read() != payload:
                    raise OSError(errno.EIO, "read-back differs from what was written")
        except OSError as exc:
            message = f"cannot write {probe_file}: {exc.strerror}"
            _write_error(checks, "fs.write", message, exc, target, path, mount)
            return False
        checks.success("fs.write", f"wrote, synced and read back a {PROBE_SIZE}-byte probe file")
        try:
            os.mkdir(probe_dir)
            os.rmdir(probe_dir)
            checks.success("fs.mkdir", "created and removed a probe directory")
        except OSError as exc:
            message = f"cannot create/remove directory {probe_dir}: {exc.strerror}"
            _write_error(checks, "fs.mkdir", message, exc, target, path, mount)
        try:
            os.unlink(probe_file)
            if os.path.lexists(probe_file):
                raise OSError(errno.EIO, "file still present after unlink")
            checks.success("fs.delete", "deleted the probe file")
        except OSError as exc:
            message = f"cannot delete {probe_file}: {exc.strerror}"
            sticky = " (a sticky bit also blocks deleting others' files)"
            _write_error(checks, "fs.delete", message, exc, target, path, mount, note=sticky)
        return True
    finally:
        _remove_probes(checks, probe_file, probe_dir)


def _remove_probes(checks: CheckList, *paths: str) -> None:
    for p in paths:
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            elif os.path.lexists(p):
                os.unlink(p)
        except FileNotFoundError:
            continue
        except OSError as exc:
            checks.warning(
                "fs.cleanup",
                f"could not remove probe {p}: {exc.strerror}",
                ErrorType.PERMISSION,
                f"delete {p} by hand",
            )


def _check_direct(
    target: FsTarget, path: str, sample_file: str | None, mount: MountInfo | None, checks: CheckList
) -> None:
    """O_DIRECT needs file-system support (ramfs, some FUSE and overlay setups refuse it at open)."""
    fs = mount.fs_type if mount else "this file system"
    buf = mmap.mmap(-1, DIRECT_ALIGN)  # page-aligned, as O_DIRECT requires
    probe = os.path.join(path, f"{PROBE_PREFIX}{uuid.uuid4().hex}.direct")
    try:
        if target.write:
            buf.write(os.urandom(DIRECT_ALIGN))
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT, 0o600)
            try:
                os.write(fd, buf)
            finally:
                os.close(fd)
            what = f"aligned {DIRECT_ALIGN}-byte O_DIRECT write"
            read_path = probe
        elif sample_file is not None:
            what, read_path = "aligned O_DIRECT read", sample_file
        else:
            checks.info(
                "fs.direct_io",
                "O_DIRECT not probed: the workload does not write and there is no file to read yet",
            )
            return
        fd = os.open(read_path, os.O_RDONLY | os.O_DIRECT)
        try:
            os.readv(fd, [buf])
        finally:
            os.close(fd)
        checks.success("fs.direct_io", f"{fs} accepts O_DIRECT ({what} and read)")
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            checks.error(
                "fs.direct_io",
                f"{fs} at {path} refuses O_DIRECT (EINVAL)",
                ErrorType.CONFIGURATION,
                f"use file://{path} instead of direct://{path} in `{target.source}`, or put the target "
                f"on a file system with O_DIRECT support (ext4, xfs, ...)",
                details={"fs_type": fs},
            )
        else:
            message = f"O_DIRECT probe failed: {exc.strerror}"
            _write_error(checks, "fs.direct_io", message, exc, target, path, mount)
    finally:
        buf.close()
        _remove_probes(checks, probe)


def _check_free_space(target: FsTarget, path: str, mount: MountInfo | None, checks: CheckList) -> None:
    vfs = os.statvfs(path)
    free = vfs.f_bavail * vfs.f_frsize
    need = target.need
    block = vfs.f_bsize or vfs.f_frsize
    need_disk = need.on_disk(block)
    where = mount.mount_point if mount else path
    details: dict[str, object] = {
        "free_bytes": free,
        "total_bytes": vfs.f_blocks * vfs.f_frsize,
        "block_size": block,
        "need_bytes": need.nbytes,
        "need_on_disk_bytes": need_disk,
        "need_files": need.files,
        "free_inodes": vfs.f_favail if vfs.f_files else None,
        "need_parts": need.describe(),
    }
    for note in need.unbounded:
        checks.info("fs.space_unbounded", note, details={"free_bytes": free})
    if not need.parts:
        checks.info(
            "fs.space",
            f"{human_bytes(free)} free on {where}; the config sizes no writes here",
            details=details,
        )
        return
    parts = "; ".join(need.describe())
    fix = (
        f"free at least {human_bytes(need_disk - free)} on {where}, lower the object count or size in the "
        f"config ({parts}), or point `{target.source}` at a larger file system"
    )
    if need_disk > free:
        checks.error(
            "fs.space",
            f"needs {human_bytes(need_disk)} on disk but only {human_bytes(free)} is free on {where}",
            ErrorType.RESOURCE,
            fix,
            details=details,
        )
    elif need_disk > SPACE_WARN_FRACTION * free:
        checks.warning(
            "fs.space",
            f"needs {human_bytes(need_disk)} of the {human_bytes(free)} free on {where} "
            f"(over {SPACE_WARN_FRACTION:.0%})",
            ErrorType.RESOURCE,
            "free some space first: the benchmark will nearly fill the file system",
            details=details,
        )
    else:
        checks.success(
            "fs.space",
            f"needs {human_bytes(need_disk)}, {human_bytes(free)} free on {where}",
            details=details,
        )
    if vfs.f_files and need.files > vfs.f_favail:
        checks.error(
            "fs.inodes",
            f"needs {need.files:,} files but only {vfs.f_favail:,} inodes are free on {where}",
            ErrorType.RESOURCE,
            f"lower the object count in the config or use a file system with more inodes than "
            f"{vfs.f_files:,}",
            details=details,
        )


def _check_quotas(
    target: FsTarget, path: str, st: os.stat_result, mount: MountInfo | None, checks: CheckList
) -> None:
    need_disk = target.need.on_disk(os.statvfs(path).f_bsize)
    for reading in read_quotas(path, mount, write_ids(path, st)):
        judge_quota(reading, target, need_disk, checks)


def judge_quota(r: QuotaReading, target: FsTarget, need_disk: int, checks: CheckList) -> None:
    """One check for one quota reading: unknown/disabled are info, a limit below the need is an error."""
    name, who, details, need = f"fs.quota.{r.kind}", f"{r.kind} {r.qid}", r.to_details(), target.need
    if r.status is QuotaStatus.UNKNOWN:
        checks.info(name, f"{r.kind} quota unknown: {r.reason}", details=details)
        return
    if r.status is QuotaStatus.DISABLED:
        checks.info(name, f"no {r.kind} quota enforced: {r.reason}", details=details)
        return
    if r.status is QuotaStatus.UNLIMITED:
        checks.success(name, f"no limit set for {who} (uses {human_bytes(r.used_bytes)})", details=details)
        return
    left, soft_left, files_left = r.bytes_left, r.soft_bytes_left, r.files_left
    fix = (
        f"raise the {r.kind} quota of {who} (setquota/xfs_quota) or lower the object count or size in the "
        f"config; `{target.source}` needs {human_bytes(need_disk)} and {need.files:,} files"
    )
    if left is not None and need_disk > left:
        checks.error(
            name,
            f"{who} has {human_bytes(left)} left under its quota, the run needs {human_bytes(need_disk)}",
            ErrorType.RESOURCE,
            fix,
            details=details,
        )
    elif files_left is not None and need.files > files_left:
        checks.error(
            name,
            f"{who} may create {files_left:,} more files under its quota, the run needs {need.files:,}",
            ErrorType.RESOURCE,
            fix,
            details=details,
        )
    elif soft_left is not None and need_disk > soft_left:
        checks.warning(
            name,
            f"the run ({human_bytes(need_disk)}) goes past the soft quota of {who} "
            f"({human_bytes(soft_left)} left); writes fail once the grace period ends",
            ErrorType.RESOURCE,
            fix,
            details=details,
        )
    else:
        room = human_bytes(left) if left is not None else "no byte limit"
        checks.success(
            name, f"{who} quota leaves {room} for the run's {human_bytes(need_disk)}", details=details
        )


# -- helpers ---------------------------------------------------------------------------------------------


def _error_type(exc: OSError, mount: MountInfo | None = None) -> ErrorType:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ErrorType.PERMISSION
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE):
        return ErrorType.RESOURCE
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return ErrorType.CONFIGURATION
    if (
        mount is not None
        and mount.is_network
        and exc.errno in (errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ESTALE)
    ):
        return ErrorType.NETWORK
    return ErrorType.SYSTEM


def _suggest(exc: OSError, target: FsTarget, path: str, access: str, mount: MountInfo | None = None) -> str:
    uid = os.geteuid()
    if exc.errno == errno.EROFS or (
        mount is not None and mount.read_only and exc.errno in (errno.EACCES, errno.EPERM)
    ):
        where = mount.mount_point if mount else path
        return (
            f"{where} is mounted read-only: remount it read-write or point `{target.source}` at a "
            "writable path"
        )
    if exc.errno == errno.EPERM:
        return (
            f"the kernel refused the operation on {path}: check `lsattr -d {path}` for the immutable (i) or "
            f"append-only (a) attribute, and the mount's permissions for uid {uid}"
        )
    if exc.errno == errno.EACCES:
        return (
            f"give uid {uid} {access} permission on {path} (chmod/chown/setfacl) or change `{target.source}`"
        )
    if exc.errno == errno.ENOSPC:
        return f"free space on the file system of {path} or point `{target.source}` elsewhere"
    if exc.errno == errno.EDQUOT:
        return f"uid {uid} is over its disk quota on {path}: raise the quota or free space"
    return f"check the health of the file system holding {path} (dmesg) or point `{target.source}` elsewhere"


def _write_error(
    checks: CheckList,
    name: str,
    message: str,
    exc: OSError,
    target: FsTarget,
    path: str,
    mount: MountInfo | None,
    note: str = "",
) -> None:
    """A failed write-side probe: every one of them needs write (w) access to the directory, so they share
    the error type and the suggestion (plus a probe-specific `note`)."""
    checks.error(
        name,
        message,
        _error_type(exc, mount),
        _suggest(exc, target, path, "write (w)", mount) + note,
        details={"errno": _errno_name(exc)},
    )


def _errno_name(exc: OSError) -> str | None:
    return errno.errorcode.get(exc.errno) if exc.errno is not None else None


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:
        return False


def _nearest_existing(path: str) -> str:
    cur = path
    while not os.path.exists(cur) and cur not in ("/", ""):
        cur = os.path.dirname(cur)
    return cur or "/"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
