"""The packaged grid-intensity tables, parsed once on first use (no policy here).

* GCP regions: Google's yearly region files ``google-region-carbon/<year>.csv``. 2021 onwards are
  operational (location-based) intensities; 2019-2020 are lifecycle figures (``lifecycle=True``),
  told apart by the file's column name.
* AWS and Azure regions: CodeCarbon's last table that still had them
  (``codecarbon/impact_legacy_with_aws_azure.csv``): EPA eGRID and 2017-2019 sources, so old.
* Countries and the world: Our World in Data / Ember ``owid/carbon-intensity-electricity.csv``
  (lifecycle basis), 1990-2025.

Provenance in ``data/PROVENANCE.md``. Every loader raises
:class:`~carbon_kfp.tables.DataFileError` naming the file and line when a table is malformed.
Importing this module reads no file.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from carbon_kfp.tables import (
    DATA_DIR,
    DataFileError,
    parse_float,
    read_rows,
    read_rows_matching,
    read_text,
)

GCP_DIR = "google-region-carbon"
GCP_REGION_COLUMN = "Google Cloud Region"
LEGACY_PATH = "codecarbon/impact_legacy_with_aws_azure.csv"
OWID_PATH = "owid/carbon-intensity-electricity.csv"
OWID_VALUE_COLUMN = "Carbon intensity of electricity per kWh"
OWID_WORLD = "OWID_WRL"


class GcpYear(NamedTuple):
    """One of Google's yearly region files."""

    year: int
    lifecycle: bool
    g_per_kwh_by_region: Mapping[str, float]


class LegacyRegion(NamedTuple):
    """One row of the legacy CodeCarbon region table."""

    g_per_kwh: float
    country_name: str  # as the table spells it
    table_iso_code: str  # the table's countryIsoCode, "USA" for every AWS region: names come first


class OwidSeries(NamedTuple):
    """One OWID entity's yearly intensities (ascending years)."""

    entity: str
    years: tuple[int, ...]
    g_per_kwh: tuple[float, ...]

    def at(self, year: int) -> float:
        return self.g_per_kwh[self.years.index(year)]


def parse_year(value: str, *, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataFileError(f"{where}: year {value!r} is not an integer") from None


@functools.cache
def gcp_years() -> tuple[GcpYear, ...]:
    """Google's yearly region files, oldest first. Raises DataFileError when malformed."""
    folder = DATA_DIR / GCP_DIR
    file_years = sorted(
        int(match.group(1))
        for entry in folder.iterdir()
        if (match := re.fullmatch(r"(\d{4})\.csv", entry.name))
    )
    if not file_years:
        raise DataFileError(f"carbon_kfp/data/{GCP_DIR}/ holds no <year>.csv file")
    tables: list[GcpYear] = []
    for file_year in file_years:
        path = f"{GCP_DIR}/{file_year}.csv"
        rows = read_rows(path)
        columns = list(rows[0]) if rows else []
        intensity_columns = [c for c in columns if "carbon intensity" in c.lower()]
        if GCP_REGION_COLUMN not in columns or len(intensity_columns) != 1:
            raise DataFileError(
                f"carbon_kfp/data/{path}: expected a {GCP_REGION_COLUMN!r} column and one "
                f"'... carbon intensity (gCO2eq / kWh)' column, got {columns}"
            )
        column = intensity_columns[0]
        by_region = {
            row[GCP_REGION_COLUMN].lower(): parse_float(
                row[column], where=f"carbon_kfp/data/{path} line {line}"
            )
            for line, row in enumerate(rows, start=2)
        }
        tables.append(GcpYear(file_year, column.lower().startswith("lifecycle"), by_region))
    return tuple(tables)


@functools.cache
def owid_series() -> Mapping[str, OwidSeries]:
    """OWID code -> yearly series (ascending years); aggregates without a code are left out.

    Parses the whole table (~10 ms): only for questions about every entity (names, hints). A
    lookup of one place uses :func:`owid_series_of`.
    """
    return series_by_code(enumerate(read_rows(OWID_PATH), start=2))


@functools.cache
def owid_series_of(code: str) -> OwidSeries | None:
    """The yearly series of one OWID code, or ``None``; equal to ``owid_series().get(code)``.

    Parses only the lines that contain ``,<code>,`` (the code is the second column), so a run
    located by one country does not pay for parsing every other one.
    """
    if not code:
        return None
    rows = read_rows_matching(OWID_PATH, re.compile(f",{re.escape(code)},"))
    return series_by_code((line, row) for line, row in rows if row["Code"] == code).get(code)


def series_by_code(
    numbered_rows: Iterable[tuple[int, Mapping[str, str]]],
) -> dict[str, OwidSeries]:
    """Group ``(line number, OWID row)`` pairs into series by code. Raises DataFileError."""
    collected: dict[str, tuple[str, dict[int, float]]] = {}
    for line, row in numbered_rows:
        code = row["Code"]
        if not code:
            continue
        where = f"carbon_kfp/data/{OWID_PATH} line {line}"
        year = parse_year(row["Year"], where=where)
        value = parse_float(row[OWID_VALUE_COLUMN], where=where)
        collected.setdefault(code, (row["Entity"], {}))[1][year] = value
    return {
        code: OwidSeries(entity, tuple(sorted(values)), tuple(v for _, v in sorted(values.items())))
        for code, (entity, values) in collected.items()
    }


@functools.cache
def legacy_regions() -> Mapping[str, Mapping[str, LegacyRegion]]:
    """provider -> region -> figure, from the legacy CodeCarbon table.

    The table has one row short of its trailing ``comment`` field (Azure westcentralus), read as
    empty.
    """
    reader = csv.reader(io.StringIO(read_text(LEGACY_PATH)))
    header = [name.strip() for name in next(reader)]
    needed = ("provider", "region", "country_name", "countryIsoCode", "impact")
    if any(name not in header for name in needed):
        raise DataFileError(f"carbon_kfp/data/{LEGACY_PATH}: header {header} lacks {needed}")
    table: dict[str, dict[str, LegacyRegion]] = {}
    for row in reader:
        if not row:
            continue
        where = f"carbon_kfp/data/{LEGACY_PATH} line {reader.line_num}"
        if len(row) == len(header) - 1:
            row = [*row, ""]
        if len(row) != len(header):
            raise DataFileError(f"{where}: {len(row)} fields, expected {len(header)}")
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        table.setdefault(cells["provider"].lower(), {})[cells["region"].lower()] = LegacyRegion(
            parse_float(cells["impact"], where=where),
            cells["country_name"],
            cells["countryIsoCode"].upper(),
        )
    return table
