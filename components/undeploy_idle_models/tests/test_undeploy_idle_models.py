"""undeploy_idle_models against a stand-in for ``google.cloud.aiplatform`` (the Vertex AI API is
the boundary): the calls that would reach the API are recorded and bound to the real SDK's
signatures."""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import google.cloud
import pytest
from google.cloud import aiplatform as real_aiplatform

from carbon_kfp.components.undeploy_idle_models.component import undeploy_idle_models
from carbon_kfp.images import VERTEX_SDK_IMAGE

ENDPOINT = "projects/p/locations/europe-west4/endpoints/123"


class FakeEndpoint:
    """What the component uses of ``aiplatform.Endpoint``; every call is recorded."""

    calls: ClassVar[list[tuple[str, tuple[Any, ...], dict[str, Any]]]]
    deployed: ClassVar[list[str]]
    traffic: ClassVar[dict[str, int]]
    fail_on: ClassVar[str | None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("__init__", args, kwargs))

    @property
    def traffic_split(self) -> dict[str, int]:
        return dict(self.traffic)

    def list_models(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(("list_models", args, kwargs))
        return [types.SimpleNamespace(id=model_id) for model_id in self.deployed]

    def undeploy(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("undeploy", args, kwargs))
        if kwargs.get("deployed_model_id") == self.fail_on:
            raise RuntimeError(f"403 permission denied undeploying {self.fail_on}")


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> type[FakeEndpoint]:
    class Endpoint(FakeEndpoint):
        """A fresh class per test: the state below is the endpoint's."""

    Endpoint.calls, Endpoint.deployed, Endpoint.traffic, Endpoint.fail_on = [], [], {}, None
    fake = types.ModuleType("google.cloud.aiplatform")
    fake.Endpoint = Endpoint  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", fake)
    monkeypatch.setattr(google.cloud, "aiplatform", fake)
    return Endpoint


def api_calls(endpoint: type[FakeEndpoint]) -> list[tuple[str, dict[str, Any]]]:
    """The recorded calls, each bound to the real SDK method's signature (fails on a mismatch)."""
    bound = []
    for name, args, kwargs in endpoint.calls:
        signature = inspect.signature(getattr(real_aiplatform.Endpoint, name))
        arguments = signature.bind(None, *args, **kwargs).arguments
        arguments.pop("self")
        bound.append((name, dict(arguments)))
    return bound


def test_models_without_traffic_are_undeployed_and_the_serving_one_stays(
    endpoint: type[FakeEndpoint],
) -> None:
    endpoint.deployed = ["111", "222", "333"]
    endpoint.traffic = {"111": 0, "333": 100}  # 222 is absent from the split: no traffic

    result = undeploy_idle_models.python_func(endpoint=ENDPOINT)

    assert result.deployed_model_ids == ["111", "222"]
    assert api_calls(endpoint) == [
        ("__init__", {"endpoint_name": ENDPOINT}),
        ("list_models", {}),
        ("undeploy", {"deployed_model_id": "111"}),
        ("undeploy", {"deployed_model_id": "222"}),
    ]


@pytest.mark.parametrize(
    ("deployed", "traffic"),
    [
        (["333"], {"333": 100}),  # only the new model
        (["111", "333"], {}),  # nothing says which model serves: left to a person
    ],
)
def test_nothing_is_undeployed_when_no_idle_model_or_no_serving_one(
    endpoint: type[FakeEndpoint], deployed: list[str], traffic: dict[str, int]
) -> None:
    endpoint.deployed, endpoint.traffic = deployed, traffic
    assert undeploy_idle_models.python_func(endpoint=ENDPOINT).deployed_model_ids == []
    assert [name for name, _ in api_calls(endpoint)] == ["__init__", "list_models"]


@pytest.mark.parametrize(
    "bad", ["123", "projects/p/locations/r/models/1", "projects/p/locations/r/endpoints/1/x"]
)
def test_a_malformed_endpoint_is_refused_before_any_call(
    endpoint: type[FakeEndpoint], bad: str
) -> None:
    with pytest.raises(ValueError, match=f"endpoint='{bad}': expected projects/PROJECT/"):
        undeploy_idle_models.python_func(endpoint=bad)
    assert endpoint.calls == []


def test_an_api_failure_fails_the_step_after_saying_what_was_undeployed(
    endpoint: type[FakeEndpoint], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.deployed = ["111", "222", "333"]
    endpoint.traffic = {"333": 100}
    endpoint.fail_on = "222"
    with pytest.raises(RuntimeError, match="permission denied undeploying 222"):
        undeploy_idle_models.python_func(endpoint=ENDPOINT)
    assert "undeployed idle model 111" in capsys.readouterr().out


def test_runs_in_the_image_of_the_gcpc_ops_and_never_imports_carbon_kfp() -> None:
    container = undeploy_idle_models.component_spec.implementation.container
    assert container.image == VERTEX_SDK_IMAGE
    gcpc = Path(__file__).resolve().parents[3] / "pipelines" / "gcpc"
    images = {
        line.split("image:", 1)[1].strip()
        for path in gcpc.glob("*.yaml")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("image:")
    }
    assert images == {VERTEX_SDK_IMAGE}
    assert "carbon_kfp" not in inspect.getsource(undeploy_idle_models.python_func)
