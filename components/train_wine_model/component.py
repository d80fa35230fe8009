"""``train_wine_model``: a random forest on the wine-quality split, measured by carbon-kfp."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from .._kit import kit_component


@kit_component
def train_wine_model(
    train_data: Input[Dataset],
    model: Output[Model],
    kpi_co2: Output[Metrics],
    n_estimators: int = 300,
    max_depth: int = 0,
    seed: int = 42,
    n_jobs: int = -1,
    project_name: str = "wine-quality",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> None:
    """Fits a ``RandomForestClassifier`` inside ``carbon_kfp.kfp.track`` and saves it.

    The model is written as ``model.joblib`` inside the artifact directory, the layout Vertex AI's
    prebuilt scikit-learn serving images load (``artifact_uri`` = the directory). Serve it with an
    image whose scikit-learn matches ``model.metadata["framework_version"]``.

    Args:
        train_data: CSV from ``load_wine_data`` (feature columns, ``quality``, ``label``).
        model: Output directory holding ``model.joblib``. Metadata: ``framework``,
            ``framework_version``, ``features`` (column order for prediction), ``model_file``,
            hyperparameters and ``train_rows``.
        kpi_co2: Energy/CO2 of the fit (DESIGN §3 keys; JSON record at ``kpi_co2.path``).
        n_estimators: Number of trees.
        max_depth: Maximum tree depth; ``0`` means unlimited.
        seed: ``random_state`` of the forest.
        n_jobs: Parallel jobs for fitting; ``-1`` uses every CPU the step may use.
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record.
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Vertex AI region the step runs in (grid intensity of that region);
            ``""`` leaves the location to the tracker defaults.

    Raises:
        ValueError: ``train_data`` lacks the ``label`` column or has no feature columns, or a
            hyperparameter is out of range.
    """
    import os

    import joblib
    import pandas as pd
    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    from carbon_kfp.kfp import track

    if n_estimators < 1:
        raise ValueError(f"n_estimators={n_estimators}: expected at least 1")
    if max_depth < 0:
        raise ValueError(f"max_depth={max_depth}: expected 0 (unlimited) or a positive depth")

    frame = pd.read_csv(train_data.path)
    if "label" not in frame.columns:
        raise ValueError(f"{train_data.path}: no 'label' column; expected load_wine_data output")
    features = [name for name in frame.columns if name not in ("quality", "label")]
    if not features:
        raise ValueError(f"{train_data.path}: no feature columns")

    forest = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth or None,
        random_state=seed,
        n_jobs=n_jobs,
    )
    with track(
        kpi_co2,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ):
        forest.fit(frame[features].to_numpy(), frame["label"].to_numpy())

    os.makedirs(model.path, exist_ok=True)
    model_file = os.path.join(model.path, "model.joblib")
    tmp = model_file + ".tmp"
    joblib.dump(forest, tmp)
    os.replace(tmp, model_file)  # a reader never sees half a model
    model.metadata.update(
        {
            "framework": "scikit-learn",
            "framework_version": sklearn.__version__,
            "model_file": "model.joblib",
            "estimator": "RandomForestClassifier",
            "features": features,
            "classes": [int(c) for c in forest.classes_],
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "seed": seed,
            "train_rows": len(frame),
        }
    )
    print(f"trained {n_estimators} trees on {len(frame)} rows x {len(features)} features")
