"""Size samplers: sai3 lognormal semantics, inclusive uniform, deterministic per-index sizes."""

from __future__ import annotations

import random
import statistics

import pytest

from sbench.data.sizes import U64_MAX, sampler_for, sampler_from_spec, seed_for_uri
from sbench.errors import ConfigError


def test_fixed_is_constant() -> None:
    s = sampler_for("fixed", value=4096)
    rng = random.Random(1)
    assert {s.sample(rng) for _ in range(50)} == {4096}
    assert s.size_for_index(123, 9) == 4096
    assert s.mean_estimate == 4096


def test_uniform_is_inclusive_and_covers_range() -> None:
    s = sampler_for("uniform", min=10, max=20)
    rng = random.Random(2)
    drawn = {s.sample(rng) for _ in range(2000)}
    indexed = {s.size_for_index(i, 7) for i in range(2000)}
    assert drawn == set(range(10, 21))
    assert indexed == set(range(10, 21))
    assert s.mean_estimate == 15


@pytest.mark.parametrize("use_index", [False, True])
def test_lognormal_mean_within_5_percent_and_not_constant(use_index: bool) -> None:
    mean, sd = 1_048_576, 524_288
    s = sampler_for("lognormal", mean=mean, std_dev=sd)
    rng = random.Random(42)
    values = [s.size_for_index(i, 1234) if use_index else s.sample(rng) for i in range(10_000)]
    assert abs(statistics.fmean(values) - mean) / mean < 0.05
    assert abs(statistics.pstdev(values) - sd) / sd < 0.15
    assert len(set(values)) > 9_000


def test_lognormal_bounds_and_truncated_mean() -> None:
    s = sampler_for("lognormal", mean=1_000_000, std_dev=800_000, min=200_000, max=1_500_000)
    values = [s.size_for_index(i, 5) for i in range(10_000)]
    assert min(values) >= 200_000
    assert max(values) <= 1_500_000
    assert abs(statistics.fmean(values) - s.mean_estimate) / s.mean_estimate < 0.02


def test_lognormal_defaults_follow_sai3() -> None:
    s = sampler_for("lognormal", mean=100, std_dev=10)
    assert (s.min, s.max) == (1, U64_MAX)


def test_size_for_index_is_deterministic_and_seed_dependent() -> None:
    s = sampler_for("lognormal", mean=65536, std_dev=30000, min=1, max=10_000_000)
    first = [s.size_for_index(i, 99) for i in range(500)]
    again = [s.size_for_index(i, 99) for i in range(500)]
    other = [s.size_for_index(i, 100) for i in range(500)]
    assert first == again
    assert first != other


def test_seed_for_uri_is_sai3_fold() -> None:
    acc = 0
    for b in b"s3://bucket/prefix/":
        acc = (acc * 31 + b) % 2**64
    assert seed_for_uri("s3://bucket/prefix/") == acc
    assert seed_for_uri("x" * 100) < 2**64


def test_bad_parameters_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="min <= max"):
        sampler_for("uniform", min=5, max=1)
    with pytest.raises(ConfigError, match="mean must be > 0"):
        sampler_for("lognormal", mean=0, std_dev=1)
    with pytest.raises(ConfigError, match="unknown distribution"):
        sampler_for("pareto")


def test_sampler_from_spec_reads_config_models() -> None:
    class Spec:
        kind = "uniform"
        min = 1
        max = 3

    assert sampler_from_spec(Spec()).max_size == 3
