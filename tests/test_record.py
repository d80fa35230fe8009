"""EmissionsRecord arithmetic and its renderings."""

from __future__ import annotations

import json
import math
import platform

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.record import EmissionsRecord, Snapshot, build_record
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


def test_records_written_with_gb_names_still_load_as_gib() -> None:
    record = make_record()
    old = record.to_dict()
    old["ram_total_size_gb"] = old.pop("ram_total_size_gib")
    old["ram_used_gb"] = old.pop("ram_used_gib")
    assert EmissionsRecord.from_dict(old) == record
