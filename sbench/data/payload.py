"""Object payloads cut from one pre-made buffer: nearly free per op, yet different for every object.

Design (reference §1.17, and the identical-payload bug of §7.2 not copied):
- One buffer per (fill, compress, seed) per process, shared by all generators and workers, built lazily from
  SHAKE-256 of the seed. SHAKE is an XOF: a longer buffer starts with the shorter one, so the buffer can grow
  for large objects without changing any byte of smaller ones, and the same seed rebuilds the same bytes in
  any process: a prepare retry regenerates identical objects (seed item 10).
- `compress_factor` N: every 4 KiB block of the buffer is 4096/N random bytes followed by zeros, so zlib (and
  any LZ compressor) sees about N:1 whatever the object's offset into the buffer.
- `dedup_factor` 1: the object is a zero-copy slice. Its offset is a golden-ratio (Weyl) sequence over the
  object id, so consecutive ids get well-spread, distinct, unaligned offsets: objects differ, and their 4 KiB
  blocks (hashed at object offsets, as dedup engines do) almost never equal another object's blocks.
- `dedup_factor` N > 1: the object is assembled from groups of N identical 4 KiB blocks (one copy per op,
  at memcpy speed); each group's block is a window of the buffer at a per-object unaligned offset, so about
  1/N of an object's blocks are unique and they are unique across objects too.
- Sizes: up to half the base buffer, slices of the base buffer; up to half of `max_buffer_size`, slices of a
  buffer grown to twice the next power of two (once); larger objects are tiled from chunks (one copy).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Literal, NamedTuple

from sbench.data.sizes import MASK64, mix64
from sbench.errors import ConfigError

Fill = Literal["zero", "random", "prand"]
FILLS: tuple[str, ...] = ("zero", "random", "prand")
BLOCK = 4096
DEFAULT_BUFFER_SIZE = 32 * 1024 * 1024
DEFAULT_MAX_BUFFER_SIZE = 256 * 1024 * 1024
WEYL_STEP = 0x9E3779B97F4A7C15

_buffers: dict[tuple[str, int, int], bytes] = {}
_buffers_lock = threading.Lock()


def _random_bytes(seed: int, salt: bytes, size: int) -> bytes:
    return hashlib.shake_256(salt + seed.to_bytes(8, "little")).digest(size)


def _build_buffer(fill: str, compress: int, seed: int, size: int) -> bytes:
    if fill == "zero":
        return bytes(size)
    if compress <= 1:
        return _random_bytes(seed, b"sbench-payload", size)
    nblocks = size // BLOCK
    keep = max(1, round(BLOCK / compress))
    noise = _random_bytes(seed, b"sbench-payload-c", nblocks * keep)
    buf = bytearray(size)
    for i in range(nblocks):
        buf[i * BLOCK : i * BLOCK + keep] = noise[i * keep : (i + 1) * keep]
    return bytes(buf)


def _shared_buffer(fill: str, compress: int, seed: int, size: int) -> bytes:
    """A buffer of at least `size` bytes, shared per process by generators with the same parameters."""
    key = (fill, compress if fill != "zero" else 1, seed if fill != "zero" else 0)
    buf = _buffers.get(key)
    if buf is None or len(buf) < size:
        with _buffers_lock:
            buf = _buffers.get(key)
            if buf is None or len(buf) < size:
                # Views handed out earlier keep the old buffer alive; its bytes are a prefix of the new one.
                buf = _build_buffer(*key, size)
                _buffers[key] = buf
    return buf


def _next_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


class SliceWindow(NamedTuple):
    """The object of id `i` at one size is `view[o : o + size]` with
    `o = ((((i * WEYL_STEP + seed_mix) & MASK64) * positions) >> 64)`: what `payload` computes, for a loop
    that inlines it."""

    view: memoryview
    positions: int
    seed_mix: int


class PayloadGenerator:
    """Bytes to PUT for an object. Thread-safe; call `payload(size, object_id)` from any worker."""

    __slots__ = (
        "_seed_mix",
        "_view",
        "buffer_size",
        "compress_factor",
        "dedup_factor",
        "fill",
        "max_buffer_size",
        "seed",
    )

    def __init__(
        self,
        fill: Fill = "random",
        dedup_factor: int = 1,
        compress_factor: int = 1,
        seed: int = 0,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE,
    ) -> None:
        if fill not in FILLS:
            raise ConfigError(f"fill: unknown pattern {fill!r}; use one of {', '.join(FILLS)}.")
        if dedup_factor < 1 or compress_factor < 1:
            raise ConfigError(
                f"dedup_factor and compress_factor must be >= 1 (got {dedup_factor} and {compress_factor})."
            )
        if buffer_size < 4 * BLOCK or buffer_size & (buffer_size - 1):
            raise ValueError(f"buffer_size must be a power of two of at least {4 * BLOCK}")
        self.fill = fill
        self.dedup_factor = dedup_factor
        self.compress_factor = compress_factor
        self.seed = seed & MASK64
        self.buffer_size = buffer_size
        self.max_buffer_size = max(buffer_size, _next_pow2(max_buffer_size))
        self._seed_mix = mix64(self.seed)
        self._view: memoryview | None = None

    def _buffer(self, size: int) -> memoryview:
        view = self._view
        if view is None or len(view) < size:
            buf = _shared_buffer(self.fill, self.compress_factor, self.seed, size)
            view = self._view = memoryview(buf)
        return view

    def _offset(self, key: int, size: int, span_size: int) -> int:
        """Weyl sequence: frac(key·φ) scaled onto the valid offsets [0, span_size - size]."""
        h = (key * WEYL_STEP + self._seed_mix) & MASK64
        return (h * (span_size - size + 1)) >> 64

    def payload(self, size: int, object_id: int) -> memoryview:
        """The bytes of object `object_id` at `size`; the same arguments always give the same bytes."""
        if size <= 0:
            return memoryview(b"")
        if self.fill == "zero":
            return (
                self._buffer(self.buffer_size)[:size] if size <= self.buffer_size else memoryview(bytes(size))
            )
        if self.dedup_factor > 1:
            return memoryview(self._deduped(size, object_id))
        span = self.buffer_size
        if size > span // 2:
            if size > self.max_buffer_size // 2:
                return memoryview(self._tiled(size, object_id))
            span = _next_pow2(2 * size)
        offset = self._offset(object_id, size, span)
        return self._buffer(span)[offset : offset + size]

    def slice_window(self, size: int) -> SliceWindow | None:
        """Where `payload(size, id)` comes from when it is a plain slice of the buffer (zero fill, or random
        and prand without dedup, up to half the buffer); None for the other cases."""
        if size <= 0 or size > self.buffer_size:
            return None
        if self.fill == "zero":
            return SliceWindow(self._buffer(self.buffer_size), 1, 0)
        if self.dedup_factor > 1 or size > self.buffer_size // 2:
            return None
        return SliceWindow(self._buffer(self.buffer_size), self.buffer_size - size + 1, self._seed_mix)

    def maker(self, size: int) -> Callable[[int], memoryview]:
        """`payload` for one fixed size, as a function of the object id alone: the same bytes, computed
        with everything that depends on the size done once. For the workload's fixed-size PUTs, where a
        method call and its branches per op are worth avoiding."""
        window = self.slice_window(size)
        if window is None:
            make = self.payload
            return lambda object_id: make(size, object_id)
        view, positions, seed_mix = window

        def sliced(object_id: int) -> memoryview:
            offset = (((object_id * WEYL_STEP + seed_mix) & MASK64) * positions) >> 64
            return view[offset : offset + size]

        return sliced

    def _tiled(self, size: int, object_id: int) -> bytes:
        span = self.max_buffer_size
        chunk = span // 4
        view = self._buffer(span)
        base = mix64(object_id ^ self._seed_mix)
        parts = []
        for n, start in enumerate(range(0, size, chunk)):
            length = min(chunk, size - start)
            offset = self._offset(base + n, length, span)
            parts.append(view[offset : offset + length])
        return b"".join(parts)

    def _deduped(self, size: int, object_id: int) -> bytes:
        # Group g (N consecutive blocks) repeats one window; consecutive groups take consecutive windows from
        # a per-object unaligned start, re-drawn whenever the run would leave the buffer.
        n = self.dedup_factor
        nblocks = -(-size // BLOCK)
        ngroups = -(-nblocks // n)
        view = self._buffer(self.buffer_size)
        run = self.buffer_size // 2
        run_blocks = run // BLOCK
        key = object_id ^ 0xD5D5D5D5
        start = self._offset(key, run, self.buffer_size)
        parts: list[memoryview] = []
        for g in range(ngroups):
            local = g % run_blocks
            if g and local == 0:
                start = self._offset(mix64(key + g), run, self.buffer_size)
            offset = start + local * BLOCK
            parts.extend([view[offset : offset + BLOCK]] * n)
        data = b"".join(parts)
        return data if len(data) == size else data[:size]
