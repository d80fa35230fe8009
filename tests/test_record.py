"""EmissionsRecord arithmetic and its renderings."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.record import EmissionsRecord, Snapshot, build_record, parse_record
from carbon_kfp.sensors.base import Reading
from tests.records import DESIGN_METRIC_KEYS, make_context, make_record


def test_one_kwh_of_cpu_at_400_g_and_pue_1_1() -> None:
    record = make_record(cpu_j=3.6e6, duration_s=100.0)
    assert record.cpu_energy_kwh == pytest.approx(1.0)
    assert record.energy_kwh == pytest.approx(1.1)
    assert record.emissions_kg == pytest.approx(0.44)
    assert record.cpu_power_w == pytest.approx(36_000.0)
    # rapl ±10 %, explicit intensity exact
    assert record.emissions_low_kg == pytest.approx(0.44 * 0.9)
    assert record.emissions_high_kg == pytest.approx(0.44 * 1.1)


@given(
    cpu_j=st.floats(0, 1e9, allow_nan=False),
    gpu_j=st.floats(0, 1e9, allow_nan=False),
    ram_j=st.floats(0, 1e9, allow_nan=False),
    duration_s=st.one_of(st.just(0.0), st.floats(1e-3, 1e6)),
)
def test_interval_brackets_estimate_and_metrics_are_finite(cpu_j, gpu_j, ram_j, duration_s):
    record = make_record(cpu_j=cpu_j, gpu_j=gpu_j, ram_j=ram_j, duration_s=duration_s)
    assert record.emissions_low_kg <= record.emissions_kg + 1e-12
    assert record.emissions_kg <= record.emissions_high_kg + 1e-12
    metrics = record.to_metrics()
    assert set(metrics) == DESIGN_METRIC_KEYS
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    total = record.cpu_energy_kwh + record.gpu_energy_kwh + record.ram_energy_kwh
    assert record.energy_kwh == pytest.approx(total * record.pue)


def test_window_between_two_snapshots_subtracts_cumulative_readings() -> None:
    begin = Snapshot(10.0, {"cpu": Reading(1000.0, "rapl", utilization_percent=10.0)})
    end = Snapshot(20.0, {"cpu": Reading(4600.0, "rapl", utilization_percent=55.0)})
    record = build_record(make_context(), begin, end, timestamp="t", status="partial")
    assert record.duration_s == 10.0
    assert record.cpu_energy_kwh == pytest.approx(3600.0 / 3.6e6)
    assert record.cpu_power_w == pytest.approx(360.0)
    # since-start means 10 % over 10 s and 55 % over 20 s -> 100 % in the second 10 s
    assert record.cpu_utilization_percent == pytest.approx(100.0)
    assert record.gpu_method == "none" and record.gpu_energy_kwh == 0.0


def test_window_that_ends_before_it_begins_is_rejected() -> None:
    with pytest.raises(ValueError, match="ends before it begins"):
        build_record(
            make_context(), Snapshot(5.0, {}), Snapshot(1.0, {}), timestamp="t", status="completed"
        )


def test_optional_metrics_appear_only_when_set() -> None:
    record = make_record(predicted_energy_kwh=2.0, comparisons_kg={"codecarbon": 0.5})
    metrics = record.to_metrics()
    assert metrics["predicted_emissions_kg"] == pytest.approx(2.0 * 400 / 1000)
    assert metrics["codecarbon_emissions_kg"] == 0.5


def test_non_finite_values_never_reach_metrics() -> None:
    record = make_record(comparisons_kg={"carbontracker": math.nan, "codecarbon": math.inf})
    assert "carbontracker_emissions_kg" not in record.to_metrics()
    assert "codecarbon_emissions_kg" not in record.to_metrics()
    assert json.loads(record.to_json())["comparisons_kg"] == {
        "carbontracker": None,
        "codecarbon": None,
    }


def test_json_round_trip() -> None:
    record = make_record(task_name="fit", warnings=("rapl unreadable",), gpu_j=7200.0)
    again = EmissionsRecord.from_dict(json.loads(record.to_json()))
    assert again == record


def test_python_version_is_platforms() -> None:
    context = make_context()
    record = build_record(
        context, Snapshot(0.0, {}), Snapshot(1.0, {}), timestamp="t", status="completed"
    )
    assert record.python_version == platform.python_version()


# -- issue 10 item 15: records read back are checked field by field ------------------------------


def _record_json(**changes: object) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        make_record(task_name="fit", warnings=("w",), comparisons_kg={"codecarbon": 0.1}).to_json()
    )
    data.update(changes)
    return data


def test_item15_parse_record_round_trips_and_fills_defaults() -> None:
    record = make_record(task_name="fit", warnings=("w",), comparisons_kg={"codecarbon": 0.1})
    assert parse_record(json.loads(record.to_json())) == record
    older = _record_json(unknown_future_field=1)
    for name in ("epochs_completed", "epochs_planned", "warnings", "comparisons_kg"):
        del older[name]
    parsed = parse_record(older)
    assert (parsed.epochs_completed, parsed.warnings, parsed.comparisons_kg) == (0, (), {})
    assert parse_record(_record_json(ram_used_gib=None, node_rank=None)).ram_used_gib is None
    assert parse_record(_record_json(duration_s=2)).duration_s == 2.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("emissions_kg", None, "is a JSON null; expected a finite number >= 0"),
        ("emissions_kg", float("nan"), "is nan; expected a finite number >= 0"),
        ("energy_kwh", float("inf"), "is inf; expected a finite number >= 0"),
        ("emissions_kg", -0.5, "is -0.5; expected a finite number >= 0"),
        ("cpu_energy_kwh", -1e-9, "is -1e-09"),
        ("duration_s", "12", "is a JSON string; expected a finite number >= 0"),
        ("pue", True, "is a JSON boolean; expected a finite number >= 0"),
        ("ram_used_gib", -1.0, "is -1.0"),
        ("warnings", "abc", "is 'abc'; expected a JSON array of strings"),
        ("warnings", ["ok", 3], "is ['ok', 3]; expected a JSON array of strings"),
        ("comparisons_kg", {"codecarbon": None}, "entry 'codecarbon' is a JSON null"),
        ("comparisons_kg", [1], "is a JSON array; expected an object of numbers"),
        ("status", "done", "is 'done'; expected one of completed, partial, interrupted, failed"),
        ("project_name", 7, "is a JSON number; expected a JSON string"),
        ("on_cloud", "yes", "is a JSON string; expected a JSON boolean"),
        ("epochs_completed", 1.5, "is a JSON number (1.5); expected an integer >= 0"),
        ("intensity_year", -2024, "is -2024; expected an integer >= 0"),
        ("node_owner", None, "is a JSON null; expected a JSON boolean"),
    ],
)
def test_item15_bad_fields_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"field {field!r} {message}")):
        parse_record(_record_json(**{field: value}))


def test_item15_missing_fields_and_non_objects_are_named() -> None:
    data = _record_json()
    del data["run_id"]
    with pytest.raises(ValueError, match="field 'run_id' is missing"):
        parse_record(data)
    with pytest.raises(ValueError, match="a JSON array; expected a record object"):
        parse_record([data])


def test_item15_every_record_field_has_a_check() -> None:
    # A field added with a new annotation must get a check here, or parse_record cannot read it.
    from carbon_kfp.record import _FIELD_CHECKS

    assert {str(spec.type) for spec in dataclasses.fields(EmissionsRecord)} <= set(_FIELD_CHECKS)


def test_records_written_with_gb_names_still_load_as_gib() -> None:
    record = make_record()
    old = record.to_dict()
    old["ram_total_size_gb"] = old.pop("ram_total_size_gib")
    old["ram_used_gb"] = old.pop("ram_used_gib")
    assert EmissionsRecord.from_dict(old) == record
    assert parse_record(old) == record
