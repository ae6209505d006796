"""Object size distributions with sai3-bench semantics (reference §1.4).

Two ways to draw: `sample(rng)` for workload PUTs (one seeded `random.Random` per worker, so every PUT gets
its own size, unlike sai3 §7.1), and `size_for_index(index, seed)` for prepare, a pure function of
(seed, index), so an interrupted prepare that runs again recreates the same sizes without storing them.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from sbench.errors import ConfigError

MASK64 = (1 << 64) - 1
U64_MAX = MASK64
_GOLDEN = 0x9E3779B97F4A7C15
_INV_2_53 = 1.0 / (1 << 53)
_LOGNORMAL_TRIES = 100


def seed_for_uri(base_uri: str) -> int:
    """sai3's prepare seed: fold `acc*31+b` over the URI's UTF-8 bytes, wrapping at 64 bits."""
    acc = 0
    for b in base_uri.encode():
        acc = (acc * 31 + b) & MASK64
    return acc


def mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of an integer."""
    x = (x + _GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def index_hash(seed: int, index: int) -> int:
    """A 64-bit hash of (seed, index) used wherever a per-object deterministic choice is needed."""
    return mix64((seed & MASK64) ^ mix64(index & MASK64))


def _unit(h: int) -> float:
    """A float in [0, 1) from the top 53 bits of a 64-bit hash."""
    return (h >> 11) * _INV_2_53


class SizeSampler(ABC):
    """Draws object sizes in bytes."""

    kind: str

    @abstractmethod
    def sample(self, rng: random.Random) -> int:
        """One size from a caller-owned generator (workload PUTs)."""

    @abstractmethod
    def size_for_index(self, index: int, seed: int) -> int:
        """The size of prepared object `index`; the same (index, seed) always gives the same size."""

    @property
    @abstractmethod
    def mean_estimate(self) -> float:
        """Expected size, for capacity estimates (preflight disk space, dry-run totals)."""

    @property
    @abstractmethod
    def max_size(self) -> int:
        """The largest size this sampler can return."""


@dataclass(frozen=True, slots=True)
class FixedSampler(SizeSampler):
    value: int
    kind = "fixed"

    def sample(self, rng: random.Random) -> int:
        return self.value

    def size_for_index(self, index: int, seed: int) -> int:
        return self.value

    @property
    def mean_estimate(self) -> float:
        return float(self.value)

    @property
    def max_size(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class UniformSampler(SizeSampler):
    """Inclusive [min, max] as in sai3."""

    min: int
    max: int
    kind = "uniform"

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.min, self.max)

    def size_for_index(self, index: int, seed: int) -> int:
        span = self.max - self.min + 1
        # Multiply-shift instead of modulo: unbiased enough for any span below 2^40 and branch-free.
        return self.min + ((index_hash(seed, index) * span) >> 64)

    @property
    def mean_estimate(self) -> float:
        return (self.min + self.max) / 2

    @property
    def max_size(self) -> int:
        return self.max


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True, slots=True)
class LognormalSampler(SizeSampler):
    """`mean` and `std_dev` are linear-space, converted to the underlying normal's μ and σ like sai3."""

    mean: float
    std_dev: float
    min: int = 1
    max: int = U64_MAX
    kind = "lognormal"

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p((self.std_dev * self.std_dev) / (self.mean * self.mean)))

    @property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma**2 / 2

    def _accept(self, value: float) -> int | None:
        size = round(value)
        return size if self.min <= size <= self.max else None

    def _clamp(self, value: float) -> int:
        return max(self.min, min(self.max, round(value)))

    def sample(self, rng: random.Random) -> int:
        mu, sigma = self.mu, self.sigma
        value = 0.0
        for _ in range(_LOGNORMAL_TRIES):
            value = rng.lognormvariate(mu, sigma)
            size = self._accept(value)
            if size is not None:
                return size
        return self._clamp(value)

    def size_for_index(self, index: int, seed: int) -> int:
        # Box-Muller on successive hashes of (seed, index): no Random object per index, same result anywhere.
        mu, sigma = self.mu, self.sigma
        h = index_hash(seed, index)
        value = 0.0
        for _ in range(_LOGNORMAL_TRIES):
            h1 = mix64(h)
            h = mix64(h1)
            u1 = 1.0 - _unit(h1)  # (0, 1]: log() is defined
            z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * _unit(h))
            value = math.exp(mu + sigma * z)
            size = self._accept(value)
            if size is not None:
                return size
        return self._clamp(value)

    @property
    def mean_estimate(self) -> float:
        """Mean of the lognormal truncated to [min, max] (what rejection sampling converges to)."""
        mu, sigma = self.mu, self.sigma
        if sigma == 0.0:
            return float(self._clamp(self.mean))
        lo = math.log(max(self.min, 1e-300))
        hi = math.log(self.max)
        mass = _phi((hi - mu) / sigma) - _phi((lo - mu) / sigma)
        if mass <= 0.0:
            return float(self._clamp(self.mean))
        shifted = _phi((hi - mu - sigma**2) / sigma) - _phi((lo - mu - sigma**2) / sigma)
        return math.exp(mu + sigma**2 / 2) * shifted / mass

    @property
    def max_size(self) -> int:
        return self.max


def sampler_for(kind: str, **params: Any) -> SizeSampler:
    """Build a sampler: `fixed(value)`, `uniform(min, max)` or `lognormal(mean, std_dev, min=1, max=None)`.

    The config layer validates YAML first; these checks guard programmatic callers and name the bad field.
    """
    if kind == "fixed":
        value = int(params["value"])
        if value < 0:
            raise ConfigError(f"size_spec: a fixed size must not be negative (got {value}).")
        return FixedSampler(value)
    if kind == "uniform":
        lo, hi = int(params["min"]), int(params["max"])
        if lo < 0 or lo > hi:
            raise ConfigError(f"size_spec uniform: needs 0 <= min <= max (got min={lo}, max={hi}).")
        return UniformSampler(lo, hi)
    if kind == "lognormal":
        mean, std_dev = float(params["mean"]), float(params["std_dev"])
        lo = int(params.get("min") if params.get("min") is not None else 1)
        hi_param = params.get("max")
        hi = int(hi_param) if hi_param is not None else U64_MAX
        if mean <= 0 or std_dev < 0:
            raise ConfigError(
                "size_spec lognormal: mean must be > 0 and std_dev >= 0 "
                f"(got mean={mean}, std_dev={std_dev})."
            )
        if lo > hi:
            raise ConfigError(f"size_spec lognormal: min must be <= max (got min={lo}, max={hi}).")
        return LognormalSampler(mean, std_dev, lo, hi)
    raise ConfigError(f"size_spec: unknown distribution type {kind!r}; use a number, uniform or lognormal.")


def sampler_from_spec(spec: Any) -> SizeSampler:
    """Build a sampler from a config size model (`FixedSize`/`UniformSize`/`LognormalSize`, field `kind`)."""
    kind = spec.kind
    if kind == "fixed":
        return sampler_for("fixed", value=spec.value)
    if kind == "uniform":
        return sampler_for("uniform", min=spec.min, max=spec.max)
    return sampler_for(
        kind,
        mean=spec.mean,
        std_dev=spec.std_dev,
        min=getattr(spec, "min", None),
        max=getattr(spec, "max", None),
    )
