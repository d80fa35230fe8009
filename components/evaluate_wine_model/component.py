"""``evaluate_wine_model``: test-set metrics, a confusion matrix, a ROC curve and a deploy gate."""

from typing import NamedTuple

from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from .._kit import kit_component


@kit_component
def evaluate_wine_model(
    model: Input[Model],
    test_data: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    kpi_co2: Output[Metrics],
    deploy_min_roc_auc: float = 0.8,
    max_roc_points: int = 200,
    project_name: str = "wine-quality",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> NamedTuple(  # type: ignore[valid-type]  # KFP reads the outputs from this call
    "EvaluationOutputs", [("deploy", str), ("accuracy", float), ("roc_auc", float)]
):
    """Scores the model on the held-out rows and decides whether it is good enough to deploy.

    Args:
        model: Directory with ``model.joblib`` from ``train_wine_model``; its ``features``
            metadata gives the column order (falls back to every column but quality/label).
        test_data: CSV from ``load_wine_data``.
        metrics: ``accuracy``, ``roc_auc``, ``f1``, ``precision``, ``recall`` (positive class),
            ``test_rows`` and ``positive_fraction``; all finite floats.
        classification_metrics: Confusion matrix (classes ``"0"``/``"1"``) and ROC curve with
            finite thresholds only, thinned to at most ``max_roc_points`` points.
        kpi_co2: Energy/CO2 of the evaluation (DESIGN §3 keys; JSON record at ``kpi_co2.path``).
        deploy_min_roc_auc: ``deploy`` is ``"true"`` when the test ROC AUC reaches this value.
        max_roc_points: Upper bound on the ROC points logged (the UI and metadata store slow down
            with thousands); at least 2.
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record.
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Vertex AI region the step runs in (grid intensity of that region);
            ``""`` leaves the location to the tracker defaults.

    Returns:
        ``deploy`` (``"true"``/``"false"``, a string so ``dsl.If`` can compare it), ``accuracy``
        and ``roc_auc``.

    Raises:
        ValueError: The test data lacks a feature or the ``label`` column, holds one class only
            (ROC AUC is undefined), or ``max_roc_points < 2``.
    """
    import json
    import math
    import os
    from collections import namedtuple
    from pathlib import Path

    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
        roc_curve,
    )

    from carbon_kfp.kfp import track
    from carbon_kfp.outputs import write_text_atomic

    if max_roc_points < 2:
        raise ValueError(f"max_roc_points={max_roc_points}: expected at least 2")

    with track(
        kpi_co2,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ):
        forest = joblib.load(os.path.join(model.path, "model.joblib"))
        frame = pd.read_csv(test_data.path)
        features = list(model.metadata.get("features") or [])
        if not features:
            features = [name for name in frame.columns if name not in ("quality", "label")]
        missing = [name for name in [*features, "label"] if name not in frame.columns]
        if missing:
            raise ValueError(f"{test_data.path}: missing column(s) {missing}")
        truth = frame["label"].to_numpy().astype(int)
        if len(set(truth.tolist())) < 2:
            raise ValueError(f"{test_data.path}: one class only; ROC AUC is undefined")

        scores = forest.predict_proba(frame[features].to_numpy())[:, 1]
        predicted = (scores >= 0.5).astype(int)
        values = {
            "accuracy": accuracy_score(truth, predicted),
            "roc_auc": roc_auc_score(truth, scores),
            "f1": f1_score(truth, predicted, zero_division=0),
            "precision": precision_score(truth, predicted, zero_division=0),
            "recall": recall_score(truth, predicted, zero_division=0),
            "test_rows": len(truth),
            "positive_fraction": truth.mean(),
        }
        # Rounded once: the gate and the returned values are exactly what the UI shows.
        values = {key: round(float(value), 6) for key, value in values.items()}
        for key, value in values.items():
            if math.isfinite(value):  # a NaN or inf breaks the KFP runner and the Vertex UI
                metrics.log_metric(key, value)

        matrix = confusion_matrix(truth, predicted, labels=[0, 1])
        classification_metrics.log_confusion_matrix(["0", "1"], matrix.tolist())

        fpr, tpr, thresholds = roc_curve(truth, scores)
        finite = np.isfinite(thresholds)  # sklearn puts +inf first
        fpr, tpr, thresholds = fpr[finite], tpr[finite], thresholds[finite]
        if len(thresholds) > max_roc_points:
            keep = np.unique(
                np.linspace(0, len(thresholds) - 1, max_roc_points).round().astype(int)
            )
            fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
        classification_metrics.log_roc_curve(
            [round(float(v), 6) for v in fpr],
            [round(float(v), 6) for v in tpr],
            [round(float(v), 6) for v in thresholds],
        )

    # Each artifact is also a real file (JSON of what was logged), as kpi_co2 is: the artifact
    # exists on GCS, and kfp.local's cache, which treats a missing local file as a miss, can hit.
    for artifact in (metrics, classification_metrics):
        write_text_atomic(Path(artifact.path), json.dumps(artifact.metadata, sort_keys=True))

    accuracy = values["accuracy"]
    roc_auc = values["roc_auc"]
    deploy = "true" if roc_auc >= deploy_min_roc_auc else "false"
    print(
        f"accuracy {accuracy:.4f}, ROC AUC {roc_auc:.4f}, F1 {values['f1']:.4f}; "
        f"deploy={deploy} (ROC AUC threshold {deploy_min_roc_auc})"
    )
    outputs = namedtuple("outputs", ["deploy", "accuracy", "roc_auc"])
    return outputs(deploy, accuracy, roc_auc)
