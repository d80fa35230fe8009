"""Google Cloud Pipeline Components' model upload, endpoint create and model deploy, as YAML.

The wine pipeline deploys with GCPC's ready-made ``ModelUploadOp``, ``EndpointCreateOp`` and
``ModelDeployOp``: their outputs are ``google.VertexModel`` / ``google.VertexEndpoint``
artifacts, so Vertex AI links the run to the Model Registry and the endpoint (lineage). They are
kept here compiled (``*.yaml``, loaded with kfp's own loader) rather than imported from
``google_cloud_pipeline_components``, so defining or running the pipeline locally needs only
kfp; the ops run in GCPC's own image on Vertex AI. ``tests`` check that the files equal what the
installed GCPC compiles to. Regenerate with the ``vertex`` extra installed::

    python -m carbon_kfp.pipelines.gcpc
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp import components, dsl

HERE = Path(__file__).resolve().parent

#: File stem -> ``google_cloud_pipeline_components.v1`` module and op name.
OPS = {
    "model_upload": ("model", "ModelUploadOp"),
    "endpoint_create": ("endpoint", "EndpointCreateOp"),
    "model_deploy": ("endpoint", "ModelDeployOp"),
}

#: Vertex AI fills these in at run time (GCPC's ``_placeholders``); kfp.local cannot.
PROJECT_PLACEHOLDER = "{{$.pipeline_google_cloud_project_id}}"
LOCATION_PLACEHOLDER = "{{$.pipeline_google_cloud_location}}"


class UnmanagedContainerModel(dsl.Artifact):
    """GCPC's ``google.UnmanagedContainerModel``: model files plus the serving container to use.

    Metadata: ``{"containerSpec": {"imageUri": SERVING_IMAGE}}``.
    """

    schema_title = "google.UnmanagedContainerModel"
    schema_version = "0.0.1"


class VertexModel(dsl.Artifact):
    """GCPC's ``google.VertexModel``: a Model Registry model; metadata ``{"resourceName": ...}``."""

    schema_title = "google.VertexModel"
    schema_version = "0.0.1"


class VertexEndpoint(dsl.Artifact):
    """GCPC's ``google.VertexEndpoint``: an endpoint; metadata ``{"resourceName": ...}``."""

    schema_title = "google.VertexEndpoint"
    schema_version = "0.0.1"


def import_vertex_resource(
    artifact_class: type[VertexModel] | type[VertexEndpoint], resource_name: Any
) -> Any:
    """A ``dsl.importer`` task for an existing model or endpoint, as GCPC's ops read it.

    The ops read only the metadata's ``resourceName``. The artifact's URI is the resource name
    too, not the ``https://REGION-aiplatform.googleapis.com/v1/...`` address of GCPC's own
    samples: kfp 2.17 compiles an importer URI built from parameters (an f-string) into text
    that no runner fills in (a run on kfp.local imports ``https://null-...``), while a URI that
    is one parameter is filled in everywhere.

    Args:
        artifact_class: :class:`VertexModel` or :class:`VertexEndpoint`.
        resource_name: Pipeline parameter holding ``projects/P/locations/R/models/ID`` or
            ``.../endpoints/ID``.
    """
    return dsl.importer(
        artifact_uri=resource_name,
        artifact_class=artifact_class,
        metadata={"resourceName": resource_name},
    )


def load_op(name: str) -> Any:
    """The compiled op ``name`` (a key of :data:`OPS`) as a kfp component."""
    return components.load_component_from_file(str(HERE / f"{name}.yaml"))


def write_ops(folder: Path = HERE) -> list[Path]:
    """Compiles the installed GCPC's ops into ``folder``; returns the files written."""
    import importlib

    from kfp import compiler

    written = []
    for name, (module, op) in OPS.items():
        component = getattr(
            importlib.import_module(f"google_cloud_pipeline_components.v1.{module}"), op
        )
        path = folder / f"{name}.yaml"
        compiler.Compiler().compile(component, str(path))
        written.append(path)
    return written
