"""Vertex AI patched at its API boundary: the gapic clients' calls, nothing above them.

``google-cloud-aiplatform`` runs for real (``PipelineJob``, ``Experiment``, request building) with
anonymous credentials; only the methods that would send a request are replaced:

* ``PipelineServiceClient.create_pipeline_job`` / ``get_pipeline_job`` / ``list_pipeline_jobs``
  (recorded; the created job
  comes back with a resource name and its run context, as the service answers);
* the ``MetadataServiceClient`` calls an experiment needs (store, context, children), recorded;
* the SDK's check of the pipeline root's bucket (``gcs_utils.create_gcs_bucket_for_pipeline_
  artifacts_if_it_does_not_exist``: Cloud Storage and Resource Manager calls, another boundary;
  offline its retries take 120 s), recorded as ``check_bucket``.

Any other metadata call fails the test, so nothing unexpected crosses the boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1.services.metadata_service import MetadataServiceClient
from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient
from google.cloud.aiplatform_v1.types import Context, MetadataStore, PipelineJob, PipelineState

PROJECT = "carbon-test-project"
REGION = "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB_NAME = f"{PARENT}/pipelineJobs/wine-quality-20261204120000"
RUN_CONTEXT = f"{PARENT}/metadataStores/default/contexts/wine-quality-20261204120000"


@dataclass
class FakeVertex:
    """Every request that reached the boundary, in order, and what ``get`` answers next."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: What ``get_pipeline_job`` answers, one per call, the last one repeated (default: the job
    #: as created).
    job_states: list[PipelineJob] = field(default_factory=list)
    contexts: dict[str, Context] = field(default_factory=dict)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [request for call, request in self.calls if call == name]


def _request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if args and args[0] is not None:
        return {"request": args[0], **kwargs}
    return dict(kwargs)


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVertex]:
    import google.auth
    from google.cloud.aiplatform.utils import gcs_utils

    fake = FakeVertex()

    def create_pipeline_job(self: Any, *args: Any, **kwargs: Any) -> PipelineJob:
        request = _request(args, kwargs)
        fake.calls.append(("create_pipeline_job", request))
        job = PipelineJob(request["pipeline_job"])
        job.name = JOB_NAME
        job.job_detail.pipeline_run_context.name = RUN_CONTEXT
        job.state = PipelineState.PIPELINE_STATE_PENDING
        fake.job_states = fake.job_states or [job]
        return job

    def get_pipeline_job(self: Any, *args: Any, **kwargs: Any) -> PipelineJob:
        fake.calls.append(("get_pipeline_job", _request(args, kwargs)))
        if len(fake.job_states) > 1:
            return fake.job_states.pop(0)
        return fake.job_states[0]

    def list_pipeline_jobs(self: Any, *args: Any, **kwargs: Any) -> list[PipelineJob]:
        request = _request(args, kwargs)["request"]
        fake.calls.append(("list_pipeline_jobs", dict(request)))
        wanted = str(request.get("filter", ""))
        return [job for job in fake.job_states if f'display_name="{job.display_name}"' == wanted]

    def get_metadata_store(self: Any, *args: Any, **kwargs: Any) -> MetadataStore:
        request = _request(args, kwargs)
        fake.calls.append(("get_metadata_store", request))
        return MetadataStore(name=request["name"])

    def get_context(self: Any, *args: Any, **kwargs: Any) -> Context:
        request = _request(args, kwargs)
        fake.calls.append(("get_context", request))
        if request["name"] not in fake.contexts:
            raise exceptions.NotFound(request["name"])
        return fake.contexts[request["name"]]

    def create_context(self: Any, *args: Any, **kwargs: Any) -> Context:
        request = _request(args, kwargs)
        fake.calls.append(("create_context", request))
        context = Context(request["context"])
        context.name = f"{request['parent']}/contexts/{request['context_id']}"
        fake.contexts[context.name] = context
        return context

    def add_context_children(self: Any, *args: Any, **kwargs: Any) -> None:
        fake.calls.append(("add_context_children", _request(args, kwargs)))

    def unexpected(name: str) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> None:
            raise AssertionError(f"unexpected Vertex AI metadata call {name}")

        return call

    for name in ("create_metadata_store", "update_context", "list_contexts", "create_artifact"):
        monkeypatch.setattr(MetadataServiceClient, name, unexpected(name))
    monkeypatch.setattr(PipelineServiceClient, "create_pipeline_job", create_pipeline_job)
    monkeypatch.setattr(PipelineServiceClient, "get_pipeline_job", get_pipeline_job)
    monkeypatch.setattr(PipelineServiceClient, "list_pipeline_jobs", list_pipeline_jobs)
    monkeypatch.setattr(MetadataServiceClient, "get_metadata_store", get_metadata_store)
    monkeypatch.setattr(MetadataServiceClient, "get_context", get_context)
    monkeypatch.setattr(MetadataServiceClient, "create_context", create_context)
    monkeypatch.setattr(MetadataServiceClient, "add_context_children", add_context_children)

    def check_bucket(**kwargs: Any) -> str:
        fake.calls.append(("check_bucket", kwargs))
        return str(kwargs["output_artifacts_gcs_dir"])

    monkeypatch.setattr(
        gcs_utils, "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist", check_bucket
    )
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), None))
    yield fake
