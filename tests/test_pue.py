"""PUE: explicit > provider + year (from the packaged reference table) > 1.0 off-cloud."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp import pue as pue_module
from carbon_kfp.errors import ConfigError
from carbon_kfp.pue import OFF_CLOUD_PUE, PowerUsageEffectiveness, resolve_pue
from carbon_kfp.tables import DataFileError
from carbon_kfp.yearly import YEAR_MAX, YEAR_MIN

TABLE = Path(pue_module.__file__).parent / "data" / "compiled" / "cloud_pue_reference.csv"
OPERATORS = {
    "gcp": ("Google", "google-fleet"),
    "aws": ("AWS", "aws-global"),
    "azure": ("Microsoft", "microsoft-global"),
}


def _oracle() -> dict[str, dict[int, float]]:
    with open(TABLE, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    series: dict[str, dict[int, float]] = {}
    for row in rows:
        series.setdefault(row["operator"], {})[int(row["period"].removeprefix("FY"))] = float(
            row["pue"]
        )
    return series


ORACLE = _oracle()


def _expected(provider: str, year: int | None) -> tuple[float, int]:
    values = ORACLE[OPERATORS[provider][0]]
    if year is None:
        chosen = max(values)
    else:
        earlier = [y for y in values if y <= year]
        chosen = max(earlier) if earlier else min(values)
    return values[chosen], chosen


def test_oracle_has_the_documented_figures() -> None:
    assert ORACLE["Google"] == {2020: 1.10, 2023: 1.10, 2024: 1.09, 2025: 1.09}
    assert ORACLE["AWS"] == {2023: 1.15, 2024: 1.15, 2025: 1.14}
    assert ORACLE["Microsoft"] == {2024: 1.16, 2025: 1.17}


@pytest.mark.parametrize("provider", sorted(OPERATORS))
@pytest.mark.parametrize("year", [None, *range(YEAR_MIN, 2031), YEAR_MAX])
def test_provider_and_year_pick_newest_period_at_or_before(provider: str, year: int | None) -> None:
    value, used_year = _expected(provider, year)
    assert resolve_pue(cloud_provider=provider, year=year) == PowerUsageEffectiveness(
        value, OPERATORS[provider][1], used_year
    )


@pytest.mark.parametrize(
    ("provider", "year", "value", "used_year"),
    [
        ("gcp", 2024, 1.09, 2024),  # DESIGN §2: "Google 1.09 in 2024"
        ("gcp", 2022, 1.10, 2020),
        ("gcp", 2019, 1.10, 2020),  # before the first period: the earliest
        ("gcp", None, 1.09, 2025),
        ("aws", 2024, 1.15, 2024),
        ("aws", None, 1.14, 2025),
        ("azure", 2024, 1.16, 2024),
        ("azure", 2030, 1.17, 2025),
    ],
)
def test_known_values(provider: str, year: int | None, value: float, used_year: int) -> None:
    result = resolve_pue(cloud_provider=provider, year=year)
    assert (result.value, result.year) == (value, used_year)


def test_not_one_hard_coded_value() -> None:
    values = {resolve_pue(cloud_provider=p, year=y).value for p in OPERATORS for y in (2023, 2025)}
    assert len(values) >= 4


@pytest.mark.parametrize(
    ("spelling", "provider"),
    [("GCP", "gcp"), ("google", "gcp"), (" Google ", "gcp"), ("AMAZON", "aws"), ("Azure", "azure")],
)
def test_provider_spellings(spelling: str, provider: str) -> None:
    assert resolve_pue(cloud_provider=spelling) == resolve_pue(cloud_provider=provider)


@pytest.mark.parametrize("provider", [None, "", "  "])
@pytest.mark.parametrize("year", [None, 2024])
def test_off_cloud_default(provider: str | None, year: int | None) -> None:
    assert resolve_pue(cloud_provider=provider, year=year) == PowerUsageEffectiveness(
        1.0, "off-cloud-default", None
    )
    assert OFF_CLOUD_PUE == 1.0


@given(
    value=st.floats(min_value=1.0, max_value=10.0),
    provider=st.sampled_from([None, "gcp", "aws", "azure"]),
    year=st.one_of(st.none(), st.integers(YEAR_MIN, YEAR_MAX)),
)
def test_explicit_wins(value: float, provider: str | None, year: int | None) -> None:
    assert resolve_pue(pue=value, cloud_provider=provider, year=year) == PowerUsageEffectiveness(
        value, "explicit", None
    )


def test_explicit_int_is_accepted() -> None:
    assert resolve_pue(pue=1).value == 1.0


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (0.5, r"pue must be a finite number >= 1\.0 \(facility energy / IT energy.*got 0\.5$"),
        (-1, r">= 1\.0 .*got -1$"),
        (0, r">= 1\.0 .*got 0$"),
        (0.999, r">= 1\.0 .*got 0\.999$"),
        (math.nan, r">= 1\.0 .*got nan$"),
        (math.inf, r">= 1\.0 .*got inf$"),
        ("1.1", r"pue must be a number >= 1\.0 \(facility/IT energy\), got '1\.1'"),
        (True, r"pue must be a number .* got True"),
        (None, None),
    ],
)
def test_bad_explicit_pue(value: object, pattern: str | None) -> None:
    if pattern is None:  # None means "not given"
        assert resolve_pue(pue=None).source == "off-cloud-default"
        return
    with pytest.raises(ConfigError, match=pattern):
        resolve_pue(pue=value, cloud_provider="gcp")  # type: ignore[arg-type]


@given(st.one_of(st.floats(max_value=0.9999999), st.just(math.nan), st.just(math.inf)))
def test_every_pue_below_one_or_non_finite_fails(value: float) -> None:
    with pytest.raises(ConfigError, match=r"pue must be a finite number >= 1\.0"):
        resolve_pue(pue=value)


@pytest.mark.parametrize("provider", ["ibm", "gcpp", "digitalocean"])
def test_unknown_provider(provider: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown cloud_provider '{provider}'.*gcp, aws, azure"):
        resolve_pue(cloud_provider=provider)


def test_non_string_provider() -> None:
    with pytest.raises(ConfigError, match=r"cloud_provider must be a string.*got 7"):
        resolve_pue(cloud_provider=7)  # type: ignore[arg-type]


def test_provider_checked_even_with_explicit_pue() -> None:
    with pytest.raises(ConfigError, match="ibm"):
        resolve_pue(pue=1.2, cloud_provider="ibm")


@pytest.mark.parametrize(
    ("year", "pattern"),
    [
        (2024.5, r"year must be an integer"),
        ("2024", r"year must be an integer"),
        (1800, r"year 1800 is outside the accepted range"),
    ],
)
def test_bad_year(year: object, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        resolve_pue(cloud_provider="gcp", year=year)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.99, -1.0, math.nan, math.inf])
def test_record_invariant(value: float) -> None:
    with pytest.raises(ValueError, match=r"PUE must be finite and >= 1\.0"):
        PowerUsageEffectiveness(value, "explicit", None)


@pytest.fixture
def fresh_table() -> Iterator[None]:
    pue_module._provider_pue_by_year.cache_clear()
    yield
    pue_module._provider_pue_by_year.cache_clear()


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ({"operator": "Google", "period": "2024", "pue": "x"}, r"line 2: 'x' is not a number"),
        ({"operator": "Google", "period": "CY24", "pue": "1.1"}, r"line 2: period 'CY24'"),
        ({"operator": "Google", "period": "2024", "pue": "0.9"}, r"line 2: PUE 0.9 is below"),
    ],
)
def test_malformed_table(
    fresh_table: None, monkeypatch: pytest.MonkeyPatch, row: dict[str, str], pattern: str
) -> None:
    monkeypatch.setattr(pue_module, "read_rows", lambda path: (row,))
    with pytest.raises(DataFileError, match=rf"compiled/cloud_pue_reference.csv {pattern}"):
        resolve_pue(cloud_provider="gcp")


def test_table_missing_an_operator(fresh_table: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = ({"operator": "Google", "period": "2024", "pue": "1.09"},)
    monkeypatch.setattr(pue_module, "read_rows", lambda path: rows)
    with pytest.raises(DataFileError, match="has no row for AWS"):
        resolve_pue(cloud_provider="aws")
