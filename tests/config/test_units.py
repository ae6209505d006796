"""Unit parsers: humantime durations, decimal vs binary sizes, counts with thousand separators."""

from __future__ import annotations

import pytest

from sbench.config.units import format_duration, format_size, parse_count, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h 30m", 5400.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        ("10 sec", 10.0),
        ("250us", 0.00025),
        ("30", 30.0),
        (30, 30.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_duration_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "fast", "5 parsecs", "1h 30", "-5s", -1, True, [1], "s30"])
def test_duration_rejects_garbage(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("1KB", 1000),
        ("1kb", 1000),
        ("1K", 1000),
        ("1KiB", 1024),
        ("1kib", 1024),
        ("64MiB", 64 * 2**20),
        ("64 MiB", 64 * 2**20),
        ("1.5GB", 1_500_000_000),
        ("1.5GiB", 3 * 2**29),
        ("2TB", 2 * 10**12),
        ("1Ti", 2**40),
        ("1,048,576", 1_048_576),
        (1048576.0, 1048576),
    ],
)
def test_size_forms(text: object, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("bad", ["big", "1.5XB", "MiB", "-1KiB", -5, 1.5, True])
def test_size_rejects_garbage(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("64,032,768", 64_032_768),
        ("64_032_768", 64_032_768),
        ("64 032 768", 64_032_768),
        ("64032768", 64_032_768),
        (64032768, 64_032_768),
        ("-1", -1),
        ("1,000", 1000),
    ],
)
def test_count_separators(text: object, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize("bad", ["1,00", "64,032_768", "1.5", "ten", 2.5, False, "1,0000"])
def test_count_rejects_garbage(bad: object) -> None:
    with pytest.raises(ValueError, match="count"):
        parse_count(bad)


def test_formatters_echo_user_units() -> None:
    assert format_duration(5400) == "1h 30m"
    assert format_duration(0.5) == "500ms"
    assert format_duration(90061) == "1d 1h 1m 1s"
    assert format_size(1536) == "1.50 KiB"
    assert format_size(100) == "100 B"
