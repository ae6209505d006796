"""What a null:// store holds: one index per process, key -> size, and nothing else (no bytes are kept).

Every null backend of a process shares this one index, whatever its root: the prepare stage, the workload
and cleanup open their own backends, and each must see what the others did (`null:///b/` and `null:///b/d/`
are one namespace, as two prefixes of one bucket are). Keys are store keys: the URI's path without its
leading `/`, then the key.

Two shapes of entries, so that a long PUT run does not fill the memory:

- numbered keys, `STEM_N.dat` with N a plain decimal (every workload PUT key, `put_<run>_<agent>_<worker>_
  <seq>.dat`, is one): one array of sizes per STEM, indexed by N (8 bytes per key; -1 where there is none).
  A worker's PUTs count up from 0, so the arrays are dense. 1,000,000 PUT keys cost about 8 MB here, where
  a dict entry per key cost about 320 MB;
- any other key (prepared objects, tree files, keys written by `sbench util`): a dict entry with its size,
  and its name in its directory's dict, for listings.

Thread-safe without a lock: every change is one dict, set or array operation, which the interpreter makes
atomic; a LIST copies one directory's names (or one array) before it walks them, so PUTs and DELETEs may run
while it does. A directory's dict (and a stem's array) stays when its last object goes, since a later PUT
into it would otherwise race with its removal.

GET returns a slice of one zero-filled buffer as large as the largest object known, grown on demand
(`bytes(n)` is calloc'd: its pages cost memory only when read, and reading maps the kernel's zero page).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

#: the suffix of a numbered key
_DAT = ".dat"


def _numbered(key: str) -> tuple[str, int] | None:
    """(stem, N) of a key `STEM_N.dat` with N a plain decimal (ASCII digits, no sign, no leading zero, so
    `f"{stem}_{n}.dat"` gives the key back); else None. Once per PUT: every step is one C call."""
    stem, _, tail = key.rpartition("_")
    if stem and tail[-4:] == _DAT and tail.isascii() and (tail[0] in "123456789" or tail == "0.dat"):
        try:
            return stem, int(tail[:-4])
        except ValueError:  # `1x.dat`
            return None
    return None


def _directory(key: str) -> str:
    """`a/b/` of `a/b/c` (`` for a key at the top)."""
    return key[: key.rfind("/") + 1]


class NullIndex:
    """One process's null:// objects (see the module docstring)."""

    __slots__ = ("dirs", "gone", "sizes", "stem_dirs", "stems", "zeros")

    def __init__(self) -> None:
        #: store key -> size of every other key PUT in this process and not deleted since, and of every
        #: declared object read here (`known`: answered from this dict without being listed)
        self.sizes: dict[str, int] = {}
        #: directory (`a/b/`, `` for the top) -> {name: size} of those keys, for listings
        self.dirs: dict[str, dict[str, int]] = {}
        #: numbered keys: stem -> sizes by number (-1: none)
        self.stems: dict[str, array[int]] = {}
        #: directory -> the stems in it, for listings
        self.stem_dirs: dict[str, set[str]] = {}
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
        numbered = _numbered(key)
        if numbered is None:
            self.sizes[key] = size
            entries = self.dirs.get(directory := _directory(key))
            if entries is None:
                entries = self.dirs.setdefault(directory, {})
            entries[key[len(directory) :]] = size
        else:
            stem, n = numbered
            sizes = self.stems.get(stem)
            if sizes is None:
                sizes = self.stems.setdefault(stem, array("q"))
                self.stem_dirs.setdefault(_directory(stem), set()).add(stem)
            if n >= len(sizes):
                sizes.extend([-1] * (max(n + 1, 2 * len(sizes)) - len(sizes)))
            sizes[n] = size
        if self.gone:
            self.gone.discard(key)
        if size > len(self.zeros):
            self.view(size)

    def known(self, key: str, size: int) -> None:
        """Remember the size of a declared object this process answered for, so the next GET of it costs
        one dict lookup, as for an object PUT here; it is not listed (LIST answers what was PUT here)."""
        self.sizes[key] = size
        if size > len(self.zeros):
            self.view(size)

    def size(self, key: str) -> int | None:
        """The size of an object the index holds, else None."""
        size = self.sizes.get(key)
        if size is not None:
            return size
        numbered = _numbered(key)
        if numbered is None:
            return None
        sizes = self.stems.get(numbered[0])
        if sizes is None or numbered[1] >= len(sizes) or sizes[numbered[1]] < 0:
            return None
        return sizes[numbered[1]]

    def remove(self, key: str) -> bool:
        """Forget an object; False when the index did not hold it."""
        numbered = _numbered(key)
        if numbered is not None:
            sizes = self.stems.get(numbered[0])
            if sizes is None or numbered[1] >= len(sizes) or sizes[numbered[1]] < 0:
                return False
            sizes[numbered[1]] = -1
            return True
        if self.sizes.pop(key, None) is None:
            return False
        entries = self.dirs.get(_directory(key))
        if entries is not None:
            entries.pop(key[len(_directory(key)) :], None)
        return True

    def keys_under(self, prefix: str, recursive: bool) -> Iterator[tuple[str, int]]:
        """(store key, size) of every object whose key starts with `prefix`, one directory at a time
        (directories in name order; in a directory, other keys in the order they were added, then numbered
        keys by stem and number); non-recursive listings stop at the prefix's directory and give each
        subdirectory below it once, as `key/` with size 0."""
        top = _directory(prefix)
        if not recursive:
            yield from self._entries(top, prefix)
            held = self._directories()
            below = sorted({d[len(top) :].split("/", 1)[0] for d in held if d != top and d.startswith(top)})
            for sub in below:
                if (top + sub).startswith(prefix):
                    yield top + sub + "/", 0
            return
        for directory in sorted(d for d in self._directories() if d.startswith(top)):
            yield from self._entries(directory, prefix)

    def _directories(self) -> set[str]:
        """Directories that hold at least one object."""
        held = {d for d, entries in list(self.dirs.items()) if entries}
        for directory, stems in list(self.stem_dirs.items()):
            if directory not in held and any(max(self.stems[s], default=-1) >= 0 for s in list(stems)):
                held.add(directory)
        return held

    def _entries(self, directory: str, prefix: str) -> Iterator[tuple[str, int]]:
        entries = self.dirs.get(directory)
        for name in tuple(entries or ()):
            size = entries.get(name) if entries is not None else None
            key = directory + name
            if size is not None and key.startswith(prefix):
                yield key, size
        for stem in sorted(self.stem_dirs.get(directory, ())):
            if not (stem.startswith(prefix) or prefix.startswith(stem)):
                continue
            for n, size in enumerate(self.stems[stem][:]):
                if size >= 0 and (key := f"{stem}_{n}{_DAT}").startswith(prefix):
                    yield key, size


#: the index of this process: every null:// backend opened here reads and writes it
INDEX = NullIndex()
