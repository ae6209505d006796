"""`sbench run --dry-run`: everything the run would do, printed without touching storage.

The summary shows what sbench resolved (units, defaults, stage plan, barriers, per-agent overrides) rather
than echoing the YAML, so a user can see what a key actually did. It ends with sai3's memory sanity check:
the first 100,000 prepare paths and sizes are generated with the real generators (tree layout, object
naming, size samplers), timed, and the RSS growth reported; counts of any size come from arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from sbench.config.backend import backend_options
from sbench.config.loader import LoadedConfig
from sbench.config.models import (
    AgentConfig,
    Config,
    EnsureSpec,
    FixedSize,
    LognormalSize,
    PutOp,
    SizeSpec,
    UniformSize,
)
from sbench.config.runoptions import NAME_STYLES, RunOptions
from sbench.config.tree_math import tree_counts
from sbench.config.units import format_duration, format_size
from sbench.data.sizes import sampler_from_spec, seed_for_uri
from sbench.errors import ConfigError
from sbench.layout.naming import prepared_key
from sbench.layout.paths import pools_for
from sbench.layout.tree import TreeLayout
from sbench.plan.shardplan import ShardPlan
from sbench.plan.stages import StagePlan, flagged_stages, stage_plan
from sbench.storage.null import null_async
from sbench.storage.servicetime import parse_service_time
from sbench.storage.uri import NULL_SCHEME, parse_uri
from sbench.ui.clientview import client_view

SANITY_SAMPLE = 100_000


def print_dry_run(
    loaded: LoadedConfig, options: RunOptions, config_path: Path, console: Console | None = None
) -> None:
    """Print the whole dry-run report (the CLI's --dry-run)."""
    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # piped or captured: wide lines instead of folded tables
            console = Console(highlight=False, width=160)
    config = loaded.config
    console.rule(f"sbench dry run: {config_path}")
    _settings(console, config, options, options.tsv_name or config_path.stem or "run")
    _backends(console, config)
    _clients(console, config)
    _workload(console, config)
    _prepare(console, config)
    _stages(console, loaded, options)
    _distributed(console, config)
    _shard_plan(console, config)
    _overrides(console, loaded)
    _multi_endpoint(console, config)
    _preflight(console, config)
    _sanity(console, config)
    console.print(f"[green]Config is valid.[/green] Nothing was run (dry run). Mode: {options.mode}.")


# ---------------------------------------------------------------------------------------------------------


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def describe_size(spec: SizeSpec | None) -> str:
    """`fixed 1.00 MiB`, `uniform 8.00 KiB..256.00 KiB`, `lognormal mean 64.00 KiB sd ...`."""
    if isinstance(spec, FixedSize):
        return f"fixed {format_size(spec.value)}"
    if isinstance(spec, UniformSize):
        return f"uniform {format_size(spec.min)}..{format_size(spec.max)}"
    if isinstance(spec, LognormalSize):
        upper = "" if spec.max >= 2**63 else f"..{format_size(spec.max)}"
        return (
            f"lognormal mean {format_size(spec.mean)} sd {format_size(spec.std_dev)} "
            f"in {format_size(spec.min)}{upper}"
        )
    return "-"


def load_model(config: Config) -> str:
    """The label every output carries: closed loop with N workers, or open loop at a rate."""
    if config.open_loop and config.io_rate is not None and config.io_rate.iops is not None:
        return (
            f"open loop: {config.io_rate.iops:,.0f} ops/s aggregate, {config.io_rate.distribution} "
            f"arrivals, up to {config.concurrency} in flight per agent"
        )
    if config.process_count > 1:
        return (
            f"closed loop: {_workers(config.concurrency_per_process)} in each of {config.process_count} "
            "processes, as fast as possible"
        )
    return f"closed loop: {config.concurrency} workers per agent, as fast as possible"


def _workers(count: int) -> str:
    return f"{count} worker" + ("" if count == 1 else "s")


def _settings(console: Console, config: Config, options: RunOptions, name: str) -> None:
    table = _table("Test settings", "setting", "value")
    table.add_row("duration", format_duration(config.duration))
    table.add_row("concurrency", str(config.concurrency))
    if config.process_count > 1:
        per = _workers(config.concurrency_per_process)
        table.add_row("processes", f"{config.process_count} ({per} each)")
    table.add_row("load model", load_model(config))
    table.add_row("target", config.target or "-")
    table.add_row("driver", config.driver.value)
    table.add_row("page_cache_mode", config.page_cache_mode.value if config.page_cache_mode else "default")
    rng = config.range_engine
    table.add_row(
        "range_engine",
        "off"
        if not rng.enabled
        else (
            f"on: {format_size(rng.chunk_size)} chunks, {rng.max_concurrent_ranges} in flight, objects >= "
            f"{format_size(rng.min_split_size)}, timeout {format_duration(rng.range_timeout_secs)}"
        ),
    )
    eh = config.error_handling
    table.add_row(
        "error_handling",
        (
            f"abort after {eh.max_total_errors} errors; back off {format_duration(eh.backoff_duration)} "
            f"above {eh.error_rate_threshold:g} errors/s; "
            + (f"retry up to {eh.max_retries}x" if eh.retry_on_error else "no retries")
            + (
                f"; a stage fails below {eh.min_success_ratio:.0%} succeeded ops"
                if eh.min_success_ratio > 0
                else "; no success-ratio check"
            )
            + (
                f"; a stage fails after an outage over {format_duration(eh.max_outage)}"
                if eh.max_outage > 0
                else "; no outage check"
            )
        ),
    )
    table.add_row("perf_log interval", format_duration(config.perf_log.interval))
    if config.perf_log.path:
        where = Path(config.perf_log.path).expanduser().absolute()
        table.add_row("perf_log copy", f"{where} (written when the run ends)")
    table.add_row(
        "timeouts",
        f"request {format_duration(config.request_timeout)} (object stores); a stage stalled for "
        + (format_duration(config.stall_timeout) + " fails" if config.stall_timeout else "any time: off"),
    )
    if config.warmup_period:
        table.add_row("warmup_period", format_duration(config.warmup_period))
    if config.dynamic_put_pool:
        table.add_row("dynamic_put_pool", "on (PUT objects join the GET pool)")
    envs = {"all agents": config.distributed_env} if config.distributed_env else {}
    for i, agent in enumerate(config.distributed.agents if config.distributed else []):
        if agent.env:
            envs[agent.id or f"agents[{i}]"] = agent.env
    for who, env in envs.items():  # names only: the values are secrets
        table.add_row("environment", f"{who}: {', '.join(sorted(env))} (values not shown)")
    table.add_row("mode", options.mode + (", no cleanup" if options.no_cleanup else ""))
    if options.results_dir:
        table.add_row("results dir", str(options.results_dir))
    else:
        prefix, stamp = NAME_STYLES[options.results_name_style]
        example = f"./{prefix}-{datetime.now().strftime(stamp)}-{name}/"
        table.add_row("results dir", f"{example} (stamped when the run starts)")
    if options.op_log:
        table.add_row("op log", str(options.op_log))
    console.print(table)


def _uris(config: Config) -> list[tuple[str, str, AgentConfig | None]]:
    out: list[tuple[str, str, AgentConfig | None]] = []
    seen: set[tuple[str, str | None]] = set()

    def add(source: str, uri: str | None, agent: AgentConfig | None = None) -> None:
        key = (uri or "", agent.id if agent else None)
        if uri and key not in seen:
            seen.add(key)
            out.append((source, uri, agent))

    add("target", config.target)
    if config.multi_endpoint:
        for i, ep in enumerate(config.multi_endpoint.endpoints):
            add(f"multi_endpoint.endpoints[{i}]", ep)
    if config.prepare:
        for i, spec in enumerate(config.prepare.ensure_objects):
            add(f"prepare.ensure_objects[{i}].base_uri", spec.base_uri)
    for i, op in enumerate(config.workload):
        if "://" in op.path:
            add(f"workload[{i}].path", op.path)
    if config.distributed:
        for i, agent in enumerate(config.distributed.agents):
            add(f"agents[{i}].target_override", agent.target_override, agent)
            if agent.multi_endpoint:
                for j, ep in enumerate(agent.multi_endpoint.endpoints):
                    add(f"agents[{i}].multi_endpoint[{j}]", ep, agent)
    return out


def _backends(console: Console, config: Config) -> None:
    table = _table("Backends", "used by", "URI", "backend", "location", "driver")
    for source, uri, agent in _uris(config):
        try:
            parsed = parse_uri(uri.split("*", 1)[0])
        except ConfigError as exc:  # already validated; kept so a summary never hides the cause
            table.add_row(source, uri, "invalid", str(exc), "-")
            continue
        if parsed.is_cloud:
            where = parsed.bucket + (f"/{parsed.prefix}" if parsed.prefix else "")
            if parsed.account:
                where = f"account {parsed.account}, {where}"
            if parsed.endpoint:
                where += f" at {parsed.endpoint}"
            driver = backend_options(config, uri, agent=agent).driver.value
            driver += " (native)" if driver == "auto" else ""
        elif parsed.scheme == NULL_SCHEME:
            service = parse_service_time(parsed.query, uri).describe()
            where = f"{parsed.prefix or '(top)'} in memory, no storage; {service}"
            chosen = backend_options(config, uri, agent=agent).driver
            driver = f"{chosen.value} ({'asyncio' if null_async(chosen) else 'threads'})"
        else:
            where, driver = parsed.prefix, "-"
        table.add_row(source, uri, parsed.scheme, where, driver)
    console.print(table)


def _clients(console: Console, config: Config) -> None:
    """What each cloud URI's driver will use (`backend_options` and defaults, in the library's terms)."""
    table = _table("Object-store clients", "URI", "client", "timeouts", "uploads", "pool", "addressing",
                   "TLS")
    for _source, uri, agent in _uris(config):
        try:
            parsed = parse_uri(uri.split("*", 1)[0])
        except ConfigError:  # the Backends table shows why
            continue
        if parsed.is_cloud:
            v = client_view(parsed, backend_options(config, uri, agent=agent))
            table.add_row(uri, v.library, v.timeouts, v.uploads, v.pool, v.addressing, v.tls)
    if table.row_count:
        console.print(table)


def _workload(console: Console, config: Config) -> None:
    total = sum(op.weight for op in config.workload)
    table = _table("Workload operations", "#", "op", "path", "weight", "share", "details")
    for i, op in enumerate(config.workload):
        details = []
        if isinstance(op, PutOp):
            details.append(describe_size(op.size_spec))
            if op.dedup_factor != 1 or op.compress_factor != 1:
                details.append(f"dedup {op.dedup_factor}, compress {op.compress_factor}")
        if op.concurrency is not None:
            details.append(f"at most {op.concurrency} in flight")
        if getattr(op, "use_multi_endpoint", False):
            details.append("multi-endpoint")
        if getattr(op, "recursive", False):
            details.append("recursive")
        share = 100.0 * op.weight / total if total else 0.0
        table.add_row(str(i), op.op.upper(), op.path, str(op.weight), f"{share:.1f}%", "; ".join(details))
    console.print(table)


def _base_uri(config: Config, spec: EnsureSpec) -> str:
    if spec.base_uri:
        return spec.base_uri
    if config.target:
        return config.target
    if config.multi_endpoint:
        return config.multi_endpoint.endpoints[0]
    agents = config.distributed.agents if config.distributed else []
    first = agents[0] if agents else None
    if first and first.target_override:
        return first.target_override
    if first and first.multi_endpoint:
        return first.multi_endpoint.endpoints[0]
    return ""


def _prepare(console: Console, config: Config) -> None:
    prep = config.prepare
    if prep is None or not config.has_prepare:
        console.print("[bold]Prepare[/bold]: none (the workload uses objects that already exist)")
        return
    pools = pools_for(config.workload)
    table = _table("Prepare", "#", "base URI", "objects", "sizes", "mean", "est. bytes", "fill")
    grand_objects = grand_bytes = 0
    for i, spec in enumerate(prep.ensure_objects):
        mean = sampler_from_spec(spec.size_spec).mean_estimate
        n_pools = 1 if (i == 0 and prep.directory_structure) else len(pools)
        objects = spec.count * n_pools
        est = int(objects * mean)
        grand_objects += objects
        grand_bytes += est
        fill = spec.fill.value + (
            f", dedup {spec.dedup_factor}, compress {spec.compress_factor}"
            if spec.dedup_factor != 1 or spec.compress_factor != 1
            else ""
        )
        pool_note = f" ({spec.count:,} x {n_pools} pools)" if n_pools > 1 else ""
        table.add_row(
            str(i),
            _base_uri(config, spec),
            f"{objects:,}{pool_note}",
            describe_size(spec.size_spec),
            format_size(mean),
            format_size(est),
            fill,
        )
    console.print(table)
    console.print(
        f"  total: {grand_objects:,} objects, about {format_size(grand_bytes)}; strategy "
        f"{prep.prepare_strategy}; "
        + (
            "skip verification (assume all exist)"
            if prep.skip_verification and not prep.force_overwrite
            else "overwrite all"
            if prep.force_overwrite
            else "create only missing ones"
        )
        + f"; cleanup {'on' if prep.cleanup else 'off'} ({prep.cleanup_mode.value}, "
        f"{prep.cleanup_concurrency} in parallel)"
        + (f"; pause {format_duration(prep.post_prepare_delay)} after" if prep.post_prepare_delay else "")
    )
    if prep.key_prefix_shards:
        n = prep.key_prefix_shards
        console.print(
            f"  key_prefix_shards {n}: names spread over {n} prefixes, e.g. "
            f"{prepared_key(pools[0], 0, n)}, {prepared_key(pools[0], min(1, n - 1), n)}"
        )
    if len(pools) > 1:
        console.print(
            "  the workload reads and deletes, so prepare makes a `prepared-` pool for GET/STAT and a "
            "`deletable-` pool for DELETE (sai3 §1.6)"
        )
    tree = prep.directory_structure
    if tree is not None:
        counts = tree_counts(tree)
        ttable = _table(
            f"Directory tree: width {tree.width}, depth {tree.depth}, {tree.files_per_dir} files "
            f"per dir ({tree.distribution}), dir_mask {tree.dir_mask}",
            "level",
            "dirs",
            "files",
        )
        for level in counts.levels:
            ttable.add_row(str(level.level), f"{level.dirs:,}", f"{level.files:,}")
        ttable.add_row("total", f"{counts.total_dirs:,}", f"{counts.total_files:,}", style="bold")
        console.print(ttable)


def _stages(console: Console, loaded: LoadedConfig, options: RunOptions) -> None:
    config = loaded.config
    every = stage_plan(config, force_cleanup=options.cleanup_only)
    chosen = {p.name for p in flagged_stages(loaded.config, options)}
    explicit = bool(config.distributed and config.distributed.stages)
    title = "Stage plan" + ("" if explicit else " (default stages)")
    distributed = config.distributed is not None
    columns = [
        "#",
        "stage",
        "type",
        "completion",
        "length",
        "timeout",
        *(["barrier"] if distributed else []),
        "run",
    ]
    table = _table(title, *columns)
    for plan in every:
        runs = plan.name in chosen
        row = [
            str(plan.index),
            plan.name,
            plan.type.value,
            plan.completion.value,
            _length(plan),
            format_duration(plan.timeout_s) if plan.timeout_s else "-",
        ]
        if distributed:
            row.append(_barrier(plan))
        row.append(("yes" + (" (optional)" if plan.optional else "")) if runs else "skipped by flags")
        table.add_row(*row, style=None if runs else "dim")
    console.print(table)
    if options.verify:
        console.print("  --verify: no stage runs; the prepared objects are listed and checked instead")


def _length(plan: StagePlan) -> str:
    parts = []
    if plan.duration is not None:
        parts.append(format_duration(plan.duration))
    if plan.max_duration is not None:
        parts.append(f"max {format_duration(plan.max_duration)}")
    if plan.expected_objects is not None:
        parts.append(f"{plan.expected_objects:,} objects")
    if plan.expected_tasks is not None:
        parts.append(f"{plan.expected_tasks:,} ops")
    if plan.command:
        parts.append(" ".join([plan.command, *plan.args]))
    return ", ".join(parts) or "-"


def _barrier(plan: StagePlan) -> str:
    b = plan.barrier
    return (
        f"{b.type.value} ({b.source}); heartbeat {format_duration(b.heartbeat_interval)} x "
        f"{b.missed_threshold}, query {format_duration(b.query_timeout)} x {b.query_retries}, "
        f"wait {format_duration(b.agent_barrier_timeout)}"
    )


def _distributed(console: Console, config: Config) -> None:
    dist = config.distributed
    if dist is None:
        count = config.process_count
        if count > 1:
            console.print(
                f"[bold]Agents[/bold]: {count} local agent processes (`processes`), "
                f"{_workers(config.concurrency_per_process)} each, on a local Ray instance"
            )
        else:
            console.print("[bold]Agents[/bold]: one local agent (no `distributed` block)")
        return
    if dist.agents_per_node is not None:
        nodes = "every alive Ray node" if dist.nodes == "all" else ", ".join(dist.nodes or [])
        console.print(
            f"[bold]Agents[/bold]: {dist.agents_per_node} per node on {nodes} "
            "(placement group, STRICT_SPREAD)"
        )
    else:
        table = _table(
            f"Agents ({len(dist.agents)})",
            "id",
            "address",
            "target",
            "concurrency",
            "multi-endpoint",
            "path template",
        )
        for i, agent in enumerate(dist.agents):
            me = agent.multi_endpoint
            table.add_row(
                agent.id or f"agent-{i + 1}",
                agent.address,
                agent.target_override or "(global)",
                str(agent.concurrency_override)
                if agent.concurrency_override
                else f"{config.concurrency} (global)",
                f"{len(me.endpoints)} endpoints ({me.strategy})" if me else "(global)",
                agent.path_template or "(global)",
            )
        console.print(table)
    storage = (
        "shared namespace: prepare and cleanup are split by object index"
        if dist.shared_filesystem
        else (f"isolated: each agent works under `{dist.path_template}` of the target")
    )
    console.print(
        f"  {storage}; tree path selection {dist.path_selection}"
        + (f" (overlap {dist.partition_overlap:g})" if dist.path_selection == "weighted" else "")
        + (f"; the first stage starts {format_duration(dist.start_delay)} after the agents are ready"
           if dist.start_delay else "")
    )


def _shard_plan(console: Console, config: Config) -> None:
    """How prepare and cleanup cut each entry into shards (computed, not listed: any count is instant)."""
    prep = config.prepare
    if prep is None or not config.has_prepare:
        return
    dist = config.distributed
    shared = dist is not None and dist.shared_filesystem
    agents = len(dist.agents) if dist is not None and dist.agents_per_node is None else None
    pools = pools_for(config.workload)
    lines = []
    for i, spec in enumerate(prep.ensure_objects):
        total = spec.count * (1 if (i == 0 and prep.directory_structure) else len(pools))
        if dist is None and config.process_count <= 1:
            lines.append(f"entry {i}: one shard of {total:,} objects (the one agent's workers share it)")
            continue
        if shared and agents is None:
            lines.append(f"entry {i}: {total:,} objects split by index over the agents the cluster places")
            continue
        plan = ShardPlan.of(total, agents if shared and agents else 1)
        line = f"entry {i}: {len(plan):,} shards of up to {plan.size:,} objects"
        if shared and plan.agents > 1:
            each = max(plan.objects_by_agent([(0, len(plan))]))
            line += f", agent k takes shards k, k+{plan.agents}, ... (at most {each:,} objects each)"
        else:
            line += " in each agent's own space"
        lines.append(line)
    console.print("[bold]Shard plan[/bold]: " + "; ".join(lines))


def _overrides(console: Console, loaded: LoadedConfig) -> None:
    """The keys `sbench run` flags set (config.overrides), each with the YAML value it replaced."""
    if not loaded.overrides:
        return
    console.print("[bold]Set by flags[/bold] (they beat the YAML; metadata.json records them):")
    for key, change in loaded.overrides.items():
        was = change.get("yaml")
        console.print(
            f"  {key} " + ("removed" if change.get("cli") is None else f"= {change['cli']!r}")
            + (f" (YAML had {was!r})" if was is not None else "")
            + (f" ({change['why']})" if change.get("why") else "")
        )


def _endpoint_shares(count: int, n: int) -> list[int]:
    """Object idx goes to endpoint idx % n (sai3 parallel prepare), so the first count % n get one more."""
    return [count // n + (1 if i < count % n else 0) for i in range(n)]


def _multi_endpoint(console: Console, config: Config) -> None:
    blocks = []
    if config.multi_endpoint:
        blocks.append(("global", config.multi_endpoint))
    if config.distributed:
        blocks += [
            (a.id or f"agent-{i + 1}", a.multi_endpoint)
            for i, a in enumerate(config.distributed.agents)
            if a.multi_endpoint
        ]
    if not blocks:
        return
    prep = config.prepare
    spread = [(i, s) for i, s in enumerate(prep.ensure_objects) if s.use_multi_endpoint] if prep else []
    for owner, block in blocks:
        driver = block.driver.value if block.driver else f"{config.driver.value} (global)"
        table = _table(
            f"Multi-endpoint ({owner}): {block.strategy}, driver {driver}",
            "#",
            "endpoint",
            *[f"ensure_objects[{i}]" for i, _ in spread],
        )
        shares = [_endpoint_shares(spec.count, len(block.endpoints)) for _, spec in spread]
        for j, ep in enumerate(block.endpoints):
            table.add_row(str(j), ep, *[f"{col[j]:,}" for col in shares])
        console.print(table)


def _preflight(console: Console, config: Config) -> None:
    from sbench.preflight import planned_checks

    checks = planned_checks(config)
    if checks:
        console.print("[bold]Preflight checks[/bold]")
        for check in checks:
            console.print(f"  - {check}")


# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SanityResult:
    """sai3's prepare-generator check: how fast and how lean the first N paths and sizes are."""

    generated: int
    total_bytes: int
    elapsed_s: float
    rss_delta: int
    first_path: str
    last_path: str


def prepare_paths(config: Config, limit: int) -> Iterator[tuple[str, int]]:
    """(URI, size) of the first `limit` objects prepare would create, lazily, with the real generators."""
    prep = config.prepare
    if prep is None:
        return
    remaining = limit
    for i, spec in enumerate(prep.ensure_objects):
        if remaining <= 0:
            return
        base = _base_uri(config, spec).rstrip("/") + "/"
        seed = seed_for_uri(_base_uri(config, spec))
        sampler = sampler_from_spec(spec.size_spec)
        if i == 0 and prep.directory_structure is not None:
            layout = TreeLayout(prep.directory_structure)
            for index, rel in layout.iter_files(0, min(remaining, layout.total_files)):
                yield base + rel, sampler.size_for_index(index, seed)
                remaining -= 1
            continue
        for pool in pools_for(config.workload):
            for index in range(min(remaining, spec.count)):
                key = prepared_key(pool, index, prep.key_prefix_shards)
                yield base + key, sampler.size_for_index(index, seed)
                remaining -= 1


def sanity_check(config: Config, limit: int = SANITY_SAMPLE) -> SanityResult:
    """Generate (and drop) the first `limit` prepare paths and sizes; report time and RSS growth."""
    process = psutil.Process()
    rss_before = process.memory_info().rss
    start = time.perf_counter()
    generated = total = 0
    first = last = ""
    for uri, size in prepare_paths(config, limit):
        if not generated:
            first = uri
        last = uri
        generated += 1
        total += size
    elapsed = time.perf_counter() - start
    return SanityResult(generated, total, elapsed, process.memory_info().rss - rss_before, first, last)


def _sanity(console: Console, config: Config) -> None:
    if not config.has_prepare:
        return
    result = sanity_check(config)
    if not result.generated:
        return
    rate = result.generated / result.elapsed_s if result.elapsed_s > 0 else float("inf")
    console.print(
        f"[bold]Memory sanity check[/bold]: generated the first {result.generated:,} prepare paths and sizes "
        f"({format_size(result.total_bytes)}) in {result.elapsed_s:.3f} s ({rate:,.0f}/s); RSS grew by "
        f"{format_size(max(result.rss_delta, 0))}. Paths are computed from indices, never stored.\n"
        f"  first: {result.first_path}\n  last:  {result.last_path}"
    )
