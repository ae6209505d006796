"""Map YAML settings onto `BackendOptions`, so storage drivers never read YAML themselves."""

from __future__ import annotations

from sbench.config.models import AgentConfig, Config, MultiEndpointConfig
from sbench.storage.options import BackendOptions, Driver, RangeSettings

#: Connecting gets at most this much of `request_timeout` (a dead host fails fast, a slow answer the rest).
CONNECT_TIMEOUT_S = BackendOptions().connect_timeout_s


def _endpoint_block(config: Config, agent: AgentConfig | None) -> MultiEndpointConfig | None:
    # sai3 priority: the agent's multi_endpoint replaces the global block for that agent.
    if agent is not None and agent.multi_endpoint is not None:
        return agent.multi_endpoint
    return config.multi_endpoint


def _same_uri(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def backend_options(config: Config, uri: str, *, agent: AgentConfig | None = None) -> BackendOptions:
    """Options for opening `uri` in `config` (as seen by `agent` when given).

    The driver comes from `multi_endpoint.driver` when `uri` is one of that block's endpoints (or lies
    under one), else from the top-level `driver`; concurrency is the agent's override or the global value.
    """
    driver: Driver = config.driver
    block = _endpoint_block(config, agent)
    if block is not None and block.driver is not None:
        stripped = uri.rstrip("/")
        if any(_same_uri(ep, uri) or stripped.startswith(ep.rstrip("/") + "/") for ep in block.endpoints):
            driver = block.driver
    concurrency = config.concurrency
    if agent is not None and agent.concurrency_override is not None:
        concurrency = agent.concurrency_override
    rng = config.range_engine
    return BackendOptions(
        driver=driver,
        concurrency=concurrency,
        request_timeout_s=config.request_timeout,
        connect_timeout_s=min(CONNECT_TIMEOUT_S, config.request_timeout),
        page_cache_mode=config.page_cache_mode,
        range=RangeSettings(
            enabled=rng.enabled,
            chunk_size=rng.chunk_size,
            max_concurrent_ranges=rng.max_concurrent_ranges,
            min_split_size=rng.min_split_size,
            range_timeout_s=rng.range_timeout_secs,
        ),
    )
