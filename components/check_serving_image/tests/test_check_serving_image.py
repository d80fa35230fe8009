"""check_serving_image: the last gate before the model goes to Vertex AI (GCPC upload)."""

import pytest
from kfp import dsl

from carbon_kfp.components.check_serving_image.component import (
    DEFAULT_SERVING_IMAGE,
    check_serving_image,
)

URI = "gs://bucket/pipeline-root/123/train-wine-model/model"


def trained_model(sklearn_version: str = "1.6.1", uri: str = URI) -> dsl.Model:
    model = dsl.Model(uri=uri)
    model.metadata.update({"framework": "scikit-learn", "framework_version": sklearn_version})
    return model


def test_matching_model_passes_its_uri() -> None:
    result = check_serving_image.python_func(
        model=trained_model(), serving_image=DEFAULT_SERVING_IMAGE
    )
    assert result.artifact_uri == URI


def test_sklearn_version_must_match_prebuilt_image() -> None:
    with pytest.raises(ValueError, match=r"scikit-learn 1\.9\.1 but .*sklearn-cpu\.1-6.* 1\.6"):
        check_serving_image.python_func(model=trained_model("1.9.1"))
    unchecked = check_serving_image.python_func(
        model=trained_model("1.9.1"), check_sklearn_version=False
    )
    assert unchecked.artifact_uri == URI
    custom = check_serving_image.python_func(
        model=trained_model("1.9.1"), serving_image="europe-docker.pkg.dev/p/r/serve:1"
    )
    assert custom.artifact_uri == URI  # a custom image's version cannot be read: not checked


def test_local_model_is_refused(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="not on Cloud Storage"):
        check_serving_image.python_func(model=trained_model(uri="/tmp/model"))


def test_serving_image_default_is_in_sync() -> None:
    default = check_serving_image.component_spec.inputs["serving_image"].default
    assert default == DEFAULT_SERVING_IMAGE
