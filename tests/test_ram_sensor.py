"""RAM sensor: allocated GiB × 0.3725 W/GB over time, on fake cgroups and real processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carbon_kfp import errors
from carbon_kfp.errors import CarbonKfpWarning
from carbon_kfp.sensors.base import Reading
from carbon_kfp.sensors.ram import RamSensor, memory_w_per_gib
from carbon_kfp.sensors.scope import resolve_scope
from tests.fakes_sysfs import GIB, FakeHost


@pytest.fixture(autouse=True)
def fresh_warn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_seen", set())


def timed_run(sensor: RamSensor, between: Callable[[], None]) -> tuple[Reading, float, float]:
    """start, run ``between()``, read; returns the reading and (inner, outer) wall-time
    brackets of the sensor's own window, in s."""
    outer = time.monotonic()
    sensor.start()
    inner = time.monotonic()
    between()
    inner_wall = time.monotonic() - inner
    reading = sensor.read()
    return reading, inner_wall, time.monotonic() - outer


def test_coefficient_is_green_algorithms() -> None:
    assert memory_w_per_gib() == 0.3725


@pytest.mark.parametrize("version", [1, 2])
def test_container_pays_for_its_4_gib_limit_not_the_host(tmp_path: Path, version: int) -> None:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)
    if version == 2:
        ctr = host.add_cgroup_v2(cpu_max="200000 100000", memory_max=4 * GIB)
    else:
        ctr = host.add_cgroup_v1(cfs_quota_us=200_000, memory_limit_bytes=4 * GIB)
    ctr.set_memory_usage(GIB)
    scope = resolve_scope("auto", **host.roots())
    sensor = RamSensor(scope)

    def work() -> None:
        time.sleep(0.03)
        sensor.sample()
        time.sleep(0.03)

    reading, inner, outer = timed_run(sensor, work)
    assert reading.method == "constant"
    assert reading.capacity == pytest.approx(4.0)  # ram_total_size reads 4 for a 4 GiB limit
    assert reading.used == pytest.approx(1.0)
    assert 4 * 0.3725 * inner <= reading.energy_j <= 4 * 0.3725 * outer
    assert "cgroup-limit" in reading.model
    assert sensor.warnings() == ()


def test_unlimited_container_pays_its_time_averaged_working_set(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)
    ctr = host.add_cgroup_v2(cpu_max="100000 100000")  # no memory limit
    ctr.set_memory_usage(GIB)
    scope = resolve_scope("auto", **host.roots())
    sensor = RamSensor(scope)

    def work() -> None:
        time.sleep(0.03)
        sensor.sample()
        ctr.set_memory_usage(3 * GIB)
        sensor.sample()
        time.sleep(0.03)

    reading, inner, _ = timed_run(sensor, work)
    assert 1.0 < reading.capacity < 3.0  # about half the time at 1 GiB, half at 3 GiB
    assert reading.energy_j == pytest.approx(reading.capacity * 0.3725 * inner, rel=0.2)
    assert reading.used == 3.0


def test_small_process_has_no_floor() -> None:
    scope = resolve_scope("process")
    sensor = RamSensor(scope)
    sensor.start()
    time.sleep(0.05)
    reading = sensor.read()
    sensor.close()
    assert reading.capacity < 2.0  # this test process's RSS, not host RAM
    assert reading.used is not None and reading.used > 0
    power_w = reading.energy_j / 0.05
    assert power_w < 2.0 * 0.3725 * 1.5  # RSS × 0.3725 W/GB; CodeCarbon would charge >= 10 W
    assert reading.energy_j > 0


def test_machine_scope_is_labelled_host_total(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, memory_bytes=32 * GIB)
    sensor = RamSensor(resolve_scope("machine", proc_root=host.proc_root))
    sensor.start()
    reading = sensor.read()
    assert reading.capacity == 32.0
    assert "host-total" in reading.model


def test_vanished_cgroup_keeps_the_last_value_and_warns_once(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    ctr = host.add_cgroup_v2(cpu_max="100000 100000", memory_max=2 * GIB)
    ctr.set_memory_usage(GIB)
    scope = resolve_scope("auto", **host.roots())
    sensor = RamSensor(scope)
    sensor.start()
    (ctr.dirs["memory"] / "memory.current").unlink()
    with pytest.warns(CarbonKfpWarning, match="memory use"):
        sensor.sample()
        sensor.sample()
        reading = sensor.read()
    assert reading.used == 1.0 and reading.capacity == 2.0
    assert len(sensor.warnings()) == 1
    sensor.close()
    assert sensor.read() == sensor.read()


def test_read_before_start_is_zero(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    sensor = RamSensor(resolve_scope("machine", proc_root=host.proc_root))
    assert sensor.read().energy_j == 0.0


class FakeClock:
    """Stands in for the ``time`` module of carbon_kfp.sensors.ram: time moves only when told."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def monotonic(self) -> float:
        return self.now_s


@pytest.mark.parametrize("domain", ["psys", "package-0"])
def test_ram_is_not_modelled_on_top_of_a_psys_reading(tmp_path: Path, domain: str) -> None:
    """psys is the whole platform, DRAM included: with psys as the only RAPL domain the record
    has no modelled RAM on top and says where RAM went; with a package domain RAM is modelled."""
    from carbon_kfp import EmissionsTracker

    host = FakeHost(tmp_path, cpus=8, memory_bytes=16 * GIB)
    zone = host.add_rapl_zone("intel-rapl:0", domain)
    tracker = EmissionsTracker(
        sysfs_root=host.sysfs_root,
        proc_root=host.proc_root,
        scope="machine",
        carbon_intensity_g_per_kwh=100.0,
        measure_interval_s=0.05,
        gpu=False,
    ).start()
    for value in range(1, 6):
        time.sleep(0.03)
        zone.write_energy_uj(value * 1_000_000)
    record = tracker.stop()

    assert record.cpu_method == "rapl"
    if domain == "psys":
        assert "DRAM included" in record.cpu_model
        assert (record.ram_method, record.ram_energy_kwh) == ("none", 0.0)
        assert any("RAM energy is inside the CPU's RAPL reading" in w for w in record.warnings)
    else:
        assert record.ram_method == "constant"
        assert record.ram_power_w == pytest.approx(16 * 0.3725, rel=1e-3)
