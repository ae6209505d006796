"""Object payloads cut from one pre-made buffer: nearly free per op, yet different for every object.

Design (reference §1.17 and the bugs of §7.2 not copied):
- One buffer per (fill, dedup, compress, seed) per process, built lazily from SHAKE-256 of the seed, so the
  same seed rebuilds the same bytes in any process: a prepare retry regenerates identical objects.
- `compress_factor` N: every 4 KiB block of the buffer is 4096/N random bytes followed by zeros, so zlib (and
  any LZ compressor) sees about N:1 whatever the object's offset into the buffer.
- `dedup_factor` 1: the object is a zero-copy slice at a per-object offset drawn from hash(seed, object_id).
  Offsets are not 4 KiB aligned, so the object's 4 KiB blocks (hashed at object offsets, as dedup engines do)
  almost never equal another object's blocks.
- `dedup_factor` N > 1: the object is assembled from groups of N identical 4 KiB blocks (one copy per op,
  at memcpy speed); each group's block is a window of the buffer at a per-object unaligned offset, so about
  1/N of an object's blocks are unique and they are unique across objects too.
- Objects larger than half the buffer are tiled from chunks at per-chunk offsets (one copy).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Literal

from sbench.data.sizes import MASK64, index_hash, mix64
from sbench.errors import ConfigError

Fill = Literal["zero", "random", "prand"]
FILLS: tuple[str, ...] = ("zero", "random", "prand")
BLOCK = 4096
DEFAULT_BUFFER_SIZE = 32 * 1024 * 1024

_buffers: dict[tuple[str, int, int, int], bytes] = {}
_buffers_lock = threading.Lock()


def _random_bytes(seed: int, salt: bytes, size: int) -> bytes:
    return hashlib.shake_256(salt + (seed & MASK64).to_bytes(8, "little")).digest(size)


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
    """Buffers are shared by every generator of a process with the same parameters (workers, retries)."""
    key = (fill, compress if fill != "zero" else 1, seed if fill != "zero" else 0, size)
    buf = _buffers.get(key)
    if buf is None:
        with _buffers_lock:
            buf = _buffers.get(key)
            if buf is None:
                buf = _build_buffer(*key)
                _buffers[key] = buf
    return buf


class PayloadGenerator:
    """Bytes to PUT for an object. Thread-safe; call `payload(size, object_id)` from any worker."""

    __slots__ = ("_buf", "_view", "buffer_size", "compress_factor", "dedup_factor", "fill", "seed")

    def __init__(
        self,
        fill: Fill = "random",
        dedup_factor: int = 1,
        compress_factor: int = 1,
        seed: int = 0,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        if fill not in FILLS:
            raise ConfigError(f"fill: unknown pattern {fill!r}; use one of {', '.join(FILLS)}.")
        if dedup_factor < 1 or compress_factor < 1:
            raise ConfigError(
                f"dedup_factor and compress_factor must be >= 1 (got {dedup_factor} and {compress_factor})."
            )
        if buffer_size < 4 * BLOCK or buffer_size % BLOCK:
            raise ValueError(f"buffer_size must be a multiple of {BLOCK} and at least {4 * BLOCK}")
        self.fill = fill
        self.dedup_factor = dedup_factor
        self.compress_factor = compress_factor
        self.seed = seed & MASK64
        self.buffer_size = buffer_size
        self._buf: bytes | None = None
        self._view: memoryview | None = None

    def _buffer_view(self) -> memoryview:
        view = self._view
        if view is None:
            self._buf = _shared_buffer(self.fill, self.compress_factor, self.seed, self.buffer_size)
            view = self._view = memoryview(self._buf)
        return view

    def payload(self, size: int, object_id: int) -> memoryview:
        """The bytes of object `object_id` at `size`; the same arguments always give the same bytes."""
        if size <= 0:
            return memoryview(b"")
        view = self._buffer_view()
        if self.fill == "zero":
            return view[:size] if size <= self.buffer_size else memoryview(bytes(size))
        if self.dedup_factor > 1:
            return memoryview(self._deduped(view, size, object_id))
        if size <= self.buffer_size // 2:
            offset = index_hash(self.seed, object_id) % (self.buffer_size - size + 1)
            return view[offset : offset + size]
        return memoryview(self._tiled(view, size, object_id))

    def _window(self, key: int, length: int) -> int:
        return key % (self.buffer_size - length + 1)

    def _tiled(self, view: memoryview, size: int, object_id: int) -> bytes:
        chunk = self.buffer_size // 4
        base = index_hash(self.seed, object_id)
        parts = []
        for n, start in enumerate(range(0, size, chunk)):
            length = min(chunk, size - start)
            offset = self._window(mix64(base + n), length)
            parts.append(view[offset : offset + length])
        return b"".join(parts)

    def _deduped(self, view: memoryview, size: int, object_id: int) -> bytes:
        # Group g (N consecutive blocks) repeats one window; consecutive groups take consecutive windows from
        # a per-object unaligned start, re-drawn whenever the run would leave the buffer.
        n = self.dedup_factor
        nblocks = -(-size // BLOCK)
        ngroups = -(-nblocks // n)
        base = index_hash(self.seed ^ 0xD5D5, object_id)
        parts: list[memoryview] = []
        span = self.buffer_size // 2
        start = self._window(base, span)
        for g in range(ngroups):
            local = g % (span // BLOCK)
            if g and local == 0:
                start = self._window(mix64(base + g), span)
            offset = start + local * BLOCK
            block = view[offset : offset + BLOCK]
            parts.extend([block] * n)
        data = b"".join(parts)
        return data if len(data) == size else data[:size]
