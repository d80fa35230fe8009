"""Read the reference tables packaged in ``carbon_kfp/data`` (provenance in ``data/PROVENANCE.md``).

Loaders are cached and read on first use only, so ``import carbon_kfp`` stays cheap. A malformed
file fails with the file, the row number and what was expected (DESIGN §5).
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Callable
from importlib import resources


class DataFileError(ValueError):
    """A packaged or user-given data file does not have the expected shape."""


@functools.cache
def read_text(relative_path: str) -> str:
    """Text of a packaged data file, e.g. ``"owid/carbon-intensity-electricity.csv"``.

    Raises:
        DataFileError: the file is not packaged.
    """
    try:
        raw = resources.files("carbon_kfp").joinpath(f"data/{relative_path}").read_bytes()
    except FileNotFoundError as exc:
        raise DataFileError(
            f"packaged data file carbon_kfp/data/{relative_path} is missing"
        ) from exc
    return raw.decode("utf-8-sig")  # some upstream files start with a BOM


@functools.cache
def read_rows(relative_path: str, *, skip_lines: int = 0) -> tuple[dict[str, str], ...]:
    """Rows of a packaged CSV file as dicts keyed by the header (after ``skip_lines`` lines).

    Raises:
        DataFileError: missing file, or a row whose field count differs from the header's.
    """
    lines = io.StringIO(read_text(relative_path))
    for _ in range(skip_lines):
        lines.readline()
    reader = csv.reader(lines)
    header = _header(relative_path, next(reader, None))
    return tuple(
        _row(relative_path, header, cells, reader.line_num + skip_lines)
        for cells in reader
        if cells
    )


def read_rows_where(
    relative_path: str, keep: Callable[[str], bool]
) -> tuple[tuple[int, dict[str, str]], ...]:
    """``(line number, row)`` of the rows of a packaged CSV file whose raw line ``keep`` accepts.

    For answering one question from a big table without parsing all of it: only the header and
    the accepted lines are parsed, into the same dicts :func:`read_rows` gives. Valid for files
    with one record per line (no quoted line breaks), which every packaged table is (a test
    checks). Not cached: callers cache their answer.

    Raises:
        DataFileError: missing or empty file, or an accepted row whose field count differs from
            the header's (rows not accepted are not checked).
    """
    lines = read_text(relative_path).splitlines()
    header = _header(relative_path, next(csv.reader(lines[:1]), None))
    return tuple(
        (number, _row(relative_path, header, next(csv.reader([line])), number))
        for number, line in enumerate(lines[1:], start=2)
        if line and keep(line)
    )


def _header(relative_path: str, cells: list[str] | None) -> list[str]:
    if cells is None:
        raise DataFileError(f"carbon_kfp/data/{relative_path} is empty; expected a header")
    return [name.strip() for name in cells]


def _row(relative_path: str, header: list[str], cells: list[str], line: int) -> dict[str, str]:
    if len(cells) != len(header):
        raise DataFileError(
            f"carbon_kfp/data/{relative_path} line {line}: "
            f"{len(cells)} fields, expected {len(header)} ({', '.join(header)})"
        )
    return dict(zip(header, (cell.strip() for cell in cells), strict=True))


def parse_float(value: str, *, where: str) -> float:
    """``value`` as a finite float; ``where`` names the file and row for the error.

    Raises:
        DataFileError: not a finite number.
    """
    try:
        number = float(value)
    except ValueError:
        raise DataFileError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DataFileError(f"{where}: {value!r} is not a finite number")
    return number
