"""Grid carbon intensity (gCO2eq/kWh) by explicit value, cloud region, country or world average.

Priority (DESIGN §2): an explicit value > a cloud provider + region (+ year) > an ISO country
(+ year) > the world average, flagged ``source="world-default"`` with one warning. All lookups are
offline tables packaged in ``carbon_kfp/data`` (provenance in ``data/PROVENANCE.md``), read on first
use and cached; importing this module reads no file and never touches the network.

Tables:

* GCP regions: Google's yearly region files ``google-region-carbon/<year>.csv``. 2021 onwards are
  operational (location-based) intensities; 2019-2020 are lifecycle figures (``lifecycle=True``),
  told apart by the file's column name.
* AWS and Azure regions: CodeCarbon's last table that still had them
  (``codecarbon/impact_legacy_with_aws_azure.csv``): EPA eGRID and 2017-2019 sources, so old; a
  lookup warns once per provider.
* Countries and the world: Our World in Data / Ember ``owid/carbon-intensity-electricity.csv``
  (lifecycle basis), 1990-2025.

Year rule, for every yearly table: the newest data year ``<= year`` (the newest of all when
``year`` is ``None``). When ``year`` precedes every data year for that place, the earliest one is
used and a warning says so. The year used is recorded in :attr:`GridIntensity.year`.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from carbon_kfp.errors import ConfigError, close_matches, warn_once
from carbon_kfp.location import CLOUD_PROVIDERS, normalize_cloud_provider
from carbon_kfp.tables import (
    DATA_DIR,
    DataFileError,
    parse_float,
    read_rows,
    read_rows_matching,
    read_text,
)

#: Accepted data years (inclusive). Data years outside this range are configuration mistakes.
YEAR_MIN = 1990
YEAR_MAX = 2100

#: Values of :attr:`GridIntensity.source`.
INTENSITY_SOURCES: tuple[str, ...] = (
    "explicit",
    "gcp-region",
    "aws-region-legacy",
    "azure-region-legacy",
    "country",
    "world-default",
)

_GCP_DIR = "google-region-carbon"
_GCP_REGION_COLUMN = "Google Cloud Region"
_LEGACY_PATH = "codecarbon/impact_legacy_with_aws_azure.csv"
_OWID_PATH = "owid/carbon-intensity-electricity.csv"
_OWID_VALUE_COLUMN = "Carbon intensity of electricity per kWh"
_ISO_PATH = "iso3166.csv"
_OWID_WORLD = "OWID_WRL"

# Kosovo has no ISO 3166-1 code; "XK"/"XKX" are the user-assigned codes in common use, and OWID
# files it under its own code.
_KOSOVO_ISO3 = "XKX"
_KOSOVO_OWID = "OWID_KOS"
_KOSOVO_CODES = {"XK": _KOSOVO_ISO3, "XKX": _KOSOVO_ISO3, _KOSOVO_OWID: _KOSOVO_ISO3}

# Country names in the legacy CodeCarbon table that are neither ISO nor OWID names.
_COUNTRY_NAME_ALIASES = {"usa": "USA", "korea": "KOR", "chili": "CHL"}

# GCP regions newer than the legacy CodeCarbon table, which is the only region table naming
# countries. From Google's published region locations (the "Location" column of the yearly files).
_GCP_REGION_COUNTRY_SUPPLEMENT = {
    "africa-south1": "ZAF",  # Johannesburg
    "europe-north2": "SWE",  # Stockholm
    "europe-west10": "DEU",  # Berlin
    "europe-west12": "ITA",  # Turin
    "me-central1": "QAT",  # Doha
    "me-central2": "SAU",  # Dammam
    "me-west1": "ISR",  # Tel Aviv
    "northamerica-south1": "MEX",  # Querétaro
    "us-central2": "USA",  # Oklahoma
    "us-east2": "USA",  # Georgia
}

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
    """

    g_per_kwh: float
    source: str
    year: int | None
    country_iso_code: str
    country_name: str
    cloud_provider: str
    cloud_region: str
    lifecycle: bool

    def __post_init__(self) -> None:
        if not math.isfinite(self.g_per_kwh) or self.g_per_kwh < 0:
            raise ValueError(f"g_per_kwh must be finite and >= 0, got {self.g_per_kwh!r}")
        if self.source not in INTENSITY_SOURCES:
            raise ValueError(f"source must be one of {', '.join(INTENSITY_SOURCES)}")


# --------------------------------------------------------------------------------------------
# Argument checks


def validate_year(year: object) -> int | None:
    """``year`` as an ``int`` if it is an integer in ``[YEAR_MIN, YEAR_MAX]``; ``None`` stays.

    Raises:
        ConfigError: anything else (a bool, a float, a string, an out-of-range year).
    """
    if year is None:
        return None
    if isinstance(year, bool) or not isinstance(year, numbers.Integral):
        raise ConfigError(
            f"year must be an integer data year ({YEAR_MIN}-{YEAR_MAX}) or None, got {year!r}"
        )
    value = int(year)
    if not YEAR_MIN <= value <= YEAR_MAX:
        raise ConfigError(f"year {value} is outside the accepted range {YEAR_MIN}-{YEAR_MAX}")
    return value


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


def _pick_year(years: Sequence[int], year: int | None) -> tuple[int, bool]:
    """From ascending ``years``: the newest ``<= year`` (newest of all for ``None``).

    Returns ``(year_used, went_forward)``; ``went_forward`` is ``True`` when ``year`` precedes all
    of ``years`` and the earliest was taken.
    """
    if year is None:
        return years[-1], False
    earlier = [y for y in years if y <= year]
    if earlier:
        return earlier[-1], False
    return years[0], True


# --------------------------------------------------------------------------------------------
# Tables (each read once, on first use)


@dataclass(frozen=True)
class _GcpYear:
    year: int
    lifecycle: bool
    g_per_kwh_by_region: Mapping[str, float]


@dataclass(frozen=True)
class _LegacyRegion:
    g_per_kwh: float
    country_name: str  # as the table spells it
    table_iso_code: str  # the table's countryIsoCode, "USA" for every AWS region: names come first

    @property
    def country_iso_code(self) -> str:
        """The country by name where the name is known, else the table's code."""
        return _iso3_named(self.country_name) or self.table_iso_code


@dataclass(frozen=True)
class _OwidSeries:
    entity: str
    years: tuple[int, ...]
    g_per_kwh: tuple[float, ...]

    def at(self, year: int) -> float:
        return self.g_per_kwh[self.years.index(year)]


def _parse_year(value: str, *, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataFileError(f"{where}: year {value!r} is not an integer") from None


@functools.cache
def _gcp_years() -> tuple[_GcpYear, ...]:
    """Google's yearly region files, oldest first. Raises DataFileError when malformed."""
    folder = DATA_DIR / _GCP_DIR
    file_years = sorted(
        int(match.group(1))
        for entry in folder.iterdir()
        if (match := re.fullmatch(r"(\d{4})\.csv", entry.name))
    )
    if not file_years:
        raise DataFileError(f"carbon_kfp/data/{_GCP_DIR}/ holds no <year>.csv file")
    tables = []
    for file_year in file_years:
        path = f"{_GCP_DIR}/{file_year}.csv"
        rows = read_rows(path)
        columns = list(rows[0]) if rows else []
        intensity_columns = [c for c in columns if "carbon intensity" in c.lower()]
        if _GCP_REGION_COLUMN not in columns or len(intensity_columns) != 1:
            raise DataFileError(
                f"carbon_kfp/data/{path}: expected a {_GCP_REGION_COLUMN!r} column and one "
                f"'... carbon intensity (gCO2eq / kWh)' column, got {columns}"
            )
        column = intensity_columns[0]
        by_region = {
            row[_GCP_REGION_COLUMN].lower(): parse_float(
                row[column], where=f"carbon_kfp/data/{path} line {line}"
            )
            for line, row in enumerate(rows, start=2)
        }
        tables.append(_GcpYear(file_year, column.lower().startswith("lifecycle"), by_region))
    return tuple(tables)


@functools.cache
def _iso_tables() -> tuple[Mapping[str, str], Mapping[str, str]]:
    """(alpha-2 -> alpha-3, alpha-3 -> ISO name) from ``iso3166.csv``."""
    rows = read_rows(_ISO_PATH)
    return {r["alpha2"]: r["alpha3"] for r in rows}, {r["alpha3"]: r["name"] for r in rows}


@functools.cache
def _owid_series() -> Mapping[str, _OwidSeries]:
    """OWID code -> yearly series (ascending years); aggregates without a code are left out.

    Parses the whole table (~10 ms): only for questions about every entity (names, hints). A
    lookup of one place uses :func:`_owid_series_of`.
    """
    return _series_by_code(enumerate(read_rows(_OWID_PATH), start=2))


@functools.cache
def _owid_series_of(code: str) -> _OwidSeries | None:
    """The yearly series of one OWID code, or ``None``; equal to ``_owid_series().get(code)``.

    Parses only the lines that contain ``,<code>,`` (the code is the second column), so a run
    located by one country does not pay for parsing every other one.
    """
    if not code:
        return None
    rows = read_rows_matching(_OWID_PATH, re.compile(f",{re.escape(code)},"))
    return _series_by_code((line, row) for line, row in rows if row["Code"] == code).get(code)


def _series_by_code(
    numbered_rows: Iterable[tuple[int, Mapping[str, str]]],
) -> dict[str, _OwidSeries]:
    """Group ``(line number, OWID row)`` pairs into series by code. Raises DataFileError."""
    collected: dict[str, tuple[str, dict[int, float]]] = {}
    for line, row in numbered_rows:
        code = row["Code"]
        if not code:
            continue
        where = f"carbon_kfp/data/{_OWID_PATH} line {line}"
        year = _parse_year(row["Year"], where=where)
        value = parse_float(row[_OWID_VALUE_COLUMN], where=where)
        collected.setdefault(code, (row["Entity"], {}))[1][year] = value
    return {
        code: _OwidSeries(
            entity, tuple(sorted(values)), tuple(v for _, v in sorted(values.items()))
        )
        for code, (entity, values) in collected.items()
    }


def _owid_code(iso3: str) -> str:
    return _KOSOVO_OWID if iso3 == _KOSOVO_ISO3 else iso3


def _country_name(iso3: str) -> str:
    """OWID's name for the country (``"United States"``), else the ISO name, else ``""``."""
    series = _owid_series_of(_owid_code(iso3))
    if series is not None:
        return series.entity
    return _iso_tables()[1].get(iso3, "")


@functools.cache
def _iso3_named(name: str) -> str | None:
    """ISO-3 code of a country name, any case, or ``None``.

    Aliases (:data:`_COUNTRY_NAME_ALIASES`) first, then OWID's entity names (real countries only,
    not ``OWID_*`` aggregates), then ISO 3166 names. Only the OWID lines that contain the name
    are parsed.
    """
    lowered = name.strip().lower()
    if not lowered:
        return None
    if lowered in _COUNTRY_NAME_ALIASES:
        return _COUNTRY_NAME_ALIASES[lowered]
    for _, row in read_rows_matching(_OWID_PATH, re.compile(re.escape(lowered), re.IGNORECASE)):
        code = row["Code"]
        if row["Entity"].lower() == lowered and code and not code.startswith("OWID_"):
            return code
    return next((code for code, iso in _iso_tables()[1].items() if iso.lower() == lowered), None)


@functools.cache
def _legacy_regions() -> Mapping[str, Mapping[str, _LegacyRegion]]:
    """provider -> region -> figure, from the legacy CodeCarbon table.

    The table has one row short of its trailing ``comment`` field (Azure westcentralus), read as
    empty.
    """
    reader = csv.reader(io.StringIO(read_text(_LEGACY_PATH)))
    header = [name.strip() for name in next(reader)]
    needed = ("provider", "region", "country_name", "countryIsoCode", "impact")
    if any(name not in header for name in needed):
        raise DataFileError(f"carbon_kfp/data/{_LEGACY_PATH}: header {header} lacks {needed}")
    table: dict[str, dict[str, _LegacyRegion]] = {}
    for row in reader:
        if not row:
            continue
        where = f"carbon_kfp/data/{_LEGACY_PATH} line {reader.line_num}"
        if len(row) == len(header) - 1:
            row = [*row, ""]
        if len(row) != len(header):
            raise DataFileError(f"{where}: {len(row)} fields, expected {len(header)}")
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        table.setdefault(cells["provider"].lower(), {})[cells["region"].lower()] = _LegacyRegion(
            parse_float(cells["impact"], where=where),
            cells["country_name"],
            cells["countryIsoCode"].upper(),
        )
    return table


def _gcp_region_country(region: str) -> str:
    """ISO-3 code of the country a GCP region is in, ``""`` when no table says."""
    if region in _GCP_REGION_COUNTRY_SUPPLEMENT:
        return _GCP_REGION_COUNTRY_SUPPLEMENT[region]
    figure = _legacy_regions()["gcp"].get(region)
    return figure.country_iso_code if figure is not None else ""


# --------------------------------------------------------------------------------------------
# Public lookups


def gcp_regions(year: int | None = None) -> tuple[str, ...]:
    """The GCP regions with a grid intensity in the yearly file for ``year``, sorted.

    The file is the newest one ``<= year`` (the newest of all for ``None``; the oldest when
    ``year`` precedes them all).

    Raises:
        ConfigError: ``year`` is not an int in ``[YEAR_MIN, YEAR_MAX]``.
        DataFileError: a packaged file is malformed.
    """
    year = validate_year(year)
    tables = _gcp_years()
    used, _ = _pick_year([t.year for t in tables], year)
    return tuple(sorted(next(t for t in tables if t.year == used).g_per_kwh_by_region))


def gcp_years() -> tuple[int, ...]:
    """The data years of Google's region table (ascending), e.g. ``(2019, ..., 2024)``.

    Raises:
        DataFileError: a packaged file is malformed.
    """
    return tuple(sorted(table.year for table in _gcp_years()))


def cloud_regions(cloud_provider: str) -> tuple[str, ...]:
    """Every region of ``cloud_provider`` with a grid intensity in any table year, sorted.

    Raises:
        ConfigError: an unknown provider (aliases as in :func:`normalize_cloud_provider`).
        DataFileError: a packaged file is malformed.
    """
    return tuple(sorted(_regions_of(normalize_cloud_provider(cloud_provider))))


def _all_gcp_regions() -> set[str]:
    return {region for table in _gcp_years() for region in table.g_per_kwh_by_region}


def _regions_of(provider: str) -> set[str]:
    if provider == "gcp":
        return _all_gcp_regions()
    return set(_legacy_regions().get(provider, {}))


def _normalize_country(value: str) -> str:
    """ISO-3 code for an ISO-2 or ISO-3 code (any case). Raises ConfigError naming close codes."""
    code = value.upper()
    if code in _KOSOVO_CODES:
        return _KOSOVO_CODES[code]
    iso2_to_iso3, iso3_names = _iso_tables()
    if len(code) == 2 and code in iso2_to_iso3:
        return iso2_to_iso3[code]
    if len(code) == 3 and code in iso3_names:
        return code
    hint = ""
    by_name = _iso3_named(value)
    if by_name is not None:
        hint = f"; {value!r} is the name of {by_name!r}"
    raise ConfigError(
        f"unknown country_iso_code {value!r}: expected an ISO 3166-1 alpha-3 code like 'DEU' "
        f"or alpha-2 like 'DE'{hint}{_close_country_codes(code)}"
    )


def _close_country_codes(code: str) -> str:
    """``"; closest valid: ..."`` among the codes that have OWID data.

    Codes are so short that :func:`close_matches`' cutoff needs two shared letters out of three;
    one shared letter in place is already a useful hint here.
    """
    iso2_to_iso3, _ = _iso_tables()
    with_data = {c for c in _owid_series() if not c.startswith("OWID_")}
    if len(code) == 2:
        candidates = sorted(a2 for a2, a3 in iso2_to_iso3.items() if a3 in with_data)
    else:
        candidates = sorted(with_data)
    return close_matches(code, candidates, cutoff=0.3)


@dataclass(frozen=True)
class _Found:
    intensity: GridIntensity
    warning: str | None


def _year_warning(what: str, asked: int | None, used: int, went_forward: bool) -> str | None:
    if not went_forward:
        return None
    return f"{what} has no grid intensity for {asked} or earlier; using its earliest year, {used}"


def _by_gcp_region(region: str, year: int | None) -> _Found:
    tables = [t for t in _gcp_years() if region in t.g_per_kwh_by_region]
    used, forward = _pick_year([t.year for t in tables], year)
    table = next(t for t in tables if t.year == used)
    iso3 = _gcp_region_country(region)
    return _Found(
        GridIntensity(
            g_per_kwh=table.g_per_kwh_by_region[region],
            source="gcp-region",
            year=used,
            country_iso_code=iso3,
            country_name=_country_name(iso3) if iso3 else "",
            cloud_provider="gcp",
            cloud_region=region,
            lifecycle=table.lifecycle,
        ),
        _year_warning(f"GCP region {region!r}", year, used, forward),
    )


def _by_legacy_region(provider: str, region: str) -> _Found:
    figure = _legacy_regions()[provider][region]
    return _Found(
        GridIntensity(
            g_per_kwh=figure.g_per_kwh,
            source=f"{provider}-region-legacy",
            year=None,
            country_iso_code=figure.country_iso_code,
            country_name=_country_name(figure.country_iso_code),
            cloud_provider=provider,
            cloud_region=region,
            lifecycle=False,
        ),
        _LEGACY_WARNING.format(provider="AWS" if provider == "aws" else "Azure"),
    )


def _by_region(provider: str, region: str, year: int | None) -> _Found:
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
        listing = " (`carbon-kfp regions` lists them)" if provider == "gcp" else ""
        raise ConfigError(
            f"unknown {provider} cloud_region {region!r}{hint}{listing}"
            f"{close_matches(region, valid)}"
        )
    if provider == "gcp":
        return _by_gcp_region(region, year)
    return _by_legacy_region(provider, region)


def _by_country(value: str, year: int | None) -> _Found:
    iso3 = _normalize_country(value)
    series = _owid_series_of(_owid_code(iso3))
    if series is None:
        raise ConfigError(
            f"no grid intensity for country {value!r} ({_country_name(iso3) or iso3}) in the OWID "
            f"table; pass carbon_intensity_g_per_kwh= instead"
        )
    used, forward = _pick_year(series.years, year)
    return _Found(
        GridIntensity(
            g_per_kwh=series.at(used),
            source="country",
            year=used,
            country_iso_code=iso3,
            country_name=series.entity,
            cloud_provider="",
            cloud_region="",
            lifecycle=True,
        ),
        _year_warning(f"country {iso3}", year, used, forward),
    )


def _world_default(year: int | None, provider: str) -> GridIntensity:
    series = _owid_series_of(_OWID_WORLD)
    if series is None:
        raise DataFileError(f"carbon_kfp/data/{_OWID_PATH} has no {_OWID_WORLD} (world) rows")
    used, forward = _pick_year(series.years, year)
    g_per_kwh = series.at(used)
    why = (
        f"cloud_provider={provider!r} without cloud_region does not locate the run"
        if provider
        else "no location given"
    )
    warn_once(
        f"{why}: using the world-average grid intensity {g_per_kwh:g} gCO2eq/kWh (OWID {used}), "
        f"flagged intensity_source=world-default. Set carbon_intensity_g_per_kwh=, or "
        f"cloud_provider= and cloud_region=, or country_iso_code= (ISO-3 like 'DEU' or ISO-2 "
        f"like 'DE'); on GCP, location='auto' reads the region from CLOUD_ML_REGION or "
        f"GOOGLE_CLOUD_REGION, then the metadata server"
    )
    message = _year_warning("the world average", year, used, forward)
    if message:
        warn_once(message)
    return GridIntensity(
        g_per_kwh=g_per_kwh,
        source="world-default",
        year=used,
        country_iso_code="",
        country_name="World",
        cloud_provider="",
        cloud_region="",
        lifecycle=True,
    )


def _explicit(
    g_per_kwh: float, provider: str, region: str, country: str, year: int | None
) -> GridIntensity:
    """An explicit value, labelled with whatever location the arguments give."""
    iso3 = _normalize_country(country) if country else ""
    if region:
        try:
            located: GridIntensity | None = _by_region(provider, region, year).intensity
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
        country_name=_country_name(iso3) if iso3 else "",
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

    Warns (once per process, via :func:`carbon_kfp.errors.warn_once`): the world default was
    used; an AWS/Azure legacy figure was used; the year asked precedes the place's data.
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
    found: _Found | None = None
    if region:
        found = _by_region(provider, region, year)
        if country:
            _normalize_country(country)  # checked, but the region's own country wins
    elif country:
        found = _by_country(country, year)
    if found is not None:
        if found.warning:
            warn_once(found.warning)
        if provider and not found.intensity.cloud_provider:
            return replace(found.intensity, cloud_provider=provider)
        return found.intensity
    world = _world_default(year, provider)
    return replace(world, cloud_provider=provider) if provider else world
