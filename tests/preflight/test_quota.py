"""Quota reading: real quotactl calls where they answer, the `quota` tool where it is installed, and the
"unknown" result with its reason everywhere else."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sbench.preflight.filesystem import FsTarget, check_filesystem, judge_quota
from sbench.preflight.mounts import MountInfo, mount_of, parse_mountinfo
from sbench.preflight.need import NeedPart, SpaceNeed
from sbench.preflight.quota import QuotaStatus, parse_quota_cli, read_quota, read_quotas, write_ids
from sbench.preflight.result import CheckList, ErrorType, Level
from tests.preflight import mountns


def _readings(path: str):
    return read_quotas(path, mount_of(path), write_ids(path, os.stat(path)))


def test_quota_readings_on_the_test_directory(tmp_path: Path) -> None:
    """Whatever this host's file system offers, each reading is definite or says why it is not."""
    readings = _readings(str(tmp_path))
    assert [r.kind for r in readings] == ["user", "group", "project"]
    for r in readings:
        if r.status is QuotaStatus.UNKNOWN or r.status is QuotaStatus.DISABLED:
            assert r.reason, r
        if r.status is QuotaStatus.LIMITED:
            assert r.hard_bytes or r.soft_bytes or r.hard_files or r.soft_files
            assert r.bytes_left is None or r.bytes_left >= 0
    if shutil.which("quota") and mount_of(str(tmp_path)).is_network:
        assert all(r.source == "quota-cli" for r in readings[:2])


def test_quota_on_a_file_system_without_quota_support_is_unknown_with_reason(tmp_path: Path) -> None:
    """tmpfs without CONFIG_TMPFS_QUOTA (or a kernel without quotactl) cannot answer: the result is
    `unknown`, at info level, naming the file system and the errno."""
    shm = "/dev/shm"
    mount = mount_of(shm)
    if mount is None or mount.fs_type != "tmpfs":
        pytest.skip("/dev/shm is not a tmpfs here")
    reading = read_quota(shm, mount, "user", os.geteuid())
    if reading.status is not QuotaStatus.UNKNOWN:
        # This kernel has tmpfs quotas: then the reading must be definite.
        assert reading.status in (QuotaStatus.DISABLED, QuotaStatus.UNLIMITED, QuotaStatus.LIMITED)
        return
    assert "tmpfs" in reading.reason and (
        "ENOSYS" in reading.reason or "EOPNOTSUPP" in reading.reason or "ENOTTY" in reading.reason
    )
    checks = CheckList(endpoint="file:///dev/shm/")
    check_filesystem(FsTarget("file:///dev/shm/", shm, write=True), checks)
    quota_checks = [c for c in checks.checks if c.name.startswith("fs.quota.")]
    assert len(quota_checks) == 3
    unknown = [c for c in quota_checks if c.details["status"] == "unknown"]
    assert unknown, quota_checks
    assert all(
        c.level is Level.INFO and "quota unknown: " in c.message and c.details["reason"] for c in unknown
    )


def test_disabled_quota_on_a_local_block_device_is_reported_as_such(tmp_path: Path) -> None:
    mount = mount_of(str(tmp_path))
    if mount is None or not mount.source.startswith("/dev/"):
        pytest.skip(f"{tmp_path} is not on a block device here")
    reading = read_quota(str(tmp_path), mount, "user", os.geteuid())
    if reading.status is QuotaStatus.DISABLED:
        assert "ESRCH" in reading.reason and mount.fs_type in reading.reason
    else:
        assert reading.status in (QuotaStatus.UNKNOWN, QuotaStatus.UNLIMITED, QuotaStatus.LIMITED)


def test_project_id_unknown_gives_unknown_project_quota() -> None:
    reading = read_quota("/", None, "project", None)
    assert reading.status is QuotaStatus.UNKNOWN and "FS_IOC_FSGETXATTR" in reading.reason


NFS_MOUNT = MountInfo("/mnt/home", "nfs4", "filer:/export/home", ("rw",), ("rw",), "0:50")
#: `quota -w -p -v -u 1000` laid out as quota-tools' quota.c prints it (row: device, then twice
#: " %7s%c %6s %7s %7s": 1 KiB blocks / files, `*` when over, soft, hard, raw grace in epoch seconds).
QUOTA_OUTPUT = """Disk quotas for user alice (uid 1000):
     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace
      /dev/sda1       0       0       0       0       0       0       0       0
filer:/export/home  512000*  500000  600000 1735689600    1200        0    5000       0
"""


def test_quota_cli_output_is_parsed_for_the_mount() -> None:
    reading = parse_quota_cli(QUOTA_OUTPUT, "user", 1000, NFS_MOUNT)
    assert reading is not None and reading.status is QuotaStatus.LIMITED
    assert reading.used_bytes == 512000 * 1024 and reading.hard_bytes == 600000 * 1024
    assert reading.bytes_left == (600000 - 512000) * 1024
    assert reading.files_left == 5000 - 1200
    assert parse_quota_cli(QUOTA_OUTPUT, "user", 1000, MountInfo("/x", "nfs", "other:/x", (), (), "")) is None


def test_nfs_quota_without_the_quota_tool_is_unknown_with_reason() -> None:
    """NFS quotas live on the server (rquotad); the syscall cannot read them."""
    reading = read_quota("/", NFS_MOUNT, "user", 1000)
    if shutil.which("quota"):
        assert reading.source == "quota-cli"
    else:
        assert reading.status is QuotaStatus.UNKNOWN
        assert "nfs4 keeps quotas on the server" in reading.reason and "`quota` tool" in reading.reason
    project = read_quota("/", NFS_MOUNT, "project", 5)
    assert project.status is QuotaStatus.UNKNOWN and "rquota" in project.reason


def test_remaining_quota_below_the_need_is_a_resource_error(tmp_path: Path) -> None:
    """The decision rule on a parsed NFS reading: a hard limit with 88,000 KiB left against a 1 GiB need."""
    reading = parse_quota_cli(QUOTA_OUTPUT, "user", 1000, NFS_MOUNT)
    assert reading is not None
    checks = CheckList()
    need = SpaceNeed((NeedPart("prepare.ensure_objects[0]", 1024, 1024 * 1024),))
    target = FsTarget("file:///mnt/home/bench/", "/mnt/home/bench", write=True, need=need)
    judge_quota(reading, target, need.on_disk(4096), checks)
    (err,) = checks.checks
    assert err.level is Level.ERROR and err.error_type is ErrorType.RESOURCE
    assert (
        "raise the user quota of user 1000" in err.suggestion and "lower the object count" in err.suggestion
    )


def test_mountinfo_parsing_unescapes_and_picks_the_deepest_mount(tmp_path: Path) -> None:
    text = (
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 27 0:50 / /mnt/with\\040space rw shared:1 - nfs4 filer:/x rw,vers=4.2\n"
    )
    mounts = parse_mountinfo(text)
    assert [m.mount_point for m in mounts] == ["/proc", "/", "/mnt/with space"]
    assert mounts[2].is_network and mounts[2].options == ("rw",)
    info = tmp_path / "mountinfo"
    info.write_text(text)
    assert mount_of("/mnt/with space/a/b", info).fs_type == "nfs4"
    assert mount_of("/mnt/with", info).fs_type == "ext4"


def test_read_only_mount_is_seen_in_mount_info(tmp_path: Path) -> None:
    reason = mountns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    target_dir = tmp_path / "ro"
    target_dir.mkdir()
    result = mountns.check_on_mount(
        target_dir,
        ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"],
        FsTarget(f"file://{target_dir}/", str(target_dir)),
    )
    mount = result.find("fs.mount")[0]
    assert "read-only" in mount.message and mount.details["fs_type"] == "tmpfs"
