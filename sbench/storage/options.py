"""Settings a backend is opened with. The config layer maps YAML keys onto this; backends never see YAML."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sbench.storage.declared import DeclaredSpace


class Driver(StrEnum):
    """Which client library drives a cloud URI. `auto` picks native (obstore): far less CPU per op."""

    AUTO = "auto"
    SDK = "sdk"
    NATIVE = "native"


class PageCacheMode(StrEnum):
    """posix_fadvise hint for file:// and direct:// reads (sai3 `page_cache_mode`)."""

    AUTO = "auto"
    SEQUENTIAL = "sequential"
    RANDOM = "random"
    DONTNEED = "dontneed"
    NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class RangeSettings:
    """Concurrent ranged GETs of large objects (sai3 `range_engine`), on every cloud backend and driver."""

    enabled: bool = False
    chunk_size: int = 64 * 1024 * 1024
    max_concurrent_ranges: int = 16
    min_split_size: int = 16 * 1024 * 1024
    range_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Everything a driver needs beyond the URI. Defaults suit a single laptop run."""

    driver: Driver = Driver.AUTO
    #: Workers that will share the backend; SDK connection pools are sized to it.
    concurrency: int = 16
    #: Per-op timeout (YAML `request_timeout`); a call that takes longer fails with ErrorClass.TIMEOUT.
    request_timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    max_connections: int | None = None
    region: str | None = None
    #: S3 path-style addressing (the default for explicit endpoints such as MinIO, SeaweedFS, Ceph).
    path_style: bool | None = None
    #: Use https for `s3://HOST:PORT/bucket` endpoint URIs (http otherwise, as sai3 multi-endpoint configs).
    https: bool = False
    #: Explicit endpoint URL (overrides environment and profile; emulators and S3-compatible stores).
    endpoint_url: str | None = None
    multipart_part_size: int = 16 * 1024 * 1024
    multipart_threshold: int = 64 * 1024 * 1024
    #: False accepts any TLS certificate (self-signed test endpoints); every driver has a switch for it.
    verify_tls: bool = True
    page_cache_mode: PageCacheMode | None = None
    range: RangeSettings = RangeSettings()
    #: what the run's prepare makes, by name and size (plan.objectspaces fills it for null:// URIs only: a
    #: null store keeps objects in one process's memory, and answers for the others from this; see null.py)
    declared: tuple[DeclaredSpace, ...] = ()

    @property
    def pool_size(self) -> int:
        """Connections each client pool keeps: `max_connections`, else one per request that can be in flight
        (each worker, times the ranges one GET may fan out to)."""
        fan_out = self.range.max_concurrent_ranges if self.range.enabled else 1
        return max(1, self.max_connections or self.concurrency * fan_out)
