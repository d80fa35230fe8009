"""Power usage effectiveness (PUE): facility energy / IT energy, dimensionless and >= 1.

Priority (DESIGN §2): an explicit value > the provider's own published figure for the year >
1.0 off-cloud (``source="off-cloud-default"``: nothing is known about the building, so only the IT
energy is counted, and the record says so).

Provider figures come from ``carbon_kfp/data/compiled/cloud_pue_reference.csv`` (see
``data/PROVENANCE.md`` §6): Google's fleet average for ``"gcp"``, AWS's global average for
``"aws"``, Microsoft's global average (fiscal years, July-June, FYnnnn counted as year nnnn) for
``"azure"``. The period used follows the year rule shared with grid intensity
(:func:`carbon_kfp.yearly.pick_year`): the newest period ``<= year``, the newest of all for
``None``, the earliest when ``year`` precedes every period; a year not in the table is warned
about and the warning carried in :attr:`PowerUsageEffectiveness.warnings` for the record. The
table is read on first use and cached.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from carbon_kfp.errors import ConfigError, warn_once
from carbon_kfp.location import normalize_cloud_provider
from carbon_kfp.tables import DataFileError, parse_float, read_rows
from carbon_kfp.yearly import pick_year, validate_year

_PUE_PATH = "compiled/cloud_pue_reference.csv"

#: Provider -> (operator in the table, source label).
_PROVIDER_OPERATORS = {
    "gcp": ("Google", "google-fleet"),
    "aws": ("AWS", "aws-global"),
    "azure": ("Microsoft", "microsoft-global"),
}

#: PUE used when the run is not on a known cloud: count IT energy only.
OFF_CLOUD_PUE = 1.0


@dataclass(frozen=True)
class PowerUsageEffectiveness:
    """The PUE applied to a run's energy.

    Attributes:
        value: dimensionless ratio, finite and >= 1.0.
        source: ``"explicit"``, ``"off-cloud-default"``, or the provider figure used:
            ``"google-fleet"``, ``"aws-global"``, ``"microsoft-global"``.
        year: the reporting year of a provider figure (Microsoft: fiscal year); ``None`` for
            explicit and off-cloud values.
        warnings: what the resolution had to warn about (a year fallback), one line each, for
            the record. Not part of equality.
    """

    value: float
    source: str
    year: int | None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 1.0:
            raise ValueError(f"PUE must be finite and >= 1.0, got {self.value!r}")


def _period_year(period: str, *, where: str) -> int:
    match = re.fullmatch(r"(?:FY)?(\d{4})", period.strip())
    if match is None:
        raise DataFileError(f"{where}: period {period!r} is not a year like 2024 or FY2024")
    return int(match.group(1))


@functools.cache
def _provider_pue_by_year() -> Mapping[str, tuple[tuple[int, float], ...]]:
    """operator -> ((year, pue), ...) ascending, for the operators in ``_PROVIDER_OPERATORS``."""
    series: dict[str, dict[int, float]] = {op: {} for op, _ in _PROVIDER_OPERATORS.values()}
    for line, row in enumerate(read_rows(_PUE_PATH), start=2):
        if row["operator"] not in series:
            continue
        where = f"carbon_kfp/data/{_PUE_PATH} line {line}"
        value = parse_float(row["pue"], where=where)
        if value < 1.0:
            raise DataFileError(f"{where}: PUE {value} is below 1.0")
        series[row["operator"]][_period_year(row["period"], where=where)] = value
    for operator, values in series.items():
        if not values:
            raise DataFileError(f"carbon_kfp/data/{_PUE_PATH} has no row for {operator}")
    return {operator: tuple(sorted(values.items())) for operator, values in series.items()}


def _validate_pue(pue: object) -> float:
    if isinstance(pue, bool) or not isinstance(pue, numbers.Real):
        raise ConfigError(f"pue must be a number >= 1.0 (facility/IT energy), got {pue!r}")
    value = float(pue)
    if not math.isfinite(value) or value < 1.0:
        raise ConfigError(
            f"pue must be a finite number >= 1.0 (facility energy / IT energy; 1.0 counts IT "
            f"energy only), got {pue!r}"
        )
    return value


def resolve_pue(
    *, pue: float | None = None, cloud_provider: str | None = None, year: int | None = None
) -> PowerUsageEffectiveness:
    """The PUE for a run, by the priority in the module docstring.

    Args:
        pue: explicit value, dimensionless, finite and >= 1.0.
        cloud_provider: ``"gcp"``, ``"aws"`` or ``"azure"`` (any case; aliases as in
            :func:`carbon_kfp.location.normalize_cloud_provider`); ``None`` or blank for off-cloud.
        year: reporting year wanted (int, see :func:`carbon_kfp.yearly.validate_year`);
            ``None`` for the newest.

    Raises:
        ConfigError: ``pue`` is not a finite number >= 1.0 (0.5, -1 and NaN all fail), the
            provider is unknown, or ``year`` is not an int in range.
        DataFileError: the packaged table is malformed.
    """
    year = validate_year(year)
    explicit = None if pue is None else _validate_pue(pue)
    provider = ""
    if cloud_provider is not None and not (
        isinstance(cloud_provider, str) and not cloud_provider.strip()
    ):
        provider = normalize_cloud_provider(cloud_provider)  # raises for a non-string too
    if explicit is not None:
        return PowerUsageEffectiveness(explicit, "explicit", None)
    if not provider:
        return PowerUsageEffectiveness(OFF_CLOUD_PUE, "off-cloud-default", None)
    operator, source = _PROVIDER_OPERATORS[provider]
    by_year = dict(_provider_pue_by_year()[operator])
    used_year, note = pick_year(list(by_year), year, what=f"{operator}'s PUE")
    if note is not None:
        warn_once(note)
    return PowerUsageEffectiveness(by_year[used_year], source, used_year, (note,) if note else ())
