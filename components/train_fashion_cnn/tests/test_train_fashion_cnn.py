"""train_fashion_cnn: the saved Keras model, per-epoch tracking, the budget, bad arguments.

The tests that train are slow: importing Keras and torch takes seconds.
"""

import json
import math
import os
from pathlib import Path

import pytest
from kfp import dsl

from carbon_kfp.components.train_fashion_cnn.component import train_fashion_cnn
from carbon_kfp.errors import ConfigError
from carbon_kfp.fashion.data import save_split
from tests.component_calls import call_component
from tests.fashion_data import synthetic_split

os.environ.setdefault("KERAS_BACKEND", "torch")

#: A network small enough to train in a second on synthetic images.
SMALL = {"conv1_filters": 4, "conv2_filters": 8, "dense_units": 16, "compare": ""}


@pytest.fixture
def train_data(tmp_path: Path) -> dsl.Dataset:
    dataset = dsl.Dataset(uri=str(tmp_path / "load" / "train_data"))
    save_split(Path(dataset.path), *synthetic_split(200))
    return dataset


def run_train(
    tmp_path: Path, train: dsl.Dataset, **kwargs: object
) -> tuple[dsl.Model, dsl.Metrics]:
    _, out = call_component(train_fashion_cnn, tmp_path / "train", train_data=train, **kwargs)
    return out["model"], out["kpi_co2"]


@pytest.mark.slow
def test_saves_a_keras_model_and_tracks_every_epoch(
    tmp_path: Path, train_data: dsl.Dataset
) -> None:
    model, kpi = run_train(tmp_path, train_data, epochs=2, max_train_samples=150, **SMALL)

    import keras

    assert sorted(p.name for p in Path(model.path).iterdir()) == ["model.keras"]
    network = keras.saving.load_model(Path(model.path) / "model.keras")
    assert network.output_shape == (None, 10)
    meta = model.metadata
    assert meta["framework"] == "keras" and meta["backend"] == "torch"
    assert (meta["train_images"], meta["validation_images"]) == (135, 15)
    assert meta["epochs_completed"] == 2 and meta["stopped_by_budget"] is False
    assert 0.0 <= meta["val_accuracy"] <= 1.0
    record = json.loads(Path(kpi.path).read_text())
    assert record["epochs_completed"] == 2 and record["epochs_planned"] == 2
    assert record["comparisons_kg"] == {}
    assert all(math.isfinite(v) for v in kpi.metadata.values())
    assert kpi.metadata["predicted_emissions_kg"] > 0 and kpi.metadata["emissions_kg"] > 0


@pytest.mark.slow
def test_budget_stops_after_the_monitored_epoch(tmp_path: Path, train_data: dsl.Dataset) -> None:
    model, kpi = run_train(tmp_path, train_data, epochs=5, budget_kg=1e-15, **SMALL)
    assert model.metadata["stopped_by_budget"] is True
    assert model.metadata["epochs_completed"] == 1
    record = json.loads(Path(kpi.path).read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 1
    assert kpi.metadata["predicted_emissions_kg"] > 1e-15


@pytest.mark.slow
def test_codecarbon_measures_the_same_fit(tmp_path: Path, train_data: dsl.Dataset) -> None:
    _, kpi = run_train(tmp_path, train_data, epochs=1, **{**SMALL, "compare": " codecarbon, "})
    assert kpi.metadata["codecarbon_emissions_kg"] >= 0
    assert "carbontracker_emissions_kg" not in kpi.metadata


@pytest.mark.slow
def test_unknown_comparison_backend_fails_before_training(
    tmp_path: Path, train_data: dsl.Dataset
) -> None:
    with pytest.raises(ConfigError, match=r"compare='codecarbn'.*closest valid: codecarbon"):
        run_train(tmp_path, train_data, **{**SMALL, "compare": "codecarbn"})
    assert not (tmp_path / "train" / "model").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"epochs": 0}, "epochs=0: expected at least 1"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"validation_split": 1.0}, r"validation_split=1.0: expected a share in \[0, 1\)"),
        ({"budget_kg": -1.0}, "budget_kg=-1.0"),
    ],
)
def test_bad_arguments_are_named(
    tmp_path: Path, train_data: dsl.Dataset, option: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_train(tmp_path, train_data, **option)
