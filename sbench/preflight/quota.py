"""Read the user, group and project quota that applies to writes in a directory.

Local file systems (ext4, XFS, btrfs-less kernels aside) answer the quotactl(2) syscall: `quotactl_fd` on the
directory itself (Linux 5.14+, works without knowing the block device, so also for tmpfs and bind mounts),
then the classic `quotactl` on the mount's block device. Network file systems keep quotas on the server; the
`quota` tool asks the server's rquotad, so it is used for NFS and as a fallback when the syscall is refused.
A reading that cannot be made is `unknown` with the reason, never a guess.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import struct
import subprocess
from dataclasses import asdict, dataclass
from enum import StrEnum

from sbench.preflight.mounts import MountInfo

Q_GETQUOTA = 0x800007
QIF_DQBLKSIZE = 1024  # quota block limits are in 1 KiB units; current space is in bytes
_QUOTA_TYPES = {"user": 0, "group": 1, "project": 2}
_NR_QUOTACTL_FD = 443  # same number on every architecture (asm-generic unistd since Linux 5.14)
_FS_IOC_FSGETXATTR = 0x801C581F  # _IOR('X', 31, struct fsxattr), struct fsxattr is 28 bytes
_IF_DQBLK = struct.Struct("=QQQQQQQQI")
QUOTA_CLI_TIMEOUT_S = 5.0


class QuotaStatus(StrEnum):
    LIMITED = "limited"  # a limit is set for this id
    UNLIMITED = "unlimited"  # accounting is on but no limit is set for this id
    DISABLED = "disabled"  # this quota type is not enabled on the file system: nothing is enforced
    UNKNOWN = "unknown"  # could not be read; `reason` says why


@dataclass(frozen=True, slots=True)
class QuotaReading:
    kind: str  # user | group | project
    qid: int | None
    status: QuotaStatus
    source: str  # quotactl_fd | quotactl | quota-cli | none
    reason: str = ""
    used_bytes: int = 0
    soft_bytes: int = 0  # 0 = no limit
    hard_bytes: int = 0
    used_files: int = 0
    soft_files: int = 0
    hard_files: int = 0

    @property
    def bytes_left(self) -> int | None:
        """Bytes that can still be written before the hard (else soft) limit; None when unlimited."""
        limit = self.hard_bytes or self.soft_bytes
        return max(0, limit - self.used_bytes) if limit else None

    @property
    def soft_bytes_left(self) -> int | None:
        return max(0, self.soft_bytes - self.used_bytes) if self.soft_bytes else None

    @property
    def files_left(self) -> int | None:
        limit = self.hard_files or self.soft_files
        return max(0, limit - self.used_files) if limit else None

    def to_details(self) -> dict[str, object]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


def project_id(path: str) -> int | None:
    """The directory's project id (FS_IOC_FSGETXATTR), which new files inherit; None where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        raw = fcntl.ioctl(fd, _FS_IOC_FSGETXATTR, bytes(28))
    except OSError:
        return None
    finally:
        os.close(fd)
    return struct.unpack_from("=IIII", raw)[3]


def write_ids(path: str, st: os.stat_result) -> dict[str, int | None]:
    """The ids a new file in `path` is charged to: our euid, our egid (or the directory's gid when it is
    setgid, as the kernel does), and the directory's project id."""
    gid = st.st_gid if st.st_mode & 0o2000 else os.getegid()
    return {"user": os.geteuid(), "group": gid, "project": project_id(path)}


def read_quotas(path: str, mount: MountInfo | None, ids: dict[str, int | None]) -> list[QuotaReading]:
    return [read_quota(path, mount, kind, qid) for kind, qid in ids.items()]


def read_quota(path: str, mount: MountInfo | None, kind: str, qid: int | None) -> QuotaReading:
    """One quota reading; the first source that gives a definite answer wins."""
    if qid is None:
        return QuotaReading(
            kind,
            None,
            QuotaStatus.UNKNOWN,
            "none",
            f"the file system does not give {path} a {kind} id (no FS_IOC_FSGETXATTR support)",
        )
    if mount is not None and mount.is_network:
        return _from_cli(kind, qid, mount, f"{mount.fs_type} keeps quotas on the server")
    reading = _from_syscall(path, mount, kind, qid)
    if reading.status is QuotaStatus.UNKNOWN and shutil.which("quota") and mount is not None:
        cli = _from_cli(kind, qid, mount, reading.reason)
        if cli.status is not QuotaStatus.UNKNOWN:
            return cli
    return reading


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _qcmd(kind: str) -> ctypes.c_int:
    # QCMD(Q_GETQUOTA, type) sets the top bit: pass it as the signed int the syscall ABI expects.
    value = (Q_GETQUOTA << 8) | _QUOTA_TYPES[kind]
    return ctypes.c_int(value - (1 << 32) if value >= 1 << 31 else value)


def _from_syscall(path: str, mount: MountInfo | None, kind: str, qid: int) -> QuotaReading:
    libc = _libc()
    buf = ctypes.create_string_buffer(_IF_DQBLK.size + 4)
    fs = mount.fs_type if mount else "this file system"
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        rc = libc.syscall(
            ctypes.c_long(_NR_QUOTACTL_FD), ctypes.c_int(fd), _qcmd(kind), ctypes.c_int(qid), buf
        )
        err = ctypes.get_errno() if rc != 0 else 0
    finally:
        os.close(fd)
    source = "quotactl_fd"
    if err == errno.ENOSYS and mount is not None and mount.source.startswith("/dev/"):
        # Kernels before 5.14 lack quotactl_fd; the classic call needs the block device.
        rc = libc.quotactl(_qcmd(kind), mount.source.encode(), ctypes.c_int(qid), buf)
        err = ctypes.get_errno() if rc != 0 else 0
        source = "quotactl"
    if err == 0:
        return _parse_dqblk(kind, qid, source, buf.raw)
    if err == errno.ESRCH:
        return QuotaReading(
            kind,
            qid,
            QuotaStatus.DISABLED,
            source,
            f"{kind} quotas are not enabled on {fs} (quotactl: ESRCH)",
        )
    reasons = {
        errno.ENOSYS: f"{fs} offers no quota interface, or the kernel was built without quotactl (ENOSYS)",
        errno.EOPNOTSUPP: f"{fs} does not support {kind} quotas (EOPNOTSUPP)",
        errno.ENOTTY: f"{fs} does not support quota calls (ENOTTY)",
        errno.EPERM: f"not permitted to read the {kind} quota of id {qid} (EPERM; root can)",
        errno.EACCES: f"not permitted to read the {kind} quota of id {qid} (EACCES)",
        errno.ENOTBLK: f"{fs} is not on a block device (ENOTBLK)",
        errno.ENODEV: f"{fs} is not on a block device (ENODEV)",
    }
    reason = reasons.get(err, f"quotactl failed: {os.strerror(err)} ({errno.errorcode.get(err, err)})")
    return QuotaReading(kind, qid, QuotaStatus.UNKNOWN, source, reason)


def _parse_dqblk(kind: str, qid: int, source: str, raw: bytes) -> QuotaReading:
    bhard, bsoft, curspace, ihard, isoft, curinodes, _bt, _it, _valid = _IF_DQBLK.unpack_from(raw)
    limited = any((bhard, bsoft, ihard, isoft))
    return QuotaReading(
        kind,
        qid,
        QuotaStatus.LIMITED if limited else QuotaStatus.UNLIMITED,
        source,
        used_bytes=curspace,
        soft_bytes=bsoft * QIF_DQBLKSIZE,
        hard_bytes=bhard * QIF_DQBLKSIZE,
        used_files=curinodes,
        soft_files=isoft,
        hard_files=ihard,
    )


def _from_cli(kind: str, qid: int, mount: MountInfo, why_cli: str) -> QuotaReading:
    """Ask the `quota` tool (which talks to rquotad for NFS)."""
    if kind == "project":
        return QuotaReading(
            kind,
            qid,
            QuotaStatus.UNKNOWN,
            "none",
            f"{why_cli}; project quotas cannot be read remotely (rquota has users and groups only)",
        )
    tool = shutil.which("quota")
    if tool is None:
        return QuotaReading(
            kind,
            qid,
            QuotaStatus.UNKNOWN,
            "none",
            f"{why_cli}, and the `quota` tool (package `quota`, talks to rquotad) is not installed",
        )
    flag = "-u" if kind == "user" else "-g"
    try:
        proc = subprocess.run(
            [tool, "-w", "-p", "-v", flag, str(qid)],
            capture_output=True,
            text=True,
            timeout=QUOTA_CLI_TIMEOUT_S,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError) as exc:
        return QuotaReading(kind, qid, QuotaStatus.UNKNOWN, "quota-cli", f"{why_cli}; `quota` failed: {exc}")
    reading = parse_quota_cli(proc.stdout, kind, qid, mount)
    if reading is None:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        tail = detail[-1] if detail else f"exit {proc.returncode}"
        return QuotaReading(
            kind,
            qid,
            QuotaStatus.UNKNOWN,
            "quota-cli",
            f"{why_cli}; `quota` printed no row for {mount.source} ({tail})",
        )
    return reading


def parse_quota_cli(text: str, kind: str, qid: int, mount: MountInfo) -> QuotaReading | None:
    """Parse `quota -w -p -v` output: after the `Filesystem` header, one row per file system with
    space(KiB) quota limit grace files quota limit grace; `*` marks a number over its limit."""
    names = {mount.source, mount.mount_point}
    seen_header = False
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "Filesystem":
            seen_header = True
            continue
        if not seen_header or fields[0] not in names or len(fields) < 9:
            continue
        try:
            space, bsoft, bhard, _bgrace, files, isoft, ihard, _igrace = (
                int(f.rstrip("*")) for f in fields[1:9]
            )
        except ValueError:
            continue
        limited = any((bsoft, bhard, isoft, ihard))
        return QuotaReading(
            kind,
            qid,
            QuotaStatus.LIMITED if limited else QuotaStatus.UNLIMITED,
            "quota-cli",
            used_bytes=space * 1024,
            soft_bytes=bsoft * 1024,
            hard_bytes=bhard * 1024,
            used_files=files,
            soft_files=isoft,
            hard_files=ihard,
        )
    return None
