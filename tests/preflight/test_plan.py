"""What preflight plans to check, computed from configs: roots, writes, reads and the space they need."""

from __future__ import annotations

import re

import pytest

from sbench.errors import ConfigError
from sbench.plan.agents import AgentIdentity
from sbench.preflight import planned_checks
from sbench.preflight.plan import agent_plan, execute_seconds, mean_size, workload_writes
from tests.preflight.conftest import config_of

#: What rich reads as a markup tag (dry-run prints these lines through rich): `[` + a letter, #, / or @.
RICH_TAG = re.compile(r"\[[a-zA-Z#/@]")


def roots_by_uri(text: str, identity: AgentIdentity | None = None):
    return {r.uri: r for r in agent_plan(config_of(text), identity)}


def test_prepare_need_is_count_times_mean_size_per_pool() -> None:
    roots = roots_by_uri("""
target: file:///data/bench/
prepare:
  ensure_objects:
    - {count: 1000, size_spec: {type: uniform, min: 1024, max: 3072}}
workload:
  - {op: get, path: "prepared-*.dat", weight: 3}
  - {op: delete, path: "prepared-*.dat", weight: 1}
""")
    root = roots["file:///data/bench/"]
    assert root.write and root.must_exist
    (part,) = root.need.parts
    # GET + DELETE: prepare makes a prepared- and a deletable- pool of `count` each (sai3 §1.6).
    assert (part.count, part.mean_size) == (2000, 2048) and "pools" in part.label
    assert root.need.nbytes == 2000 * 2048
    (read,) = root.reads
    assert read.prepared and read.pattern == "prepared-*.dat"


def test_base_uri_outside_target_is_refused() -> None:
    """No key leaves its root: a base_uri (and an op URI) outside the target is a config error now, so it can
    no longer become a root of its own."""
    with pytest.raises(ConfigError, match="outside the run's storage root"):
        roots_by_uri("""
target: s3://bucket/work/
prepare:
  ensure_objects:
    - {base_uri: "s3://other/pool/", count: 10, size_spec: 4096}
workload:
  - {op: get, path: "s3://other/pool/prepared-00000001.dat", weight: 1}
""")


def test_base_uri_under_target_adds_to_the_target_root() -> None:
    roots = roots_by_uri("""
target: s3://bucket/work/
prepare:
  ensure_objects:
    - {base_uri: "s3://bucket/work/pool/", count: 10, size_spec: 4096}
workload:
  - {op: get, path: "pool/prepared-00000001.dat", weight: 1}
""")
    (root,) = roots.values()
    assert root.write and root.need.nbytes == 10 * 4096
    assert root.reads[0].prepared and root.reads[0].pattern == "pool/prepared-00000001.dat"


def test_multi_endpoint_spreads_prepare_and_routes_relative_reads() -> None:
    roots = roots_by_uri("""
multi_endpoint:
  endpoints: ["s3://10.0.0.1:9000/b/p/", "s3://10.0.0.2:9000/b/p/"]
prepare:
  ensure_objects:
    - {use_multi_endpoint: true, count: 101, size_spec: 1MiB}
workload:
  - {op: get, path: "prepared-*.dat", weight: 1}
  - {op: stat, path: "fixed/key.bin", weight: 1}
""")
    assert len(roots) == 2
    for root in roots.values():
        assert root.need.files == 51  # ceil(101 / 2)
        get, stat = root.reads
        assert get.prepared and not stat.prepared and stat.pattern == "fixed/key.bin"


def test_open_loop_put_volume_is_bounded_and_counted() -> None:
    roots = roots_by_uri("""
duration: 10s
target: s3://bkt/data/
io_rate: {iops: 100}
workload:
  - {op: put, path: "new/", object_size: 8192, weight: 1}
  - {op: get, path: "x.dat", weight: 3}
""")
    (part,) = roots["s3://bkt/data/"].need.parts
    assert (part.count, part.mean_size) == (250, 8192)  # 100 op/s × 25 % × 10 s


def test_closed_loop_put_volume_is_reported_unbounded_not_counted() -> None:
    roots = roots_by_uri("""
duration: 30s
target: file:///data/
workload:
  - {op: put, path: "new/", object_size: 4096, weight: 1}
""")
    root = roots["file:///data/"]
    assert root.need.parts == () and root.write
    (note,) = root.need.unbounded
    assert note.startswith("PUT volume unbounded by config") and "io_rate.iops" in note


def test_read_only_workload_does_not_write() -> None:
    config = config_of('target: gs://bkt/data/\nworkload:\n  - {op: get, path: "a.dat", weight: 1}\n')
    assert not workload_writes(config)
    (root,) = agent_plan(config)
    assert not root.write and root.reads[0].pattern == "a.dat" and not root.reads[0].prepared


def test_tree_mode_counts_files_and_directories_and_skips_read_paths() -> None:
    roots = roots_by_uri("""
target: file:///data/tree/
prepare:
  directory_structure: {width: 2, depth: 2, files_per_dir: 3}
  ensure_objects:
    - {count: 12, size_spec: 1024}
workload:
  - {op: get, path: "ignored", weight: 1}
  - {op: mkdir, path: "ignored", weight: 1}
""")
    root = roots["file:///data/tree/"]
    files, dirs = root.need.parts
    assert (files.count, files.mean_size) == (12, 1024)  # 4 bottom dirs × 3 files
    assert (dirs.count, dirs.mean_size) == (6, 0)  # 2 + 4 directories
    assert root.reads == ()


def test_per_agent_overrides_and_isolated_prefixes() -> None:
    text = """
target: file:///shared/
distributed:
  shared_filesystem: false
  agents:
    - {address: "127.0.0.1:1", id: a}
    - {address: "127.0.0.1:2", id: b, target_override: "file:///b-only/"}
    - address: "127.0.0.1:3"
      multi_endpoint: {endpoints: ["s3://h1:9000/bkt/", "s3://h2:9000/bkt/"]}
workload:
  - {op: put, path: "w/", object_size: 1024, weight: 1}
"""
    a = roots_by_uri(text, AgentIdentity("a", 0, 3))
    assert list(a) == ["file:///shared/"] and not a["file:///shared/"].must_exist  # isolated: own prefix
    b = roots_by_uri(text, AgentIdentity("b", 1, 3))
    assert list(b) == ["file:///b-only/"] and b["file:///b-only/"].must_exist
    assert b["file:///b-only/"].source == "distributed.agents[1].target_override"
    c = roots_by_uri(text, AgentIdentity("agent-3", 2, 3))
    assert [r.source for r in c.values()][:2] == [
        "distributed.agents[2].multi_endpoint.endpoints[0]",
        "distributed.agents[2].multi_endpoint.endpoints[1]",
    ]


def test_shared_open_loop_puts_count_every_agent() -> None:
    text = """
duration: 4s
target: s3://bkt/p/
io_rate: {iops: 10}
distributed:
  shared_filesystem: true
  agents: [{address: "127.0.0.1:1"}, {address: "127.0.0.1:2"}]
workload:
  - {op: put, path: "w/", object_size: 100, weight: 1}
"""
    (root,) = agent_plan(config_of(text), AgentIdentity("agent-1", 0, 2))
    assert root.need.files == 80  # 10 op/s per agent × 4 s × 2 agents into one namespace


def test_mean_size_and_execute_seconds() -> None:
    config = config_of("""
duration: 5s
target: file:///d/
workload:
  - op: put
    path: "w/"
    size_spec: {type: lognormal, mean: 1000, std_dev: 10, min: 2000, max: 3000}
    weight: 1
""")
    assert mean_size(config.workload[0].size_spec) == 2000  # mean clamped into [min, max]
    assert execute_seconds(config) == 5.0


def test_planned_checks_lists_roots_and_controller_checks(tmp_path) -> None:
    (tmp_path / "a").write_bytes(b"x")
    lines = planned_checks(
        config_of("""
target: s3://bucket/p/
prepare:
  ensure_objects: [{count: 10, size_spec: 1KiB}]
workload:
  - {op: get, path: "prepared-*.dat", weight: 1}
""")
    )
    assert lines[0].startswith(
        "s3://bucket/p/ (target): credential source, endpoint DNS/TCP/TLS, bucket exists"
    )
    assert (
        "PUT/GET/DELETE probe object" in lines[0]
        and "skipped: prepared by this run" in lines[0]
        and not RICH_TAG.search(lines[0])
    )
    assert lines[-1].startswith("controller: ")
    local = planned_checks(
        config_of(f"target: direct://{tmp_path}/\nworkload:\n  - {{op: get, path: a, weight: 1}}\n")
    )
    assert "O_DIRECT probe" in local[0] and "write/mkdir/delete" not in local[0]


def test_planned_checks_group_agents_that_see_the_same_root() -> None:
    lines = planned_checks(
        config_of(f"""
target: s3://bucket/p/
distributed:
  shared_filesystem: true
  agents:
    - {{address: "127.0.0.1:1"}}
    - {{address: "127.0.0.1:2"}}
    - {{address: "127.0.0.1:3", target_override: "s3://other/p/"}}
{"workload:"}
  - {{op: put, path: "w/", object_size: 1024, weight: 1}}
""")
    )
    assert lines[0].startswith("agent-1, agent-2: s3://bucket/p/ (target)")
    assert lines[1].startswith("agent-3: s3://other/p/ (distributed.agents[2].target_override)")
    assert "agent ids unique" in lines[-1] and not any(RICH_TAG.search(line) for line in lines)
