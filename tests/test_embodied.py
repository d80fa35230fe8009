"""``carbon_kfp.embodied``: CCF's server-share arithmetic, the packaged tables, the tracker hook."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from carbon_kfp import ConfigError, EmissionsRecord, EmissionsTracker
from carbon_kfp.embodied import RELATIVE_ERROR, estimate, lookup_host, share_kg
from carbon_kfp.outputs import load_record, write_record_json
from tests.records import make_context, make_record

DATA = Path(__file__).resolve().parents[1] / "carbon_kfp" / "data" / "ccf"


def ccf_rows(name: str, key: str, machine_type: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as file:
        return [row for row in csv.DictReader(file) if row[key] == machine_type]


def tracked_record(machine_type: str, **location: str) -> EmissionsRecord:
    """The record of an empty tracked block on ``machine_type`` (100 g/kWh, process scope)."""
    with EmissionsTracker(
        carbon_intensity_g_per_kwh=100.0, scope="process", machine_type=machine_type, **location
    ) as tracker:
        pass
    assert tracker.final_record is not None
    return tracker.final_record


def test_n1_standard_8_for_one_hour_on_8_vcpus_is_the_ccf_arithmetic() -> None:
    embodied_rows = ccf_rows("coefficients-gcp-embodied.csv", "type", "n1-standard-8")
    server_kg = sum(float(row["total"]) for row in embodied_rows) / len(embodied_rows)
    platform_vcpus = float(
        ccf_rows("gcp-instances.csv", "Machine type", "n1-standard-8")[0][
            "Platform vCPUs (highest vCPU possible)"
        ]
    )
    expected_kg = server_kg * (1.0 / (4 * 365 * 24)) * (8 / platform_vcpus)
    assert expected_kg == pytest.approx(1677.48 / 35040 * 8 / 96)  # the table's own numbers

    host = lookup_host("gcp", "n1-standard-8")
    result = estimate(host, 3600.0, 8.0, 0.0, "")
    assert result.kg == pytest.approx(expected_kg, rel=1e-12)
    assert result.low_kg == pytest.approx(expected_kg * (1 - RELATIVE_ERROR))
    assert result.high_kg == pytest.approx(expected_kg * (1 + RELATIVE_ERROR))
    assert "n1-standard-8" in result.method and "8/96" in result.method


def test_record_from_a_one_hour_window_carries_embodied_beside_operational() -> None:
    context = dataclasses.replace(
        make_context(), machine_type="n1-standard-8", host=lookup_host("gcp", "n1-standard-8")
    )
    from carbon_kfp.record import Snapshot, build_record
    from carbon_kfp.sensors.base import Reading

    end = Snapshot(3600.0, {"cpu": Reading(3.6e6, "rapl", capacity=8)})
    record = build_record(
        context, Snapshot(0.0, {}), end, timestamp="2026-01-01T00:00:00+00:00", status="completed"
    )
    assert record.embodied_kg == pytest.approx(1677.48 / 35040 * 8 / 96)
    assert record.emissions_kg == pytest.approx(1.1 * 400 / 1000)  # operational only, unmixed
    metrics = record.to_metrics()
    assert metrics["embodied_kg"] == record.embodied_kg
    assert metrics["embodied_g"] == pytest.approx(record.embodied_kg * 1000)
    assert metrics["emissions_kg"] == record.emissions_kg


def test_mixed_microarchitectures_give_the_mean_and_a_range() -> None:
    rows = ccf_rows("coefficients-gcp-embodied.csv", "type", "e2-standard-2")
    totals = [float(row["total"]) for row in rows]
    host = lookup_host("gcp", "e2-standard-2")
    assert host is not None
    assert host.server_kg == pytest.approx(sum(totals) / len(totals))
    assert (host.server_low_kg, host.server_high_kg) == (min(totals), max(totals))


def test_gpus_on_an_n1_host_are_unknown_but_a2_counts_them() -> None:
    n1 = estimate(lookup_host("gcp", "n1-standard-4"), 60.0, 4.0, 1.0, "")
    assert "attached GPUs unknown" in n1.method
    a2 = estimate(lookup_host("gcp", "a2-highgpu-1g"), 60.0, 12.0, 1.0, "")
    assert "GPUs unknown" not in a2.method


def test_share_is_capped_at_the_whole_host_and_zero_vcpus_means_the_instance() -> None:
    assert share_kg(1000.0, 35040 * 3600.0, 500.0, 96.0) == pytest.approx(1000.0)
    host = lookup_host("gcp", "n1-standard-8")
    assert estimate(host, 3600.0, 0.0, 0.0, "").kg == estimate(host, 3600.0, 8.0, 0.0, "").kg
    with pytest.raises(ValueError, match="platform_vcpus"):
        share_kg(1.0, 1.0, 1.0, 0.0)


def test_unknown_machine_type_names_close_ones_and_other_providers_are_unknown() -> None:
    with pytest.raises(ConfigError, match=r"n1-standard-9.*n1-standard-8"):
        lookup_host("gcp", "n1-standard-9")
    assert lookup_host("aws", "m5.large") is None
    assert lookup_host("gcp", " N1-Standard-8 ") == lookup_host("gcp", "n1-standard-8")


def test_no_machine_type_means_unknown_never_zero(tmp_path: Path) -> None:
    record = make_record()
    assert record.embodied_kg is None and record.embodied_method.startswith("unknown")
    assert "embodied_kg" not in record.to_metrics()
    path = tmp_path / "r.json"
    write_record_json(path, record)
    assert load_record(path) == record


def test_tracker_machine_type_argument_and_bad_value() -> None:
    record = tracked_record("n1-standard-8", cloud_provider="gcp", cloud_region="europe-west4")
    assert record.machine_type == "n1-standard-8"
    assert record.embodied_kg is not None and record.embodied_kg > 0
    assert json.loads(record.to_json())["embodied_method"].startswith("ccf-server-share")
    with pytest.raises(ConfigError, match="n1-standard-800"):
        EmissionsTracker(
            cloud_provider="gcp", cloud_region="europe-west4", machine_type="n1-standard-800"
        )


def test_azure_d4s_v3_is_the_ccf_arithmetic_with_the_api_spelling() -> None:
    rows = ccf_rows("coefficients-azure-embodied.csv", "type", "D4s v3")
    totals = [float(row["total"]) for row in rows]
    assert len(totals) == 4  # Haswell, Cascade Lake, Skylake, Broadwell
    instance = ccf_rows("azure-instances.csv", "Virtual Machine", "D4s v3")[0]
    platform_vcpus = float(instance["Platform vCPUs (highest vCPU possible)"])
    assert (platform_vcpus, float(instance["Instance vCPUs"])) == (64.0, 4.0)

    host = lookup_host("azure", "Standard_D4s_v3")
    assert host is not None and host == lookup_host("azure", " d4s V3 ")
    assert host.machine_type == "D4s v3" and host.provider == "azure"
    assert host.server_kg == pytest.approx(sum(totals) / len(totals))
    result = estimate(host, 3600.0, 0.0, 0.0, "")  # 0 vCPUs: the size's own 4
    assert result.kg == pytest.approx(host.server_kg / 35040 * 4 / 64, rel=1e-12)
    assert "azure D4s v3, 4/64 vCPUs" in result.method


def test_azure_gpu_sizes_count_their_gpus_and_unknown_sizes_name_close_ones() -> None:
    t4 = lookup_host("azure", "Standard_NC4as_T4_v3")
    assert t4 is not None and t4.includes_gpus and t4.machine_type == "NC4as T4 v3"
    assert "GPUs unknown" not in estimate(t4, 60.0, 4.0, 1.0, "").method
    d4 = lookup_host("azure", "Standard_D4s_v3")
    assert d4 is not None and not d4.includes_gpus  # blank Platform GPU cells are 0
    with pytest.raises(
        ConfigError, match=r"'Standard_D4s_v9'.*Azure tables; closest valid: D4s v4, D4s v3,"
    ):  # as CCF spells them, not as they are compared
        lookup_host("azure", "Standard_D4s_v9")


def test_a_family_with_a_size_above_its_listed_platform_gets_its_largest_size() -> None:
    """CCF's Azure NCas_T4_v3 rows list a 24-vCPU platform, yet NC64as T4 v3 has 64 vCPUs: the
    whole family gets 64. Families whose sizes fit their rows keep the rows' figures."""
    listed = {
        row["Virtual Machine"]: float(row["Platform vCPUs (highest vCPU possible)"])
        for row in ccf_rows("azure-instances.csv", "Series", "NCas_T4_v3 Series")
    }
    assert listed == {"NC4as T4 v3": 24, "NC8as T4 v3": 24, "NC16as T4 v3": 24, "NC64as T4 v3": 24}
    for size in listed:
        host = lookup_host("azure", size)
        assert host is not None and host.platform_vcpus == 64.0, size
    m416 = lookup_host("azure", "M416s v2")
    assert m416 is not None and (m416.instance_vcpus, m416.platform_vcpus) == (416.0, 416.0)
    e2 = lookup_host("gcp", "e2-highmem-16")  # e2-standard-32 is larger, but the row fits
    assert e2 is not None and e2.platform_vcpus == 16.0


def test_a_constrained_vcpu_size_is_known_but_has_no_figure_and_says_why() -> None:
    row = ccf_rows("azure-instances.csv", "Virtual Machine", "E64-16s v3")[0]
    assert row["Instance vCPUs"] == "0.25"  # a ratio in CCF's table, not a count
    assert lookup_host("azure", "Standard_E64-16s_v3") is None  # no ConfigError: it exists
    record = tracked_record(
        "Standard_E64-16s_v3", cloud_provider="azure", cloud_region="westeurope"
    )
    assert record.embodied_kg is None
    assert record.embodied_method == (
        "unknown: CCF's Azure row for E64-16s v3 gives 0.25 instance vCPUs "
        "(a constrained-vCPU ratio, not a count)"
    )


@pytest.mark.parametrize(
    ("provider", "why"),
    [
        (
            {"cloud_provider": "aws", "cloud_region": "us-east-1"},
            "no packaged CCF embodied tables for aws",
        ),
        ({"country_iso_code": "FRA"}, "machine_type needs cloud_provider= (gcp or azure)"),
    ],
)
def test_a_machine_type_without_tables_says_why_in_the_record(
    provider: dict[str, str], why: str
) -> None:
    record = tracked_record("m5.large", **provider)
    assert record.machine_type == "m5.large"
    assert record.embodied_kg is None and why in record.embodied_method
    assert record.embodied_method.startswith("unknown: ")
