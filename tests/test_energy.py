"""Exhaustive and property-based tests of the pure energy arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.energy import (
    counter_delta,
    joules_to_kwh,
    linear_power_model_energy_j,
    max_safe_interval_s,
    trapezoid_energy_j,
)

ranges = st.integers(min_value=1, max_value=2**63)


@given(max_range=ranges, data=st.data())
def test_counter_delta_equals_true_increase_with_at_most_one_wrap(max_range: int, data) -> None:
    start = data.draw(st.integers(0, max_range - 1))
    increase = data.draw(st.integers(0, max_range - 1))  # less than one full period
    current = (start + increase) % max_range
    assert counter_delta(start, current, max_range) == increase


@given(max_range=ranges, data=st.data())
def test_counter_deltas_over_many_reads_sum_to_total(max_range: int, data) -> None:
    steps = data.draw(st.lists(st.integers(0, max_range - 1), min_size=1, max_size=50))
    value = data.draw(st.integers(0, max_range - 1))
    total = 0
    for step in steps:
        nxt = (value + step) % max_range
        total += counter_delta(value, nxt, max_range)
        value = nxt
    assert total == sum(steps)


@pytest.mark.parametrize(
    ("previous", "current", "max_range"),
    [(-1, 0, 10), (0, 10, 10), (10, 0, 10), (0, 0, 0), (0, 0, -5)],
)
def test_counter_delta_rejects_values_outside_range(previous: int, current: int, max_range: int):
    with pytest.raises(ValueError, match=r"range|modulus"):
        counter_delta(previous, current, max_range)


def test_max_safe_interval_for_a_typical_intel_package() -> None:
    assert max_safe_interval_s(262_143_328_850, 250.0) == pytest.approx(1048.57, rel=1e-4)
    with pytest.raises(ValueError, match="max_power_w"):
        max_safe_interval_s(1000, 0.0)


@given(
    power_w=st.floats(0, 1e4, allow_nan=False),
    times=st.lists(st.floats(0, 1e3, allow_nan=False), min_size=2, max_size=40),
)
def test_trapezoid_of_constant_power_is_power_times_duration(power_w: float, times) -> None:
    times_s = sorted(times)
    energy_j = trapezoid_energy_j(times_s, [power_w] * len(times_s))
    assert energy_j == pytest.approx(power_w * (times_s[-1] - times_s[0]), rel=1e-9, abs=1e-9)


@given(
    slope=st.floats(0, 100, allow_nan=False),
    offset=st.floats(0, 500, allow_nan=False),
    times=st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=40, unique=True),
)
def test_trapezoid_is_exact_for_linear_power(slope: float, offset: float, times) -> None:
    times_s = sorted(times)
    powers_w = [offset + slope * t for t in times_s]
    t0, t1 = times_s[0], times_s[-1]
    exact_j = offset * (t1 - t0) + slope * (t1**2 - t0**2) / 2
    assert trapezoid_energy_j(times_s, powers_w) == pytest.approx(exact_j, rel=1e-9, abs=1e-6)


@given(times=st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=20))
def test_trapezoid_is_additive_over_a_split(times) -> None:
    times_s = sorted(times)
    powers_w = [math.sin(t) + 2 for t in times_s]
    k = len(times_s) // 2
    whole = trapezoid_energy_j(times_s, powers_w)
    parts = trapezoid_energy_j(times_s[: k + 1], powers_w[: k + 1]) + trapezoid_energy_j(
        times_s[k:], powers_w[k:]
    )
    assert whole == pytest.approx(parts, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("times_s", "powers_w", "message"),
    [
        ([0, 1], [1.0], "2 times but 1"),
        ([1, 0], [1.0, 1.0], "backwards"),
        ([0, 1], [1.0, -1.0], "sample 1"),
        ([0, 1], [math.nan, 1.0], "sample 0"),
        ([0, 1], [1.0, math.inf], "sample 1"),
    ],
)
def test_trapezoid_rejects_bad_samples(times_s, powers_w, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trapezoid_energy_j(times_s, powers_w)


def test_trapezoid_of_fewer_than_two_samples_is_zero() -> None:
    assert trapezoid_energy_j([], []) == 0.0
    assert trapezoid_energy_j([3.0], [100.0]) == 0.0


@given(
    vcpus=st.floats(0, 256, allow_nan=False),
    busy_fraction=st.floats(0, 1),
    wall_s=st.floats(0, 1e5, allow_nan=False),
    min_w=st.floats(0, 5, allow_nan=False),
    extra_w=st.floats(0, 10, allow_nan=False),
)
def test_linear_model_is_bounded_by_idle_and_full_load(
    vcpus, busy_fraction, wall_s, min_w, extra_w
):
    max_w = min_w + extra_w
    busy_cpu_s = vcpus * wall_s * busy_fraction
    energy_j = linear_power_model_energy_j(
        allocated_vcpus=vcpus,
        busy_cpu_s=busy_cpu_s,
        wall_s=wall_s,
        min_w_per_vcpu=min_w,
        max_w_per_vcpu=max_w,
    )
    idle_j, full_j = vcpus * min_w * wall_s, vcpus * max_w * wall_s
    assert idle_j * (1 - 1e-9) - 1e-9 <= energy_j <= full_j * (1 + 1e-9) + 1e-9


def test_linear_model_doubles_with_busy_time_above_idle() -> None:
    def energy(busy_cpu_s: float) -> float:
        return linear_power_model_energy_j(
            allocated_vcpus=2, busy_cpu_s=busy_cpu_s, wall_s=10, min_w_per_vcpu=0, max_w_per_vcpu=4
        )

    assert energy(10.0) == pytest.approx(2 * energy(5.0))
    assert energy(5.0) == pytest.approx(5.0 * 4)


@pytest.mark.parametrize(
    "bad",
    [
        {"allocated_vcpus": -1},
        {"busy_cpu_s": math.nan},
        {"wall_s": math.inf},
        {"min_w_per_vcpu": 5, "max_w_per_vcpu": 4},
    ],
)
def test_linear_model_rejects_bad_inputs(bad: dict[str, float]) -> None:
    args = {
        "allocated_vcpus": 2.0,
        "busy_cpu_s": 1.0,
        "wall_s": 1.0,
        "min_w_per_vcpu": 1.0,
        "max_w_per_vcpu": 4.0,
    } | bad
    with pytest.raises(ValueError):
        linear_power_model_energy_j(**args)


@given(st.floats(0, 1e12, allow_nan=False))
def test_joules_to_kwh_roundtrip(energy_j: float) -> None:
    assert joules_to_kwh(energy_j) * 3.6e6 == pytest.approx(energy_j)
