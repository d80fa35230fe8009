"""Read the reference tables packaged in ``carbon_kfp/data`` (provenance in ``data/PROVENANCE.md``).

Loaders are cached and read on first use only, so ``import carbon_kfp`` stays cheap. A malformed
file fails with the file, the row number and what was expected (DESIGN §5).
"""

from __future__ import annotations

import csv
import functools
import io
import math
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
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise DataFileError(
            f"carbon_kfp/data/{relative_path} is empty; expected a header"
        ) from None
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise DataFileError(
                f"carbon_kfp/data/{relative_path} line {reader.line_num + skip_lines}: "
                f"{len(row)} fields, expected {len(header)} ({', '.join(header)})"
            )
        rows.append(dict(zip(header, (cell.strip() for cell in row), strict=True)))
    return tuple(rows)


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
