"""Read the reference tables packaged in ``carbon_kfp/data`` (provenance in ``data/PROVENANCE.md``).

Loaders are cached and read on first use only, so ``import carbon_kfp`` stays cheap. A malformed
file fails with the file, the row number and what was expected (DESIGN §5).

Files are read from :data:`DATA_DIR`, the package's own directory on disk: the package is
installed as files (the CLI and the pipelines already put its directory on ``PYTHONPATH``), and
``importlib.resources`` would cost every tracker ~2 ms and ~1.3 MiB (it imports zipfile and
tempfile) to find the same files.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
"""Where the packaged tables are: ``carbon_kfp/data``."""


class DataFileError(ValueError):
    """A packaged or user-given data file does not have the expected shape."""


@functools.cache
def read_text(relative_path: str) -> str:
    """Text of a packaged data file, e.g. ``"owid/carbon-intensity-electricity.csv"``.

    Raises:
        DataFileError: the file is not packaged.
    """
    try:
        raw = (DATA_DIR / relative_path).read_bytes()
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


def read_rows_matching(
    relative_path: str, pattern: re.Pattern[str]
) -> tuple[tuple[int, dict[str, str]], ...]:
    """``(line number, row)`` of the rows of a packaged CSV file whose line ``pattern`` matches.

    For answering one question from a big table without parsing all of it: one regex scan of
    the text, then only the header and the matching lines are parsed, into the same dicts
    :func:`read_rows` gives. Valid for files with one record per line (no quoted line breaks;
    every packaged table, a test checks) and patterns that do not match across lines. Not
    cached: callers cache their answer.

    Raises:
        DataFileError: missing or empty file, or a matching row whose field count differs from
            the header's (other rows are not checked).
    """
    text = read_text(relative_path)
    header_end = text.find("\n") + 1 or len(text)
    header = _header(relative_path, next(csv.reader([text[:header_end]]), None))
    rows = []
    line_start, line_number = header_end, 2  # the line after the header
    for match in pattern.finditer(text, header_end):
        if match.start() < line_start:
            continue  # another match on a line already taken
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start()) + 1 or len(text)
        line_number += text.count("\n", line_start, start)
        cells = next(csv.reader([text[start:end]]), None)
        if cells:
            rows.append((line_number, _row(relative_path, header, cells, line_number)))
        line_start = end
        line_number += 1
    return tuple(rows)


def _header(relative_path: str, cells: list[str] | None) -> list[str]:
    if not cells:
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
