"""Which mount a path lives on, from /proc/self/mountinfo (the only source that is right inside containers
and private mount namespaces, where /etc/mtab and `df` can be stale)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
#: File systems whose data lives on another host: free space and quotas come from the server.
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "lustre",
        "9p",
        "afs",
        "beegfs",
        "gpfs",
        "fuse.sshfs",
        "fuse.s3fs",
        "fuse.glusterfs",
    }
)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class MountInfo:
    mount_point: str
    fs_type: str
    source: str
    options: tuple[str, ...]
    super_options: tuple[str, ...]
    device: str  # major:minor

    @property
    def read_only(self) -> bool:
        return "ro" in self.options or "ro" in self.super_options

    @property
    def is_network(self) -> bool:
        return self.fs_type in NETWORK_FS or self.fs_type.startswith("nfs")

    def to_details(self) -> dict[str, object]:
        return {
            "mount_point": self.mount_point,
            "fs_type": self.fs_type,
            "source": self.source,
            "options": ",".join(self.options),
            "super_options": ",".join(self.super_options),
            "device": self.device,
        }


def _unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse mountinfo lines, proc(5): `id parent maj:min root mountpoint opts [opt...] - type src sopts`."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        mounts.append(
            MountInfo(
                mount_point=_unescape(lf[4]),
                fs_type=rf[0],
                source=_unescape(rf[1]),
                options=tuple(lf[5].split(",")),
                super_options=tuple(rf[2].split(",")) if len(rf) > 2 else (),
                device=lf[2],
            )
        )
    return mounts


def mount_of(path: str | os.PathLike[str], mountinfo: Path = MOUNTINFO) -> MountInfo | None:
    """The mount holding `path` (the last, i.e. topmost, of the longest matching mount points)."""
    real = os.path.realpath(path)
    best: MountInfo | None = None
    for mount in parse_mountinfo(mountinfo.read_text()):
        mp = mount.mount_point
        inside = real == mp or mp == "/" or real.startswith(mp.rstrip("/") + "/")
        if inside and (best is None or len(mp) >= len(best.mount_point)):
            best = mount
    return best
