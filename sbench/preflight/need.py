"""How much a target must hold: the bytes and files that prepare and PUT ops will write there.

The need is kept as parts (count × mean size) rather than one byte total, because a file system allocates
whole blocks: 10,000 objects of 100 B take 40 MB on a 4 KiB-block file system, not 1 MB. Volumes the config
does not bound (PUTs without `io_rate`) are listed separately and never counted, so the free-space check can
say so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NeedPart:
    """`count` objects of about `mean_size` bytes, written by one part of the config."""

    label: str
    count: int
    mean_size: int

    @property
    def nbytes(self) -> int:
        return self.count * self.mean_size

    def on_disk(self, block_size: int) -> int:
        """Bytes once every object is rounded up to whole blocks (a 0-byte file still takes an inode only)."""
        if block_size <= 0 or self.mean_size == 0:
            return self.nbytes
        blocks = -(-self.mean_size // block_size)
        return self.count * blocks * block_size


@dataclass(frozen=True, slots=True)
class SpaceNeed:
    """Everything the run will write to one target, plus the writes nobody can size in advance."""

    parts: tuple[NeedPart, ...] = ()
    #: Human-readable notes for writes whose volume the config does not bound (e.g. PUTs in a closed loop).
    unbounded: tuple[str, ...] = field(default=())

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    @property
    def files(self) -> int:
        return sum(p.count for p in self.parts)

    def on_disk(self, block_size: int) -> int:
        return sum(p.on_disk(block_size) for p in self.parts)

    def describe(self) -> list[str]:
        return [
            f"{p.label}: {p.count:,} × {human_bytes(p.mean_size)} = {human_bytes(p.nbytes)}"
            for p in self.parts
        ]

    def plus(self, other: SpaceNeed) -> SpaceNeed:
        return SpaceNeed(self.parts + other.parts, self.unbounded + other.unbounded)


def human_bytes(n: float) -> str:
    """Binary units with 1 decimal (`1.5 GiB`), as the rest of sbench's console output."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"
