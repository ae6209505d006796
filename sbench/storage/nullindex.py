"""What a null:// store holds: one index per process, key -> size, and nothing else (no bytes are kept).

Every null backend of a process shares this one index, whatever its root: the prepare stage, the workload
and cleanup open their own backends, and each must see what the others did (`null:///b/` and `null:///b/d/`
are one namespace, as two prefixes of one bucket are). Keys are store keys: the URI's path without its
leading `/`, then the key.

Kept per object: its size in a flat dict (GET and STAT read one entry) and its name in its directory's dict
(LIST reads one directory at a time, never the whole index). Thread-safe without a lock: every change is one
dict or set operation, which the interpreter makes atomic; a LIST copies one directory's names before it
walks them, so PUTs and DELETEs may run while it does. A directory's dict stays when its last object goes
(a later PUT into it would otherwise race with its removal), so the index costs one small dict per
directory ever written, plus roughly 200 bytes per object it holds.

GET returns a slice of one zero-filled buffer as large as the largest object known, grown on demand
(`bytes(n)` is calloc'd: its pages cost memory only when read, and reading maps the kernel's zero page).
"""

from __future__ import annotations

from collections.abc import Iterator


class NullIndex:
    """One process's null:// objects (see the module docstring)."""

    __slots__ = ("dirs", "gone", "sizes", "zeros")

    def __init__(self) -> None:
        #: store key -> size of every object PUT in this process and not deleted since
        self.sizes: dict[str, int] = {}
        #: directory (`a/b/`, `` for the top) -> {name: size}, for listings
        self.dirs: dict[str, dict[str, int]] = {}
        #: declared names (BackendOptions.declared) deleted in this process: gone, whatever they declare
        self.gone: set[str] = set()
        #: the bytes every GET returns a slice of; at least as long as any size handed out
        self.zeros = memoryview(b"")

    def view(self, size: int) -> memoryview:
        """`size` zero bytes, without copying (the buffer grows, doubling, when `size` is larger)."""
        zeros = self.zeros
        if size > len(zeros):
            zeros = self.zeros = memoryview(bytes(max(size, 2 * len(zeros))))
        return zeros[:size]

    def add(self, key: str, size: int) -> None:
        """Remember an object (a PUT); it replaces any earlier one of that key."""
        self.sizes[key] = size
        directory, _, name = key.rpartition("/")
        directory = directory + "/" if directory else ""
        entries = self.dirs.get(directory)
        if entries is None:
            entries = self.dirs.setdefault(directory, {})
        entries[name] = size
        if self.gone:
            self.gone.discard(key)
        if size > len(self.zeros):
            self.view(size)

    def remove(self, key: str) -> bool:
        """Forget an object; False when the index did not hold it."""
        if self.sizes.pop(key, None) is None:
            return False
        directory, _, name = key.rpartition("/")
        entries = self.dirs.get(directory + "/" if directory else "")
        if entries is not None:
            entries.pop(name, None)
        return True

    def keys_under(self, prefix: str, recursive: bool) -> Iterator[tuple[str, int]]:
        """(store key, size) of every object whose key starts with `prefix`, one directory at a time
        (directories in name order, objects in the order they were added); non-recursive listings stop at
        the prefix's directory and give each subdirectory below it once, as `key/` with size 0."""
        top = prefix[: prefix.rfind("/") + 1]
        if not recursive:
            yield from self._entries(top, prefix)
            below = sorted(
                {d[len(top) :].split("/", 1)[0] for d, entries in list(self.dirs.items())
                 if entries and d != top and d.startswith(top)}
            )
            for sub in below:
                if (top + sub).startswith(prefix):
                    yield top + sub + "/", 0
            return
        for directory in sorted(d for d in list(self.dirs) if d.startswith(top)):
            yield from self._entries(directory, prefix)

    def _entries(self, directory: str, prefix: str) -> Iterator[tuple[str, int]]:
        entries = self.dirs.get(directory)
        if not entries:
            return
        for name in tuple(entries):
            size = entries.get(name)
            key = directory + name
            if size is not None and key.startswith(prefix):
                yield key, size


#: the index of this process: every null:// backend opened here reads and writes it
INDEX = NullIndex()
