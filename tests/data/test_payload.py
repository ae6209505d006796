"""Payload generator: ratios measured with zlib and 4 KiB block hashes, per-object uniqueness, determinism."""

from __future__ import annotations

import hashlib
import zlib

import pytest

from sbench.data.payload import BLOCK, PayloadGenerator, _build_buffer
from sbench.errors import ConfigError

SMALL_BUFFER = 4 * 1024 * 1024


def _blocks(data: bytes) -> list[bytes]:
    return [hashlib.blake2b(data[i : i + BLOCK], digest_size=16).digest() for i in range(0, len(data), BLOCK)]


def _measure(gen: PayloadGenerator, objects: int, size: int) -> tuple[float, float]:
    """(unique block share over all objects, zlib compression ratio)."""
    hashes: list[bytes] = []
    raw = packed = 0
    for oid in range(objects):
        data = bytes(gen.payload(size, oid))
        assert len(data) == size
        hashes.extend(_blocks(data))
        raw += len(data)
        packed += len(zlib.compress(data, 6))
    return len(set(hashes)) / len(hashes), raw / packed


def test_random_is_unique_and_incompressible() -> None:
    gen = PayloadGenerator("random", 1, 1, seed=3, buffer_size=SMALL_BUFFER)
    unique, ratio = _measure(gen, 40, 256 * 1024)
    assert unique == 1.0
    assert ratio < 1.01


def test_dedup_4_gives_a_quarter_unique_blocks() -> None:
    gen = PayloadGenerator("random", 4, 1, seed=3, buffer_size=SMALL_BUFFER)
    unique, _ = _measure(gen, 40, 256 * 1024)
    assert unique == pytest.approx(0.25, rel=0.10)


def test_compress_3_gives_3_to_1() -> None:
    gen = PayloadGenerator("random", 1, 3, seed=3, buffer_size=SMALL_BUFFER)
    unique, ratio = _measure(gen, 40, 256 * 1024)
    assert ratio == pytest.approx(3.0, rel=0.10)
    assert unique == 1.0


def test_dedup_and_compress_together() -> None:
    gen = PayloadGenerator("prand", 4, 3, seed=3, buffer_size=SMALL_BUFFER)
    unique, _ = _measure(gen, 20, 256 * 1024)
    assert unique == pytest.approx(0.25, rel=0.10)
    # Each unique block alone still compresses about 3:1.
    block = bytes(gen.payload(BLOCK, 5))
    assert len(block) / len(zlib.compress(block, 6)) == pytest.approx(3.0, rel=0.10)


def test_objects_differ_and_repeat_identically() -> None:
    gen = PayloadGenerator("random", 1, 1, seed=11, buffer_size=SMALL_BUFFER)
    first = [bytes(gen.payload(8192, oid)) for oid in range(100)]
    assert len(set(first)) == 100
    again = PayloadGenerator("random", 1, 1, seed=11, buffer_size=SMALL_BUFFER)
    assert [bytes(again.payload(8192, oid)) for oid in range(100)] == first
    other_seed = PayloadGenerator("random", 1, 1, seed=12, buffer_size=SMALL_BUFFER)
    assert bytes(other_seed.payload(8192, 0)) != first[0]


@pytest.mark.parametrize(("dedup", "compress"), [(1, 1), (4, 1), (1, 3), (4, 3)])
def test_retry_regenerates_identical_bytes(dedup: int, compress: int) -> None:
    """Seed item 10: a prepare retry with the same (object_id, fill, dedup, compress) rebuilds the object."""
    size = 300_000
    a = PayloadGenerator("random", dedup, compress, seed=77, buffer_size=SMALL_BUFFER)
    b = PayloadGenerator("random", dedup, compress, seed=77, buffer_size=SMALL_BUFFER)
    assert bytes(a.payload(size, 1234)) == bytes(b.payload(size, 1234))


def test_objects_larger_than_the_max_buffer_are_tiled_and_unique() -> None:
    gen = PayloadGenerator("random", 1, 1, seed=5, buffer_size=1 << 20, max_buffer_size=2 << 20)
    size = 3 * 1024 * 1024 + 123
    a, b = bytes(gen.payload(size, 1)), bytes(gen.payload(size, 2))
    assert len(a) == len(b) == size
    hashes = _blocks(a) + _blocks(b)
    assert len(set(hashes)) == len(hashes)
    assert bytes(gen.payload(size, 1)) == a


def test_growing_the_buffer_keeps_earlier_objects_identical() -> None:
    gen = PayloadGenerator("random", 1, 3, seed=8, buffer_size=1 << 20, max_buffer_size=64 << 20)
    before = bytes(gen.payload(5000, 42))
    big = gen.payload(3 << 20, 43)  # needs a larger buffer: zero-copy slice of the grown one
    assert isinstance(big, memoryview)
    assert len(big) == 3 << 20
    fresh = PayloadGenerator("random", 1, 3, seed=8, buffer_size=1 << 20, max_buffer_size=64 << 20)
    assert bytes(gen.payload(5000, 42)) == before == bytes(fresh.payload(5000, 42))


def test_consecutive_ids_get_distinct_offsets() -> None:
    gen = PayloadGenerator("random", 1, 1, seed=9, buffer_size=SMALL_BUFFER)
    heads = {bytes(gen.payload(64, oid)) for oid in range(50_000)}
    assert len(heads) == 50_000


def test_large_dedup_objects_keep_the_ratio() -> None:
    gen = PayloadGenerator("random", 2, 1, seed=5, buffer_size=1024 * 1024)
    unique, _ = _measure(gen, 2, 3 * 1024 * 1024)
    assert unique == pytest.approx(0.5, rel=0.05)


def test_zero_fill() -> None:
    gen = PayloadGenerator("zero", 1, 1, seed=1, buffer_size=SMALL_BUFFER)
    assert bytes(gen.payload(10_000, 3)) == bytes(10_000)
    assert bytes(gen.payload(SMALL_BUFFER + 5, 3)) == bytes(SMALL_BUFFER + 5)
    assert len(gen.payload(0, 3)) == 0


def test_small_payloads_are_zero_copy_views() -> None:
    gen = PayloadGenerator("random", 1, 1, seed=1, buffer_size=SMALL_BUFFER)
    view = gen.payload(4096, 1)
    assert isinstance(view, memoryview)
    assert view.obj is gen.payload(4096, 2).obj


@pytest.mark.parametrize(
    ("fill", "dedup", "size"),
    [("random", 1, 4096), ("prand", 1, 100_000), ("zero", 1, 4096), ("random", 4, 65536), ("random", 1, 0)],
)
def test_maker_gives_the_same_bytes_as_payload(fill: str, dedup: int, size: int) -> None:
    gen = PayloadGenerator(fill, dedup, 1, seed=11)  # type: ignore[arg-type]
    make = gen.maker(size)
    for object_id in (0, 1, 2, (3 << 40) | 17, 2**63 - 1):
        assert bytes(make(object_id)) == bytes(gen.payload(size, object_id))


def test_invalid_parameters() -> None:
    with pytest.raises(ConfigError, match="fill"):
        PayloadGenerator("ones", 1, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dedup_factor"):
        PayloadGenerator("random", 0, 1, 0)


@pytest.mark.parametrize("compress", [1, 3])
def test_a_longer_buffer_starts_with_the_shorter_one(compress: int) -> None:
    """What makes growth and cross-process rebuilds byte-identical."""
    short = _build_buffer("random", compress, 8, 1 << 20)
    assert _build_buffer("random", compress, 8, 4 << 20)[: 1 << 20] == short
    assert _build_buffer("random", compress, 9, 1 << 20) != short
