"""Relative errors per measurement method and intensity source, and the interval they give.

The numbers are deliberately coarse, one per method, and each says where it comes from. They are
combined worst-case (errors of one run are correlated: the same hardware, the same model), which
gives an interval a reviewer can trust rather than a spuriously tight one.

Method errors:

- ``rapl`` 10 %: RAPL tracks package power closely on Haswell and newer (Khan et al., "RAPL in
  Action", ACM TOMPECS 2018: r > 0.99 against wall meters) but covers the package only; VRM,
  fans and PSU losses are outside it.
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


def energy_interval_kwh(parts: Iterable[tuple[float, str]]) -> tuple[float, float]:
    """Low and high energy bounds from ``(energy_kwh, method)`` pairs, errors added worst-case.

    Raises:
        KeyError: an unknown method (a programming error, not user input).
    """
    low_kwh = high_kwh = 0.0
    for energy_kwh, method in parts:
        error = METHOD_RELATIVE_ERROR[method]
        low_kwh += energy_kwh * (1.0 - error)
        high_kwh += energy_kwh * (1.0 + error)
    return low_kwh, high_kwh


def intensity_interval(intensity_g_per_kwh: float, source: str) -> tuple[float, float]:
    """Low and high grid intensity for a source (unknown sources get the world-default error)."""
    error = INTENSITY_RELATIVE_ERROR.get(source, INTENSITY_RELATIVE_ERROR["world-default"])
    return intensity_g_per_kwh * (1.0 - error), intensity_g_per_kwh * (1.0 + error)
