"""The GCPC ops the wine pipeline deploys with are what the installed GCPC compiles to."""

from pathlib import Path

import pytest
import yaml
from kfp import dsl
from kfp.dsl import Artifact, Input

from carbon_kfp.pipelines.gcpc import (
    HERE,
    OPS,
    UnmanagedContainerModel,
    VertexEndpoint,
    VertexModel,
    import_vertex_resource,
    load_op,
    write_ops,
)
from tests.kfp_features import needs_full_kfp_local

ENDPOINT = "projects/p/locations/europe-west4/endpoints/123"


def test_compiled_ops_match_installed_gcpc(tmp_path: Path) -> None:
    """Regenerate with ``python -m carbon_kfp.pipelines.gcpc`` after a GCPC upgrade."""
    pytest.importorskip("google_cloud_pipeline_components")
    for path in write_ops(tmp_path):
        fresh = yaml.safe_load(path.read_text())
        shipped = yaml.safe_load((HERE / path.name).read_text())
        fresh.pop("sdkVersion"), shipped.pop("sdkVersion")
        assert fresh == shipped, f"{path.name} is stale: python -m carbon_kfp.pipelines.gcpc"


def test_ops_output_vertex_artifacts() -> None:
    outputs = {name: load_op(name).component_spec.outputs for name in OPS}
    assert outputs["model_upload"]["model"].type == "google.VertexModel@0.0.1"
    assert outputs["endpoint_create"]["endpoint"].type == "google.VertexEndpoint@0.0.1"
    upload_input = load_op("model_upload").component_spec.inputs["unmanaged_container_model"]
    assert upload_input.type == f"{UnmanagedContainerModel.schema_title}@0.0.1"


def test_the_artifact_types_match_gcpc() -> None:
    gcpc = pytest.importorskip("google_cloud_pipeline_components.types.artifact_types")
    for ours in (UnmanagedContainerModel, VertexModel, VertexEndpoint):
        theirs = getattr(gcpc, ours.__name__)
        assert ours.schema_title == theirs.schema_title
        assert ours.schema_version == theirs.schema_version


@dsl.component(base_image="python:3.11", packages_to_install=[], install_kfp_package=False)
def _describe(resource: Input[Artifact]) -> str:
    return f"{resource.uri} {resource.metadata['resourceName']}"


@dsl.pipeline(name="import-endpoint")
def _import_endpoint(endpoint: str) -> str:
    return _describe(resource=import_vertex_resource(VertexEndpoint, endpoint).output).output


@pytest.mark.slow
@needs_full_kfp_local
def test_import_fills_in_the_resource_name(kfp_local: Path) -> None:
    """What GCPC's ops read (``resourceName``), filled in from the pipeline's parameter."""
    assert _import_endpoint(endpoint=ENDPOINT).output == f"{ENDPOINT} {ENDPOINT}"
