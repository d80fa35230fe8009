"""deploy_wine_model against google-cloud-aiplatform patched at its API boundary.

``Model.list``, ``Model.upload``, ``Endpoint.list`` and ``Endpoint.create`` are replaced by fakes
that record their arguments and return fake resources whose ``deploy`` / ``list_models`` /
``undeploy`` record too; creating any real API client fails the test, so nothing reaches the
network.
"""

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from google.cloud import aiplatform
from kfp import dsl

from carbon_kfp.components.deploy_wine_model.component import (
    DEFAULT_SERVING_IMAGE,
    deploy_wine_model,
)

PROJECT = "test-project"
LOCATION = "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


@dataclass
class FakeModel:
    resource_name: str
    display_name: str
    calls: list[tuple[str, dict[str, Any]]]

    def deploy(self, **kwargs: Any) -> None:
        self.calls.append(("Model.deploy", {"model": self.resource_name, **kwargs}))


@dataclass
class FakeEndpoint:
    resource_name: str
    display_name: str
    calls: list[tuple[str, dict[str, Any]]]
    deployed_ids: list[str] = field(default_factory=list)

    def list_models(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=deployed_id) for deployed_id in self.deployed_ids]

    def undeploy(self, **kwargs: Any) -> None:
        self.calls.append(("Endpoint.undeploy", {"endpoint": self.resource_name, **kwargs}))


@dataclass
class FakeVertex:
    """What the patched aiplatform returns, and every call it saw (in order)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    models: list[FakeModel] = field(default_factory=list)
    endpoints: list[FakeEndpoint] = field(default_factory=list)

    def called(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for call, kwargs in self.calls if call == name]


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch) -> FakeVertex:
    fake = FakeVertex()

    def model_list(cls: type, **kwargs: Any) -> list[FakeModel]:
        fake.calls.append(("Model.list", kwargs))
        return [m for m in fake.models if f'display_name="{m.display_name}"' == kwargs["filter"]]

    def model_upload(cls: type, **kwargs: Any) -> FakeModel:
        fake.calls.append(("Model.upload", kwargs))
        model = FakeModel(
            f"{PARENT}/models/42@{len(fake.models) + 1}", kwargs["display_name"], fake.calls
        )
        fake.models.append(model)
        return model

    def endpoint_list(cls: type, **kwargs: Any) -> list[FakeEndpoint]:
        fake.calls.append(("Endpoint.list", kwargs))
        return [e for e in fake.endpoints if f'display_name="{e.display_name}"' == kwargs["filter"]]

    def endpoint_create(cls: type, **kwargs: Any) -> FakeEndpoint:
        fake.calls.append(("Endpoint.create", kwargs))
        endpoint = FakeEndpoint(f"{PARENT}/endpoints/7", kwargs["display_name"], fake.calls)
        fake.endpoints.append(endpoint)
        return endpoint

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("deploy_wine_model reached a real Vertex AI client")

    monkeypatch.setattr(aiplatform.Model, "list", classmethod(model_list))
    monkeypatch.setattr(aiplatform.Model, "upload", classmethod(model_upload))
    monkeypatch.setattr(aiplatform.Endpoint, "list", classmethod(endpoint_list))
    monkeypatch.setattr(aiplatform.Endpoint, "create", classmethod(endpoint_create))
    monkeypatch.setattr(aiplatform.initializer.global_config, "create_client", no_network)
    return fake


def trained_model(sklearn_version: str = "1.6.1") -> dsl.Model:
    model = dsl.Model(uri="gs://bucket/pipeline-root/123/train-wine-model/model")
    model.metadata.update({"framework": "scikit-learn", "framework_version": sklearn_version})
    return model


def run_deploy(tmp_path: Path, model: dsl.Model, **kwargs: Any) -> dict[str, Any]:
    outputs = {
        "vertex_model": dsl.Artifact(uri=str(tmp_path / "vertex_model")),
        "vertex_endpoint": dsl.Artifact(uri=str(tmp_path / "vertex_endpoint")),
        "kpi_co2": dsl.Metrics(uri=str(tmp_path / "kpi_co2")),
    }
    settings = {
        "project": PROJECT,
        "location": LOCATION,
        "model_display_name": "wine-rf",
        "endpoint_display_name": "wine-endpoint",
        "machine_type": "n1-standard-4",
        **kwargs,
    }
    deploy_wine_model.python_func(model=model, **outputs, **settings)
    return outputs


def test_first_deploy_creates_endpoint(tmp_path: Path, vertex: FakeVertex) -> None:
    outputs = run_deploy(tmp_path, trained_model())

    assert [call for call, _ in vertex.calls] == [
        "Model.list",
        "Model.upload",
        "Endpoint.list",
        "Endpoint.create",
        "Model.deploy",
    ]
    (upload,) = vertex.called("Model.upload")
    assert upload["display_name"] == "wine-rf"
    assert upload["artifact_uri"] == "gs://bucket/pipeline-root/123/train-wine-model/model"
    assert upload["serving_container_image_uri"] == DEFAULT_SERVING_IMAGE
    assert upload["parent_model"] is None
    assert (upload["project"], upload["location"]) == (PROJECT, LOCATION)

    (create,) = vertex.called("Endpoint.create")
    assert create["display_name"] == "wine-endpoint"
    assert (create["project"], create["location"]) == (PROJECT, LOCATION)

    (deploy,) = vertex.called("Model.deploy")
    assert deploy["endpoint"] is vertex.endpoints[0]
    assert deploy["deployed_model_display_name"] == "wine-rf"
    assert deploy["machine_type"] == "n1-standard-4"
    assert deploy["traffic_split"] == {"0": 100}
    assert (deploy["min_replica_count"], deploy["max_replica_count"]) == (1, 1)

    endpoint = outputs["vertex_endpoint"]
    assert endpoint.metadata["resourceName"] == f"{PARENT}/endpoints/7"
    assert endpoint.metadata["created"] is True
    assert endpoint.uri == f"https://{LOCATION}-aiplatform.googleapis.com/v1/{PARENT}/endpoints/7"
    assert outputs["vertex_model"].metadata["resourceName"] == vertex.models[0].resource_name
    assert "energy_kwh" in outputs["kpi_co2"].metadata


def test_redeploy_reuses_endpoint_and_versions_model(tmp_path: Path, vertex: FakeVertex) -> None:
    vertex.models.append(FakeModel(f"{PARENT}/models/42", "wine-rf", vertex.calls))
    vertex.endpoints.append(
        FakeEndpoint(f"{PARENT}/endpoints/5", "wine-endpoint", vertex.calls, ["old-1", "old-2"])
    )
    outputs = run_deploy(tmp_path, trained_model(), serving_image="europe-docker.pkg.dev/x/y:1")

    assert vertex.called("Endpoint.create") == []
    (upload,) = vertex.called("Model.upload")
    assert upload["parent_model"] == f"{PARENT}/models/42"  # a new version, not a second model
    assert upload["serving_container_image_uri"] == "europe-docker.pkg.dev/x/y:1"
    (deploy,) = vertex.called("Model.deploy")
    assert deploy["endpoint"].resource_name == f"{PARENT}/endpoints/5"
    assert deploy["traffic_split"] == {"0": 100}
    # the earlier deployments are removed only after the new one took the traffic
    assert [kwargs["deployed_model_id"] for kwargs in vertex.called("Endpoint.undeploy")] == [
        "old-1",
        "old-2",
    ]
    assert [call for call, _ in vertex.calls][-3:] == [
        "Model.deploy",
        "Endpoint.undeploy",
        "Endpoint.undeploy",
    ]
    assert outputs["vertex_endpoint"].metadata["created"] is False


def test_keep_previous_deployments(tmp_path: Path, vertex: FakeVertex) -> None:
    vertex.endpoints.append(
        FakeEndpoint(f"{PARENT}/endpoints/5", "wine-endpoint", vertex.calls, ["old-1"])
    )
    run_deploy(tmp_path, trained_model(), undeploy_previous=False)
    assert vertex.called("Endpoint.undeploy") == []


def test_sklearn_version_must_match_prebuilt_image(tmp_path: Path, vertex: FakeVertex) -> None:
    with pytest.raises(ValueError, match=r"scikit-learn 1\.9\.1 but .*sklearn-cpu\.1-6.* 1\.6"):
        run_deploy(tmp_path, trained_model("1.9.1"))
    assert vertex.calls == []  # failed before touching Vertex AI
    run_deploy(tmp_path, trained_model("1.9.1"), check_sklearn_version=False)
    assert len(vertex.called("Model.deploy")) == 1


def test_local_model_needs_staging_bucket(tmp_path: Path, vertex: FakeVertex) -> None:
    local = dsl.Model(uri=str(tmp_path / "model"))
    local.metadata["framework_version"] = "1.6.1"
    with pytest.raises(ValueError, match="set staging_bucket"):
        run_deploy(tmp_path, local)
    run_deploy(tmp_path, local, staging_bucket="gs://staging")
    (upload,) = vertex.called("Model.upload")
    assert upload["staging_bucket"] == "gs://staging"
    assert upload["artifact_uri"] == str(tmp_path / "model")


@pytest.mark.parametrize(("low", "high"), [(0, 1), (2, 1)])
def test_bad_replica_counts(tmp_path: Path, vertex: FakeVertex, low: int, high: int) -> None:
    with pytest.raises(ValueError, match=f"min_replicas={low}, max_replicas={high}"):
        run_deploy(tmp_path, trained_model(), min_replicas=low, max_replicas=high)


def test_serving_image_default_is_in_sync() -> None:
    default = deploy_wine_model.component_spec.inputs["serving_image"].default
    assert default == DEFAULT_SERVING_IMAGE
