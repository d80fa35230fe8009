"""The GCPC ops the wine pipeline deploys with are what the installed GCPC compiles to."""

from pathlib import Path

import pytest
import yaml

from carbon_kfp.pipelines.gcpc import HERE, OPS, UnmanagedContainerModel, load_op, write_ops


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


def test_the_artifact_type_matches_gcpc() -> None:
    gcpc = pytest.importorskip("google_cloud_pipeline_components.types.artifact_types")
    assert UnmanagedContainerModel.schema_title == gcpc.UnmanagedContainerModel.schema_title
    assert UnmanagedContainerModel.schema_version == gcpc.UnmanagedContainerModel.schema_version
