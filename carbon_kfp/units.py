"""Numbers a person reads: CO2 in mg, g, kg or t and energy in mWh, Wh, kWh or MWh.

Pure text formatting shared by the terminal table, Markdown and HTML (DESIGN §3). Records keep SI
fields (``emissions_kg``, ``energy_kwh``); these functions only choose the unit a reader sees,
scaled to the value: three significant digits, no scientific notation in the usual range.
"""

from __future__ import annotations

import math

# (unit, size of the unit in the base unit), smallest first.
_Units = tuple[tuple[str, float], ...]
_MASS_UNITS_G: _Units = (("mg", 1e-3), ("g", 1.0), ("kg", 1e3), ("t", 1e6))
_ENERGY_UNITS_WH: _Units = (("mWh", 1e-3), ("Wh", 1.0), ("kWh", 1e3), ("MWh", 1e6))
_POWER_UNITS_W: _Units = (("W", 1.0), ("kW", 1e3))


def _pick_unit(value: float, units: _Units) -> str:
    """The largest unit in which ``|value|`` is at least 1 (the smallest for tiny values).

    Decided on the value rounded to three significant digits, as shown: 999.99 g is "1 kg".
    """
    magnitude = abs(float(f"{value:.3g}"))
    chosen = units[0][0]
    for unit, size in units:
        if magnitude >= size:
            chosen = unit
    return chosen


def _significant(value: float) -> str:
    """Three significant digits without an exponent for 0.001 <= |value| < 1e6."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e6:
        return f"{value:.3g}"
    digits = max(0, 2 - math.floor(math.log10(magnitude)))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _number_in(value: float, units: _Units, unit: str) -> str:
    """``value`` (in the base unit) as a number of ``unit``; ``"n/a"`` when not finite.

    Raises:
        ValueError: ``unit`` is not one of ``units``.
    """
    sizes = dict(units)
    if unit not in sizes:
        raise ValueError(f"unit={unit!r}; expected one of {', '.join(sizes)}")
    return _significant(value / sizes[unit]) if math.isfinite(value) else "n/a"


def _scaled(value: float, units: _Units, unit: str | None = None) -> str:
    if not math.isfinite(value):
        return "n/a"
    unit = unit or _pick_unit(value, units)
    return f"{_number_in(value, units, unit)} {unit}"


def format_co2(kg: float, unit: str | None = None) -> str:
    """A CO2eq mass given in kg, as ``"1.37 mg"``, ``"12.3 g"`` or ``"1.2 kg"``.

    Args:
        kg: mass in kg CO2eq; NaN or infinity gives ``"n/a"``.
        unit: force ``"mg"``, ``"g"``, ``"kg"`` or ``"t"`` (e.g. the unit of a range's upper end).

    Raises:
        ValueError: another ``unit``.
    """
    return _scaled(kg * 1000.0, _MASS_UNITS_G, unit)


def format_co2_range(low_kg: float, high_kg: float) -> str:
    """``"1.1-1.6 g"``: both ends in the unit of the upper end (``low_kg <= high_kg``)."""
    unit = _pick_unit(max(low_kg, high_kg) * 1000.0, _MASS_UNITS_G)
    low = _number_in(low_kg * 1000.0, _MASS_UNITS_G, unit)
    return f"{low}-{format_co2(high_kg, unit)}"


def format_energy(kwh: float) -> str:
    """An energy given in kWh, as ``"3.2 mWh"``, ``"450 Wh"`` or ``"1.5 kWh"``."""
    return _scaled(kwh * 1000.0, _ENERGY_UNITS_WH)


def format_power(w: float) -> str:
    """A power in W with three significant digits, ``"35.2 W"`` (``"1.2 kW"`` from 1,000 W)."""
    return _scaled(w, _POWER_UNITS_W)


def format_duration(seconds: float) -> str:
    """``"0.4 s"``, ``"42 s"``, ``"3 min 05 s"`` or ``"2 h 03 min"``."""
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 60:
        return f"{_significant(seconds)} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``"1 step"``, ``"2 steps"``, ``"0 steps"`` (``plural_form`` for irregular nouns)."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"
