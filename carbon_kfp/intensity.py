"""Grid carbon intensity (gCO2eq/kWh) by explicit value, cloud region, country or world average.

Priority (DESIGN §2): an explicit value > a cloud provider + region (+ year) > an ISO country
(+ year) > the world average, flagged ``source="world-default"`` with one warning. This module is
the policy; the tables are :mod:`carbon_kfp.grid_tables` (GCP yearly region files, CodeCarbon's
legacy AWS/Azure table, OWID countries and world) and country identity is
:mod:`carbon_kfp.countries`. Everything is offline, read on first use and cached; importing this
module reads no file and never touches the network.

Year rule: :func:`carbon_kfp.yearly.pick_year`, the one shared with PUE. The year used is recorded
in :attr:`GridIntensity.year`.

Warnings (an AWS/Azure legacy figure, a year fallback, the world default) are warned once through
:func:`carbon_kfp.errors.warn_once` and carried in :attr:`GridIntensity.warnings`, which the tracker
puts into every record.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace

from carbon_kfp.countries import (
    country_name,
    gcp_region_country,
    legacy_region_country,
    normalize_country,
    owid_code,
)
from carbon_kfp.errors import ConfigError, close_matches, warn_once
from carbon_kfp.grid_tables import (
    OWID_PATH,
    OWID_WORLD,
    gcp_years,
    legacy_regions,
    owid_series_of,
)
from carbon_kfp.location import CLOUD_PROVIDERS, normalize_cloud_provider
from carbon_kfp.tables import DataFileError
from carbon_kfp.yearly import YEAR_MAX, YEAR_MIN, pick_year, validate_year

__all__ = [
    "INTENSITY_SOURCES",
    "YEAR_MAX",
    "YEAR_MIN",
    "GridIntensity",
    "gcp_regions",
    "resolve_intensity",
    "validate_year",
]

#: Values of :attr:`GridIntensity.source`.
INTENSITY_SOURCES: tuple[str, ...] = (
    "explicit",
    "gcp-region",
    "aws-region-legacy",
    "azure-region-legacy",
    "country",
    "world-default",
)

_LEGACY_WARNING = (
    "{provider} region grid intensities come from CodeCarbon's legacy table (EPA eGRID and "
    "2017-2019 sources, last updated 2023) and are old; pass carbon_intensity_g_per_kwh= for a "
    "current figure"
)


@dataclass(frozen=True)
class GridIntensity:
    """The grid carbon intensity used for a run, and where it came from.

    Attributes:
        g_per_kwh: gCO2eq per kWh; finite and >= 0 (0 only where a table says 0, e.g. Google's
            Montréal region in 2021-2022; an explicit value must be > 0).
        source: one of :data:`INTENSITY_SOURCES`.
        year: the data year actually used; ``None`` for undated figures (explicit without a year,
            the legacy AWS/Azure table).
        country_iso_code: ISO 3166-1 alpha-3 code, ``""`` when unknown.
        country_name: the country's name (OWID's spelling where OWID has it), ``""`` when unknown.
        cloud_provider: ``"gcp"``, ``"aws"``, ``"azure"`` or ``""``.
        cloud_region: the region name, ``""`` when none.
        lifecycle: ``True`` for lifecycle figures (OWID; GCP 2019-2020), ``False`` for
            operational ones or when unknown (explicit values).
        warnings: what the resolution had to warn about (a legacy table, a year fallback, the
            world default), one line each, for the record. Not part of equality.
    """

    g_per_kwh: float
    source: str
    year: int | None
    country_iso_code: str
    country_name: str
    cloud_provider: str
    cloud_region: str
    lifecycle: bool
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.g_per_kwh) or self.g_per_kwh < 0:
            raise ValueError(f"g_per_kwh must be finite and >= 0, got {self.g_per_kwh!r}")
        if self.source not in INTENSITY_SOURCES:
            raise ValueError(f"source must be one of {', '.join(INTENSITY_SOURCES)}")


def _validate_explicit(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"carbon_intensity_g_per_kwh must be a number of gCO2eq/kWh, got {value!r}"
        )
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(
            f"carbon_intensity_g_per_kwh must be a finite number > 0 (gCO2eq/kWh), got {value!r}"
        )
    return number


def _clean(value: object, name: str) -> str:
    """A stripped string argument; ``""`` for ``None`` or blank."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value.strip()


def gcp_regions(year: int | None = None) -> tuple[str, ...]:
    """The GCP regions with a grid intensity in the yearly file for ``year``, sorted.

    The file is the newest one ``<= year`` (the newest of all for ``None``; the oldest when
    ``year`` precedes them all).

    Raises:
        ConfigError: ``year`` is not an int in ``[YEAR_MIN, YEAR_MAX]``.
        DataFileError: a packaged file is malformed.
    """
    year = validate_year(year)
    tables = gcp_years()
    used, _ = pick_year([t.year for t in tables], year, what="the GCP region files")
    return tuple(sorted(next(t for t in tables if t.year == used).g_per_kwh_by_region))


def gcp_data_years() -> tuple[int, ...]:
    """The data years of Google's region table (ascending), e.g. ``(2019, ..., 2024)``.

    Raises:
        DataFileError: a packaged file is malformed.
    """
    return tuple(table.year for table in gcp_years())


def cloud_regions(cloud_provider: str) -> tuple[str, ...]:
    """Every region of ``cloud_provider`` with a grid intensity in any table year, sorted.

    Raises:
        ConfigError: an unknown provider (aliases as in :func:`normalize_cloud_provider`).
        DataFileError: a packaged file is malformed.
    """
    return tuple(sorted(_regions_of(normalize_cloud_provider(cloud_provider))))


def _all_gcp_regions() -> set[str]:
    return {region for table in gcp_years() for region in table.g_per_kwh_by_region}


def _regions_of(provider: str) -> set[str]:
    if provider == "gcp":
        return _all_gcp_regions()
    return set(legacy_regions().get(provider, {}))


def _notes(*messages: str | None) -> tuple[str, ...]:
    return tuple(message for message in messages if message)


def _by_gcp_region(region: str, year: int | None) -> GridIntensity:
    tables = [t for t in gcp_years() if region in t.g_per_kwh_by_region]
    what = f"GCP region {region!r} grid intensity"
    used, note = pick_year([t.year for t in tables], year, what=what)
    table = next(t for t in tables if t.year == used)
    iso3 = gcp_region_country(region)
    return GridIntensity(
        g_per_kwh=table.g_per_kwh_by_region[region],
        source="gcp-region",
        year=used,
        country_iso_code=iso3,
        country_name=country_name(iso3) if iso3 else "",
        cloud_provider="gcp",
        cloud_region=region,
        lifecycle=table.lifecycle,
        warnings=_notes(note),
    )


def _by_legacy_region(provider: str, region: str) -> GridIntensity:
    figure = legacy_regions()[provider][region]
    iso3 = legacy_region_country(figure)
    return GridIntensity(
        g_per_kwh=figure.g_per_kwh,
        source=f"{provider}-region-legacy",
        year=None,
        country_iso_code=iso3,
        country_name=country_name(iso3),
        cloud_provider=provider,
        cloud_region=region,
        lifecycle=False,
        warnings=(_LEGACY_WARNING.format(provider="AWS" if provider == "aws" else "Azure"),),
    )


def _by_region(provider: str, region: str, year: int | None) -> GridIntensity:
    if not provider:
        owners = [p for p in CLOUD_PROVIDERS if region in _regions_of(p)]
        if not owners:
            every = set().union(*(_regions_of(p) for p in CLOUD_PROVIDERS))
            raise ConfigError(
                f"unknown cloud_region {region!r} (no cloud_provider given; known gcp, aws and "
                f"azure regions were searched){close_matches(region, every)}"
            )
        provider = owners[0]  # gcp first: its regions also appear in the legacy table
    valid = _regions_of(provider)
    if region not in valid:
        elsewhere = [p for p in CLOUD_PROVIDERS if p != provider and region in _regions_of(p)]
        hint = f" ({region!r} is a {elsewhere[0]} region)" if elsewhere else ""
        listing = (
            " (`carbon-kfp regions --energy-kwh 1 --service any` lists them)"
            if provider == "gcp"
            else ""
        )
        raise ConfigError(
            f"unknown {provider} cloud_region {region!r}{hint}{listing}"
            f"{close_matches(region, valid)}"
        )
    if provider == "gcp":
        return _by_gcp_region(region, year)
    return _by_legacy_region(provider, region)


def _by_country(value: str, year: int | None) -> GridIntensity:
    iso3 = normalize_country(value)
    series = owid_series_of(owid_code(iso3))
    if series is None:
        raise ConfigError(
            f"no grid intensity for country {value!r} ({country_name(iso3) or iso3}) in the OWID "
            f"table; pass carbon_intensity_g_per_kwh= instead"
        )
    used, note = pick_year(series.years, year, what=f"country {iso3} grid intensity")
    return GridIntensity(
        g_per_kwh=series.at(used),
        source="country",
        year=used,
        country_iso_code=iso3,
        country_name=series.entity,
        cloud_provider="",
        cloud_region="",
        lifecycle=True,
        warnings=_notes(note),
    )


def _world_default(year: int | None, provider: str) -> GridIntensity:
    series = owid_series_of(OWID_WORLD)
    if series is None:
        raise DataFileError(f"carbon_kfp/data/{OWID_PATH} has no {OWID_WORLD} (world) rows")
    used, note = pick_year(series.years, year, what="the world-average grid intensity")
    g_per_kwh = series.at(used)
    why = (
        f"cloud_provider={provider!r} without cloud_region does not locate the run"
        if provider
        else "no location given"
    )
    default = (
        f"{why}: using the world-average grid intensity {g_per_kwh:g} gCO2eq/kWh (OWID {used}), "
        f"flagged intensity_source=world-default. Set carbon_intensity_g_per_kwh=, or "
        f"cloud_provider= and cloud_region=, or country_iso_code= (ISO-3 like 'DEU' or ISO-2 "
        f"like 'DE'); on GCP, location='auto' reads the region from CLOUD_ML_REGION or "
        f"GOOGLE_CLOUD_REGION, then the metadata server"
    )
    return GridIntensity(
        g_per_kwh=g_per_kwh,
        source="world-default",
        year=used,
        country_iso_code="",
        country_name="World",
        cloud_provider="",
        cloud_region="",
        lifecycle=True,
        warnings=_notes(default, note),
    )


def _explicit(
    g_per_kwh: float, provider: str, region: str, country: str, year: int | None
) -> GridIntensity:
    """An explicit value, labelled with whatever location the arguments give."""
    iso3 = normalize_country(country) if country else ""
    if region:
        try:
            located: GridIntensity | None = _by_region(provider, region, year)
        except ConfigError:  # explicit values exist to cover regions the tables lack
            located = None
        if located is not None:
            provider = located.cloud_provider
            iso3 = located.country_iso_code or iso3
    return GridIntensity(
        g_per_kwh=g_per_kwh,
        source="explicit",
        year=year,
        country_iso_code=iso3,
        country_name=country_name(iso3) if iso3 else "",
        cloud_provider=provider,
        cloud_region=region,
        lifecycle=False,
    )


def resolve_intensity(
    *,
    carbon_intensity_g_per_kwh: float | None = None,
    cloud_provider: str | None = None,
    cloud_region: str | None = None,
    country_iso_code: str | None = None,
    year: int | None = None,
) -> GridIntensity:
    """The grid carbon intensity (gCO2eq/kWh) for a run, by the priority in the module docstring.

    Every argument given is checked, even one that a higher-priority argument overrides, so a
    typo fails at construction rather than on the run where it would matter. The one exception:
    beside an explicit value, a region the tables do not know is recorded as given, since explicit
    values are how users cover regions the tables lack.

    Args:
        carbon_intensity_g_per_kwh: explicit value, gCO2eq/kWh, finite and > 0. Location arguments
            given alongside it only fill the record's country/provider/region fields (a country
            must still be a valid ISO code, but needs no data).
        cloud_provider: ``"gcp"``, ``"aws"`` or ``"azure"`` (any case; ``"google"``,
            ``"amazon"``, ``"microsoft"`` accepted). Without ``cloud_region`` it does not locate
            the run; the country or world average is used and the provider is recorded.
        cloud_region: e.g. ``"us-central1"``, ``"eu-west-1"``, ``"westeurope"``. Without a
            provider, the provider whose tables hold the region is used (GCP first).
        country_iso_code: ISO 3166-1 alpha-3 (``"DEU"``) or alpha-2 (``"de"``), any case.
        year: data year wanted (int, ``YEAR_MIN``-``YEAR_MAX``); ``None`` for the newest.

    Returns:
        The intensity with its source, data year, and location fields.

    Raises:
        ConfigError: a value is invalid (non-positive/NaN/inf intensity, unknown provider,
            region or country, a year that is not an int in range); the message names the value
            and lists close valid ones.
        DataFileError: a packaged table is malformed.

    Warns (once per process, via :func:`carbon_kfp.errors.warn_once`, and in
    :attr:`GridIntensity.warnings`): the world default was used; an AWS/Azure legacy figure was
    used; the year asked is not in the place's data (an earlier or the earliest year was used).
    """
    year = validate_year(year)
    explicit = (
        None
        if carbon_intensity_g_per_kwh is None
        else _validate_explicit(carbon_intensity_g_per_kwh)
    )
    provider_arg = _clean(cloud_provider, "cloud_provider")
    provider = normalize_cloud_provider(provider_arg) if provider_arg else ""
    region = _clean(cloud_region, "cloud_region").lower()
    country = _clean(country_iso_code, "country_iso_code")

    if explicit is not None:
        return _explicit(explicit, provider, region, country, year)
    if region:
        found = _by_region(provider, region, year)
        if country:
            normalize_country(country)  # checked, but the region's own country wins
    elif country:
        found = _by_country(country, year)
    else:
        found = _world_default(year, provider)
    for message in found.warnings:
        warn_once(message)
    if provider and not found.cloud_provider:
        return replace(found, cloud_provider=provider)
    return found
