"""Which CPU this is, and how many watts a vCPU of it draws (idle and at full load).

The model name and family/model/stepping numbers are read from ``<proc_root>/cpuinfo`` directly
(no py-cpuinfo). Power figures, in order of preference:

1. **CCF per-vCPU coefficients** by microarchitecture (``ccf/coefficients-<provider>-use.csv``,
   2026 SPECpower, PROVENANCE §7b): W per hardware thread at active idle and at 100 % load,
   whole-server wall power. GCP's max is "GCP-adjusted" (memory share taken out), which suits us
   because RAM is charged separately. A microarchitecture missing from the provider's table is
   looked up in the AWS table (the most complete) and labelled so. EPYC 5th Gen is not used:
   its 3.68 / 8.96 W looks like a CPU-matching error upstream (PROVENANCE §7b caveats).
2. **TDP per thread** of a known CPU model (``codecarbon/cpu_power.csv``, W per socket, divided by
   ``siblings``, the threads per socket): max = TDP / thread, min = :data:`TDP_IDLE_FRACTION` ×
   max. TDP is package power only (no memory, fans or PSU losses), so this is a lower figure than
   CCF's whole-server one.
3. **Provider fallback**: CCF's own fallback for unknown hardware
   (``ccf/provider_constants.csv``: GCP 0.68 / 4.11, AWS 0.74 / 3.5, Azure 0.74 / 3.54 W/vCPU).

Microarchitecture comes from the model name first (Xeon Scalable generation digit, E5/E7 ``vN``,
EPYC series and generation digit), then, for generic cloud names such as GCP's
``Intel(R) Xeon(R) CPU @ 2.20GHz``, from the cpuinfo family/model/stepping numbers.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Literal, NamedTuple

from carbon_kfp import tables
from carbon_kfp.location import normalize_cloud_provider

DEFAULT_PROVIDER = "gcp"

TDP_IDLE_FRACTION = 0.21
"""Idle power as a fraction of full-load power for the TDP model: the median min/max ratio of the
2026 CCF GCP coefficients (0.158-0.337 over its nine microarchitectures; checked by a test).
Chosen over 0 because an allocated but idle CPU still draws power, and over CodeCarbon's flat
50 % of TDP because that ignores load."""

UNRELIABLE_ARCHITECTURES = frozenset({"EPYC 5th Gen"})

_FALLBACK_KEYS = {
    "gcp": ("MIN_WATTS_MEDIAN", "MAX_WATTS_MEDIAN"),
    "aws": ("MIN_WATTS_AVG", "MAX_WATTS_AVG"),
    "azure": ("MIN_WATTS_AVG", "MAX_WATTS_AVG"),
}


class CpuInfo(NamedTuple):
    """The first processor block of ``/proc/cpuinfo``.

    Attributes:
        model_name: ``model name`` ("" when absent, e.g. on many Arm kernels).
        vendor_id: ``GenuineIntel``, ``AuthenticAMD`` or "".
        family, model, stepping: ``cpu family``, ``model``, ``stepping``, or None.
        threads_per_socket: ``siblings`` (logical CPUs per physical package), or None.
    """

    model_name: str = ""
    vendor_id: str = ""
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    threads_per_socket: int | None = None


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse the first processor block of ``/proc/cpuinfo`` text (never raises)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())

    def number(key: str) -> int | None:
        try:
            return int(fields[key], 0) if key in fields else None
        except ValueError:
            return None

    return CpuInfo(
        model_name=fields.get("model name", ""),
        vendor_id=fields.get("vendor_id", ""),
        family=number("cpu family"),
        model=number("model"),
        stepping=number("stepping"),
        threads_per_socket=number("siblings"),
    )


def read_cpuinfo(proc_root: Path = Path("/proc")) -> CpuInfo:
    """:func:`parse_cpuinfo` of ``<proc_root>/cpuinfo``; an empty :class:`CpuInfo` if unreadable."""
    try:
        return parse_cpuinfo((proc_root / "cpuinfo").read_text(errors="replace"))
    except OSError:
        return CpuInfo()


# --------------------------------------------------------------------------- microarchitecture

_XEON_SCALABLE = re.compile(r"xeon.*?\b(?:platinum|gold|silver|bronze)\s+\d(\d)\d\d([a-z]*)")
_XEON_SCALABLE_GENERATIONS = {
    "1": "Skylake",
    "2": "Cascade Lake",
    "3": "Ice Lake",
    "4": "Sapphire Rapids",
    "5": "Emerald Rapids",
}
_XEON_6_P = re.compile(r"xeon.*?\b6\d{3}p\b")  # Xeon 6 with P-cores: Granite Rapids
_XEON_E57 = re.compile(r"\be([357])-\d{4}[a-z]*(?:\s*v(\d))?")
_XEON_E_VERSIONS = {"2": "Ivy Bridge", "3": "Haswell", "4": "Broadwell", "5": "Skylake"}
_XEON_E_2000 = re.compile(r"xeon.*?\be-2[12]\d\d")  # E-21xx / E-22xx
_EPYC = re.compile(r"epyc\s+(\d)[0-9a-z]{2}(\d)")
_EPYC_GENERATIONS = {
    ("7", "1"): "EPYC 1st Gen",  # Naples
    ("3", "1"): "EPYC 1st Gen",  # Embedded 3001
    ("7", "2"): "EPYC 2nd Gen",  # Rome (GCP 7B12)
    ("7", "3"): "EPYC 3rd Gen",  # Milan (GCP 7B13)
    ("9", "4"): "EPYC 4th Gen",  # Genoa (GCP 9B14)
    ("8", "4"): "EPYC 4th Gen",  # Siena
    ("4", "4"): "EPYC 4th Gen",  # EPYC 4004
    ("9", "5"): "EPYC 5th Gen",  # Turin
    ("4", "5"): "EPYC 5th Gen",
}
_INTEL_FAMILY_6_MODELS = {
    45: "Sandy Bridge",  # Sandy Bridge-EP
    62: "Ivy Bridge",  # Ivy Bridge-EP
    63: "Haswell",  # Haswell-EP
    79: "Broadwell",  # Broadwell-EP
    86: "Broadwell",  # Broadwell-DE
    106: "Ice Lake",  # Ice Lake-SP
    108: "Ice Lake",  # Ice Lake-D
    143: "Sapphire Rapids",
    158: "Coffee Lake",
    173: "Granite Rapids",
    207: "Emerald Rapids",
}


def microarchitecture(info: CpuInfo) -> str | None:
    """The CCF microarchitecture name of a CPU ("Cascade Lake", "EPYC 2nd Gen"), or None.

    Model 85 covers Skylake-SP (stepping 0-4), Cascade Lake (5-7) and Cooper Lake (10-11);
    Cooper Lake and the ``...H`` Xeon Scalable parts map to Cascade Lake, from which they derive,
    as CCF has no row for them.
    """
    name = info.model_name.lower()
    if match := _XEON_SCALABLE.search(name):
        generation, suffix = match.groups()
        if generation == "3" and suffix.startswith("h"):
            return "Cascade Lake"  # Cooper Lake (83xxH, 63xxH, 53xxH)
        return _XEON_SCALABLE_GENERATIONS.get(generation)
    if _XEON_6_P.search(name):
        return "Granite Rapids"
    if match := _XEON_E57.search(name):
        line, version = match.groups()
        if version is None:
            return "Sandy Bridge" if line in ("3", "5") else None
        return _XEON_E_VERSIONS.get(version)
    if _XEON_E_2000.search(name):
        return "Coffee Lake"
    if match := _EPYC.search(name):
        return _EPYC_GENERATIONS.get((match.group(1), match.group(2)))

    family, model, stepping = info.family, info.model, info.stepping
    if family is None or model is None:
        return None
    if info.vendor_id == "GenuineIntel" or (not info.vendor_id and "intel" in name):
        if family != 6:
            return None
        if model == 85:
            return "Skylake" if stepping is not None and stepping < 5 else "Cascade Lake"
        return _INTEL_FAMILY_6_MODELS.get(model)
    if info.vendor_id in ("AuthenticAMD", "HygonGenuine") or "amd" in name:
        if family == 23:
            return {1: "EPYC 1st Gen", 49: "EPYC 2nd Gen"}.get(model)
        if family == 25:
            if model < 16:
                return "EPYC 3rd Gen"  # Milan (0x01) and Milan-X
            if model < 32 or 160 <= model < 176:
                return "EPYC 4th Gen"  # Genoa (0x10-0x1f), Bergamo / Siena (0xa0-0xaf)
            return None
        if family == 26:
            return "EPYC 5th Gen"  # Turin (Zen 5)
    return None


# --------------------------------------------------------------------------- power figures


class CpuPowerModel(NamedTuple):
    """Per-vCPU power of one CPU, and where the numbers came from.

    Attributes:
        min_w_per_vcpu: power of an allocated, idle vCPU. Units: W.
        max_w_per_vcpu: power of a fully busy vCPU. Units: W.
        kind: ``"ccf"`` (microarchitecture coefficients), ``"tdp"`` (TDP per thread) or
            ``"fallback"`` (provider average for unknown hardware).
        source: short label for the record, e.g. "ccf gcp Cascade Lake 0.69-3.75 W/vCPU".
    """

    min_w_per_vcpu: float
    max_w_per_vcpu: float
    kind: Literal["ccf", "tdp", "fallback"]
    source: str


def coefficient_provider(cloud_provider: str) -> str:
    """Whose CCF coefficients to use: the provider's canonical name
    (:func:`carbon_kfp.location.normalize_cloud_provider`), or ``"gcp"`` when none is given.

    Raises:
        ConfigError: an unknown provider (the message lists the valid ones).
    """
    if not cloud_provider.strip():
        return DEFAULT_PROVIDER
    return normalize_cloud_provider(cloud_provider)


@functools.cache
def ccf_table(provider: str) -> dict[str, tuple[float, float]]:
    """``microarchitecture -> (min, max)`` W per vCPU from ``ccf/coefficients-<provider>-use.csv``.

    Raises:
        DataFileError: the packaged file is missing or malformed.
    """
    path = f"ccf/coefficients-{provider}-use.csv"
    table: dict[str, tuple[float, float]] = {}
    for number, row in enumerate(tables.read_rows(path), start=2):
        where = f"carbon_kfp/data/{path} line {number}"
        try:
            arch, low, high = row["Architecture"], row["Min Watts"], row["Max Watts"]
        except KeyError as exc:
            raise tables.DataFileError(f"{where}: missing column {exc}") from None
        table[arch] = (tables.parse_float(low, where=where), tables.parse_float(high, where=where))
    return table


def ccf_coefficients(architecture: str, provider: str) -> tuple[float, float, str] | None:
    """``(min, max, table)`` W per vCPU for a microarchitecture, from the provider's table or,
    when missing there, the AWS table (``table`` says which); None when neither has it or the
    row is in :data:`UNRELIABLE_ARCHITECTURES`."""
    if architecture in UNRELIABLE_ARCHITECTURES:
        return None
    for table_name in dict.fromkeys((provider, "aws")):
        row = ccf_table(table_name).get(architecture)
        if row is not None:
            return row[0], row[1], table_name
    return None


@functools.lru_cache(maxsize=1)
def _fallback_rows() -> dict[tuple[str, str], float]:
    path = "ccf/provider_constants.csv"
    rows: dict[tuple[str, str], float] = {}
    for number, row in enumerate(tables.read_rows(path), start=2):
        where = f"carbon_kfp/data/{path} line {number}"
        rows[(row["provider"], row["constant"])] = tables.parse_float(row["value"], where=where)
    return rows


def provider_fallback(provider: str) -> tuple[float, float]:
    """CCF's ``(min, max)`` W per vCPU for unknown hardware on ``provider``."""
    low_key, high_key = _FALLBACK_KEYS[provider]
    rows = _fallback_rows()
    return rows[(provider, low_key)], rows[(provider, high_key)]


_NAME_NOISE = (
    re.compile(r"\((?:r|tm)\)|®|™", re.I),
    re.compile(r"@\s*[\d.]+\s*[gm]hz", re.I),
    re.compile(r"\b\d+-core\s+processor\b", re.I),
    re.compile(r"\b(?:processor|cpu)\b", re.I),
)


def normalize_model_name(name: str) -> str:
    """Lower-case model name without trademarks, clock, "CPU", "N-Core Processor".

    ``"Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz"`` -> ``"intel xeon platinum 8280"``, the
    form ``codecarbon/cpu_power.csv`` names use.
    """
    for pattern in _NAME_NOISE:
        name = pattern.sub(" ", name)
    return " ".join(name.lower().split())


_TDP_TABLE = "codecarbon/cpu_power.csv"


def tdp_watts(model_name: str) -> float | None:
    """TDP of a CPU model (W per socket) from ``codecarbon/cpu_power.csv``; exact match after
    :func:`normalize_model_name`, so a generic name ("Intel Xeon CPU @ 2.20GHz") never matches."""
    key = normalize_model_name(model_name)
    return _tdp_of(key) if key else None


@functools.lru_cache(maxsize=16)
def _tdp_of(key: str) -> float | None:
    """TDP (W) of the first usable row whose normalised name is ``key``, or None.

    Normalising all ~5,000 names costs ~25 ms, so only the rows whose line contains the longest
    word of ``key`` (in any case) are normalised: no other row can normalise to ``key``.
    Upstream has four old Celerons with a TDP like "27.29.5"; such rows are skipped rather than
    failing every lookup.
    """
    longest = max(key.split(), key=len)
    candidates = tables.read_rows_matching(_TDP_TABLE, re.compile(re.escape(longest), re.I))
    for _, row in candidates:
        if normalize_model_name(row["Name"]) != key:
            continue
        try:
            tdp = float(row["TDP"])
        except ValueError:
            continue
        if math.isfinite(tdp) and tdp > 0:
            return tdp
    return None


def cpu_power_model(info: CpuInfo, provider: str = DEFAULT_PROVIDER) -> CpuPowerModel:
    """The per-vCPU power figures for ``info`` on ``provider`` (see the module docstring).

    Raises:
        DataFileError: a packaged table is missing or malformed.
    """
    architecture = microarchitecture(info)
    note = ""
    if architecture is not None:
        found = ccf_coefficients(architecture, provider)
        if found is not None:
            low, high, table_name = found
            return CpuPowerModel(
                low, high, "ccf", f"ccf {table_name} {architecture} {low:.2f}-{high:.2f} W/vCPU"
            )
        note = f"{architecture}: no usable ccf row"
    tdp = tdp_watts(info.model_name)
    if tdp is not None and info.threads_per_socket:
        high = tdp / info.threads_per_socket
        return CpuPowerModel(
            TDP_IDLE_FRACTION * high,
            high,
            "tdp",
            f"TDP {tdp:g} W / {info.threads_per_socket} threads, idle {TDP_IDLE_FRACTION:.0%}"
            f" ({TDP_IDLE_FRACTION * high:.2f}-{high:.2f} W/vCPU{'; ' + note if note else ''})",
        )
    low, high = provider_fallback(provider)
    return CpuPowerModel(
        low,
        high,
        "fallback",
        f"ccf {provider} fallback {low:.2f}-{high:.2f} W/vCPU ({note or 'CPU not recognised'})",
    )
