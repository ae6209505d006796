"""Map YAML settings onto `BackendOptions`, so storage drivers never read YAML themselves."""

from __future__ import annotations

from sbench.config.models import AgentConfig, BackendConfig, Config, MultiEndpointConfig
from sbench.storage.options import BackendOptions, Driver, RangeSettings

#: Connecting gets at most this much of `request_timeout` (a dead host fails fast, a slow answer the rest).
CONNECT_TIMEOUT_S = BackendOptions().connect_timeout_s
_DEFAULTS = BackendOptions()


def endpoint_block(config: Config, agent: AgentConfig | None) -> MultiEndpointConfig | None:
    """The `multi_endpoint` block that `agent` (or, without one, every agent) uses."""
    # sai3 priority: the agent's multi_endpoint replaces the global block for that agent.
    if agent is not None and agent.multi_endpoint is not None:
        return agent.multi_endpoint
    return config.multi_endpoint


def in_block(block: MultiEndpointConfig | None, uri: str) -> bool:
    """True when `uri` is one of the block's endpoints or lies under one."""
    if block is None:
        return False
    stripped = uri.rstrip("/")
    roots = [ep.rstrip("/") for ep in block.endpoints]
    return any(stripped == root or stripped.startswith(root + "/") for root in roots)


def client_settings(config: Config, uri: str, *, agent: AgentConfig | None = None) -> BackendConfig:
    """The `backend_options` keys in force for `uri`: the top-level block, with each key that the URI's
    `multi_endpoint.backend` block sets replacing it."""
    block = endpoint_block(config, agent)
    own = block.backend_options if in_block(block, uri) and block is not None else None
    if own is None:
        return config.backend_options
    return config.backend_options.model_copy(update=own.model_dump(exclude_unset=True))


def backend_options(config: Config, uri: str, *, agent: AgentConfig | None = None) -> BackendOptions:
    """Options for opening `uri` in `config` (as seen by `agent` when given).

    The driver comes from `multi_endpoint.driver` when `uri` is one of that block's endpoints (or lies
    under one), else from the top-level `driver`; concurrency is the agent's override or the global value;
    client settings come from `client_settings`, unset keys keeping the drivers' defaults.
    """
    driver: Driver = config.driver
    block = endpoint_block(config, agent)
    if block is not None and block.driver is not None and in_block(block, uri):
        driver = block.driver
    concurrency = config.concurrency
    if agent is not None and agent.concurrency_override is not None:
        concurrency = agent.concurrency_override
    rng = config.range_engine
    keys = client_settings(config, uri, agent=agent)
    request_timeout = keys.request_timeout or config.request_timeout
    return BackendOptions(
        driver=driver,
        concurrency=concurrency,
        request_timeout_s=request_timeout,
        connect_timeout_s=keys.connect_timeout or min(CONNECT_TIMEOUT_S, request_timeout),
        max_connections=keys.max_connections,
        region=keys.region,
        path_style=keys.path_style,
        multipart_threshold=keys.multipart_threshold or _DEFAULTS.multipart_threshold,
        multipart_part_size=keys.multipart_part_size or _DEFAULTS.multipart_part_size,
        verify_tls=keys.verify_tls is not False,
        page_cache_mode=config.page_cache_mode,
        range=RangeSettings(
            enabled=rng.enabled,
            chunk_size=rng.chunk_size,
            max_concurrent_ranges=rng.max_concurrent_ranges,
            min_split_size=rng.min_split_size,
            range_timeout_s=rng.range_timeout_secs,
        ),
    )
