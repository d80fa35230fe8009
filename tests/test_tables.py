"""Packaged-table readers: ``read_rows_matching`` gives exactly the rows ``read_rows`` gives."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp import tables
from carbon_kfp.tables import DataFileError, read_rows, read_rows_matching

DATA = tables.DATA_DIR
EVERY_LINE = re.compile(r"\S")


def packaged_tables() -> list[str]:
    """Every packaged CSV that ``read_rows`` reads (one has a row short of its header)."""
    readable = []
    for path in sorted(DATA.rglob("*.csv")):
        relative = path.relative_to(DATA).as_posix()
        try:
            read_rows(relative)
        except DataFileError:
            continue
        readable.append(relative)
    return readable


@pytest.mark.parametrize("relative_path", packaged_tables())
def test_matching_every_line_is_read_rows_numbered_by_line(relative_path: str) -> None:
    """Also checks that no packaged table has a quoted line break, which the scan cannot see."""
    matched = read_rows_matching(relative_path, EVERY_LINE)
    assert [row for _, row in matched] == list(read_rows(relative_path))
    lines = tables.read_text(relative_path).splitlines()
    header = [name.strip() for name in next(csv.reader(lines[:1]))]
    for number, row in matched:
        cells = next(csv.reader([lines[number - 1]]))
        assert dict(zip(header, (cell.strip() for cell in cells), strict=True)) == row


cells = st.text(st.sampled_from("ab ,\"'x"), max_size=4)


@given(
    rows=st.lists(st.lists(cells, min_size=3, max_size=3), max_size=8),
    blank_after=st.sets(st.integers(0, 8)),
    needle=st.text(st.sampled_from("ab ,\"'x"), min_size=1, max_size=2),
)
def test_the_rows_whose_line_contains_the_pattern(
    rows: list[list[str]], blank_after: set[int], needle: str
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b", "c"])
    expected = []
    line = 1
    for index, row in enumerate(rows):
        writer.writerow(row)
        line += 1
        raw = buffer.getvalue().splitlines()[-1]
        if needle in raw:
            expected.append((line, dict(zip("abc", (cell.strip() for cell in row), strict=True))))
        if index in blank_after:
            buffer.write("\n")
            line += 1
    text = buffer.getvalue()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tables, "read_text", lambda _: text)
        found = read_rows_matching("t.csv", re.compile(re.escape(needle)))
    assert list(found) == expected


def test_an_empty_table_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "read_text", lambda _: "")
    with pytest.raises(DataFileError, match=r"t\.csv is empty"):
        read_rows_matching("t.csv", EVERY_LINE)


def test_only_matching_rows_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "read_text", lambda _: "a,b\n1,2\nbad\n3,4,5\n")
    assert read_rows_matching("t.csv", re.compile("1")) == ((2, {"a": "1", "b": "2"}),)
    with pytest.raises(DataFileError, match=r"t\.csv line 4: 3 fields, expected 2"):
        read_rows_matching("t.csv", re.compile("3"))
