"""The service time of a null:// target, from its URI query: `?latency=200us` (fixed) or `&dist=exp|uniform`.

Syntax, the whole of it:

- `latency=D`: the mean time every storage call takes; D is a number with a unit, `ns`, `us` (or `µs`), `ms`
  or `s` (`200us`, `1.5ms`, `0.002s`); a bare number is seconds. At most 500 ms (see below); 0 is no sleep.
- `dist=fixed|uniform|exp` (default `fixed`): `fixed`, every call takes D; `uniform`, a time drawn evenly
  from [0, 2D]; `exp`, an exponential time of mean D (a server with queueing); every draw is capped at 500 ms.

No other key is accepted, and each key at most once: a misspelt key would otherwise quietly run with no
latency. Every drawn time is at most `MAX_SERVICE_S`, shorter than the 0.9 s the engine gives calls in
flight after a stop, so a stage stop or Ctrl-C never waits for a null call and never abandons one.

The sleep releases the interpreter lock (`time.sleep`, `asyncio.sleep`), so sleeping workers cost the
others nothing. Linux lets a timed sleep end up to the thread's timer slack late (50 µs by default: a
200 µs sleep took 259 µs at the median here), so the first sleep of each thread sets its slack to 1 ns
(prctl PR_SET_TIMERSLACK; 204 µs then). On asyncio workers the event loop wakes timers with 1 ms
resolution when nothing else is ready (epoll), so sub-millisecond latencies come out longer there; the
recorded latencies show it.
"""

from __future__ import annotations

import asyncio
import ctypes
import random
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sbench.errors import ConfigError

#: the longest one call may sleep: below the engine's grace for calls in flight at a stop (bounded.GRACE_S)
MAX_SERVICE_S = 0.5
DISTRIBUTIONS = ("fixed", "uniform", "exp")
KEYS = ("latency", "dist")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0}
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|)$")
#: prctl(2) option that sets the calling thread's timer slack, in ns
_PR_SET_TIMERSLACK = 29
_PRCTL = ctypes.CDLL(None).prctl if sys.platform == "linux" else None
_THREAD = threading.local()


def _tighten() -> None:
    """Set this thread's timer slack to 1 ns, once per thread (see the module docstring)."""
    _THREAD.tight = True
    if _PRCTL is not None:
        _PRCTL(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """How long each call of a null:// backend takes: `mean_s` seconds, drawn per `dist`."""

    mean_s: float = 0.0
    dist: str = "fixed"

    @property
    def sleeps(self) -> bool:
        return self.mean_s > 0

    def sampler(self, rng: random.Random | None = None) -> Callable[[], float]:
        """A function drawing one call's time in seconds (never above MAX_SERVICE_S)."""
        mean = self.mean_s
        rng = rng or random.Random()
        if self.dist == "uniform":
            uniform = rng.uniform
            return lambda: min(uniform(0.0, 2 * mean), MAX_SERVICE_S)
        if self.dist == "exp":
            expo, rate = rng.expovariate, 1.0 / mean
            return lambda: min(expo(rate), MAX_SERVICE_S)
        return lambda: mean

    def pause(self) -> Callable[[], None]:
        """A function that sleeps one drawn service time on the calling thread (for thread workers)."""
        draw, sleep, thread = self.sampler(), time.sleep, _THREAD

        def pause() -> None:
            if not thread.__dict__:
                _tighten()
            sleep(draw())

        return pause

    def apause(self) -> Callable[[], Awaitable[None]]:
        """A coroutine function that awaits one drawn service time (for asyncio workers)."""
        draw, sleep, thread = self.sampler(), asyncio.sleep, _THREAD

        async def apause() -> None:
            if not thread.__dict__:
                _tighten()
            await sleep(draw())

        return apause

    def describe(self) -> str:
        """`200 µs per call (fixed)`, or `no service time` (for the dry run and preflight)."""
        if not self.sleeps:
            return "no service time (calls return at once)"
        shown = f"{self.mean_s * 1e6:g} µs" if self.mean_s < 1e-3 else f"{self.mean_s * 1e3:g} ms"
        what = {"fixed": "fixed", "uniform": "uniform in [0, 2x]", "exp": "exponential"}[self.dist]
        return f"{shown} per call ({what})"


def parse_service_time(query: str, uri: str) -> ServiceTime:
    """The ServiceTime of a null:// URI's query (without the `?`); ConfigError naming the key and value."""
    values: dict[str, str] = {}
    for part in query.split("&") if query else []:
        name, sep, value = part.partition("=")
        if name not in KEYS:
            raise ConfigError(
                f"Storage URI {uri!r}: unknown null:// parameter {name!r}.",
                hint=f"null:// takes {' and '.join(KEYS)}, e.g. null:///bench/?latency=200us&dist=exp.",
            )
        if not sep or not value:
            raise ConfigError(f"Storage URI {uri!r}: null:// parameter {name!r} has no value.",
                              hint="Write it as name=value, e.g. latency=200us.")
        if name in values:
            raise ConfigError(f"Storage URI {uri!r}: null:// parameter {name!r} is given twice.")
        values[name] = value
    dist = values.get("dist", "fixed")
    if dist not in DISTRIBUTIONS:
        raise ConfigError(
            f"Storage URI {uri!r}: dist={dist!r} is not a known distribution.",
            hint=f"Use one of {', '.join(DISTRIBUTIONS)}.",
        )
    if "latency" not in values:
        if "dist" in values:
            raise ConfigError(f"Storage URI {uri!r}: dist={dist} needs a latency (its mean), e.g. "
                              f"latency=200us&dist={dist}.")
        return ServiceTime()
    return ServiceTime(_duration(values["latency"], uri), dist)


def _duration(text: str, uri: str) -> float:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(
            f"Storage URI {uri!r}: latency={text!r} is not a duration.",
            hint="Write a number with a unit, ns, us, ms or s (latency=200us); a bare number is seconds.",
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_SERVICE_S:
        raise ConfigError(
            f"Storage URI {uri!r}: latency={text} is above the {MAX_SERVICE_S * 1e3:g} ms a null:// call may "
            f"take (longer calls would outlive a stop's grace period).",
            hint="Use a latency of at most 500ms.",
        )
    return seconds
