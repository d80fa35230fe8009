"""Epoch predictions and carbon budgets on a synthetic constant-energy workload.

Every epoch adds the same 5 J to a fake RAPL package counter that the real tracker reads through
``sysfs_root`` (scope ``machine``: the whole package). The fake host has 1 MiB of RAM, so the
RAM model adds microjoules: each epoch costs the same energy however the scheduler stretches it,
and the prediction can be checked exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carbon_kfp import CarbonBudgetExceeded, EmissionsTracker
from tests.fakes_sysfs import FakeHost, FakeRaplCounter

EPOCH_UJ = 5_000_000  # 5 J per epoch


class ConstantEnergyHost:
    def __init__(self, root: Path) -> None:
        self.host = FakeHost(root, memory_bytes=2**20)
        self.package = FakeRaplCounter([self.host.add_rapl_zone("intel-rapl:0", "package-0")])

    def tracker(self, **kwargs: object) -> EmissionsTracker:
        return EmissionsTracker(
            sysfs_root=self.host.sysfs_root,
            proc_root=self.host.proc_root,
            scope="machine",
            measure_interval_s=0.05,
            carbon_intensity_g_per_kwh=300.0,
            gpu=False,
            **kwargs,  # type: ignore[arg-type]
        )

    def run_epochs(self, tracker: EmissionsTracker, count: int) -> list[float]:
        """``count`` epochs of 5 J each; returns each epoch's facility energy (kWh)."""
        energies_kwh = []
        for _ in range(count):
            tracker.epoch_start()
            with tracker.task("epoch") as window:
                time.sleep(0.01)
                self.package.advance(EPOCH_UJ)
            tracker.epoch_end()
            assert window.record is not None
            energies_kwh.append(window.record.energy_kwh)
        return energies_kwh


@pytest.fixture
def workload(tmp_path: Path) -> ConstantEnergyHost:
    return ConstantEnergyHost(tmp_path)


def test_prediction_after_monitored_epochs_matches_the_total(workload) -> None:
    tracker = workload.tracker(epochs=6, monitor_epochs=2).start()
    energies_kwh = workload.run_epochs(tracker, 6)
    record = tracker.stop()
    assert record.cpu_method == "rapl"
    assert record.epochs_completed == 6 and record.epochs_planned == 6
    true_total_kwh = 6 * EPOCH_UJ / 1e6 / 3.6e6  # PUE 1.0 off-cloud
    assert sum(energies_kwh) == pytest.approx(true_total_kwh, rel=1e-3)
    assert record.predicted_energy_kwh == pytest.approx(true_total_kwh, rel=0.05)
    assert record.predicted_emissions_kg == pytest.approx(
        record.predicted_energy_kwh * 0.3, rel=1e-9
    )
    assert record.to_metrics()["predicted_emissions_kg"] == record.predicted_emissions_kg


def test_no_prediction_before_monitor_epochs_are_done(workload) -> None:
    tracker = workload.tracker(epochs=10, monitor_epochs=3).start()
    workload.run_epochs(tracker, 2)
    record = tracker.stop()
    assert record.predicted_energy_kwh is None
    assert "predicted_emissions_kg" not in record.to_metrics()


def test_budget_exceeded_raises_once(workload) -> None:
    tracker = workload.tracker(epochs=50, budget_kg=1e-9).start()
    tracker.epoch_start()
    workload.package.advance(EPOCH_UJ)
    with pytest.raises(CarbonBudgetExceeded) as caught:
        tracker.epoch_end()
    assert caught.value.budget_kg == 1e-9
    # 50 epochs x 5 J at 300 g/kWh
    assert caught.value.predicted_emissions_kg == pytest.approx(50 * 5 / 3.6e6 * 0.3, rel=1e-3)
    workload.run_epochs(tracker, 3)  # no second signal
    tracker.stop()


def test_budget_callback_fires_once_instead_of_raising(workload) -> None:
    fired: list[CarbonBudgetExceeded] = []
    tracker = workload.tracker(
        epochs=50, monitor_epochs=2, budget_kg=1e-9, on_budget_exceeded=fired.append
    ).start()
    workload.run_epochs(tracker, 5)
    tracker.stop()
    assert len(fired) == 1


def test_budget_not_exceeded_stays_silent(workload) -> None:
    fired: list[CarbonBudgetExceeded] = []
    tracker = workload.tracker(epochs=3, budget_kg=1.0, on_budget_exceeded=fired.append).start()
    workload.run_epochs(tracker, 3)
    tracker.stop()
    assert fired == []


def test_epoch_end_without_start_is_an_error(workload) -> None:
    tracker = workload.tracker().start()
    with pytest.raises(RuntimeError, match="epoch_start"):
        tracker.epoch_end()
    tracker.stop()
