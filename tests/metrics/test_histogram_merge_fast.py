"""LatencyHistogram.add_encoded (the coordinator's merge path) equals hdrh's own decode_and_add."""

from __future__ import annotations

import base64
import random
from ctypes import c_uint64

import pytest
from hdrh.codec import HdrCookieException
from hdrh.histogram import HdrHistogram

from sbench.metrics.hdrwire import add_body, payload
from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS, LatencyHistogram


def test_adding_encoded_histograms_equals_hdrh() -> None:
    rng = random.Random(11)
    ours = LatencyHistogram()
    theirs = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for _ in range(30):
        part = LatencyHistogram()
        for _ in range(rng.randrange(0, 400)):
            part.record_us(int(rng.lognormvariate(6, 2)) + rng.choice([0, 0, 5_000_000_000]))
        data = part.encode()
        ours.add_encoded(data)
        if data:
            theirs.decode_and_add(data)
    assert ours.count == theirs.get_total_count() > 0
    assert list(ours._h.counts) == list(theirs.counts)
    assert (ours.min, ours.max) == (theirs.get_min_value(), theirs.get_max_value())
    pcts = [0.0, 50.0, 99.0, 99.9, 100.0]
    assert ours.percentiles(pcts) == [theirs.get_value_at_percentile(p) for p in pcts]


def test_a_histogram_of_another_layout_is_added_value_by_value() -> None:
    other = HdrHistogram(1, 60_000_000, 2)
    for value in (10, 1_000, 50_000):
        other.record_value(value)
    ours = LatencyHistogram()
    ours.add_encoded(other.encode())
    theirs = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    theirs.decode_and_add(other.encode())
    assert ours.count == 3 and list(ours._h.counts) == list(theirs.counts)


def test_a_corrupt_histogram_leaves_the_reused_scratch_clean() -> None:
    """add_encoded decodes into one scratch array per thread: a body that fails half-way must not leak its
    slots into the next histogram added."""
    part = LatencyHistogram()
    for value in (100, 2_000, 70_000):
        part.record_us(value)
    _, body = payload(part.encode())
    target = (c_uint64 * len(part._h.counts))()
    with pytest.raises(ValueError):  # pyhdrh: "Zigzag varint decoding error"
        add_body(target, body[:-2] + b"\xff\xff")
    ours = LatencyHistogram()
    ours.add_encoded(part.encode())
    assert list(ours._h.counts) == list(part._h.counts)


def test_a_foreign_payload_is_refused() -> None:
    with pytest.raises(HdrCookieException):
        payload(base64.b64encode(b"\x00" * 40))
