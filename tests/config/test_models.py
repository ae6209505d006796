"""The YAML forms sai3 accepts (and sbench additions) normalise to the documented model values."""

from __future__ import annotations

import textwrap

import pytest

from sbench.config import (
    CleanupMode,
    Completion,
    Config,
    FixedSize,
    LognormalSize,
    PutOp,
    StageType,
    UniformSize,
    backend_options,
    load_config_text,
)
from sbench.storage.options import Driver, PageCacheMode


def load(text: str) -> Config:
    return load_config_text(textwrap.dedent(text)).config


def ensure(size_lines: str) -> Config:
    text = (
        'target: "s3://bucket/prefix/"\nprepare:\n  ensure_objects:\n    - count: 10\n'
        + textwrap.indent(size_lines, " " * 6)
        + '\nworkload:\n  - {op: get, path: "", weight: 1}\n'
    )
    return load_config_text(text).config


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("size_spec: 131072", FixedSize(value=131072)),
        ("size_distribution: 128KiB", FixedSize(value=131072)),
        ('size_spec: "1.5MB"', FixedSize(value=1_500_000)),
        ("size: 1MiB", FixedSize(value=2**20)),
        ("min_size: 4096\nmax_size: 4096", FixedSize(value=4096)),
        ("min_size: 512KB\nmax_size: 2MB", UniformSize(min=512_000, max=2_000_000)),
        ("size_spec: {type: uniform, min: 8KiB, max: 256KiB}", UniformSize(min=8192, max=262144)),
        ("size_spec: {type: uniform}", UniformSize(min=1024, max=1048576)),
        (
            "size_spec: {type: lognormal, mean: 1MiB, std_dev: 512KiB, min: 100KB, max: 5MB}",
            LognormalSize(mean=2**20, std_dev=2**19, min=100_000, max=5_000_000),
        ),
        ("fill: zero", FixedSize(value=2**20)),  # nothing given: sai3's 1 MiB default
    ],
)
def test_size_spec_forms(lines: str, expected: object) -> None:
    assert ensure(lines).prepare.ensure_objects[0].size_spec == expected  # type: ignore[union-attr]


def test_lognormal_defaults_to_the_largest_object_size() -> None:
    spec = (
        ensure("size_spec: {type: lognormal, mean: 4096, std_dev: 2048}").prepare.ensure_objects[0].size_spec
    )
    assert isinstance(spec, LognormalSize)
    assert (spec.min, spec.max, spec.kind) == (1, 5 * 2**40, "lognormal")


def test_put_object_size_wins_over_size_spec() -> None:
    config = load(
        """
        target: "file:///tmp/x/"
        workload:
          - {op: put, path: "a/", object_size: 512KiB, size_spec: {type: uniform, min: 1, max: 2}, weight: 1}
          - {op: put, path: "b/", weight: 1}
        """
    )
    first, second = config.workload
    assert isinstance(first, PutOp) and first.size_spec == FixedSize(value=524288)
    assert isinstance(second, PutOp) and second.size_spec == FixedSize(value=2**20)


def test_top_level_keys_and_defaults() -> None:
    config = load(
        """
        target: "s3://bucket/p/"
        duration: "1h 30m"
        concurrency: "1,024"
        driver: sdk
        page_cache_mode: sequential
        io_rate: {iops: "5,000", distribution: uniform}
        error_handling: {backoff_duration: 500ms, max_total_errors: 7}
        perf_log: {interval: 250ms}
        warmup_period: 0s
        dynamic_put_pool: true
        range_engine: {enabled: true, chunk_size: 8MiB, range_timeout_secs: 1m}
        workload:
          - {op: list, path: "", weight: 1}
        """
    )
    assert config.duration == 5400.0 and config.concurrency == 1024
    assert config.driver is Driver.SDK and config.page_cache_mode is PageCacheMode.SEQUENTIAL
    assert config.io_rate is not None and config.io_rate.iops == 5000.0 and config.open_loop
    assert config.error_handling.backoff_duration == 0.5 and config.error_handling.max_total_errors == 7
    assert config.perf_log.interval == 0.25 and config.warmup_period == 0.0 and config.dynamic_put_pool
    assert config.range_engine.chunk_size == 8 * 2**20 and config.range_engine.range_timeout_secs == 60.0


@pytest.mark.parametrize("iops", ["max", 0, "MAX"])
def test_unlimited_rate_is_closed_loop(iops: object) -> None:
    config = load(f"""
        target: "s3://b/"
        io_rate: {{iops: {iops!r}}}
        workload: [{{op: stat, path: "k", weight: 1}}]
        """)
    assert config.io_rate is not None and config.io_rate.iops is None and not config.open_loop


@pytest.mark.parametrize("mode", ["besteffort", "best_effort", "best-effort"])
def test_cleanup_mode_spellings(mode: str) -> None:
    config = load(f"""
        target: "s3://b/"
        prepare: {{cleanup_mode: {mode}, ensure_objects: [{{count: 1}}]}}
        workload: [{{op: get, path: "", weight: 1}}]
        """)
    assert config.prepare is not None and config.prepare.cleanup_mode is CleanupMode.BESTEFFORT


def test_cleanup_concurrency_defaults_to_concurrency() -> None:
    config = load("""
        target: "s3://b/"
        concurrency: 12
        prepare: {ensure_objects: [{count: 1}]}
        workload: [{op: get, path: "", weight: 1}]
        """)
    assert config.prepare is not None and config.prepare.cleanup_concurrency == 12


def test_stage_flattened_and_nested_forms_agree() -> None:
    config = load("""
        target: "s3://b/"
        prepare: {ensure_objects: [{count: 1}]}
        workload: [{op: get, path: "", weight: 1}]
        distributed:
          shared_filesystem: true
          agents: [{address: "127.0.0.1:1"}]
          stages:
            - {name: flat, order: 1, type: execute, duration: 1m}
            - name: nested
              order: 2
              completion: duration
              config: {type: execute, duration: 1m}
            - {name: script, order: 3, type: custom, command: /bin/true, args: ["-x"]}
            - {name: mix, order: 4, type: hybrid, max_duration: 10s, expected_tasks: "1,000"}
            - {name: del, order: 5, config: {type: cleanup, expected_objects: 5}}
        """)
    assert config.distributed is not None and config.distributed.stages is not None
    flat, nested, script, mix, cleanup = config.distributed.stages
    assert (flat.type, flat.duration, flat.completion) == (nested.type, nested.duration, nested.completion)
    assert script.completion is Completion.SCRIPT_EXIT and script.args == ["-x"]
    assert mix.completion is Completion.DURATION_OR_TASKS and mix.expected_tasks == 1000
    assert cleanup.type is StageType.CLEANUP and cleanup.completion is Completion.TASKS_DONE


def test_sbench_distributed_additions() -> None:
    config = load("""
        target: "s3://b/"
        driver: native
        multi_endpoint: {endpoints: ["s3://10.0.0.1:9000/b/", "s3://10.0.0.2:9000/b/"], driver: sdk}
        workload: [{op: put, path: "x/", weight: 1}]
        distributed:
          shared_filesystem: true
          agents_per_node: 2
          nodes: ALL
        """)
    assert config.distributed is not None
    assert config.distributed.agents_per_node == 2 and config.distributed.nodes == "all"
    assert backend_options(config, "s3://10.0.0.1:9000/b/").driver is Driver.SDK
    assert backend_options(config, "s3://10.0.0.2:9000/b/sub/key").driver is Driver.SDK
    assert backend_options(config, "s3://b/").driver is Driver.NATIVE


def test_backend_options_per_agent() -> None:
    config = load("""
        target: "s3://b/"
        concurrency: 8
        page_cache_mode: dontneed
        range_engine: {enabled: true, chunk_size: 4MiB, range_timeout_secs: 5s}
        workload: [{op: put, path: "x/", weight: 1}]
        distributed:
          shared_filesystem: false
          agents:
            - {address: "10.0.0.1:7761", concurrency_override: 3,
               multi_endpoint: {endpoints: ["s3://h:1/b/"], driver: sdk}}
            - {address: "10.0.0.2:7761"}
        """)
    assert config.distributed is not None
    first, second = config.distributed.agents
    opts = backend_options(config, "s3://h:1/b/", agent=first)
    assert (opts.driver, opts.concurrency) == (Driver.SDK, 3)
    assert opts.range.enabled and opts.range.chunk_size == 4 * 2**20 and opts.range.range_timeout_s == 5.0
    assert opts.page_cache_mode is PageCacheMode.DONTNEED
    assert backend_options(config, "s3://h:1/b/", agent=second).concurrency == 8


def test_env_expansion_in_uris(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB_BUCKET", "real-bucket")
    monkeypatch.delenv("SB_UNSET", raising=False)
    config = load("""
        target: "s3://${SB_BUCKET}/${SB_UNSET:-fallback}/"
        workload: [{op: put, path: "${SB_UNSET:-x}/", weight: 1}]
        """)
    assert config.target == "s3://real-bucket/fallback/"
    assert config.workload[0].path == "x/"


def test_model_dump_round_trips() -> None:
    config = load("""
        target: "s3://b/"
        prepare: {ensure_objects: [{count: 3, size_spec: {type: lognormal, mean: 1KiB, std_dev: 1}}]}
        workload: [{op: get, path: "", weight: 1}]
        """)
    again = Config.model_validate(config.model_dump(mode="json"))
    assert again == config


def test_explicit_agents_and_agents_per_node_combine() -> None:
    """Explicit agents are placed first, then N per node (the Ray placement does both)."""
    config = load("""
        target: "s3://b/"
        workload: [{op: put, path: "x/", weight: 1}]
        distributed:
          shared_filesystem: true
          agents: [{address: "127.0.0.1:7761", id: pinned}]
          agents_per_node: 1
        """)
    assert config.distributed is not None
    assert config.distributed.nodes == "all" and config.distributed.agents[0].id == "pinned"


def test_workers_setting_defaults_values_and_missing_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """`workers` defaults to `auto` (engine.workermode decides) on asyncio's loop; threads and asyncio tasks
    can be pinned; a missing
    uvloop is refused at load time, naming the key and the install command, never at the run's start."""
    import importlib.util

    from sbench.config.models import EventLoop, WorkerMode
    from sbench.errors import ConfigError

    base = "target: s3://b/p/\nworkload:\n  - {op: get, path: x/, weight: 1}\n"
    default = load(base).workers
    assert (default.mode, default.event_loop) == (WorkerMode.AUTO, EventLoop.ASYNCIO)
    chosen = load(base + "workers: {mode: threads, event_loop: uvloop}\n").workers
    assert (chosen.mode, chosen.event_loop) == (WorkerMode.THREADS, EventLoop.UVLOOP)
    assert load(base + "workers: {mode: asyncio}\n").workers.mode is WorkerMode.ASYNCIO
    with pytest.raises(ConfigError, match=r"workers\.mode"):
        load(base + "workers: {mode: processes}\n")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    refused = r"(?s)workers\.event_loop.*uvloop is not installed.*sbench\[uvloop\]"
    with pytest.raises(ConfigError, match=refused):
        load(base + "workers: {event_loop: uvloop}\n")
