"""Unit parsing for YAML values: humantime durations, size strings and counts with thousand separators.

sai3-bench accepted units only on some fields (§1.3 of the reference); sbench accepts them on every duration,
size and count field, so one parser per unit kind is used everywhere and the error text is the same for all.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

# humantime unit spellings (humantime::parse_duration) mapped to seconds.
_DURATION_UNITS: dict[str, float] = {}
for _names, _secs in (
    (("nsec", "ns"), 1e-9),
    (("usec", "us", "µs"), 1e-6),
    (("msec", "ms"), 1e-3),
    (("seconds", "second", "secs", "sec", "s"), 1.0),
    (("minutes", "minute", "mins", "min", "m"), 60.0),
    (("hours", "hour", "hrs", "hr", "h"), 3600.0),
    (("days", "day", "d"), 86400.0),
    (("weeks", "week", "w"), 604800.0),
    (("months", "month", "M"), 2_630_016.0),  # humantime: 30.44 days
    (("years", "year", "y"), 31_557_600.0),  # humantime: 365.25 days
):
    for _name in _names:
        _DURATION_UNITS[_name] = _secs

_DURATION_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Zµ]+)")
_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")

_DECIMAL = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "p": 10**15,
    "pb": 10**15,
}
_BINARY = {
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
    "pi": 2**50,
    "pib": 2**50,
}
_SIZE_UNITS = {**_DECIMAL, **_BINARY}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_COUNT = re.compile(r"^\s*\d{1,3}(?:([,_ ])\d{3})*\s*$|^\s*\d+\s*$")

DURATION_HELP = 'use a number of seconds or a humantime string such as "30s", "5m", "1h 30m", "500ms" or "2d"'
SIZE_HELP = 'use a number of bytes or a size string such as "4096", "64KiB", "1.5GB" or "1MiB"'
COUNT_HELP = 'use a whole number, optionally with thousand separators: 64032768, "64,032,768" or "64_032_768"'


def parse_duration(value: Any) -> float:
    """Seconds from a number or a humantime string; sai3 mixed three duration formats, sbench takes all."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {DURATION_HELP}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value)
    else:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HELP}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a valid duration (it must be zero or positive); {DURATION_HELP}")
    return seconds


def _parse_duration_text(text: str) -> float:
    if _NUMBER.match(text):
        return float(text)
    pos, total, stripped = 0, 0.0, text.strip()
    if not stripped:
        raise ValueError(f"{text!r} is not a duration; {DURATION_HELP}")
    while pos < len(stripped):
        match = _DURATION_TOKEN.match(stripped, pos)
        if not match or match.group(2) not in _DURATION_UNITS:
            raise ValueError(f"{text!r} is not a duration; {DURATION_HELP}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
        while pos < len(stripped) and stripped[pos] == " ":
            pos += 1
    return total


def parse_size(value: Any) -> int:
    """Bytes from an integer or a size string: K/KB/M/MB… are powers of 10, Ki/KiB/Mi/MiB… powers of 2."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; {SIZE_HELP}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number of bytes; {SIZE_HELP}")
        size = int(value)
    elif isinstance(value, str):
        size = _parse_size_text(value)
    else:
        raise ValueError(f"{value!r} is not a size; {SIZE_HELP}")
    if size < 0:
        raise ValueError(f"{value!r} is negative; a size must be zero or more bytes")
    return size


def _parse_size_text(text: str) -> int:
    cleaned = text.strip()
    if _COUNT.match(cleaned):
        return parse_count(cleaned)
    match = _SIZE.match(cleaned)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size; {SIZE_HELP}")
    mantissa = float(match.group(1))
    return round(mantissa * _SIZE_UNITS[unit])


def parse_count(value: Any) -> int:
    """A whole number; strings may group thousands with one of `,` `_` or a space (sai3 serde_helpers)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count; {COUNT_HELP}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        negative = text.startswith("-")
        body = text[1:] if negative else text
        match = _COUNT.match(body)
        if match and (match.group(1) is None or all(c in (match.group(1), *"0123456789") for c in body)):
            number = int(re.sub(r"[,_ ]", "", body))
            return -number if negative else number
    raise ValueError(f"{value!r} is not a count; {COUNT_HELP}")


def format_size(nbytes: int | float) -> str:
    """Human size with binary units, for summaries (exact bytes stay in the machine-readable outputs)."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} PiB"


def format_duration(seconds: float) -> str:
    """Compact humantime-like rendering (`1h 30m`, `500ms`) so summaries echo what users write."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts, rest = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return " ".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Count = Annotated[int, BeforeValidator(parse_count)]


def _show(kind: str, value: float) -> str:
    if kind == "count":
        return f"{int(value):,}"
    if kind == "size":
        return f"{format_size(value)} ({int(value):,} bytes)"
    if kind == "rate":
        return f"{value:,.0f} ops/s" if value >= 1 else f"{value:g} ops/s"
    if kind == "number":
        return f"{value:g}"
    return format_duration(value) if value >= 1e-3 else f"{value:g} s"


class Limit:
    """A sanity bound on one kind of value, with the reason users read when they cross it.

    Used as a pydantic AfterValidator: the loader turns the ValueError into `file:line: key: message`, so the
    message names the key (by its position), the value given, the bound and why the bound exists.
    """

    __slots__ = ("bound", "kind", "maximum", "why")

    def __init__(self, bound: float, why: str, *, kind: str = "count", maximum: bool = True) -> None:
        self.bound = bound
        self.why = why
        self.kind = kind
        self.maximum = maximum

    def __call__(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if self.maximum and value > self.bound:
            shown, bound = _show(self.kind, value), _show(self.kind, self.bound)
            raise ValueError(f"{shown} is above the limit of {bound} ({self.why}); use a smaller value")
        if not self.maximum and value < self.bound:
            raise ValueError(
                f"{_show(self.kind, value)} is below the minimum of {_show(self.kind, self.bound)} "
                f"({self.why}); use a larger value"
            )
        return value
