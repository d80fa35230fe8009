"""Relative errors per measurement method and intensity source, and the interval they give.

The numbers are deliberately coarse, one per method, and each says where it comes from. They are
combined worst-case (errors of one run are correlated: the same hardware, the same model), which
gives an interval a reviewer can trust rather than a spuriously tight one.

Energy bounds are cumulative, like the energy: a sensor's :class:`~carbon_kfp.sensors.base.Reading`
carries ``low_j``/``high_j`` since ``start()`` where one number per reading would be wrong (a GPU
whose method degraded mid-run keeps each part's error; a CPU request read two ways carries both
readings), and otherwise gets ``energy_j × (1 ∓ error of its method)``
(:func:`method_bounds_j`). Worst-case errors add, so a window's bounds are the differences of the
cumulative bounds at its edges (:func:`window_bounds_j`).

Method errors:

- ``rapl`` 10 %: RAPL tracks package power closely on Haswell and newer (Khan et al., "RAPL in
  Action", ACM TOMPECS 2018: r > 0.99 against wall meters) but covers the package only; VRM,
  fans and PSU losses are outside it.
- ``rapl-share`` 20 %: RAPL's 10 % for the host's energy plus 10 % for the split that gives a
  container or process its part (:func:`carbon_kfp.sensors.cpu.scope_share`): the idle/load
  weighting comes from the CPU model's min/max watts, whose ratio spans 0.16-0.34 over CCF's
  microarchitectures, and a CPU-second of one tenant is charged like a CPU-second of another
  although frequency and vector units make them draw differently.
- ``nvml-energy`` 5 %: NVIDIA's NVML reference gives +/-5 % for board power readings.
- ``nvml-power`` 10 %: power sampling misses transients; on A100/H100 the sensor averages only
  part of each window (Yang et al., "Part-time Power Measurements: nvidia-smi's Lack of
  Attention", 2024).
- ``cgroup-model``, ``process-model``, ``machine-model`` 30 %: CCF's SPECpower linear model;
  per-vCPU watts of one microarchitecture differ by about this much between CCF's 2021 and 2026
  coefficient sets and between servers of one generation.
- ``tdp-model`` 50 %: TDP is a thermal limit, not a measurement (CodeCarbon assumes 50 % of TDP).
- ``constant`` (RAM per GB) 50 %: W/GB differs between DDR generations and with activity (Green
  Algorithms 0.3725 vs CCF 0.392 W/GB at average load; idle DIMMs draw far less).
- ``none`` 0 %: nothing measured, nothing claimed.

Intensity errors: ``explicit`` 0 % (the caller's number is taken as exact); ``gcp-region`` 15 %
(annual averages: hourly values vary more, but a step's hours average out); ``country`` 20 %
(national average; a data centre's grid region can differ); ``aws-region-legacy`` and
``azure-region-legacy`` 30 % (2016-2021 figures, see ``data/PROVENANCE.md``); ``world-default``
50 % (countries span 20-800 gCO2/kWh; the world mean says little about one site).
"""

from __future__ import annotations

from collections.abc import Iterable

METHOD_RELATIVE_ERROR: dict[str, float] = {
    "rapl": 0.10,
    "rapl-share": 0.20,
    "nvml-energy": 0.05,
    "nvml-power": 0.10,
    "cgroup-model": 0.30,
    "process-model": 0.30,
    "machine-model": 0.30,
    "tdp-model": 0.50,
    "constant": 0.50,
    "none": 0.0,
}

INTENSITY_RELATIVE_ERROR: dict[str, float] = {
    "explicit": 0.0,
    "gcp-region": 0.15,
    "country": 0.20,
    "aws-region-legacy": 0.30,
    "azure-region-legacy": 0.30,
    "world-default": 0.50,
}


def method_bounds_j(
    energy_j: float, method: str, alternatives_j: Iterable[float] = ()
) -> tuple[float, float]:
    """``(low_j, high_j)`` of an energy measured by one method. Pure.

    Args:
        energy_j: the energy as recorded. Units: J.
        method: how it was measured (a key of :data:`METHOD_RELATIVE_ERROR`).
        alternatives_j: other readings of the same energy that the data cannot rule out (e.g.
            under another reading of a container's CPU request); the bounds span them all.

    Raises:
        KeyError: an unknown method (a programming error, not user input).
    """
    error = METHOD_RELATIVE_ERROR[method]
    values = (energy_j, *alternatives_j)
    return min(values) * (1.0 - error), max(values) * (1.0 + error)


def window_bounds_j(
    energy_j: float, begin_bounds_j: tuple[float, float], end_bounds_j: tuple[float, float]
) -> tuple[float, float]:
    """Low and high energy of a window from the cumulative bounds at its edges. Pure.

    Args:
        energy_j: the window's energy (end minus begin). Units: J.
        begin_bounds_j, end_bounds_j: cumulative ``(low_j, high_j)`` at the window's edges.

    Returns:
        ``(low_j, high_j)`` with ``0 <= low_j <= energy_j <= high_j``.
    """
    low_j = end_bounds_j[0] - begin_bounds_j[0]
    high_j = end_bounds_j[1] - begin_bounds_j[1]
    return max(0.0, min(energy_j, low_j)), max(energy_j, high_j)


def intensity_interval(intensity_g_per_kwh: float, source: str) -> tuple[float, float]:
    """Low and high grid intensity for a source (unknown sources get the world-default error)."""
    error = INTENSITY_RELATIVE_ERROR.get(source, INTENSITY_RELATIVE_ERROR["world-default"])
    return intensity_g_per_kwh * (1.0 - error), intensity_g_per_kwh * (1.0 + error)
