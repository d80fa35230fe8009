"""A tracker inside a 2-vCPU / 4 GiB pod of a 64-CPU / 256 GiB host charges the pod, not the host.

Fake cgroup v2 and v1 trees and a fake ``/proc`` stand in for the pod's view; the tracker reads
them through ``sysfs_root`` / ``proc_root`` exactly as it reads the real ones.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

from carbon_kfp import EmissionsTracker
from carbon_kfp.energy import linear_power_model_energy_j
from carbon_kfp.errors import ConfigError
from carbon_kfp.sensors.cpuinfo import ccf_table
from tests.fakes_sysfs import GIB, FakeCgroup, FakeHost

# per-vCPU watts of the fake host's CPU (GCP Cascade Lake) in the packaged CCF table
CASCADE_LAKE_GCP_W = ccf_table("gcp")["Cascade Lake"]


def pod(tmp_path: Path, version: int) -> tuple[FakeHost, FakeCgroup]:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB, pid=os.getpid())
    if version == 2:
        cgroup = host.add_cgroup_v2(cpu_max="200000 100000", memory_max=4 * GIB)
    else:
        cgroup = host.add_cgroup_v1(cfs_quota_us=200_000, memory_limit_bytes=4 * GIB)
    return host, cgroup


@pytest.mark.parametrize("version", [2, 1])
def test_pod_is_charged_for_its_two_vcpus_and_four_gib(tmp_path: Path, version: int) -> None:
    host, cgroup = pod(tmp_path, version)
    tracker = EmissionsTracker(
        sysfs_root=host.sysfs_root,
        proc_root=host.proc_root,
        carbon_intensity_g_per_kwh=100.0,
        measure_interval_s=0.05,
        output_dir=tmp_path / "out",
        gpu=False,
    ).start()
    for _ in range(10):  # one of the two vCPUs busy: 0.03 CPU-s per 0.03 s of wall time
        time.sleep(0.03)
        cgroup.add_cpu_usage_s(0.03)
    record = tracker.stop()

    assert record.scope == "container"
    assert record.cpu_method == "cgroup-model"
    assert record.cpu_count == 2
    assert record.ram_total_size_gib == pytest.approx(4.0)
    expected_cpu_j = linear_power_model_energy_j(
        allocated_vcpus=2,
        busy_cpu_s=0.3,
        wall_s=record.duration_s,
        min_w_per_vcpu=CASCADE_LAKE_GCP_W[0],
        max_w_per_vcpu=CASCADE_LAKE_GCP_W[1],
    )
    assert record.cpu_energy_kwh * 3.6e6 == pytest.approx(expected_cpu_j, rel=1e-3)
    assert record.ram_power_w == pytest.approx(4.0 * 0.3725, rel=1e-3)
    # nothing host-sized: a 64-CPU host at idle alone would draw 64 x 0.64 W
    assert record.cpu_power_w < 64 * CASCADE_LAKE_GCP_W[0]

    row = next(csv.DictReader((tmp_path / "out" / "emissions.csv").open()))
    assert float(row["cpu_count"]) == 2
    assert float(row["ram_total_size"]) == pytest.approx(4.0)
    assert row["tracking_mode"] == "container"


def request_only_pod(tmp_path: Path, **kwargs: object) -> EmissionsTracker:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB, pid=os.getpid())
    host.add_cgroup_v2(cpu_weight=174)  # 2000m by runc >= 1.3.2, 4.43 vCPU by older runtimes
    return EmissionsTracker(
        sysfs_root=host.sysfs_root,
        proc_root=host.proc_root,
        carbon_intensity_g_per_kwh=100.0,
        measure_interval_s=0.05,
        gpu=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_ambiguous_cpu_weight_widens_the_interval_and_says_so(tmp_path: Path) -> None:
    tracker = request_only_pod(tmp_path).start()
    time.sleep(0.2)  # long enough that start/stop bookkeeping is a small part of duration_s
    record = tracker.stop()
    assert record.cpu_count == pytest.approx(2.0, abs=0.01)
    assert any(
        "4.43 vCPU" in w and "CARBON_KFP_CPU_REQUEST_MILLICORES" in w for w in record.warnings
    )
    # The high end covers the idle power of 4.43 vCPUs at the model's +30 %.
    legacy_idle_j = 4.43 * CASCADE_LAKE_GCP_W[0] * record.duration_s
    high_kwh = record.emissions_high_kg * 1000.0 / record.carbon_intensity_g_per_kwh
    assert high_kwh - record.ram_energy_kwh * 1.5 >= 0.99 * 1.3 * legacy_idle_j / 3.6e6


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_stated_cpu_request_removes_the_doubt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "environment":
        monkeypatch.setenv("CARBON_KFP_CPU_REQUEST_MILLICORES", "3000")
        tracker = request_only_pod(tmp_path)
    else:
        tracker = request_only_pod(tmp_path, cpu_request_millicores=3000)
    record = tracker.start().stop()
    assert record.cpu_count == 3.0
    assert not [w for w in record.warnings if "cpu.weight" in w]


def test_bad_stated_cpu_request_fails_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_KFP_CPU_REQUEST_MILLICORES", "1.5")
    with pytest.raises(ConfigError, match=r"CARBON_KFP_CPU_REQUEST_MILLICORES='1\.5'"):
        request_only_pod(tmp_path)
