"""``carbon_kfp.units``: the unit a reader sees, scaled to the value, three significant digits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.units import (
    format_co2,
    format_co2_range,
    format_duration,
    format_energy,
    format_power,
    plural,
)


@pytest.mark.parametrize(
    ("kg", "text"),
    [
        (0.0, "0 mg"),
        (1.37e-6, "1.37 mg"),
        (4.2e-10, "0.00042 mg"),  # below the smallest unit: no unit smaller than mg
        (0.0123, "12.3 g"),
        (0.999, "999 g"),
        (0.99999, "1 kg"),  # the unit of the rounded value, never "1000 g"
        (1.0, "1 kg"),
        (1.2, "1.2 kg"),
        (2500.0, "2.5 t"),
        (3e9, "3e+06 t"),  # above the largest unit: an exponent
        (-0.5, "-500 g"),
        (math.nan, "n/a"),
        (math.inf, "n/a"),
    ],
)
def test_co2_is_scaled_to_the_value(kg: float, text: str) -> None:
    assert format_co2(kg) == text


def test_co2_in_a_given_unit() -> None:
    assert format_co2(0.0123, "kg") == "0.0123 kg"
    assert format_co2(0.0123, "mg") == "12300 mg"


def test_an_unknown_unit_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unit='lb'; expected one of mg, g, kg, t"):
        format_co2(1.0, "lb")


@pytest.mark.parametrize(
    ("low_kg", "high_kg", "text"),
    [
        (0.0011, 0.0016, "1.1-1.6 g"),
        (0.0008, 0.0016, "0.8-1.6 g"),  # the low end in the high end's unit
        (0.0, 2e-6, "0-2 mg"),
        (0.5, 1.5, "0.5-1.5 kg"),
        (math.nan, math.nan, "n/a-n/a"),
    ],
)
def test_co2_range_shares_the_upper_end_unit(low_kg: float, high_kg: float, text: str) -> None:
    assert format_co2_range(low_kg, high_kg) == text


@pytest.mark.parametrize(
    ("kwh", "text"),
    [(3.2e-6, "3.2 mWh"), (0.45, "450 Wh"), (1.5, "1.5 kWh"), (2e3, "2 MWh"), (0.0, "0 mWh")],
)
def test_energy_is_scaled_to_the_value(kwh: float, text: str) -> None:
    assert format_energy(kwh) == text


@pytest.mark.parametrize(
    ("w", "text"),
    [
        (35.23, "35.2 W"),
        (0.0001, "0.0001 W"),
        (999.4, "999 W"),
        (999.6, "1 kW"),
        (1234.0, "1.23 kW"),
    ],
)
def test_power_in_w_then_kw(w: float, text: str) -> None:
    assert format_power(w) == text
    assert format_power(math.inf) == "n/a"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0.4 s"), (42.0, "42 s"), (185.0, "3 min 05 s"), (7380.0, "2 h 03 min")],
)
def test_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert format_duration(math.nan) == "n/a"


def test_plural() -> None:
    assert [plural(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]
    assert plural(2, "cached step") == "2 cached steps"
    assert plural(3, "entry", "entries") == "3 entries"


@given(st.floats(1e-6, 1e8))
def test_scaled_number_is_between_1_and_1000_and_reads_back(kg: float) -> None:
    number, unit = format_co2(kg).split(" ")
    grams = float(number) * {"mg": 1e-3, "g": 1.0, "kg": 1e3, "t": 1e6}[unit]
    assert float(number) < 1000.0 or unit == "t"
    assert float(number) >= 1.0 or unit == "mg"
    assert grams == pytest.approx(kg * 1000.0, rel=5e-3)  # three significant digits
