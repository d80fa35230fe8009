"""``evaluate_fashion_cnn``: test accuracy and loss, and a 10 × 10 confusion matrix."""

from typing import NamedTuple

from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from .._kit import gpu_kit_component


@gpu_kit_component
def evaluate_fashion_cnn(
    model: Input[Model],
    test_data: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    kpi_co2: Output[Metrics],
    batch_size: int = 256,
    project_name: str = "fashion-mnist",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> NamedTuple("EvaluationOutputs", [("accuracy", float), ("loss", float)]):  # type: ignore[valid-type]  # KFP reads the outputs from this call
    """Scores the model on the test images.

    Runs in the GPU image (it carries Keras) but needs no accelerator: the pipeline requests
    none for this step.

    Args:
        model: Folder with ``model.keras`` from ``train_fashion_cnn``.
        test_data: ``.npz`` from ``load_fashion_mnist``.
        metrics: ``accuracy``, ``loss`` (mean cross-entropy, nats) and ``test_images``.
        classification_metrics: Confusion matrix over the ten class names, rows the true class.
        kpi_co2: Energy/CO2 of the evaluation (DESIGN §3 keys; JSON record at its path).
        batch_size: Images per prediction batch.
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record.
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Region the step runs in (grid intensity of that region); ``""`` leaves
            the location to the tracker defaults.

    Returns:
        ``accuracy`` and ``loss``, rounded to 6 digits as logged.

    Raises:
        ValueError: ``batch_size`` below 1, a model folder without its model file, or
            ``test_data`` that is not ``load_fashion_mnist`` output.
    """
    import json
    import os
    from collections import namedtuple
    from pathlib import Path

    from carbon_kfp.fashion import data
    from carbon_kfp.fashion import model as cnn

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1")
    model_file = os.path.join(model.path, model.metadata.get("model_file") or "model.keras")
    if not os.path.isfile(model_file):
        raise ValueError(f"{model_file}: no such file; expected train_fashion_cnn's model folder")
    keras = cnn.import_keras()

    from carbon_kfp.kfp import track
    from carbon_kfp.outputs import write_text_atomic

    with track(
        kpi_co2,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ):
        network = keras.saving.load_model(model_file)
        images, labels = data.read_split(Path(test_data.path))
        probabilities = network.predict(cnn.to_inputs(images), batch_size=batch_size, verbose=0)
        accuracy, loss, matrix = cnn.score(keras.ops.convert_to_numpy(probabilities), labels)

    accuracy, loss = round(accuracy, 6), round(loss, 6)
    metrics.log_metric("accuracy", accuracy)
    metrics.log_metric("loss", loss)
    metrics.log_metric("test_images", float(labels.shape[0]))
    classification_metrics.log_confusion_matrix(list(cnn.CLASS_NAMES), matrix.tolist())
    # Real files behind the artifacts, as kpi_co2 has: they exist on GCS and kfp.local can cache.
    for artifact in (metrics, classification_metrics):
        write_text_atomic(Path(artifact.path), json.dumps(artifact.metadata, sort_keys=True))
    print(f"test accuracy {accuracy:.4f}, loss {loss:.4f} on {labels.shape[0]} images")
    outputs = namedtuple("outputs", ["accuracy", "loss"])
    return outputs(accuracy, loss)
