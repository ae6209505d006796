"""null:// driver: no storage at all, to show how many ops/s this client host drives (fio's `ioengine=null`).

What it answers (every op, sync and on asyncio workers):

- PUT discards the bytes and remembers the key and size in this process's index (sbench.storage.nullindex);
- GET returns that many zero bytes, a slice of one preallocated buffer (no copy, no allocation per op);
  `get_range` the part of them the range covers;
- STAT answers the size; LIST answers from the index, with the usual prefix rules (recursive, or one level
  with subdirectories as `dir/`), objects of one directory in the order they were written;
- DELETE forgets the key (NOT_FOUND when there is nothing to forget); MKDIR does nothing and RMDIR with
  `recursive` deletes every key under the path, as on the object stores (`has_directories` is False);
- a key with a `..` segment is refused (OUTSIDE_ROOT), as by every object-store driver;
- optional service time, from the URI's query: `null:///bench/?latency=200us`, `&dist=uniform|exp`
  (sbench.storage.servicetime has the syntax); the sleep holds no lock and never outlives a stop's grace.

`driver: native` runs the workers as asyncio tasks (NullAsyncBackend, as the native cloud drivers do);
`auto` and `sdk` run them as threads, the cheaper path per op here.

**One index per process, and the rule that makes it work across processes.** The index lives in the
memory of the process that made the calls. A single-agent run (prepare, workload and cleanup in one
process) therefore sees exactly what it wrote. On Ray, prepare and cleanup run as tasks in other processes
than the agents, so the backend also knows what the config's prepare declares (`BackendOptions.declared`,
filled by plan.objectspaces for null:// URIs): the names of every `ensure_objects` entry (flat pools, tree
files, the endpoint share of a multi-endpoint prepare) and each one's size, the same pure function of
(config, index) that prepare uses. So:

- GET, STAT and DELETE of a key the index holds answer from the index;
- of a key it does not hold, they answer as if it existed with its declared size when prepare declares
  that name, unless it was deleted in this process (then NOT_FOUND, as a second DELETE must be); any other
  unknown key is NOT_FOUND. The index then remembers that size (not as listed), so the next GET of it is
  one dict lookup, as in the process that prepared it (without that, GETs of 1 KiB on two agent
  processes ran at 288,000/s against 395,000/s in one process);
- LIST answers from the index only, so prepare's gap-fill LIST finds nothing it did not create in this
  process and creates (and measures) every object, and cleanup deletes what prepare recorded;
- a workload PUT's key lives only in the index of the agent that wrote it: a cleanup task in another
  process lists none of them, deletes none and reports none left, and they go with the agent's process at
  the end of the run. A Ray worker process that outlives the run (a shared cluster) keeps the prepared
  keys its prepare tasks remembered; a later run's prepare in that process then finds them as existing.

So a prepared GET/STAT/DELETE pool works with any number of agents, while what each process lists stays
what it wrote; nothing is shared between processes, and nothing outlives them: a later invocation starts
empty (`--verify` and `--skip-prepare` list nothing and say the objects are missing, unless
`prepare.skip_verification` addresses the prepared pool by index; `--cleanup-only` deletes the declared
names, each found once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import ClassVar

from sbench.layout.tree import TreeLayout
from sbench.storage.base import AsyncBackend, Backend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.bulk_delete import as_directory
from sbench.storage.confine import confine_key
from sbench.storage.declared import DeclaredSpace
from sbench.storage.nullindex import INDEX
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.servicetime import parse_service_time
from sbench.storage.uri import NULL_SCHEME, StorageUri, parse_uri

#: (store-key prefix of the space's root, the space, its tree layout when it has one)
_Declared = tuple[str, DeclaredSpace, TreeLayout | None]


class NullBackend(Backend):
    """The null store through worker threads (see the module docstring). Thread-safe: it holds no per-op
    state, and the index is changed by single dict and set operations only."""

    scheme: ClassVar[str] = NULL_SCHEME

    def __init__(self, parsed: StorageUri, options: BackendOptions) -> None:
        super().__init__(parsed.root)
        #: the store key of relative key k is `_prefix + k`
        self._prefix = parsed.key_prefix
        self._index = INDEX
        self._sizes = INDEX.sizes
        self.service = parse_service_time(parsed.query, parsed.raw)
        #: sleeps one call's service time (threads, asyncio), or None when calls do not sleep
        self._pause: Callable[[], None] | None = self.service.pause() if self.service.sleeps else None
        self._apause: Callable[[], Awaitable[None]] | None = (
            self.service.apause() if self.service.sleeps else None
        )
        self._declared: tuple[_Declared, ...] = tuple(
            (parsed_root.key_prefix, space, TreeLayout(space.tree) if space.tree else None)
            for space in options.declared
            if (parsed_root := parse_uri(space.root)).scheme == NULL_SCHEME
        )

    # -- sync --------------------------------------------------------------------------------------------
    def get(self, key: str) -> Buffer:
        if self._pause is not None:
            self._pause()
        return self._read(key)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        if self._pause is not None:
            self._pause()
        return self._range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        if self._pause is not None:
            self._pause()
        if ".." in key:  # `_put` written out: one call less on the PUT ceiling's path
            confine_key(key, "put", self.uri_of)
        self._index.add(self._prefix + key, len(data))

    def stat(self, key: str) -> ObjectStat:
        if self._pause is not None:
            self._pause()
        return ObjectStat(key=key, size=self._size(key, "stat"))

    def delete(self, key: str) -> None:
        if self._pause is not None:
            self._pause()
        self._delete(key)

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        if self._pause is not None:
            self._pause()
        return self._list(prefix, recursive)

    def mkdir(self, path: str) -> None:
        """Object-store semantics: there are no directories to create."""
        confine_key(path, "mkdir", self.uri_of)
        if self._pause is not None:
            self._pause()

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """Object-store semantics: with `recursive`, delete every key under `path`; else nothing."""
        confine_key(path, "rmdir", self.uri_of)
        if self._pause is not None:
            self._pause()
        if recursive:
            for key, _ in list(self._list(as_directory(path), True)):
                self._forget(key)

    def uri_of(self, key: str) -> str:
        return f"{NULL_SCHEME}://{self._prefix}{key.lstrip('/')}"

    # -- the index ---------------------------------------------------------------------------------------
    def _read(self, key: str) -> Buffer:
        try:
            size = self._sizes[self._prefix + key]
        except KeyError:
            return self._index.view(self._size(key, "get"))
        return self._index.zeros[:size]

    def _range(self, key: str, offset: int, length: int) -> Buffer:
        size = self._size(key, "get_range")
        return self._index.view(max(0, min(length, size - offset)))

    def _put(self, key: str, data: Buffer) -> None:
        if ".." in key:
            confine_key(key, "put", self.uri_of)
        self._index.add(self._prefix + key, len(data))

    def _size(self, key: str, action: str) -> int:
        """The size of an object that exists here or is declared (and not deleted here); else NOT_FOUND."""
        full = self._prefix + key
        size = self._index.size(full)
        if size is not None:
            return size
        confine_key(key, action, self.uri_of)
        if full not in self._index.gone:
            size = self._declared_size(full)
            if size is not None:
                self._index.known(full, size)
                return size
        raise self._missing(key, action)

    def _delete(self, key: str) -> None:
        confine_key(key, "delete", self.uri_of)
        if not self._forget(key):
            raise self._missing(key, "delete")

    def _forget(self, key: str) -> bool:
        """Remove a key (a declared one stays gone in this process); False when there was nothing."""
        full = self._prefix + key
        held = self._index.remove(full)
        if self._declared_size(full) is None:
            return held
        if full in self._index.gone:
            return held
        self._index.gone.add(full)
        return True

    def _declared_size(self, full: str) -> int | None:
        for root, space, layout in self._declared:
            if full.startswith(root):
                size = space.size_of(full[len(root) :], layout)
                if size is not None:
                    return size
        return None

    def _list(self, prefix: str, recursive: bool) -> Iterator[tuple[str, int]]:
        confine_key(prefix, "list", self.uri_of)
        cut = len(self._prefix)
        for full, size in self._index.keys_under(self._prefix + prefix, recursive):
            yield full[cut:], size

    def _missing(self, key: str, action: str) -> StorageError:
        return StorageError(
            ErrorClass.NOT_FOUND,
            f"{action} {key!r}: no such object in this process's null store",
            uri=self.uri_of(key),
        )


class NullAsyncBackend(NullBackend, AsyncBackend):
    """The null store on asyncio workers (`driver: native`): the same answers, the service time awaited.

    Every call suspends once even without a service time (`asyncio.sleep(0)`): a call that never suspends
    would let the first task run the whole stage while the other tasks wait, and every real store's call
    suspends at least once, so the event loop's turn per op is part of this path's ceiling."""

    async def get_async(self, key: str) -> Buffer:
        if self._apause is None:
            await asyncio.sleep(0)
        else:
            await self._apause()
        return self._read(key)

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        if self._apause is None:
            await asyncio.sleep(0)
        else:
            await self._apause()
        return self._range(key, offset, length)

    async def put_async(self, key: str, data: Buffer) -> None:
        if self._apause is None:
            await asyncio.sleep(0)
        else:
            await self._apause()
        self._put(key, data)

    async def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:
        if self._apause is None:
            await asyncio.sleep(0)
        else:
            await self._apause()
        for item in self._list(prefix, recursive):
            yield item

    async def stat_async(self, key: str) -> ObjectStat:
        if self._apause is None:
            await asyncio.sleep(0)
        else:
            await self._apause()
        return ObjectStat(key=key, size=self._size(key, "stat"))

    async def delete_async(self, key: str) -> None:
        if self._apause is None:
            await asyncio.sleep(0)
        else:
            await self._apause()
        self._delete(key)


def null_async(driver: Driver) -> bool:
    """Whether a null:// target runs its workers as asyncio tasks: with `driver: native` only."""
    return driver is Driver.NATIVE


def open_null(parsed: StorageUri, options: BackendOptions) -> Backend:
    """The registry's factory: asyncio workers with `driver: native`, threads otherwise."""
    if null_async(options.driver):
        return NullAsyncBackend(parsed, options)
    return NullBackend(parsed, options)
