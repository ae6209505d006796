"""Bad configs fail with exit-2 ConfigErrors that name the key path, the YAML line and what to do."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from sbench.config import load_config, load_config_text
from sbench.errors import EXIT_USAGE, ConfigError

BASE = """\
target: "file:///tmp/sbench-loader-test/"
duration: 5s
prepare:
  ensure_objects:
    - count: 10
      size_spec: 4KiB
workload:
  - op: get
    path: "*"
    weight: 1
"""


def with_stages(stages: str) -> str:
    """BASE plus a one-agent `distributed` block (enough for the agent checks to pass) whose stage list is
    `stages` (YAML list items); the first item is on line 15."""
    one_agent = 'distributed:\n  shared_filesystem: true\n  agents: [{address: "127.0.0.1:7761"}]\n'
    return BASE + one_agent + "  stages:\n" + textwrap.indent(textwrap.dedent(stages), "    ")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_text(textwrap.dedent(text), source=Path("bad.yaml"))
    assert info.value.exit_code == EXIT_USAGE
    return str(info.value)


def assert_located(message: str, key_path: str, line: int) -> None:
    """The message names the key path and the line (as `bad.yaml:LINE: key.path: ...`)."""
    assert f"bad.yaml:{line}: {key_path}:" in message, message


@pytest.mark.parametrize(
    ("old", "new", "key_path", "line", "words"),
    [
        ("    weight: 1", "    wieght: 1", "workload[0].wieght", 10, "Did you mean `weight`?"),
        ("count: 10", "count: -1", "prepare.ensure_objects[0].count", 5, "greater than or equal to 0"),
        ("size_spec: 4KiB", "size_spec: 0", "prepare.ensure_objects[0].size_spec", 6, "greater than 0"),
        ("weight: 1", "weight: 0", "workload", 7, "sum to 0"),
        ("duration: 5s", "duration: five seconds", "duration", 2, "not a duration"),
        ("op: get", "op: head", "workload[0].op", 8, "'head' is not a valid choice"),
        ("count: 10", "count: lots", "prepare.ensure_objects[0].count", 5, "not a count"),
        (
            "size_spec: 4KiB",
            "size_spec: {type: uniform, min: 2MiB, max: 1MiB}",
            "prepare.ensure_objects[0].size_spec",
            6,
            "swap them",
        ),
        (
            "size_spec: 4KiB",
            "size_spec: {type: lognormal, mean: 1KiB, std_dev: 0}",
            "prepare.ensure_objects[0].size_spec.std_dev",
            6,
            "greater than 0",
        ),
        (
            "size_spec: 4KiB",
            "size_spec: {type: fixed, value: 4}",
            "prepare.ensure_objects[0].size_spec",
            6,
            "write the size itself",
        ),
        ('target: "file:///tmp/sbench-loader-test/"', 'target: "file://tmp/x"', "target", 1, "three slashes"),
        (
            'target: "file:///tmp/sbench-loader-test/"',
            'target: "ftp://host/x"',
            "target",
            1,
            "unknown scheme",
        ),
        ('    path: "*"\n', "", "workload[0].path", 8, "required key `path` is missing"),
        (
            "size_spec: 4KiB",
            "size_spec: {type: normal, min: 1}",
            "prepare.ensure_objects[0].size_spec.type",
            6,
            "'normal' is not a size distribution",
        ),
    ],
)
def test_bad_value_is_located(old: str, new: str, key_path: str, line: int, words: str) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    message = error_of(text)
    assert_located(message, key_path, line)
    assert words in message
    assert "Traceback" not in message


def test_typo_reports_only_the_typo_with_allowed_keys() -> None:
    message = error_of(BASE.replace("    weight: 1", "    wieght: 1"))
    assert "1 problem" not in message and "required key `weight`" not in message
    assert "Keys allowed here: concurrency, op, path, use_multi_endpoint, weight." in message


def test_top_level_typo_suggests_the_key() -> None:
    message = error_of(BASE + "concurency: 4\n")
    assert_located(message, "concurency", 11)
    assert "Did you mean `concurrency`?" in message


def test_several_problems_are_all_reported_in_line_order() -> None:
    message = error_of(BASE.replace("duration: 5s", "duraton: 5s").replace("count: 10", "count: -3"))
    assert "(2 problems)" in message
    lines = message.splitlines()[1:]
    assert lines[0].startswith("bad.yaml:2: duraton:") and lines[1].startswith("bad.yaml:5: prepare")


def test_duplicate_stage_order() -> None:
    message = error_of(
        with_stages("""\
        - {name: go, order: 1, type: execute}
        - {name: again, order: 1, type: execute}
        """)
    )
    assert_located(message, "distributed.stages[1].order", 16)
    assert "order 1 is already used by stages[0]" in message


def test_duplicate_stage_name() -> None:
    message = error_of(
        with_stages("""\
        - {name: go, order: 1, type: execute}
        - {name: go, order: 2, type: execute}
        """)
    )
    assert_located(message, "distributed.stages[1].name", 16)


def test_completion_duration_on_prepare_stage() -> None:
    message = error_of(
        with_stages("""\
        - name: fill
          order: 1
          type: prepare
          completion: duration
        """)
    )
    assert_located(message, "distributed.stages[0]", 15)
    assert (
        "completion `duration` does not fit a prepare stage; use tasks_done or duration_or_tasks" in message
    )


def test_stage_body_key_of_another_type() -> None:
    message = error_of(
        with_stages("""\
        - {name: fill, order: 1, type: prepare, duration: 10s}
        """)
    )
    assert "a prepare stage does not take duration (it takes: expected_objects)" in message


def test_nested_stage_typo_points_into_config() -> None:
    message = error_of(
        with_stages("""\
        - name: run
          order: 1
          config: {type: custom, comand: /bin/true}
        """)
    )
    assert_located(message, "distributed.stages[0].config.comand", 17)
    assert "Did you mean `command`?" in message


def test_duplicate_yaml_key() -> None:
    message = error_of(BASE + "duration: 10s\n")
    assert_located(message, "duration", 11)
    assert "appears twice (first on line 2)" in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("target: [unclosed\n", "is not valid YAML"),
        ("workload:\n  - op: get\n   path: x\n", "is not valid YAML"),
        ("", "is empty"),
        ("- a\n- b\n", "YAML list"),
        ("just a string\n", "YAML str"),
    ],
)
def test_not_a_workload_mapping(text: str, words: str) -> None:
    assert words in error_of(text)


def test_not_yaml_names_the_line() -> None:
    message = error_of("target: x\nworkload: [\n  {op: get\n")
    assert re.search(r"bad\.yaml:\d+: is not valid YAML", message), message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(binary)


def test_mkdir_needs_a_tree() -> None:
    message = error_of(BASE.replace("op: get", "op: mkdir"))
    assert_located(message, "workload[0].op", 8)
    assert "prepare.directory_structure" in message


def test_relative_path_needs_a_target() -> None:
    message = error_of(
        BASE.replace('target: "file:///tmp/sbench-loader-test/"\n', "").replace(
            "    - count: 10", "    - count: 10\n      base_uri: file:///tmp/x/"
        )
    )
    assert "workload[0].path" in message and "add `target: <URI>`" in message


def test_use_multi_endpoint_needs_a_block() -> None:
    message = error_of(BASE.replace('    path: "*"', '    path: "*"\n    use_multi_endpoint: true'))
    assert_located(message, "workload[0].use_multi_endpoint", 10)


def test_get_without_prepare_on_missing_local_path(tmp_path: Path) -> None:
    text = f'target: "file://{tmp_path}/nothing/"\nworkload:\n  - {{op: get, path: "data/*", weight: 1}}\n'
    message = error_of(text)
    assert "needs existing objects" in message and "workload[0].path" in message
    (tmp_path / "nothing" / "data").mkdir(parents=True)
    (tmp_path / "nothing" / "data" / "obj").write_bytes(b"x")
    assert load_config_text(text).config.workload[0].path == "data/*"


def test_get_without_prepare_on_cloud_warns() -> None:
    loaded = load_config_text('target: "s3://b/p/"\nworkload:\n  - {op: get, path: "x/*", weight: 1}\n')
    assert any("must already hold them" in w for w in loaded.warnings)


def test_distributed_needs_agents_and_unique_ids() -> None:
    message = error_of(BASE + "distributed: {shared_filesystem: true}\n")
    assert "needs agents" in message
    message = error_of(
        BASE
        + textwrap.dedent("""\
        distributed:
          shared_filesystem: true
          agents: [{address: "a:1", id: x}, {address: "b:1", id: x}]
        """)
    )
    assert "agent id 'x' is already used" in message


def test_inert_keys_warn_once_each() -> None:
    loaded = load_config_text(
        BASE
        + textwrap.dedent("""\
        processes: auto
        processing_mode: multi_process
        cache_checkpoint_interval_secs: 60
        perf_log: {path: /tmp/p.tsv, interval: 2s}
        distributed:
          shared_filesystem: true
          tree_creation_mode: coordinator
          start_delay: 5
          grpc_keepalive_interval: 30
          ssh: {enabled: true, user: me}
          agents:
            - {address: "127.0.0.1:7761", id: a, listen_port: 7761, env: {X: "1"}, volumes: [],
               kv_cache_dir: /x}
        """),
        source=Path("w.yaml"),
    )
    warned = "\n".join(loaded.warnings)
    assert ": processes: has no effect in a distributed run" in warned
    for key in (
        "processing_mode",
        "cache_checkpoint_interval_secs",
        "distributed.tree_creation_mode",
        "distributed.grpc_keepalive_interval",
        "distributed.ssh",
        "distributed.agents[0].listen_port",
        "distributed.agents[0].volumes",
        "distributed.agents[0].kv_cache_dir",
    ):
        assert f": {key}: has no effect in sbench" in warned, key
    assert all(w.count("\n") == 0 for w in loaded.warnings)
    assert loaded.config.perf_log.interval == 2.0
    assert loaded.config.distributed is not None and loaded.config.distributed.agents[0].id == "a"
    assert not any("agents[0].id" in w for w in loaded.warnings)
    assert loaded.config.distributed.start_delay == 5.0  # a real key (the first stage's delay)


@pytest.mark.parametrize(
    ("value", "count"), [("2", 2), ("single", 1), ("Single", 1), ("1", 1), ("auto", None), ("4", 4)]
)
def test_processes_resolves_like_sai3(value: str, count: int | None) -> None:
    loaded = load_config_text(BASE + f"concurrency: 7\nprocesses: {value}\n")
    config = loaded.config
    expected = count if count is not None else config.process_count  # auto: the machine's physical cores
    assert config.process_count == expected >= 1
    # sai3 split concurrency over its worker processes, rounding up
    assert config.concurrency_per_process == -(-7 // expected)
    assert not loaded.warnings


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_processes_rejects_nonsense(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(BASE + f"processes: {value}\n", source=Path("w.yaml"))
    assert "processes" in str(info.value)
    assert info.value.exit_code == EXIT_USAGE


def test_barrier_timeout_shorter_than_detection_warns() -> None:
    loaded = load_config_text(
        BASE
        + textwrap.dedent("""\
        distributed:
          shared_filesystem: true
          agents: [{address: "127.0.0.1:7761"}]
          barrier_sync:
            enabled: true
            execute: {type: majority, heartbeat_interval: 30s, missed_threshold: 3, agent_barrier_timeout: 60}
        """)
    )
    assert any(
        "distributed.barrier_sync.execute" in w and "agent_barrier_timeout (60s)" in w
        for w in loaded.warnings
    )


def test_tree_count_follows_the_tree() -> None:
    loaded = load_config_text(
        BASE.replace("    - count: 10", "    - count: 0").replace(
            "prepare:\n", "prepare:\n  directory_structure: {width: 3, depth: 2, files_per_dir: 10}\n"
        )
    )
    assert loaded.config.prepare is not None and loaded.config.prepare.ensure_objects[0].count == 90
    assert any("holds 90 files" in w for w in loaded.warnings)


def test_line_lookup_for_later_errors() -> None:
    loaded = load_config_text(BASE, source=Path("w.yaml"))
    assert loaded.line_of(("workload", 0, "path")) == 9
    assert loaded.where(("workload", 0, "path")) == "w.yaml:9: workload[0].path"
    assert loaded.line_of(("workload", 0, "nope")) == 8


def test_tree_depth_is_bounded() -> None:
    """A typo'd depth must fail fast instead of building width**depth level tables."""
    message = error_of(
        BASE.replace("prepare:\n", "prepare:\n  directory_structure: {width: 2, depth: 100000}\n")
    )
    assert_located(message, "prepare.directory_structure.depth", 4)


def test_kv_cache_dir_without_the_metadata_cache_is_refused() -> None:
    block = (
        "distributed:\n  shared_filesystem: true\n  kv_cache_dir: /tmp/kv\n"
        '  agents: [{address: "127.0.0.1:7761"}]\n'
    )
    message = error_of("enable_metadata_cache: false\n" + BASE + block)
    assert "kv_cache_dir keeps the metadata cache across runs, but enable_metadata_cache is false" in message


def test_keys_that_sbench_cannot_honour_as_false_say_so(tmp_path: Path) -> None:
    """`use_multi_endpoint: false` on an op with a block, and `barrier_sync.enabled: false`, change nothing in
    sbench: each gets a warning naming the key instead of passing silently."""
    data = tmp_path / "d"
    data.mkdir()
    (data / "f").write_bytes(b"x")
    loaded = load_config_text(
        f"""
multi_endpoint:
  strategy: round_robin
  endpoints: ["file://{data}/", "file://{data}/"]
workload:
  - {{op: get, path: "f", weight: 1, use_multi_endpoint: false}}
distributed:
  shared_filesystem: true
  barrier_sync: {{enabled: false}}
  agents: [{{address: "localhost:1", id: a}}]
"""
    )
    text = "\n".join(loaded.warnings)
    assert "workload[0].use_multi_endpoint: false has no effect" in text, text
    assert "distributed.barrier_sync.enabled: false has no effect" in text, text
