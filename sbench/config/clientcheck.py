"""Refuse the `backend_options` keys that a store or the chosen driver cannot honour, naming the key and why.

A benchmark setting that is quietly dropped is worse than one that is refused: the user would believe the run
used it. So every key set in a `backend_options` block (top level, or a `multi_endpoint` block's) is checked
against each URI it applies to: the store (s3, az, gs; file://, direct:// and null:// have no client) and the
driver (`sdk` or `native`). What the drivers do with the keys they accept is in ui/clientview.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from sbench.config.backend import backend_options, client_settings, endpoint_block, in_block
from sbench.config.models import AgentConfig, Config
from sbench.config.problems import KeyPath
from sbench.config.units import format_duration, format_size
from sbench.errors import ConfigError
from sbench.storage.gcs import SDK_RESUMABLE_ABOVE
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.s3 import virtual_host_problem
from sbench.storage.uri import CLOUD_SCHEMES, StorageUri, parse_uri

#: S3 refuses a part (all but the last) below this size with EntityTooSmall.
S3_MIN_PART = 5 * 1024 * 1024
#: The largest block Azure Blob storage takes in one Put Block call.
AZURE_MAX_BLOCK = 4000 * 1024 * 1024

_STORE = {"s3": "S3", "az": "Azure Blob storage", "gs": "Google Cloud Storage"}


def backend_problems(config: Config, uris: Iterable[tuple[KeyPath, str]]) -> list[tuple[KeyPath, str]]:
    """(key path, message) for each `backend_options` key that cannot be honoured where `uris` (the config's
    URI fields, by key path) use it; one message per key path."""
    found: dict[KeyPath, str] = {}
    if config.backend_options.request_timeout is not None and "request_timeout" in config.model_fields_set:
        found[("backend_options", "request_timeout")] = (
            "is set twice: top-level `request_timeout` sets the same limit for every endpoint; keep one "
            "(a multi_endpoint block's `backend_options.request_timeout` may still differ)"
        )
    for path, uri in uris:
        agent = _agent_of(config, path)
        for key, reason in _refusals(config, uri, agent):
            found.setdefault(_key_path(config, uri, agent, path, key), reason)
    return sorted(found.items(), key=lambda item: str(item[0]))


def _agent_of(config: Config, path: KeyPath) -> AgentConfig | None:
    if config.distributed is not None and path[:2] == ("distributed", "agents"):
        index = path[2]
        assert isinstance(index, int)
        return config.distributed.agents[index]
    return None


def _key_path(config: Config, uri: str, agent: AgentConfig | None, path: KeyPath, key: str) -> KeyPath:
    """Where `key` was set for `uri`: its multi_endpoint block's `backend_options`, else the top-level one."""
    block = endpoint_block(config, agent)
    own = block.backend_options if block is not None and in_block(block, uri) else None
    if own is not None and key in own.model_fields_set:
        if agent is not None and agent.multi_endpoint is block:
            return (*path[:3], "multi_endpoint", "backend_options", key)
        return ("multi_endpoint", "backend_options", key)
    return ("backend_options", key)


def _refusals(config: Config, uri: str, agent: AgentConfig | None) -> list[tuple[str, str]]:
    keys = client_settings(config, uri, agent=agent)
    chosen = sorted(name for name in keys.model_fields_set if getattr(keys, name) is not None)
    if not chosen:
        return []
    try:
        parsed = parse_uri(uri.split("*", 1)[0])
    except ConfigError:  # reported by the URI check
        return []
    scheme = parsed.scheme
    if scheme not in CLOUD_SCHEMES:
        why = f"sets the object-store client, but {uri} is a {scheme}:// location, which no client opens"
        return [(name, why) for name in chosen]
    options = backend_options(config, uri, agent=agent)
    concurrency = _peak_concurrency(config, agent)
    out = []
    for name in chosen:
        reason = _refusal(name, parsed, options, concurrency)
        if reason:
            out.append((name, f"{reason} ({uri})"))
    return out


def _peak_concurrency(config: Config, agent: AgentConfig | None) -> int:
    """Workers that may share one client: the agent's, or the largest of any agent for a shared URI."""
    if agent is not None and agent.concurrency_override is not None:
        return agent.concurrency_override
    agents = config.distributed.agents if config.distributed is not None else []
    return max([config.concurrency_per_process, *(a.concurrency_override or 0 for a in agents)])


def _refusal(name: str, parsed: StorageUri, options: BackendOptions, concurrency: int) -> str | None:
    """Why `name` cannot be honoured on `parsed`'s store with `options.driver`, or None when it can (an
    endpoint from the environment is checked when the run opens it, by s3.resolve_settings)."""
    native, scheme = options.driver is not Driver.SDK, parsed.scheme
    store = _STORE[scheme]
    if name == "region" and scheme != "s3":
        decides = "the account's endpoint" if scheme == "az" else "the bucket's location"
        return f"{store} clients have no region setting: {decides} decides where requests go"
    if name == "path_style" and scheme == "az":
        return ("az:// addressing follows the URI: az://HOST:PORT/ACCOUNT/CONTAINER is path-style (as "
                "emulators want), az://ACCOUNT/CONTAINER uses the account's own host")
    if name == "path_style" and options.path_style is False and parsed.endpoint:
        return virtual_host_problem(parsed.endpoint)
    if name == "path_style" and scheme == "gs":
        return f"{store} has one addressing style; there is nothing to choose"
    if name == "multipart_threshold" and scheme == "gs" and not native:
        return (f"google-cloud-storage switches to a resumable upload above a fixed "
                f"{format_size(SDK_RESUMABLE_ABOVE)} (not a setting of the SDK); driver: native honours "
                "the threshold")
    if name == "multipart_part_size" and scheme == "s3" and options.multipart_part_size < S3_MIN_PART:
        return (f"{format_size(options.multipart_part_size)} is below the 5 MiB that S3 requires of every "
                "part but the last (EntityTooSmall)")
    if name == "multipart_part_size" and scheme == "az" and options.multipart_part_size > AZURE_MAX_BLOCK:
        return (f"{format_size(options.multipart_part_size)} is above the 4000 MiB that Azure takes per "
                "block")
    if name == "max_connections":
        fan_out = options.range.max_concurrent_ranges if options.range.enabled else 1
        in_flight = concurrency * fan_out
        if options.pool_size < in_flight:
            client = "obstore" if native else "the SDK's connection pool"
            return (f"{options.pool_size} is below the {in_flight} requests this agent can have in flight "
                    f"(concurrency {concurrency} x {fan_out} range(s) per GET), and {client} does not make a "
                    "request wait for a free connection: it opens one more and closes it after, so the "
                    "limit would not hold; lower concurrency to send fewer requests at once")
    if name == "connect_timeout" and options.connect_timeout_s > options.request_timeout_s:
        return (f"{format_duration(options.connect_timeout_s)} is longer than the request timeout "
                f"{format_duration(options.request_timeout_s)}, which bounds the whole request, connecting "
                "included")
    return None
