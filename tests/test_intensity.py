"""Grid intensity lookups: every table row, every fallback, every error message.

Expected values come from reading the packaged CSV files here with :mod:`csv` (an independent
oracle), never from the module under test.
"""

from __future__ import annotations

import csv
import hashlib
import math
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import carbon_kfp.errors
from carbon_kfp import countries, grid_tables, intensity, tables
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.intensity import (
    INTENSITY_SOURCES,
    YEAR_MAX,
    YEAR_MIN,
    GridIntensity,
    gcp_regions,
    resolve_intensity,
    validate_year,
)
from carbon_kfp.tables import DataFileError

DATA = Path(intensity.__file__).parent / "data"


def _csv(relative: str) -> list[dict[str, str]]:
    with open(DATA / relative, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _gcp_oracle() -> dict[int, dict[str, float]]:
    tables = {}
    for path in sorted((DATA / "google-region-carbon").glob("*.csv")):
        rows = _csv(f"google-region-carbon/{path.name}")
        column = next(c for c in rows[0] if "intensity" in c)
        tables[int(path.stem)] = {r["Google Cloud Region"]: float(r[column]) for r in rows}
    return tables


GCP = _gcp_oracle()
GCP_YEARS = sorted(GCP)
NEWEST_GCP_YEAR = GCP_YEARS[-1]
GCP_CASES = [(year, region) for year in GCP_YEARS for region in sorted(GCP[year])]

ISO = _csv("iso3166.csv")
ISO2_TO_ISO3 = {r["alpha2"]: r["alpha3"] for r in ISO}
ISO3_TO_ISO2 = {v: k for k, v in ISO2_TO_ISO3.items()}


def _owid_oracle() -> dict[str, dict[int, float]]:
    series: dict[str, dict[int, float]] = {}
    for row in _csv("owid/carbon-intensity-electricity.csv"):
        if row["Code"]:
            value = float(row["Carbon intensity of electricity per kWh"])
            series.setdefault(row["Code"], {})[int(row["Year"])] = value
    return series


OWID = _owid_oracle()
OWID_NAMES = {
    r["Code"]: r["Entity"] for r in _csv("owid/carbon-intensity-electricity.csv") if r["Code"]
}
COUNTRIES = sorted(code for code in OWID if not code.startswith("OWID_"))


def _legacy_oracle() -> list[list[str]]:
    with open(DATA / "codecarbon/impact_legacy_with_aws_azure.csv", encoding="utf-8-sig") as f:
        return [row for row in csv.reader(f)][1:]


LEGACY = [row for row in _legacy_oracle() if row and row[0] in ("aws", "azure")]


def _newest_at_or_before(years: dict[int, float], year: int | None) -> int:
    if year is None:
        return max(years)
    earlier = [y for y in years if y <= year]
    return max(earlier) if earlier else min(years)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees warn_once's messages afresh."""
    monkeypatch.setattr(carbon_kfp.errors, "_seen", set())


@pytest.fixture
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CarbonKfpWarning)
        yield


def _messages(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, CarbonKfpWarning)]


# ---------------------------------------------------------------------------------------------
# Google Cloud regions


def test_oracle_sanity() -> None:
    assert GCP_YEARS == [2019, 2020, 2021, 2022, 2023, 2024]
    assert len(GCP_CASES) == 24 + 27 + 34 + 36 + 40 + 44
    assert len(COUNTRIES) > 200


@pytest.mark.parametrize(("year", "region"), GCP_CASES)
def test_every_gcp_region_in_every_yearly_file_resolves(year: int, region: str) -> None:
    result = resolve_intensity(cloud_provider="gcp", cloud_region=region, year=year)
    assert result == GridIntensity(
        g_per_kwh=GCP[year][region],
        source="gcp-region",
        year=year,
        country_iso_code=result.country_iso_code,
        country_name=result.country_name,
        cloud_provider="gcp",
        cloud_region=region,
        lifecycle=year in (2019, 2020),
    )
    assert result.country_iso_code in ISO3_TO_ISO2
    assert result.country_name


@pytest.mark.parametrize("region", sorted(GCP[NEWEST_GCP_YEAR]))
def test_gcp_default_year_is_newest_file(region: str) -> None:
    result = resolve_intensity(cloud_provider="gcp", cloud_region=region)
    assert (result.year, result.g_per_kwh, result.lifecycle) == (
        NEWEST_GCP_YEAR,
        GCP[NEWEST_GCP_YEAR][region],
        False,
    )


@pytest.mark.parametrize("year", [2025, 2026, 2031, YEAR_MAX])
def test_gcp_year_past_newest_uses_newest_and_records_it(year: int) -> None:
    result = resolve_intensity(cloud_provider="gcp", cloud_region="us-central1", year=year)
    assert result.year == NEWEST_GCP_YEAR
    assert result.g_per_kwh == 412.72


@pytest.mark.parametrize(
    ("region", "year", "expected_year", "expected_g"),
    [
        ("us-central1", 2019, 2019, 479.0),
        ("us-central1", 2020, 2020, 454.0),
        ("us-central1", 2021, 2021, 394.0),
        ("europe-west4", 2023, 2023, 236.0),
        ("europe-west4", 2024, 2024, 208.81),
        ("asia-south2", 2020, 2020, 657.0),  # first listed in 2020
        ("europe-west10", 2024, 2024, 275.82),
    ],
)
def test_gcp_known_values(region: str, year: int, expected_year: int, expected_g: float) -> None:
    result = resolve_intensity(cloud_provider="gcp", cloud_region=region, year=year)
    assert (result.year, result.g_per_kwh) == (expected_year, expected_g)


@pytest.mark.parametrize("region", sorted(set().union(*GCP.values())))
def test_gcp_year_fallback_for_every_region_and_year(region: str, quiet: None) -> None:
    listed = {y: GCP[y][region] for y in GCP_YEARS if region in GCP[y]}
    for year in range(YEAR_MIN, 2031):
        expected_year = _newest_at_or_before(listed, year)
        result = resolve_intensity(cloud_region=region, year=year)
        assert (result.year, result.g_per_kwh) == (expected_year, listed[expected_year]), year
        assert result.lifecycle == (expected_year <= 2020), year


def test_gcp_region_newer_than_year_asked_uses_earliest_and_warns() -> None:
    with pytest.warns(CarbonKfpWarning, match=r"northamerica-south1.*2021 or earlier.*2024"):
        result = resolve_intensity(cloud_region="northamerica-south1", year=2021)
    assert (result.year, result.g_per_kwh) == (2024, 305.0)


def test_gcp_year_before_all_files_uses_2019_with_warning() -> None:
    with pytest.warns(CarbonKfpWarning, match=r"2000 or earlier; using its earliest year, 2019"):
        result = resolve_intensity(cloud_region="us-west1", year=2000)
    assert (result.year, result.g_per_kwh, result.lifecycle) == (2019, 117.0, True)


def test_gcp_zero_intensity_row_is_kept() -> None:
    # Google reports 0 for Montréal in 2021 and 2022; keep it rather than invent a figure.
    result = resolve_intensity(cloud_region="northamerica-northeast1", year=2021)
    assert result.g_per_kwh == 0.0


@pytest.mark.parametrize(
    ("region", "iso3", "name"),
    [
        ("us-central1", "USA", "United States"),
        ("europe-west4", "NLD", "Netherlands"),
        ("southamerica-west1", "CHL", "Chile"),  # "Chili" in the CodeCarbon table
        ("asia-northeast3", "KOR", "South Korea"),  # "Korea" in the CodeCarbon table
        ("asia-east1", "TWN", "Taiwan"),
        ("asia-east2", "CHN", "China"),  # as CodeCarbon's table has it
        ("africa-south1", "ZAF", "South Africa"),
        ("me-central1", "QAT", "Qatar"),
        ("europe-north2", "SWE", "Sweden"),
        ("northamerica-south1", "MEX", "Mexico"),
        ("us-east2", "USA", "United States"),
    ],
)
def test_gcp_region_country(region: str, iso3: str, name: str) -> None:
    result = resolve_intensity(cloud_provider="gcp", cloud_region=region)
    assert (result.country_iso_code, result.country_name) == (iso3, name)


@pytest.mark.parametrize("year", [None, *GCP_YEARS, 2018, 2030])
def test_gcp_regions_lists_the_file_for_the_year(year: int | None, quiet: None) -> None:
    expected_year = _newest_at_or_before({y: 0.0 for y in GCP_YEARS}, year)
    regions = gcp_regions(year)
    assert regions == tuple(sorted(GCP[expected_year]))
    assert all(resolve_intensity(cloud_region=r, year=year).year == expected_year for r in regions)


def test_gcp_regions_rejects_bad_year() -> None:
    with pytest.raises(ConfigError, match=r"year must be an integer"):
        gcp_regions("2024")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "region"),
    [
        ("GCP", "us-central1"),
        ("gcp", "US-CENTRAL1"),
        (" gcp ", " us-central1 "),
        ("google", "us-central1"),
        ("Google", "Us-Central1"),
        (None, "us-central1"),
        ("", "us-central1"),
    ],
)
def test_gcp_spellings(provider: str | None, region: str) -> None:
    result = resolve_intensity(cloud_provider=provider, cloud_region=region)
    assert (result.cloud_provider, result.cloud_region, result.source) == (
        "gcp",
        "us-central1",
        "gcp-region",
    )


# ---------------------------------------------------------------------------------------------
# AWS / Azure (legacy table)


@pytest.mark.parametrize("row", LEGACY, ids=[f"{r[0]}:{r[3]}" for r in LEGACY])
def test_every_legacy_aws_azure_region_resolves(row: list[str], quiet: None) -> None:
    provider, region, impact = row[0], row[3], float(row[9])
    for given_provider in (provider, None, provider.upper()):
        result = resolve_intensity(cloud_provider=given_provider, cloud_region=region)
        assert result.g_per_kwh == impact
        assert result.source == f"{provider}-region-legacy"
        assert (result.cloud_provider, result.cloud_region) == (provider, region)
        assert result.year is None
        assert result.lifecycle is False
        assert result.country_iso_code in ISO3_TO_ISO2
        assert result.country_name


def test_legacy_table_counts() -> None:
    assert sum(r[0] == "aws" for r in LEGACY) == 22
    assert sum(r[0] == "azure" for r in LEGACY) == 32


@pytest.mark.parametrize(
    ("region", "iso3"),
    [
        # The legacy table's AWS countryIsoCode column says USA everywhere; the name is right.
        ("ap-south-1", "IND"),
        ("ap-east-1", "CHN"),
        ("ap-northeast-1", "JPN"),
        ("ap-northeast-2", "KOR"),
        ("ap-southeast-2", "AUS"),
        ("ca-central-1", "CAN"),
        ("cn-north-1", "CHN"),
        ("eu-west-1", "IRL"),
        ("eu-north-1", "SWE"),
        ("us-east-1", "USA"),
        ("eastasia", "HKG"),
        ("westeurope", "NLD"),
        ("southafricanorth", "ZAF"),
    ],
)
def test_legacy_region_country(region: str, iso3: str, quiet: None) -> None:
    assert resolve_intensity(cloud_region=region).country_iso_code == iso3


def test_legacy_short_row_is_read() -> None:
    # Azure westcentralus has 11 fields for a 12-column header upstream.
    with pytest.warns(CarbonKfpWarning):
        result = resolve_intensity(cloud_provider="azure", cloud_region="westcentralus")
    assert result.g_per_kwh == 297.6


@pytest.mark.parametrize(("provider", "label"), [("aws", "AWS"), ("azure", "Azure")])
def test_legacy_warns_once_that_data_is_old(provider: str, label: str) -> None:
    region = {"aws": "eu-west-1", "azure": "northeurope"}[provider]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        resolve_intensity(cloud_provider=provider, cloud_region=region)
        resolve_intensity(cloud_provider=provider, cloud_region=region)
        resolve_intensity(cloud_provider=provider, cloud_region=region, year=2024)
    messages = _messages(record)
    assert len(messages) == 1
    assert messages[0].startswith(f"{label} region grid intensities")
    assert "old" in messages[0]
    assert "carbon_intensity_g_per_kwh" in messages[0]


def _warnings_of(**kwargs: Any) -> list[str]:
    """Every carbon-kfp warning of one lookup: emitted (recorded, not escalated: ``warn_once``
    never raises) and kept for the record."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = resolve_intensity(**kwargs)
    return [*_messages(record), *result.warnings]


def test_item20_gcp_lookup_does_not_warn() -> None:
    assert _warnings_of(cloud_provider="gcp", cloud_region="europe-west1") == []
    # The same check sees a warning where there is one (issue 10, item 20: it can fail).
    assert _warnings_of(cloud_provider="gcp", cloud_region="europe-west1", year=2100) != []


# ---------------------------------------------------------------------------------------------
# Countries


@pytest.mark.parametrize("iso3", COUNTRIES)
def test_every_owid_country_iso2_and_iso3_agree(iso3: str) -> None:
    newest = max(OWID[iso3])
    by_iso3 = resolve_intensity(country_iso_code=iso3)
    assert by_iso3 == GridIntensity(
        g_per_kwh=OWID[iso3][newest],
        source="country",
        year=newest,
        country_iso_code=iso3,
        country_name=OWID_NAMES[iso3],
        cloud_provider="",
        cloud_region="",
        lifecycle=True,
    )
    assert resolve_intensity(country_iso_code=iso3.lower()) == by_iso3
    if iso3 in ISO3_TO_ISO2:
        iso2 = ISO3_TO_ISO2[iso3]
        assert resolve_intensity(country_iso_code=iso2) == by_iso3
        assert resolve_intensity(country_iso_code=iso2.lower()) == by_iso3


def test_every_owid_iso_code_is_in_the_iso_table() -> None:
    assert set(COUNTRIES) - {"OWID_KOS"} <= set(ISO3_TO_ISO2)
    assert len(ISO) == 249
    assert len(ISO2_TO_ISO3) == len(ISO3_TO_ISO2) == 249


@given(
    iso3=st.sampled_from([c for c in COUNTRIES if c in ISO3_TO_ISO2]),
    mask=st.lists(st.booleans(), min_size=3, max_size=3),
    year=st.one_of(st.none(), st.integers(YEAR_MIN, YEAR_MAX)),
)
def test_country_code_case_and_length_do_not_matter(
    iso3: str, mask: list[bool], year: int | None
) -> None:
    def mixed(code: str) -> str:
        return "".join(c.lower() if m else c for c, m in zip(code, mask, strict=False))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CarbonKfpWarning)
        a = resolve_intensity(country_iso_code=mixed(iso3), year=year)
        b = resolve_intensity(country_iso_code=mixed(ISO3_TO_ISO2[iso3]), year=year)
    assert a == b
    expected_year = _newest_at_or_before(OWID[iso3], year)
    assert (a.year, a.g_per_kwh) == (expected_year, OWID[iso3][expected_year])


@pytest.mark.parametrize("iso3", COUNTRIES)
def test_country_year_fallback_every_year(iso3: str, quiet: None) -> None:
    for year in range(YEAR_MIN, 2031):
        expected_year = _newest_at_or_before(OWID[iso3], year)
        result = resolve_intensity(country_iso_code=iso3, year=year)
        assert (result.year, result.g_per_kwh) == (expected_year, OWID[iso3][expected_year])


@pytest.mark.parametrize(
    ("code", "year", "expected_year", "expected_g"),
    [
        ("USA", 2025, 2025, 384.4),
        ("USA", 2023, 2023, 392.9),
        ("SGP", None, 2025, 497.1),
        ("CHN", 2024, 2024, 555.4),
        ("DE", None, 2025, 329.65),
        ("fr", 2030, 2025, OWID["FRA"][2025]),
    ],
)
def test_country_known_values(
    code: str, year: int | None, expected_year: int, expected_g: float
) -> None:
    result = resolve_intensity(country_iso_code=code, year=year)
    assert result.year == expected_year
    assert result.g_per_kwh == pytest.approx(expected_g, abs=0.05)


def test_country_newest_year_with_a_value_differs_by_country() -> None:
    # 2025 has values for only some countries; the others fall back to their own newest year.
    without_2025 = [c for c in COUNTRIES if 2025 not in OWID[c]]
    assert without_2025
    for code in without_2025:
        assert resolve_intensity(country_iso_code=code).year == max(OWID[code])


def test_country_year_before_its_data_uses_earliest_and_warns() -> None:
    late = next(c for c in COUNTRIES if min(OWID[c]) > YEAR_MIN)
    first = min(OWID[late])
    with pytest.warns(CarbonKfpWarning, match=rf"country {late}.*{YEAR_MIN} or earlier"):
        result = resolve_intensity(country_iso_code=late, year=YEAR_MIN)
    assert result.year == first


@pytest.mark.parametrize("code", ["XK", "xkx", "OWID_KOS"])
def test_kosovo(code: str) -> None:
    result = resolve_intensity(country_iso_code=code)
    assert (result.country_iso_code, result.country_name) == ("XKX", "Kosovo")
    assert result.g_per_kwh == OWID["OWID_KOS"][max(OWID["OWID_KOS"])]


# ---------------------------------------------------------------------------------------------
# World default and priority


def test_no_location_is_world_default_with_one_warning() -> None:
    world = OWID["OWID_WRL"]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first = resolve_intensity()
        second = resolve_intensity()
    assert (
        first
        == second
        == GridIntensity(
            g_per_kwh=world[max(world)],
            source="world-default",
            year=max(world),
            country_iso_code="",
            country_name="World",
            cloud_provider="",
            cloud_region="",
            lifecycle=True,
        )
    )
    messages = _messages(record)
    assert len(messages) == 1
    for needed in (
        "world-default",
        "carbon_intensity_g_per_kwh=",
        "cloud_provider=",
        "cloud_region=",
        "country_iso_code=",
        "CLOUD_ML_REGION",
        "GOOGLE_CLOUD_REGION",
        "458.29",
    ):
        assert needed in messages[0]


def test_world_default_year() -> None:
    with pytest.warns(CarbonKfpWarning):
        result = resolve_intensity(year=2010)
    assert (result.year, result.g_per_kwh) == (2010, OWID["OWID_WRL"][2010])


def test_provider_without_region_records_provider_and_falls_back() -> None:
    with pytest.warns(CarbonKfpWarning, match=r"cloud_provider='aws' without cloud_region"):
        world = resolve_intensity(cloud_provider="AWS")
    assert (world.source, world.cloud_provider) == ("world-default", "aws")
    country = resolve_intensity(cloud_provider="gcp", country_iso_code="DEU")
    assert (country.source, country.cloud_provider, country.country_iso_code) == (
        "country",
        "gcp",
        "DEU",
    )


def test_region_beats_country_and_country_beats_world() -> None:
    region = resolve_intensity(cloud_region="europe-west9", country_iso_code="POL")
    assert (region.source, region.country_iso_code) == ("gcp-region", "FRA")
    assert resolve_intensity(country_iso_code="POL").source == "country"


def test_blank_strings_count_as_not_given() -> None:
    result = resolve_intensity(cloud_provider=" ", cloud_region="", country_iso_code="DE")
    assert result.source == "country"


@given(st.floats(min_value=1e-6, max_value=1e5, allow_nan=False, allow_infinity=False))
def test_explicit_value_wins(value: float) -> None:
    result = resolve_intensity(
        carbon_intensity_g_per_kwh=value, cloud_region="us-central1", country_iso_code="FRA"
    )
    assert result == GridIntensity(
        g_per_kwh=value,
        source="explicit",
        year=None,
        country_iso_code="USA",
        country_name="United States",
        cloud_provider="gcp",
        cloud_region="us-central1",
        lifecycle=False,
    )


def test_explicit_alone_and_with_year_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = resolve_intensity(carbon_intensity_g_per_kwh=42, year=2023)
        legacy = resolve_intensity(carbon_intensity_g_per_kwh=42, cloud_region="eu-west-1")
    assert (result.g_per_kwh, result.source, result.year, result.country_iso_code) == (
        42.0,
        "explicit",
        2023,
        "",
    )
    assert (legacy.cloud_provider, legacy.country_iso_code) == ("aws", "IRL")


def test_explicit_value_labels_regions_and_countries_the_tables_lack() -> None:
    new_region = resolve_intensity(
        carbon_intensity_g_per_kwh=120.0, cloud_provider="aws", cloud_region="ap-southeast-5"
    )
    assert (new_region.cloud_provider, new_region.cloud_region, new_region.source) == (
        "aws",
        "ap-southeast-5",
        "explicit",
    )
    labelled = resolve_intensity(
        carbon_intensity_g_per_kwh=120.0, cloud_region="Somewhere-1", country_iso_code="MY"
    )
    assert (labelled.cloud_region, labelled.country_iso_code, labelled.country_name) == (
        "somewhere-1",
        "MYS",
        "Malaysia",
    )
    no_data = resolve_intensity(carbon_intensity_g_per_kwh=300.0, country_iso_code="VA")
    assert (no_data.country_iso_code, no_data.country_name) == ("VAT", "Holy See")


def test_explicit_country_fills_names() -> None:
    result = resolve_intensity(carbon_intensity_g_per_kwh=100.0, country_iso_code="se")
    assert (result.country_iso_code, result.country_name, result.cloud_provider) == (
        "SWE",
        "Sweden",
        "",
    )


# ---------------------------------------------------------------------------------------------
# Errors (the message names the value and close valid ones)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (0, r"finite number > 0 \(gCO2eq/kWh\), got 0$"),
        (0.0, r"> 0 .*got 0\.0$"),
        (-1, r"> 0 .*got -1$"),
        (-1e-9, r"> 0 .*got -1e-09$"),
        (float("nan"), r"> 0 .*got nan$"),
        (float("inf"), r"> 0 .*got inf$"),
        (float("-inf"), r"> 0 .*got -inf$"),
        ("100", r"must be a number of gCO2eq/kWh, got '100'"),
        (True, r"must be a number of gCO2eq/kWh, got True"),
    ],
)
def test_bad_explicit_intensity(value: object, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        resolve_intensity(carbon_intensity_g_per_kwh=value)  # type: ignore[arg-type]


@given(
    st.one_of(
        st.floats(max_value=0.0),
        st.just(math.nan),
        st.just(math.inf),
    )
)
def test_non_positive_or_non_finite_explicit_always_fails(value: float) -> None:
    with pytest.raises(ConfigError, match="carbon_intensity_g_per_kwh"):
        resolve_intensity(carbon_intensity_g_per_kwh=value)


def test_unknown_country_lists_close_codes() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_intensity(country_iso_code="XYZ")
    message = str(info.value)
    assert "unknown country_iso_code 'XYZ'" in message
    assert "ISO 3166-1 alpha-3" in message
    assert "closest valid: " in message
    closest = message.split("closest valid: ")[1].split(", ")
    assert closest and all(code in OWID for code in closest)


@pytest.mark.parametrize(
    ("value", "expected_in_message"),
    [
        ("DEX", ["'DEX'", "DEU"]),
        ("FRN", ["'FRN'", "FRA"]),
        ("GX", ["'GX'", "closest valid:"]),
        ("Germany", ["'Germany' is the name of 'DEU'"]),
        ("united states", ["is the name of 'USA'"]),
        ("D", ["'D'"]),
        ("DEUT", ["'DEUT'"]),
        ("OWID_WRL", ["'OWID_WRL'"]),
        ("EU", ["'EU'"]),
    ],
)
def test_country_errors(value: str, expected_in_message: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_intensity(country_iso_code=value)
    for text in expected_in_message:
        assert text in str(info.value)


@pytest.mark.parametrize("code", ["VA", "VAT", "aq", "MCO"])
def test_iso_country_without_data_says_so(code: str) -> None:
    with pytest.raises(ConfigError, match=r"no grid intensity for country .* in the OWID table"):
        resolve_intensity(country_iso_code=code)


def test_unknown_gcp_region_lists_close_regions() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_intensity(cloud_provider="gcp", cloud_region="europe-west99")
    message = str(info.value)
    assert "unknown gcp cloud_region 'europe-west99'" in message
    assert "carbon-kfp regions" in message
    assert "closest valid: europe-west9" in message


def test_unknown_region_without_provider() -> None:
    with pytest.raises(ConfigError, match=r"unknown cloud_region 'europe-west99'.*europe-west9"):
        resolve_intensity(cloud_region="europe-west99")


@pytest.mark.parametrize(
    ("provider", "region", "pieces"),
    [
        ("aws", "us-central1", ["unknown aws cloud_region 'us-central1'", "is a gcp region"]),
        ("gcp", "eu-west-1", ["unknown gcp cloud_region 'eu-west-1'", "is a aws region"]),
        ("gcp", "westeurope", ["'westeurope' is a azure region"]),
        ("azure", "us-east-1", ["unknown azure cloud_region 'us-east-1'", "aws region"]),
        ("aws", "us-east-9", ["'us-east-9'", "closest valid: us-east-2, us-east-1"]),
        ("gcp", "us-central1-a", ["'us-central1-a'", "closest valid: us-central1"]),
    ],
)
def test_region_of_another_provider(provider: str, region: str, pieces: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_intensity(cloud_provider=provider, cloud_region=region)
    for piece in pieces:
        assert piece in str(info.value)


@pytest.mark.parametrize("provider", ["ibm", "oracle", "gcpp", "AZ"])
def test_unknown_provider(provider: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown cloud_provider '{provider}'.*gcp, aws, azure"):
        resolve_intensity(cloud_provider=provider, cloud_region="us-central1")


def test_unknown_provider_close_match() -> None:
    with pytest.raises(ConfigError, match=r"closest valid: gcp"):
        resolve_intensity(cloud_provider="gcpp")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"cloud_provider": 3}, r"cloud_provider must be a string"),
        ({"cloud_region": 3}, r"cloud_region must be a string, got 3"),
        ({"country_iso_code": 276}, r"country_iso_code must be a string, got 276"),
    ],
)
def test_non_string_location_arguments(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        resolve_intensity(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("year", "pattern"),
    [
        (2024.0, r"year must be an integer data year \(1990-2100\) or None, got 2024\.0"),
        ("2024", r"year must be an integer .* got '2024'"),
        (True, r"year must be an integer .* got True"),
        (1989, r"year 1989 is outside the accepted range 1990-2100"),
        (2101, r"year 2101 is outside"),
        (-5, r"year -5 is outside"),
        (20240, r"year 20240 is outside"),
    ],
)
def test_bad_year(year: object, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        resolve_intensity(country_iso_code="DEU", year=year)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=pattern):
        resolve_intensity(carbon_intensity_g_per_kwh=10.0, year=year)  # type: ignore[arg-type]


@given(st.integers())
def test_validate_year_accepts_exactly_the_range(year: int) -> None:
    if YEAR_MIN <= year <= YEAR_MAX:
        assert validate_year(year) == year
    else:
        with pytest.raises(ConfigError, match=str(year)):
            validate_year(year)


def test_every_argument_is_checked_even_when_overridden() -> None:
    with pytest.raises(ConfigError, match="XYZ"):
        resolve_intensity(carbon_intensity_g_per_kwh=50.0, country_iso_code="XYZ")
    with pytest.raises(ConfigError, match="XYZ"):
        resolve_intensity(cloud_region="us-central1", country_iso_code="XYZ")
    with pytest.raises(ConfigError, match="ibm"):
        resolve_intensity(carbon_intensity_g_per_kwh=50.0, cloud_provider="ibm")


# ---------------------------------------------------------------------------------------------
# Record invariants, loading, malformed data


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"g_per_kwh": -1.0}, "finite and >= 0"),
        ({"g_per_kwh": math.nan}, "finite and >= 0"),
        ({"source": "guess"}, "source must be one of"),
    ],
)
def test_grid_intensity_invariants(kwargs: dict[str, object], pattern: str) -> None:
    fields: dict[str, object] = {
        "g_per_kwh": 1.0,
        "source": "explicit",
        "year": None,
        "country_iso_code": "",
        "country_name": "",
        "cloud_provider": "",
        "cloud_region": "",
        "lifecycle": False,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        GridIntensity(**fields)  # type: ignore[arg-type]


def test_sources_are_the_documented_ones() -> None:
    assert INTENSITY_SOURCES == (
        "explicit",
        "gcp-region",
        "aws-region-legacy",
        "azure-region-legacy",
        "country",
        "world-default",
    )


def test_import_reads_no_file() -> None:
    code = (
        "import carbon_kfp.intensity, carbon_kfp.pue, carbon_kfp.location\n"
        "from carbon_kfp import tables\n"
        "assert tables.read_text.cache_info().currsize == 0, tables.read_text.cache_info()\n"
        "assert tables.read_rows.cache_info().currsize == 0\n"
        "import sys\n"
        "assert not {'numpy', 'pandas', 'requests', 'kfp'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.fixture
def fresh_tables() -> Iterator[None]:
    caches = [
        grid_tables.gcp_years,
        countries._iso_tables,
        grid_tables.owid_series,
        grid_tables.owid_series_of,
        countries.iso3_named,
        grid_tables.legacy_regions,
    ]
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


def test_tables_are_cached(fresh_tables: None) -> None:
    resolve_intensity(country_iso_code="DEU")
    resolve_intensity(country_iso_code="DEU")
    info = grid_tables.owid_series_of.cache_info()
    assert (info.misses, info.currsize) == (1, 1)
    assert grid_tables.owid_series.cache_info().currsize == 0  # one country parses one country


def test_a_gcp_region_parses_only_the_countries_it_needs(fresh_tables: None) -> None:
    found = resolve_intensity(cloud_provider="gcp", cloud_region="europe-west2")
    assert (found.country_iso_code, found.country_name) == ("GBR", "United Kingdom")
    assert grid_tables.owid_series.cache_info().currsize == 0


def test_one_countrys_series_is_the_whole_tables() -> None:
    every = grid_tables.owid_series()
    for code, series in every.items():  # exhaustive: all 200-odd codes and aggregates
        assert grid_tables.owid_series_of(code) == series


@given(st.text(max_size=8) | st.sampled_from(["", "US", "USA,", ",USA", "WRL", "OWID", "2024"]))
def test_a_code_without_a_series_has_none(code: str) -> None:
    assert grid_tables.owid_series_of(code) == grid_tables.owid_series().get(code)


def full_name_table() -> dict[str, str]:
    """Every name the tables know, by the precedence ISO < OWID < aliases."""
    names = {name.lower(): code for code, name in countries._iso_tables()[1].items()}
    for code, series in grid_tables.owid_series().items():
        if not code.startswith("OWID_"):
            names[series.entity.lower()] = code
    names.update(countries.COUNTRY_NAME_ALIASES)
    return names


def test_each_country_name_resolves_as_in_the_whole_name_table() -> None:
    names = full_name_table()
    legacy = [
        r.country_name
        for regions in grid_tables.legacy_regions().values()
        for r in regions.values()
    ]
    spellings = [*names, *(name.upper() for name in names), *legacy, "", "atlantis", "World"]
    for name in spellings:
        assert countries.iso3_named(name) == names.get(name.strip().lower()), name


def test_region_countries_are_the_legacy_tables_by_name() -> None:
    names = full_name_table()
    for provider, regions in grid_tables.legacy_regions().items():
        for region, figure in regions.items():
            expected = names.get(figure.country_name.lower(), figure.table_iso_code)
            assert countries.legacy_region_country(figure) == expected
            if provider == "gcp" and region not in countries.GCP_REGION_COUNTRY_SUPPLEMENT:
                assert countries.gcp_region_country(region) == expected
    for region, iso3 in countries.GCP_REGION_COUNTRY_SUPPLEMENT.items():
        assert countries.gcp_region_country(region) == iso3


def test_malformed_owid_value_names_file_and_line(
    fresh_tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = f"Entity,Code,Year,{grid_tables.OWID_VALUE_COLUMN}\nGermany,DEU,2024,3x\n"
    real_read_text = tables.read_text
    monkeypatch.setattr(
        tables, "read_text", lambda path: text if path.startswith("owid/") else real_read_text(path)
    )
    with pytest.raises(DataFileError, match=r"owid/carbon-intensity-electricity.csv line 2.*'3x'"):
        resolve_intensity(country_iso_code="DEU")


def test_malformed_legacy_row_names_file_and_line(
    fresh_tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "provider,providerName,offsetRatio,region,regionName,country_name,countryIsoCode,state,"
        "city,impact,source,comment\naws,Amazon,0,us-east-1,x\n"
    )
    monkeypatch.setattr(grid_tables, "read_text", lambda path: text)
    with pytest.raises(DataFileError, match=r"impact_legacy_with_aws_azure.csv line 2: 5 fields"):
        resolve_intensity(cloud_provider="aws", cloud_region="us-east-1")


# ---------------------------------------------------------------------------------------------
# Provenance of the packaged data


def _provenance_checksums() -> dict[str, str]:
    text = (DATA / "PROVENANCE.md").read_text(encoding="utf-8")
    block = text.split("## Checksums of every file")[1].split("```")[1]
    listed = {}
    for line in block.strip().splitlines():
        digest, path = line.split()
        listed[path.removeprefix("./")] = digest
    return listed


def test_every_packaged_data_file_has_provenance_and_checksum() -> None:
    shipped = {
        path.relative_to(DATA).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in DATA.rglob("*")
        if path.is_file() and path.name != "PROVENANCE.md" and "__pycache__" not in path.parts
    }
    assert shipped == _provenance_checksums()


def test_notice_names_every_licence_file() -> None:
    notice = (DATA.parents[1] / "NOTICE").read_text(encoding="utf-8")
    for licence in (DATA / "licenses").iterdir():
        assert f"licenses/{licence.name}" in notice
    for attribution in (
        "Apache License",
        "Code Carbon NGO",
        "Our World in Data",
        "Ember",
        "Energy Institute",
        "Lannelongue",
        "mlco2/impact",
        "Thoughtworks",
        "Cortez",
        "CC BY 4.0",
    ):
        assert attribution in notice
