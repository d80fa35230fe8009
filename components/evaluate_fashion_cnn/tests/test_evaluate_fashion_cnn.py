"""evaluate_fashion_cnn: accuracy and loss in Metrics, the 10 × 10 confusion matrix by class."""

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl

from carbon_kfp.components.evaluate_fashion_cnn.component import evaluate_fashion_cnn
from carbon_kfp.components.train_fashion_cnn.component import train_fashion_cnn
from carbon_kfp.fashion.data import save_split
from carbon_kfp.fashion.model import CLASS_NAMES
from tests.component_calls import call_component
from tests.fashion_data import synthetic_split

os.environ.setdefault("KERAS_BACKEND", "torch")


def run_evaluate(tmp_path: Path, model: dsl.Model, test: dsl.Dataset) -> tuple[Any, ...]:
    result, out = call_component(
        evaluate_fashion_cnn, tmp_path / "eval", model=model, test_data=test, batch_size=32
    )
    return result, out["metrics"], out["classification_metrics"], out["kpi_co2"]


@pytest.mark.slow
def test_metrics_and_confusion_matrix(tmp_path: Path) -> None:
    train = dsl.Dataset(uri=str(tmp_path / "train_data"))
    test = dsl.Dataset(uri=str(tmp_path / "test_data"))
    save_split(Path(train.path), *synthetic_split(300))
    save_split(Path(test.path), *synthetic_split(90, seed=1))
    model = dsl.Model(uri=str(tmp_path / "model"))
    train_fashion_cnn.python_func(
        train_data=train,
        model=model,
        kpi_co2=dsl.Metrics(uri=str(tmp_path / "train_kpi")),
        epochs=3,
        learning_rate=0.01,
        conv1_filters=4,
        conv2_filters=8,
        dense_units=16,
        compare="",
    )

    result, metrics, classification, kpi = run_evaluate(tmp_path, model, test)

    accuracy, loss = result
    assert metrics.metadata == {"accuracy": accuracy, "loss": loss, "test_images": 90.0}
    assert accuracy > 0.5  # three epochs on ten separable stripes
    assert math.isfinite(loss) and loss > 0
    matrix = classification.metadata["confusionMatrix"]
    assert [c["displayName"] for c in matrix["annotationSpecs"]] == list(CLASS_NAMES)
    rows = matrix["rows"]
    assert len(rows) == 10 and all(len(r["row"]) == 10 for r in rows)
    assert [sum(r["row"]) for r in rows] == [9] * 10  # nine test images per class
    assert sum(rows[i]["row"][i] for i in range(10)) == round(accuracy * 90)
    assert json.loads(Path(classification.path).read_text())["confusionMatrix"] == matrix
    assert json.loads(Path(kpi.path).read_text())["status"] == "completed"


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    model = dsl.Model(uri=str(tmp_path / "model"))
    test = dsl.Dataset(uri=str(tmp_path / "test_data"))
    with pytest.raises(ValueError, match=r"model.keras: no such file; expected train_fashion_cnn"):
        run_evaluate(tmp_path, model, test)
