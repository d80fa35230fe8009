"""Epoch predictions and carbon budgets: after ``monitor`` measured epochs, predict all of them.

Pure bookkeeping over the energy of each measured epoch; the tracker measures the windows
(:meth:`carbon_kfp.EmissionsTracker.epoch_start` / ``epoch_end``) and hands the energy here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from carbon_kfp.errors import ConfigError
from carbon_kfp.record import Snapshot


class CarbonBudgetExceeded(Exception):
    """The epoch prediction exceeds ``budget_kg``; raised from ``epoch_end()`` once per tracker.

    Attributes:
        predicted_emissions_kg: emissions predicted for all planned epochs. Units: kg CO2eq.
        budget_kg: the budget given to the tracker. Units: kg CO2eq.
    """

    def __init__(self, predicted_emissions_kg: float, budget_kg: float) -> None:
        super().__init__(
            f"predicted emissions {predicted_emissions_kg:.6g} kg exceed the budget "
            f"{budget_kg:.6g} kg"
        )
        self.predicted_emissions_kg = predicted_emissions_kg
        self.budget_kg = budget_kg


@dataclass
class Epochs:
    """Planned and measured epochs of one tracker.

    Attributes:
        planned: epochs planned in all (``epochs=``), or None: no prediction.
        monitor: epochs measured before predicting (1 to ``planned``).
        budget_kg: emissions budget for all planned epochs. Units: kg CO2eq.
        on_budget_exceeded: called instead of raising :class:`CarbonBudgetExceeded`.
        energies_kwh: energy of each measured epoch. Units: kWh.
        begin: the snapshot taken at the open epoch's start, if one is open.
        predicted_energy_kwh: the prediction once made. Units: kWh.
    """

    planned: int | None
    monitor: int
    budget_kg: float | None
    on_budget_exceeded: Callable[[CarbonBudgetExceeded], None] | None
    energies_kwh: list[float] = field(default_factory=list)
    begin: Snapshot | None = None
    predicted_energy_kwh: float | None = None

    def __post_init__(self) -> None:
        """Raises ConfigError: a count out of range, or a budget that could never fire."""
        planned, monitor, budget_kg = self.planned, self.monitor, self.budget_kg
        if planned is not None and (not isinstance(planned, int) or planned < 1):
            raise ConfigError(f"epochs={planned!r}; expected a whole number >= 1")
        if not isinstance(monitor, int) or monitor < 1:
            raise ConfigError(f"monitor_epochs={monitor!r}; expected a whole number >= 1")
        if budget_kg is not None and planned is None:
            raise ConfigError(
                f"budget_kg={budget_kg!r} needs epochs=N: the budget is checked against the "
                "prediction for all N epochs"
            )
        if planned is not None and monitor > planned:
            raise ConfigError(
                f"monitor_epochs={monitor} > epochs={planned}; expected at most epochs"
            )

    def close(self, energy_kwh: float, intensity_g_per_kwh: float) -> None:
        """Count one measured epoch; predict once ``monitor`` epochs are measured.

        Args:
            energy_kwh: the epoch's energy. Units: kWh.
            intensity_g_per_kwh: grid intensity for the prediction. Units: gCO2eq/kWh.

        Raises:
            CarbonBudgetExceeded: the prediction exceeds ``budget_kg`` (once; not raised when an
                ``on_budget_exceeded`` callback is given).
        """
        self.begin = None
        self.energies_kwh.append(energy_kwh)
        if self.planned is None or len(self.energies_kwh) != self.monitor:
            return
        mean_kwh = sum(self.energies_kwh) / len(self.energies_kwh)
        self.predicted_energy_kwh = mean_kwh * self.planned
        predicted_kg = self.predicted_energy_kwh * intensity_g_per_kwh / 1000.0
        if self.budget_kg is not None and predicted_kg > self.budget_kg:
            exceeded = CarbonBudgetExceeded(predicted_kg, self.budget_kg)
            if self.on_budget_exceeded is None:
                raise exceeded
            self.on_budget_exceeded(exceeded)
