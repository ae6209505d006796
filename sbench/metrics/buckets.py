"""sai3-bench's op classes and nine size buckets (reference §2.4); result files are keyed by them."""

from __future__ import annotations

from enum import IntEnum


class OpClass(IntEnum):
    """The three classes results are reported in; LIST/STAT/DELETE/MKDIR/RMDIR are all META."""

    GET = 0
    PUT = 1
    META = 2

    @property
    def label(self) -> str:
        return self.name

    @property
    def aggregate_bucket_idx(self) -> int:
        """The pseudo bucket index of the `ALL` row in results TSVs (META=97, GET=98, PUT=99)."""
        return {OpClass.META: 97, OpClass.GET: 98, OpClass.PUT: 99}[self]


NUM_BUCKETS = 9
BUCKET_LABELS = (
    "zero",
    "1B-8KiB",
    "8KiB-64KiB",
    "64KiB-512KiB",
    "512KiB-4MiB",
    "4MiB-32MiB",
    "32MiB-256MiB",
    "256MiB-2GiB",
    ">2GiB",
)
BUCKET_UPPER_BOUNDS = (0, 8_192, 65_536, 524_288, 4_194_304, 33_554_432, 268_435_456, 2_147_483_648)


def bucket_index(nbytes: int) -> int:
    """Bucket of an op moving `nbytes` (upper bounds inclusive, as in sai3-bench)."""
    for idx, bound in enumerate(BUCKET_UPPER_BOUNDS):
        if nbytes <= bound:
            return idx
    return NUM_BUCKETS - 1
