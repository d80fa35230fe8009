"""The one year rule of every yearly table (grid intensity, PUE): which data year answers a year.

Rule: the newest data year ``<= year``; the newest of all when ``year`` is ``None``; the earliest
when ``year`` precedes every data year. Whenever a year was asked and the table has no figure for
it (an older year stands in, or a later one), :func:`pick_year` says so in one line, which the
caller warns and puts in the record.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from carbon_kfp.errors import ConfigError

#: Accepted data years (inclusive). Data years outside this range are configuration mistakes.
YEAR_MIN = 1990
YEAR_MAX = 2100


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


def pick_year(years: Sequence[int], year: int | None, *, what: str) -> tuple[int, str | None]:
    """The data year that answers ``year`` from ascending ``years`` (non-empty), by the rule in
    the module docstring. Pure.

    Args:
        years: the data years of one table (or of one place in it), ascending.
        year: the year asked, or ``None`` for the newest.
        what: what the figure is of, for the message, e.g. ``"GCP region 'us-central1'"``.

    Returns:
        ``(year_used, note)``; ``note`` is ``None`` unless ``year`` was asked and is not in
        ``years``.
    """
    if year is None:
        return years[-1], None
    earlier = [y for y in years if y <= year]
    if not earlier:
        return years[0], (
            f"{what} has no figure for {year} or earlier; using its earliest year, {years[0]}"
        )
    used = earlier[-1]
    if used == year:
        return used, None
    return used, f"{what} has no figure for {year}; using its newest earlier year, {used}"
