"""The pure checks ``carbon-kfp submit`` makes before any call (the CLI refusals are in
``test_vertex_submit.py``)."""

from __future__ import annotations

import pytest

from carbon_kfp.errors import ConfigError
from carbon_kfp.vertex_checks import (
    MAX_LABELS,
    check_encryption_key,
    check_labels,
    check_pipeline_root,
    check_project,
    check_region,
    check_resource_parameter,
    job_labels,
    pipelines_regions,
    version_label_value,
)


@pytest.mark.parametrize("good", ["my-project", "a12345", "example.com:my-project", "123456789012"])
def test_good_projects(good: str) -> None:
    assert check_project(good) == good


@pytest.mark.parametrize(
    "bad", ["", "my_project", "MyProject", "ab", "1project", "project-", "x" * 31, "a b cdefg"]
)
def test_bad_projects(bad: str) -> None:
    with pytest.raises(ConfigError, match="--project"):
        check_project(bad)


def test_region_list() -> None:
    regions = pipelines_regions()
    assert regions == tuple(sorted(regions)) and len(set(regions)) == len(regions)
    assert {"us-central1", "europe-west4", "asia-southeast1"} <= set(regions)
    assert "global" not in regions
    assert check_region("europe-west4") == "europe-west4"
    with pytest.raises(ConfigError, match="closest valid: europe-west4"):
        check_region("europe-west44")


@pytest.mark.parametrize("root", ["gs://bucket-1/path", "gs://my.bucket.example", "gs://abc/"])
def test_good_roots(root: str) -> None:
    assert check_pipeline_root(root) == root


@pytest.mark.parametrize("root", ["gs://", "gs://ab/x", "gs://Bucket/x", "gcs://bucket", "bucket"])
def test_bad_roots(root: str) -> None:
    with pytest.raises(ConfigError, match="--pipeline-root"):
        check_pipeline_root(root)


def test_labels() -> None:
    labels = {"team": "ml", "empty": "", "ünïcode": "wert"}
    assert check_labels(labels) == labels
    with pytest.raises(ConfigError, match="only lowercase"):
        check_labels({"a": "b.c"})
    with pytest.raises(ConfigError, match="set by carbon-kfp itself"):
        check_labels({"carbon-kfp": "1"})
    assert version_label_value("0.1.0+local.2") == "0-1-0-local-2"
    assert job_labels({"a": "b"}, "1.2.3") == {"a": "b", "carbon-kfp": "1-2-3"}
    many = {f"k{i}": "v" for i in range(MAX_LABELS)}
    with pytest.raises(ConfigError, match="at most 63"):
        job_labels(many, "1.0")


def test_encryption_key_region() -> None:
    key = "projects/p/locations/europe-west4/keyRings/r/cryptoKeys/k"
    assert check_encryption_key(key, "europe-west4") == key
    assert check_encryption_key(None, "europe-west4") is None
    with pytest.raises(ConfigError, match="job's region"):
        check_encryption_key(key, "us-central1")


E4 = "projects/my-project/locations/europe-west4"


@pytest.mark.parametrize(
    ("collection", "value"),
    [
        ("endpoints", ""),
        ("endpoints", f"{E4}/endpoints/1234567890123456789"),
        ("endpoints", "projects/123456789012/locations/europe-west4/endpoints/wine-quality"),
        ("models", f"{E4}/models/987654321"),
        ("models", f"{E4}/models/wine_quality-rf"),
    ],
)
def test_good_resource_parameters(collection: str, value: str) -> None:
    assert check_resource_parameter("x", value, collection, "europe-west4") == value


@pytest.mark.parametrize(
    ("collection", "value"),
    [
        ("endpoints", "1234567890"),  # a bare id
        ("endpoints", "wine-quality"),  # a display name
        ("endpoints", f"{E4}/models/123"),  # another collection
        ("models", f"{E4}/models/123@2"),  # a version
        ("models", f"{E4}/models/Wine"),
        ("models", f"{E4}/models/123/"),
        ("models", f"https://europe-west4-aiplatform.googleapis.com/v1/{E4}/models/123"),
        ("models", "projects/My_Project/locations/europe-west4/models/123"),
    ],
)
def test_bad_resource_parameters(collection: str, value: str) -> None:
    expected = f"parameter x={value!r}: expected {E4.replace('my-project', 'PROJECT')}/"
    with pytest.raises(ConfigError) as error:
        check_resource_parameter("x", value, collection, "europe-west4")
    assert str(error.value).startswith(f"{expected}{collection}/ID")


def test_resource_parameter_in_another_region() -> None:
    value = "projects/my-project/locations/us-central1/endpoints/123"
    with pytest.raises(ConfigError, match="it is in 'us-central1' but the job runs in 'europe-w"):
        check_resource_parameter("endpoint", value, "endpoints", "europe-west4")
