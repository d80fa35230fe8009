"""Country identity: ISO 3166 codes and names, and the country of a cloud region (no policy here).

Codes are ISO 3166-1 alpha-3 (``"DEU"``); alpha-2 (``"DE"``) is accepted on input. Kosovo has no
ISO code: the user-assigned ``XK``/``XKX`` are mapped to ``XKX``, and OWID files it as
``OWID_KOS``. Names are OWID's spelling where OWID has the country (``"United States"``), else
ISO's. Tables (``iso3166.csv``, and OWID's entity names) are read on first use and cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from carbon_kfp.errors import ConfigError, close_matches
from carbon_kfp.grid_tables import (
    OWID_PATH,
    LegacyRegion,
    legacy_regions,
    owid_series,
    owid_series_of,
)
from carbon_kfp.tables import read_rows, read_rows_matching

_ISO_PATH = "iso3166.csv"


# Kosovo has no ISO 3166-1 code; "XK"/"XKX" are the user-assigned codes in common use, and OWID
# files it under its own code.
_KOSOVO_ISO3 = "XKX"
_KOSOVO_OWID = "OWID_KOS"
_KOSOVO_CODES = {"XK": _KOSOVO_ISO3, "XKX": _KOSOVO_ISO3, _KOSOVO_OWID: _KOSOVO_ISO3}

# Country names in the legacy CodeCarbon table that are neither ISO nor OWID names.
COUNTRY_NAME_ALIASES = {"usa": "USA", "korea": "KOR", "chili": "CHL"}

# GCP regions newer than the legacy CodeCarbon table, which is the only region table naming
# countries. From Google's published region locations (the "Location" column of the yearly files).
GCP_REGION_COUNTRY_SUPPLEMENT = {
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


@functools.cache
def _iso_tables() -> tuple[Mapping[str, str], Mapping[str, str]]:
    """(alpha-2 -> alpha-3, alpha-3 -> ISO name) from ``iso3166.csv``."""
    rows = read_rows(_ISO_PATH)
    return {r["alpha2"]: r["alpha3"] for r in rows}, {r["alpha3"]: r["name"] for r in rows}


def owid_code(iso3: str) -> str:
    """OWID's code for a country (Kosovo differs)."""
    return _KOSOVO_OWID if iso3 == _KOSOVO_ISO3 else iso3


def country_name(iso3: str) -> str:
    """OWID's name for the country (``"United States"``), else the ISO name, else ``""``."""
    series = owid_series_of(owid_code(iso3))
    if series is not None:
        return series.entity
    return _iso_tables()[1].get(iso3, "")


@functools.cache
def iso3_named(name: str) -> str | None:
    """ISO-3 code of a country name, any case, or ``None``.

    Aliases (:data:`COUNTRY_NAME_ALIASES`) first, then OWID's entity names (real countries only,
    not ``OWID_*`` aggregates), then ISO 3166 names. Only the OWID lines that contain the name
    are parsed.
    """
    lowered = name.strip().lower()
    if not lowered:
        return None
    if lowered in COUNTRY_NAME_ALIASES:
        return COUNTRY_NAME_ALIASES[lowered]
    for _, row in read_rows_matching(OWID_PATH, re.compile(re.escape(lowered), re.IGNORECASE)):
        code = row["Code"]
        if row["Entity"].lower() == lowered and code and not code.startswith("OWID_"):
            return code
    return next((code for code, iso in _iso_tables()[1].items() if iso.lower() == lowered), None)


def gcp_region_country(region: str) -> str:
    """ISO-3 code of the country a GCP region is in, ``""`` when no table says."""
    if region in GCP_REGION_COUNTRY_SUPPLEMENT:
        return GCP_REGION_COUNTRY_SUPPLEMENT[region]
    figure = legacy_regions()["gcp"].get(region)
    return legacy_region_country(figure) if figure is not None else ""


def legacy_region_country(figure: LegacyRegion) -> str:
    """ISO-3 code of a legacy-table region's country: by its name where the name is known, else
    the table's code (which says "USA" for every AWS region)."""
    return iso3_named(figure.country_name) or figure.table_iso_code


def normalize_country(value: str) -> str:
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
    by_name = iso3_named(value)
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
    with_data = {c for c in owid_series() if not c.startswith("OWID_")}
    if len(code) == 2:
        candidates = sorted(a2 for a2, a3 in iso2_to_iso3.items() if a3 in with_data)
    else:
        candidates = sorted(with_data)
    return close_matches(code, candidates, cutoff=0.3)
