"""``check_serving_image``: the quality gate's last check before a model goes to Vertex AI."""

from typing import NamedTuple

from kfp.dsl import Input, Model

from .._kit import kit_component

#: Newest prebuilt scikit-learn serving image known to google-cloud-aiplatform 1.16x. Repeated as a
#: literal in the signature because KFP runs the function's source without this module.
DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


@kit_component
def check_serving_image(
    model: Input[Model],
    serving_image: str = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest",
    check_sklearn_version: bool = True,
) -> NamedTuple("ServingCheck", [("artifact_uri", str)]):  # type: ignore[valid-type]
    """Checks that ``model`` can be served by ``serving_image``; returns its directory URI.

    Runs before the model is uploaded (GCPC ``ModelUploadOp``): a prebuilt ``sklearn-cpu.X-Y``
    image loads only a pickle of the same scikit-learn X.Y, and a mismatch would otherwise fail
    the endpoint deployment only after many minutes.

    Args:
        model: Directory with ``model.joblib`` from ``train_wine_model`` (its metadata
            ``framework_version`` is the training scikit-learn version).
        serving_image: Prediction image; a prebuilt ``sklearn-cpu.X-Y`` image by default.
        check_sklearn_version: Compare the versions (set ``False`` for a custom image whose
            version this check cannot read).

    Returns:
        ``artifact_uri``: the model directory (``gs://``), for the upload.

    Raises:
        ValueError: the model is not on Cloud Storage, or was trained with another scikit-learn
            X.Y than the prebuilt image serves.
    """
    import re
    from collections import namedtuple

    if not model.uri.startswith("gs://"):
        raise ValueError(
            f"model {model.uri} is not on Cloud Storage; Vertex AI uploads models from gs:// "
            "(run the pipeline on Vertex AI Pipelines)"
        )
    trained_with = str(model.metadata.get("framework_version", ""))
    prebuilt = re.search(r"/sklearn-cpu\.(\d+)-(\d+)(?::|@|$)", serving_image)
    if check_sklearn_version and prebuilt and trained_with:
        served = f"{prebuilt.group(1)}.{prebuilt.group(2)}"
        if ".".join(trained_with.split(".")[:2]) != served:
            raise ValueError(
                f"model trained with scikit-learn {trained_with} but {serving_image} serves "
                f"scikit-learn {served}; pin scikit-learn=={served}.* in the training image, "
                "choose the matching serving image, or set check_sklearn_version=False"
            )
    print(f"{model.uri} can be served by {serving_image}")
    return namedtuple("ServingCheck", ["artifact_uri"])(model.uri)
