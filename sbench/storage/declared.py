"""The objects a run's prepare declares under one root, as a null:// store needs to know them.

A null:// store keeps its objects in the memory of one process (sbench.storage.null), but on Ray, prepare
runs in task processes and the workload in agent processes. So a null backend is also told, through
`BackendOptions.declared`, which names prepare makes and how large each is: the same pure functions of the
config that prepare itself uses (layout.naming for names, SizeSampler.size_for_index for sizes, the tree
layout for tree files, object i on root i % n of a multi-endpoint prepare). A name it declares has a size
without any index; whether the object still exists is the store's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbench.data.sizes import SizeSampler
from sbench.layout.naming import parse_prepared_path, parse_tree_file
from sbench.layout.tree import TreeLayout, TreeSpec


@dataclass(frozen=True, slots=True)
class DeclaredSpace:
    """The names and sizes of one `ensure_objects` entry on one of its roots (picklable, for Ray)."""

    #: the root prepare writes under (its base_uri, or one endpoint's copy of it)
    root: str
    pools: tuple[str, ...]
    #: objects per pool (tree: the tree's file count)
    count: int
    sampler: SizeSampler
    size_seed: int
    tree: TreeSpec | None = None
    #: object i lives on this root when i % parts == part (multi-endpoint prepare); 0 of 1 otherwise
    part: int = 0
    parts: int = 1
    #: `prepare.key_prefix_shards` (names under `{idx % N:02x}/`), None: flat
    shards: int | None = None

    def size_of(self, key: str, layout: TreeLayout | None = None) -> int | None:
        """The size of `key` (relative to `root`) when prepare declares it there, else None. `layout` is
        the tree's layout, passed by callers that keep it (building one costs more than this lookup)."""
        if self.tree is not None:
            index = parse_tree_file(key)
            if index is None or index >= self.count:
                return None
            if (layout or TreeLayout(self.tree)).file_path(index) != key:
                return None
        else:
            parsed = parse_prepared_path(key, self.shards)
            if parsed is None or parsed[0] not in self.pools or parsed[1] >= self.count:
                return None
            index = parsed[1]
        if index % self.parts != self.part:
            return None
        return self.sampler.size_for_index(index, self.size_seed)
