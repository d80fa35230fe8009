"""Keras 3 callback that drives :class:`~carbon_kfp.EmissionsTracker` epochs from ``model.fit``.

Importing this module imports ``keras`` (choose the backend with ``KERAS_BACKEND`` first).
"""

from __future__ import annotations

from typing import Any

import keras

from carbon_kfp.record import EmissionsRecord
from carbon_kfp.tracker import CarbonBudgetExceeded, EmissionsTracker


class CarbonCallback(keras.callbacks.Callback):
    """Measure a ``model.fit`` run per epoch, predict its total and enforce a carbon budget.

    Args:
        tracker: a tracker the caller started and will stop; ``None`` (default) makes one at
            ``on_train_begin`` with ``epochs`` taken from ``fit`` and stops it at
            ``on_train_end``, leaving the record on :attr:`record`.
        stop_on_budget: when the prediction exceeds ``budget_kg``, set
            ``model.stop_training`` instead of letting :class:`CarbonBudgetExceeded` propagate.
        **tracker_kwargs: :class:`EmissionsTracker` arguments for the tracker made here
            (``monitor_epochs``, ``budget_kg``, location, ``output_dir`` ...).

    After each epoch, ``logs["emissions_kg"]`` holds the emissions so far, and once
    ``monitor_epochs`` are done ``logs["predicted_emissions_kg"]`` the prediction for all epochs.
    """

    def __init__(
        self,
        tracker: EmissionsTracker | None = None,
        *,
        stop_on_budget: bool = True,
        **tracker_kwargs: Any,
    ) -> None:
        super().__init__()
        self._tracker = tracker
        self._owns_tracker = tracker is None
        self._stop_on_budget = stop_on_budget
        self._tracker_kwargs = tracker_kwargs
        self.record: EmissionsRecord | None = None
        self.budget_exceeded: CarbonBudgetExceeded | None = None

    @property
    def tracker(self) -> EmissionsTracker:
        if self._tracker is None:
            raise RuntimeError("CarbonCallback.tracker is created when training begins")
        return self._tracker

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._owns_tracker:
            kwargs = {"epochs": self.params.get("epochs")} | self._tracker_kwargs
            self._tracker = EmissionsTracker(**kwargs).start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.tracker.epoch_start()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        try:
            self.tracker.epoch_end()
        except CarbonBudgetExceeded as exceeded:
            self.budget_exceeded = exceeded
            if not self._stop_on_budget:
                raise
            self.model.stop_training = True
        if logs is not None:
            so_far = self.tracker.flush_preview()
            logs["emissions_kg"] = so_far.emissions_kg
            if so_far.predicted_emissions_kg is not None:
                logs["predicted_emissions_kg"] = so_far.predicted_emissions_kg

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._owns_tracker and self._tracker is not None:
            self.record = self._tracker.stop()
