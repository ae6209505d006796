"""Adding an encoded HDR histogram's counts into a counts array, without hdrh's per-decode objects.

A coordinator merges a thousand agents' intervals a second, four histograms each: `add_encoded` is its
hottest path. hdrh's decoder allocates a fresh 23,552-slot counts array (188 KB) per histogram and adds it
with a C routine that walks the used range slowly; here every histogram is decoded into one reused scratch
array per thread (hdrh's own C varint decoder), added with numpy over the slots in use, and the scratch is
zeroed again over that range only. About 40% cheaper per histogram, the same counts (tests).
"""

from __future__ import annotations

import base64
import threading
import zlib
from ctypes import addressof, c_uint64
from typing import Any, NamedTuple

from hdrh.codec import (
    V2_COMPRESSION_COOKIE_BASE,
    V2_ENCODING_COOKIE_BASE,
    ExternalHeader,
    HdrCookieException,
    HdrLengthException,
    PayloadHeader,
    ext_header_size,
    get_cookie_base,
    payload_header_size,
)
from pyhdrh import decode


class Added(NamedTuple):
    """What one histogram contributed: its count and the first and last counts slot it used."""

    total: int
    first: int
    last: int


class _Scratch(threading.local):
    """A zeroed counts array per thread (the varint decoder writes only a histogram's non-zero slots)."""

    def __init__(self) -> None:
        self.size = 0
        self.counts: Any = None
        self.view: Any = None

    def of(self, size: int) -> tuple[Any, Any]:
        if self.size != size:
            import numpy as np  # imported by the first merge, not by every `sbench` command

            self.counts = (c_uint64 * size)()
            self.view = np.ctypeslib.as_array(self.counts)
            self.size = size
        return self.counts, self.view


_scratch = _Scratch()


def payload(data: bytes) -> tuple[PayloadHeader, bytes]:
    """The header (layout, word size) and the decompressed body of an `encode()`d histogram, checked as
    hdrh's `HdrHistogramEncoder.decode` checks them."""
    raw = base64.b64decode(data)
    if len(raw) < ext_header_size:
        raise HdrLengthException("Base64 decoded message too short")
    outer = ExternalHeader.from_buffer_copy(raw)
    if get_cookie_base(outer.cookie) != V2_COMPRESSION_COOKIE_BASE:
        raise HdrCookieException()
    if outer.length != len(raw) - ext_header_size:
        raise HdrLengthException(f"Decoded length={outer.length} buffer length={len(raw) - ext_header_size}")
    body = zlib.decompress(raw[ext_header_size:])
    if len(body) < payload_header_size:
        raise HdrLengthException(f"Invalid size:{len(body)}")
    header = PayloadHeader.from_buffer_copy(body)
    if get_cookie_base(header.cookie) != V2_ENCODING_COOKIE_BASE:
        raise HdrCookieException(f"Invalid cookie: {header.cookie:x}")
    return header, body


def add_body(counts: Any, body: bytes) -> Added:
    """Add the varint-encoded counts of a decompressed body (from `payload`) into `counts`, a ctypes array
    of 64-bit counters of the histogram's layout."""
    size = len(counts)
    scratch, view = _scratch.of(size)
    try:
        found = decode(body, payload_header_size, addressof(scratch), size, 8)
    except BaseException:  # a corrupt body may have written some slots: the next decode needs zeros
        view[:] = 0
        raise
    if not found["total"]:
        return Added(0, 0, 0)
    first, last = found["min_nonzero_index"], found["max_nonzero_index"]
    import numpy as np  # already loaded by `_scratch.of`

    target = np.ctypeslib.as_array(counts)
    target[first : last + 1] += view[first : last + 1]
    view[first : last + 1] = 0
    return Added(found["total"], first, last)
