"""Epoch predictions and carbon budgets on a synthetic constant-power workload.

The workload is a fake RAPL package whose counter a thread advances at a constant 20 W of wall
time, read by the real tracker through ``sysfs_root`` (scope ``machine``: the whole package).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon_kfp import CarbonBudgetExceeded, EmissionsTracker
from tests.fakes_sysfs import CounterThread, FakeHost, FakeRaplCounter

PACKAGE_W = 20.0


@pytest.fixture
def constant_power_host(tmp_path: Path) -> Iterator[FakeHost]:
    host = FakeHost(tmp_path)
    package = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    last = [time.monotonic()]

    def tick() -> None:  # energy follows wall time exactly, however the thread is scheduled
        now = time.monotonic()
        package.advance(int(PACKAGE_W * (now - last[0]) * 1e6))
        last[0] = now

    with CounterThread(tick, tick_s=0.002):
        yield host


def tracker_on(host: FakeHost, **kwargs: object) -> EmissionsTracker:
    return EmissionsTracker(
        sysfs_root=host.sysfs_root,
        scope="machine",
        measure_interval_s=0.05,
        carbon_intensity_g_per_kwh=300.0,
        gpu=False,
        **kwargs,  # type: ignore[arg-type]
    )


def run_epochs(tracker: EmissionsTracker, count: int, epoch_s: float = 0.25) -> list[float]:
    energies_kwh = []
    for _ in range(count):
        tracker.epoch_start()
        with tracker.task("epoch") as window:
            time.sleep(epoch_s)
        tracker.epoch_end()
        assert window.record is not None
        energies_kwh.append(window.record.energy_kwh)
    return energies_kwh


def test_prediction_after_monitored_epochs_matches_the_total(constant_power_host) -> None:
    tracker = tracker_on(constant_power_host, epochs=6, monitor_epochs=2).start()
    energies_kwh = run_epochs(tracker, 6)
    record = tracker.stop()
    assert record.cpu_method == "rapl"
    assert record.epochs_completed == 6 and record.epochs_planned == 6
    assert record.predicted_energy_kwh == pytest.approx(sum(energies_kwh), rel=0.05)
    assert record.predicted_emissions_kg == pytest.approx(
        record.predicted_energy_kwh * 0.3, rel=1e-9
    )
    assert record.to_metrics()["predicted_emissions_kg"] == record.predicted_emissions_kg


def test_no_prediction_before_monitor_epochs_are_done(constant_power_host) -> None:
    tracker = tracker_on(constant_power_host, epochs=10, monitor_epochs=3).start()
    run_epochs(tracker, 2, epoch_s=0.05)
    record = tracker.stop()
    assert record.predicted_energy_kwh is None
    assert "predicted_emissions_kg" not in record.to_metrics()


def test_budget_exceeded_raises_once(constant_power_host) -> None:
    tracker = tracker_on(constant_power_host, epochs=50, budget_kg=1e-9).start()
    tracker.epoch_start()
    time.sleep(0.05)
    with pytest.raises(CarbonBudgetExceeded) as caught:
        tracker.epoch_end()
    assert caught.value.budget_kg == 1e-9
    assert caught.value.predicted_emissions_kg > 1e-9
    run_epochs(tracker, 3, epoch_s=0.02)  # no second signal
    tracker.stop()


def test_budget_callback_fires_once_instead_of_raising(constant_power_host) -> None:
    fired: list[CarbonBudgetExceeded] = []
    tracker = tracker_on(
        constant_power_host,
        epochs=50,
        monitor_epochs=2,
        budget_kg=1e-9,
        on_budget_exceeded=fired.append,
    ).start()
    run_epochs(tracker, 5, epoch_s=0.02)
    tracker.stop()
    assert len(fired) == 1


def test_budget_not_exceeded_stays_silent(constant_power_host) -> None:
    fired: list[CarbonBudgetExceeded] = []
    tracker = tracker_on(
        constant_power_host, epochs=3, budget_kg=1.0, on_budget_exceeded=fired.append
    ).start()
    run_epochs(tracker, 3, epoch_s=0.02)
    tracker.stop()
    assert fired == []


def test_epoch_end_without_start_is_an_error(constant_power_host) -> None:
    tracker = tracker_on(constant_power_host).start()
    with pytest.raises(RuntimeError, match="epoch_start"):
        tracker.epoch_end()
    tracker.stop()
