"""Filesystem preflight against real directories and real mounts (read-only, tiny tmpfs, ramfs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sbench.preflight.filesystem import PROBE_PREFIX, FsTarget, check_filesystem, protected_reason
from sbench.preflight.need import NeedPart, SpaceNeed
from sbench.preflight.result import CheckList, ErrorType, Level, PreflightResult
from tests.preflight import mountns


def run(target: FsTarget) -> PreflightResult:
    checks = CheckList(agent_id="test", endpoint=target.uri)
    check_filesystem(target, checks)
    return checks.result()


def only_error(result: PreflightResult):
    assert not result.passed
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def test_healthy_directory_passes_and_leaves_no_probe(tmp_path: Path) -> None:
    (tmp_path / "existing.dat").write_bytes(b"x" * 100)
    need = SpaceNeed((NeedPart("prepare", 10, 4096),))
    result = run(FsTarget(f"file://{tmp_path}/", str(tmp_path), write=True, direct=True, need=need))
    assert result.passed, result.errors
    for name in (
        "fs.stat",
        "fs.list",
        "fs.read",
        "fs.write",
        "fs.mkdir",
        "fs.delete",
        "fs.space",
        "fs.direct_io",
    ):
        assert [c.level for c in result.find(name)] == [Level.SUCCESS], name
    assert {c.name for c in result.checks} >= {
        "fs.mount",
        "fs.ownership",
        "fs.quota.user",
        "fs.quota.group",
        "fs.quota.project",
    }
    assert sorted(os.listdir(tmp_path)) == ["existing.dat"]
    assert result.find("fs.space")[0].details["need_on_disk_bytes"] >= 10 * 4096


def test_read_only_workload_makes_no_write_probe(tmp_path: Path) -> None:
    result = run(FsTarget(f"file://{tmp_path}/", str(tmp_path), write=False))
    assert result.passed
    assert not result.find("fs.write") and not result.find("fs.space")
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "there"
    err = only_error(run(FsTarget(f"file://{missing}/", str(missing), source="target", write=True)))
    assert (err.name, err.error_type) == ("fs.stat", ErrorType.CONFIGURATION)
    assert f"mkdir -p {missing}" in err.suggestion and "`target`" in err.suggestion
    assert err.details["nearest_existing_parent"] == str(tmp_path)
    assert not missing.exists()


def test_file_instead_of_directory_is_a_configuration_error(tmp_path: Path) -> None:
    afile = tmp_path / "data.bin"
    afile.write_bytes(b"abc")
    err = only_error(
        run(FsTarget(f"file://{afile}", str(afile), source="multi_endpoint.endpoints[1]", write=True))
    )
    assert (err.name, err.error_type) == ("fs.stat", ErrorType.CONFIGURATION)
    assert "regular file, not a directory" in err.message
    assert "`multi_endpoint.endpoints[1]`" in err.suggestion
    assert afile.read_bytes() == b"abc" and os.listdir(tmp_path) == ["data.bin"]


@pytest.mark.parametrize("path", ["/", "/etc", "/usr/lib", "/proc/self", "/sys", "/dev", "/boot"])
def test_protected_system_paths_are_refused_before_any_probe(path: str) -> None:
    err = only_error(run(FsTarget(f"file://{path}", path, write=True)))
    assert (err.name, err.error_type) == ("fs.protected_path", ErrorType.CONFIGURATION)
    assert "dedicated benchmark directory" in err.suggestion


def test_dev_shm_and_tmp_are_not_protected(tmp_path: Path) -> None:
    assert protected_reason("/dev/shm") is None
    assert protected_reason(str(tmp_path)) is None


def test_unwritable_directory_is_a_permission_error(tmp_path: Path) -> None:
    """A read-only mount (root ignores mode bits): read-only tmpfs in a private mount namespace, else the
    immutable attribute, else skip with the reason."""
    target_dir = tmp_path / "ro"
    target_dir.mkdir()
    target = FsTarget(
        f"file://{target_dir}/", str(target_dir), write=True, need=SpaceNeed((NeedPart("prepare", 1, 1024),))
    )
    if mountns.unavailable_reason() is None:
        result = mountns.check_on_mount(target_dir, ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"], target)
        err = only_error(result)
        assert "mounted read-only" in err.suggestion and "remount it read-write" in err.suggestion
    else:
        chattr = subprocess.run(
            ["chattr", "+i", str(target_dir)], capture_output=True, text=True, check=False
        )
        if chattr.returncode != 0:
            pytest.skip(
                f"no way to make a directory unwritable for root here: mount namespace: "
                f"{mountns.unavailable_reason()}; chattr +i: {chattr.stderr.strip()}"
            )
        try:
            err = only_error(run(target))
        finally:
            subprocess.run(["chattr", "-i", str(target_dir)], check=True)
        assert "immutable" in err.suggestion
    assert (err.name, err.error_type) == ("fs.write", ErrorType.PERMISSION)
    assert os.listdir(target_dir) == []


def test_too_little_free_space_is_a_resource_error(tmp_path: Path) -> None:
    """100 objects of 64 KiB (6.25 MiB) against a 1 MiB tmpfs; without mount rights, a need larger than
    the real free space of the test directory."""
    target_dir = tmp_path / "small"
    target_dir.mkdir()
    if mountns.unavailable_reason() is None:
        need = SpaceNeed((NeedPart("prepare.ensure_objects[0]", 100, 64 * 1024),))
        target = FsTarget(f"file://{target_dir}/", str(target_dir), write=True, need=need)
        result = mountns.check_on_mount(target_dir, ["-t", "tmpfs", "-o", "size=1m", "tmpfs"], target)
        assert result.find("fs.mount")[0].details["fs_type"] == "tmpfs"
    else:
        free = os.statvfs(target_dir).f_bavail * os.statvfs(target_dir).f_frsize
        need = SpaceNeed((NeedPart("prepare.ensure_objects[0]", 2, free),))
        result = run(FsTarget(f"file://{target_dir}/", str(target_dir), write=True, need=need))
    err = only_error(result)
    assert (err.name, err.error_type) == ("fs.space", ErrorType.RESOURCE)
    assert "lower the object count" in err.suggestion and "prepare.ensure_objects[0]" in err.suggestion
    assert err.details["need_on_disk_bytes"] > err.details["free_bytes"]
    assert os.listdir(target_dir) == []


def test_space_need_counts_whole_blocks(tmp_path: Path) -> None:
    """10,000 objects of 100 B take 10,000 blocks, not 1 MB: the check rounds each object up."""
    need = SpaceNeed((NeedPart("prepare", 10_000, 100),))
    result = run(FsTarget(f"file://{tmp_path}/", str(tmp_path), write=True, need=need))
    space = result.find("fs.space")[0]
    assert space.details["need_on_disk_bytes"] == 10_000 * space.details["block_size"]


def test_unbounded_put_volume_is_reported_as_info(tmp_path: Path) -> None:
    need = SpaceNeed(unbounded=("PUT volume unbounded by config (test)",))
    result = run(FsTarget(f"file://{tmp_path}/", str(tmp_path), write=True, need=need))
    assert result.passed
    assert [c.level for c in result.find("fs.space_unbounded")] == [Level.INFO]
    assert [c.level for c in result.find("fs.space")] == [Level.INFO]


def test_direct_io_on_a_file_system_without_o_direct_is_an_error(tmp_path: Path) -> None:
    """ramfs refuses O_DIRECT at open (tmpfs accepts it since Linux 6.6, so it no longer serves here)."""
    reason = mountns.unavailable_reason()
    if reason is not None:
        pytest.skip(f"needs a ramfs mount: {reason}")
    target_dir = tmp_path / "ram"
    target_dir.mkdir()
    target = FsTarget(f"direct://{target_dir}/", str(target_dir), source="target", direct=True, write=True)
    err = only_error(mountns.check_on_mount(target_dir, ["-t", "ramfs", "ramfs"], target))
    assert (err.name, err.error_type) == ("fs.direct_io", ErrorType.CONFIGURATION)
    assert f"use file://{target_dir}" in err.suggestion
    assert os.listdir(target_dir) == []


def test_probe_names_are_hidden_from_the_list_sample(tmp_path: Path) -> None:
    (tmp_path / f"{PROBE_PREFIX}leftover").write_bytes(b"")
    result = run(FsTarget(f"file://{tmp_path}/", str(tmp_path)))
    assert result.find("fs.list")[0].details["entries_seen"] == 0
