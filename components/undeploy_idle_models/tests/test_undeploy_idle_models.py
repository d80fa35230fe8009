"""undeploy_idle_models against a stand-in for ``google.cloud.aiplatform`` (the Vertex AI API is
the boundary): the calls that would reach the API are recorded and bound to the real SDK's
signatures and fields."""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import google.cloud
import pytest
from google.cloud import aiplatform as real_aiplatform
from google.cloud.aiplatform_v1.types import endpoint as endpoint_proto

from carbon_kfp.components.undeploy_idle_models.component import undeploy_idle_models
from carbon_kfp.images import VERTEX_SDK_IMAGE

ENDPOINT = "projects/p/locations/europe-west4/endpoints/123"
OURS = "wine-quality-rf"


class FakeEndpoint:
    """What the component uses of ``aiplatform.Endpoint``. Every API round trip is recorded:
    the constructor, ``list_models()`` (which also refreshes ``gca_resource``), ``traffic_split``
    (a property that reads the endpoint again) and ``undeploy``."""

    calls: ClassVar[list[tuple[str, tuple[Any, ...], dict[str, Any]]]]
    models: ClassVar[list[tuple[str, str]]]  # (deployed model id, display name)
    traffic: ClassVar[dict[str, int]]
    fail_on: ClassVar[str | None]
    on_traffic_read: ClassVar[Callable[[], None] | None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("__init__", args, kwargs))
        self.gca_resource: Any = None

    def list_models(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(("list_models", args, kwargs))
        self.gca_resource = types.SimpleNamespace(traffic_split=dict(self.traffic))
        return [types.SimpleNamespace(id=i, display_name=name) for i, name in self.models]

    @property
    def traffic_split(self) -> dict[str, int]:
        self.calls.append(("traffic_split", (), {}))
        hook = type(self).on_traffic_read  # through the class: a plain function, not a method
        if hook is not None:
            hook()
        return dict(self.traffic)

    def undeploy(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("undeploy", args, kwargs))
        if kwargs.get("deployed_model_id") == self.fail_on:
            raise RuntimeError(f"403 permission denied undeploying {self.fail_on}")
        self.models[:] = [m for m in self.models if m[0] != kwargs.get("deployed_model_id")]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> type[FakeEndpoint]:
    class Endpoint(FakeEndpoint):
        """A fresh class per test: the state below is the endpoint's."""

    Endpoint.calls, Endpoint.models, Endpoint.traffic = [], [], {}
    Endpoint.fail_on, Endpoint.on_traffic_read = None, None
    fake = types.ModuleType("google.cloud.aiplatform")
    fake.Endpoint = Endpoint  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", fake)
    monkeypatch.setattr(google.cloud, "aiplatform", fake)
    return Endpoint


def api_calls(endpoint: type[FakeEndpoint]) -> list[tuple[str, dict[str, Any]]]:
    """The recorded calls, methods bound to the real SDK's signatures (fails on a mismatch)."""
    bound: list[tuple[str, dict[str, Any]]] = []
    for name, args, kwargs in endpoint.calls:
        real = inspect.getattr_static(real_aiplatform.Endpoint, name)
        if isinstance(real, property):
            bound.append((name, {}))
            continue
        arguments = inspect.signature(real).bind(None, *args, **kwargs).arguments
        arguments.pop("self")
        bound.append((name, dict(arguments)))
    return bound


def test_the_fake_uses_only_what_the_real_sdk_and_api_have() -> None:
    assert isinstance(inspect.getattr_static(real_aiplatform.Endpoint, "gca_resource"), property)
    assert "traffic_split" in endpoint_proto.Endpoint.meta.fields
    assert {"id", "display_name"} <= set(endpoint_proto.DeployedModel.meta.fields)


def test_our_idle_models_are_undeployed_and_the_serving_and_others_stay(
    endpoint: type[FakeEndpoint],
) -> None:
    endpoint.models = [("111", OURS), ("222", OURS), ("444", "canary"), ("333", OURS)]
    endpoint.traffic = {"111": 0, "333": 100}  # 222 and 444 are absent from the split

    result = undeploy_idle_models.python_func(endpoint=ENDPOINT, deployed_model_display_name=OURS)

    assert result.deployed_model_ids == ["111", "222"]
    assert api_calls(endpoint) == [
        ("__init__", {"endpoint_name": ENDPOINT}),
        ("list_models", {}),
        ("traffic_split", {}),
        ("undeploy", {"deployed_model_id": "111"}),
        ("traffic_split", {}),
        ("undeploy", {"deployed_model_id": "222"}),
    ]
    assert [model_id for model_id, _ in endpoint.models] == ["444", "333"]


def test_a_model_that_gets_traffic_after_the_snapshot_is_kept(
    endpoint: type[FakeEndpoint],
) -> None:
    """Another run deploys in between and moves the traffic to one of our earlier models."""
    endpoint.models = [("111", OURS), ("333", OURS)]
    endpoint.traffic = {"333": 100}

    def concurrent_deploy() -> None:
        endpoint.traffic = {"111": 100}

    endpoint.on_traffic_read = concurrent_deploy
    result = undeploy_idle_models.python_func(endpoint=ENDPOINT, deployed_model_display_name=OURS)
    assert result.deployed_model_ids == []
    assert "undeploy" not in [name for name, _ in api_calls(endpoint)]


@pytest.mark.parametrize(
    ("models", "traffic"),
    [
        ([("333", OURS)], {"333": 100}),  # only the new model
        ([("111", OURS), ("333", OURS)], {}),  # nothing says which model serves: left alone
        ([("111", "canary"), ("333", OURS)], {"333": 100}),  # the idle one is not ours
    ],
)
def test_nothing_is_undeployed_without_an_idle_model_of_ours_or_a_serving_one(
    endpoint: type[FakeEndpoint], models: list[tuple[str, str]], traffic: dict[str, int]
) -> None:
    endpoint.models, endpoint.traffic = models, traffic
    result = undeploy_idle_models.python_func(endpoint=ENDPOINT, deployed_model_display_name=OURS)
    assert result.deployed_model_ids == []
    assert [name for name, _ in api_calls(endpoint)] == ["__init__", "list_models"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"endpoint": "123"}, "endpoint='123': expected projects/PROJECT/"),
        ({"endpoint": "projects/p/locations/r/models/1"}, "endpoint='projects/p/locations/r/mo"),
        ({"endpoint": "projects/p/locations/r/endpoints/1/x"}, "expected projects/PROJECT/"),
        ({"deployed_model_display_name": " "}, "deployed_model_display_name='': expected"),
    ],
)
def test_bad_arguments_are_refused_before_any_call(
    endpoint: type[FakeEndpoint], bad: dict[str, str], message: str
) -> None:
    arguments = {"endpoint": ENDPOINT, "deployed_model_display_name": OURS, **bad}
    with pytest.raises(ValueError, match=message):
        undeploy_idle_models.python_func(**arguments)
    assert endpoint.calls == []


def test_an_api_failure_fails_the_step_after_saying_what_was_undeployed(
    endpoint: type[FakeEndpoint], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.models = [("111", OURS), ("222", OURS), ("333", OURS)]
    endpoint.traffic = {"333": 100}
    endpoint.fail_on = "222"
    with pytest.raises(RuntimeError, match="permission denied undeploying 222"):
        undeploy_idle_models.python_func(endpoint=ENDPOINT, deployed_model_display_name=OURS)
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
