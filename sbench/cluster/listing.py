"""One LIST per stage shared by every agent (seed item 1: worker-level sharing of the metadata cache).

When several agents resolve the same GET/STAT/DELETE pool (`path: "data/*"`), sai3 had each of them list the
same prefix. Here the backends an agent hands the engine are wrapped: the first agent to list a prefix streams
the listing into the metadata-cache actor in pages while it uses it; the others wait for it and read it back
in pages of `PAGE` entries (never one Ray call per key).

Only pool resolution is shared (`layout.paths.listing_a_pool`: resolve_pool marks its own LIST, on whichever
thread it runs), while LIST ops of the workload are always real LISTs, so their measurements are never
replaced by cache reads. Listings are keyed by run and stage, so a later stage lists again and sees
what earlier stages created or deleted.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray

from sbench.config.models import Config
from sbench.engine.backends import BackendSet
from sbench.layout.paths import listing_a_pool
from sbench.oplog.capture import wrap as capture_wrap
from sbench.plan.objectspaces import storage_options
from sbench.storage.base import AsyncBackend, Backend, Buffer, ObjectStat
from sbench.storage.registry import open_backend

PAGE = 10_000
#: How long a waiting agent waits for the producing agent's LIST before listing itself.
WAIT_S = 600.0


@dataclass
class ShareStats:
    """What this agent's backends did with shared listings in one stage (reported in stage details)."""

    produced: int = 0
    fetched: int = 0
    keys_fetched: int = 0
    fallbacks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "produced": self.produced,
            "fetched": self.fetched,
            "keys_fetched": self.keys_fetched,
            "fallbacks": self.fallbacks,
        }


class _Sharing:
    """The shared-LIST logic, common to the sync and async wrappers."""

    def __init__(self, inner: Backend, cache: Any, scope: str, agent_id: str, stats: ShareStats) -> None:
        self.inner = inner
        self.cache = cache
        self.scope = scope
        self.agent_id = agent_id
        self.stats = stats

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        if not listing_a_pool():
            return self.inner.list(prefix, recursive=recursive)
        return self._shared(prefix, recursive)

    def _shared(self, prefix: str, recursive: bool) -> Iterator[tuple[str, int]]:
        key = f"{self.scope}|{self.inner.root_uri}|{prefix}|{int(recursive)}"
        info, owner = ray.get(self.cache.claim_listing.remote(key, self.agent_id))
        if owner:
            yield from self._produce(info.listing_id, key, prefix, recursive)
            return
        info = ray.get(self.cache.wait_listing.remote(key, WAIT_S))
        if info is None or not info.complete:  # the producer failed or is too slow: list ourselves
            with self.stats.lock:
                self.stats.fallbacks += 1
            yield from self.inner.list(prefix, recursive=recursive)
            return
        with self.stats.lock:
            self.stats.fetched += 1
            self.stats.keys_fetched += info.count
        for offset in range(0, info.count, PAGE):
            yield from ray.get(self.cache.fetch_listing.remote(info.listing_id, offset, PAGE))

    def _produce(self, listing_id: int, key: str, prefix: str, recursive: bool) -> Iterator[tuple[str, int]]:
        page: list[tuple[str, int]] = []
        try:
            for entry in self.inner.list(prefix, recursive=recursive):
                page.append(entry)
                if len(page) >= PAGE:
                    ray.get(self.cache.append_listing.remote(listing_id, page))
                    yield from page
                    page = []
            ray.get(self.cache.append_listing.remote(listing_id, page))
            yield from page
            ray.get(self.cache.finish_listing.remote(listing_id))
        except BaseException:
            ray.get(self.cache.drop_listing.remote(key))  # waiters fall back to their own LIST
            raise
        with self.stats.lock:
            self.stats.produced += 1


class SharedListingBackend(Backend):
    """A sync backend whose pool-resolution LISTs are shared through the metadata cache."""

    def __init__(self, sharing: _Sharing) -> None:
        super().__init__(sharing.inner.root_uri)
        self._s = sharing
        self.inner = sharing.inner
        self.scheme = sharing.inner.scheme  # type: ignore[misc]
        self.has_directories = sharing.inner.has_directories  # type: ignore[misc]

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        return self._s.list(prefix, recursive)

    def get(self, key: str) -> Buffer:
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        return self.inner.get_range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        self.inner.put(key, data)

    def stat(self, key: str) -> ObjectStat:
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(path)

    def rmdir(self, path: str, recursive: bool = False) -> None:
        self.inner.rmdir(path, recursive)

    def close(self) -> None:
        self.inner.close()

    def uri_of(self, key: str) -> str:
        return self.inner.uri_of(key)

    def __getattr__(self, name: str) -> Any:  # driver extras (range settings, stats) stay reachable
        if name in ("inner", "_s"):
            raise AttributeError(name)
        return getattr(self.inner, name)


class SharedListingAsyncBackend(AsyncBackend, SharedListingBackend):
    """The same for native (asyncio) backends; the async methods go straight to the inner backend."""

    async def get_async(self, key: str) -> Buffer:
        return await self.inner.get_async(key)  # type: ignore[attr-defined]

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        return await self.inner.get_range_async(key, offset, length)  # type: ignore[attr-defined]

    async def put_async(self, key: str, data: Buffer) -> None:
        await self.inner.put_async(key, data)  # type: ignore[attr-defined]

    def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:
        return self.inner.list_async(prefix, recursive)  # type: ignore[attr-defined]

    async def stat_async(self, key: str) -> ObjectStat:
        return await self.inner.stat_async(key)  # type: ignore[attr-defined]

    async def delete_async(self, key: str) -> None:
        await self.inner.delete_async(key)  # type: ignore[attr-defined]


def listing_scope(run_id: str, stage_index: int) -> str:
    """Listings are shared within one stage of one run only."""
    return f"{run_id}/stage-{stage_index}/"


def shared_backends(
    config: Config, cache: Any, scope: str, agent_id: str, stats: ShareStats
) -> BackendSet:
    """A BackendSet for one stage whose target and endpoint backends share their pool LISTs."""
    backends = BackendSet(config)
    me = config.multi_endpoint
    roots = list(me.endpoints) if me is not None and me.endpoints else []
    if config.target:
        roots.append(config.target)
    for uri in roots:
        inner = capture_wrap(open_backend(uri, storage_options(config, uri)))
        sharing = _Sharing(inner, cache, scope, agent_id, stats)
        wrapper = SharedListingAsyncBackend(sharing) if inner.is_async else SharedListingBackend(sharing)
        backends.adopt(uri, wrapper)
    return backends
