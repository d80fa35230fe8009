"""Pure energy arithmetic: counter deltas, power integration, the CPU power model.

Everything here is a function of its arguments (no I/O, no clocks), so it is tested exhaustively
in ``tests/test_energy.py`` with property-based tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

JOULES_PER_KWH = 3.6e6


def joules_to_kwh(energy_j: float) -> float:
    """Convert joules to kilowatt-hours."""
    return energy_j / JOULES_PER_KWH


def counter_delta(previous: int, current: int, modulus: int) -> int:
    """Increase of a monotonically increasing counter that wraps to 0 after ``modulus - 1``.

    Works for RAPL ``energy_uj`` (modulus ``max_energy_range_uj + 1``: the kernel's maximum is a
    value the counter shows) and any wrapping hardware counter. At most one wrap between the two
    reads is assumed: callers must read often enough (see :func:`max_safe_interval_s`).

    Args:
        previous: counter value at the earlier read (0 <= previous < modulus).
        current: counter value at the later read (0 <= current < modulus).
        modulus: the number of distinct counter values (> 0). Units: those of the counter.

    Returns:
        The non-negative increase, in the counter's units.

    Raises:
        ValueError: ``modulus`` is not positive or a value lies outside ``[0, modulus)``.
    """
    if modulus <= 0:
        raise ValueError(f"modulus must be > 0, got {modulus}")
    for name, value in (("previous", previous), ("current", current)):
        if not 0 <= value < modulus:
            raise ValueError(f"{name}={value} outside the counter range [0, {modulus})")
    if current >= previous:
        return current - previous
    return modulus - previous + current


def max_safe_interval_s(modulus_uj: int, max_power_w: float) -> float:
    """Longest time between reads of an energy counter that cannot hide a second wrap.

    A counter with modulus ``modulus_uj`` µJ wraps at the earliest after
    ``modulus_uj / 1e6 / max_power_w`` seconds; reading faster than that guarantees at most one
    wrap per interval. Typical Intel packages: 262143328850 µJ at 250 W -> ~1049 s, so the default
    1 s interval is three orders of magnitude inside the bound.

    Raises:
        ValueError: a non-positive argument.
    """
    if modulus_uj <= 0 or not max_power_w > 0:
        raise ValueError(
            f"need modulus_uj > 0 and max_power_w > 0, got {modulus_uj}, {max_power_w}"
        )
    return modulus_uj / 1e6 / max_power_w


def trapezoid_energy_j(times_s: Sequence[float], powers_w: Sequence[float]) -> float:
    """Energy of a sampled power curve by the trapezoid rule.

    Args:
        times_s: sample times, non-decreasing. Units: s.
        powers_w: power at each time, finite and >= 0. Units: W.

    Returns:
        Energy in J (0.0 for fewer than two samples).

    Raises:
        ValueError: lengths differ, time goes backwards, or a power is negative / not finite.
    """
    if len(times_s) != len(powers_w):
        raise ValueError(f"{len(times_s)} times but {len(powers_w)} power samples")
    energy_j = 0.0
    for i, power_w in enumerate(powers_w):
        if not (math.isfinite(power_w) and power_w >= 0):
            raise ValueError(f"power sample {i} is {power_w!r}; expected a finite value >= 0 W")
        if i == 0:
            continue
        dt_s = times_s[i] - times_s[i - 1]
        if dt_s < 0:
            raise ValueError(f"time goes backwards at sample {i}: {times_s[i - 1]} -> {times_s[i]}")
        energy_j += 0.5 * (power_w + powers_w[i - 1]) * dt_s
    return energy_j


def linear_power_model_energy_j(
    *,
    allocated_vcpus: float,
    busy_cpu_s: float,
    wall_s: float,
    min_w_per_vcpu: float,
    max_w_per_vcpu: float,
) -> float:
    """Energy of a CPU allocation under the SPECpower-style linear model (CCF's method).

    ``P = allocated_vcpus × min_w + busy_vcpus × (max_w − min_w)`` integrated over ``wall_s``
    gives ``E = allocated_vcpus × min_w × wall_s + busy_cpu_s × (max_w − min_w)``, because the
    integral of busy vCPUs over time is the CPU time consumed.

    Args:
        allocated_vcpus: vCPUs reserved for the scope (cgroup quota, cpuset, or host count).
        busy_cpu_s: CPU time consumed by the scope in the window. Units: CPU-seconds.
        wall_s: window length. Units: s.
        min_w_per_vcpu: idle power per vCPU. Units: W.
        max_w_per_vcpu: full-load power per vCPU. Units: W.

    Returns:
        Energy in J.

    Raises:
        ValueError: a negative input, or ``max_w_per_vcpu < min_w_per_vcpu``.
    """
    values = {
        "allocated_vcpus": allocated_vcpus,
        "busy_cpu_s": busy_cpu_s,
        "wall_s": wall_s,
        "min_w_per_vcpu": min_w_per_vcpu,
        "max_w_per_vcpu": max_w_per_vcpu,
    }
    for name, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}={value!r}; expected a finite value >= 0")
    if max_w_per_vcpu < min_w_per_vcpu:
        raise ValueError(f"max_w_per_vcpu={max_w_per_vcpu} < min_w_per_vcpu={min_w_per_vcpu}")
    return allocated_vcpus * min_w_per_vcpu * wall_s + busy_cpu_s * (
        max_w_per_vcpu - min_w_per_vcpu
    )
