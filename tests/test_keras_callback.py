"""CarbonCallback in a real Keras 3 ``model.fit`` (torch backend, CPU).

Slow: importing Keras and torch takes seconds, so it happens in the tests, not at collection
(``pytest -m "not slow"`` then never pays for it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from carbon_kfp.integrations.keras import CarbonCallback

pytestmark = pytest.mark.slow


def callback(**kwargs: Any) -> CarbonCallback:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from carbon_kfp.integrations.keras import CarbonCallback

    return CarbonCallback(**kwargs)


def tiny_model() -> Any:
    import keras

    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_callback_records_epochs_and_predicts(tmp_path) -> None:
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    carbon = callback(
        monitor_epochs=1,
        carbon_intensity_g_per_kwh=250.0,
        scope="process",
        measure_interval_s=0.05,
        output_dir=tmp_path,
    )
    history = tiny_model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[carbon])
    record = carbon.record
    assert record is not None and record.status == "completed"
    assert record.epochs_completed == 3 and record.epochs_planned == 3
    assert record.predicted_energy_kwh is not None and record.predicted_energy_kwh > 0
    assert record.cpu_energy_kwh > 0
    assert len(history.history["emissions_kg"]) == 3
    assert history.history["emissions_kg"][-1] >= history.history["emissions_kg"][0]
    assert (tmp_path / "emissions.csv").exists()


def test_budget_stops_training(tmp_path) -> None:
    x = np.zeros((64, 8), dtype="float32")
    carbon = callback(
        budget_kg=1e-12,
        carbon_intensity_g_per_kwh=250.0,
        scope="process",
        measure_interval_s=0.05,
    )
    history = tiny_model().fit(x, x[:, :1], epochs=20, verbose=0, callbacks=[carbon])
    assert carbon.budget_exceeded is not None
    assert len(history.history["loss"]) == 1  # stopped after the first (monitored) epoch
    assert carbon.record is not None and carbon.record.epochs_completed == 1
