"""Vertex AI Pipelines through ``google-cloud-aiplatform``: submit a job, follow it, fetch it.

Everything that reaches Vertex AI is explicit and checked first (:mod:`carbon_kfp.vertex_checks`):
project, region, pipeline root, service account, labels, network, encryption key, experiment and
typed parameter values; nothing is read from source. ``google-cloud-aiplatform`` (the ``vertex``
extra) is imported only inside these functions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbon_kfp import vertex_checks
from carbon_kfp.errors import ConfigError
from carbon_kfp.results import task_state

_RESOURCE_NAME = re.compile(r"projects/([^/]+)/locations/([^/]+)/pipelineJobs/([^/]+)")
_TERMINAL_JOB_STATES = {
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLED",
}


def _aiplatform() -> Any:
    """``google.cloud.aiplatform``, or a ConfigError saying which extra brings it."""
    try:
        from google.cloud import aiplatform
    except ImportError as exc:
        raise ConfigError(
            f"{exc}; submitting to and reading from Vertex AI needs the vertex extra: "
            "pip install 'carbon-kfp[vertex]'"
        ) from exc
    return aiplatform


def api_exceptions() -> Any:
    """``google.api_core.exceptions`` (comes with aiplatform), with the same clear ImportError."""
    _aiplatform()
    from google.api_core import exceptions

    return exceptions


@dataclass(frozen=True)
class SubmitSettings:
    """Where and how a job runs; build it with :func:`submit_settings` so every field is checked.

    ``enable_caching``: ``None`` keeps each task's own caching option from the pipeline, ``False``
    turns caching off for every task (``--no-cache``).
    """

    project: str
    region: str
    pipeline_root: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    experiment: str | None = None
    network: str | None = None
    encryption_key: str | None = None
    enable_caching: bool | None = None
    display_name: str | None = None


def submit_settings(
    *,
    project: str,
    region: str,
    pipeline_root: str,
    labels: Mapping[str, str] | None = None,
    service_account: str | None = None,
    experiment: str | None = None,
    network: str | None = None,
    encryption_key: str | None = None,
    enable_caching: bool | None = None,
    display_name: str | None = None,
) -> SubmitSettings:
    """Checks every setting as given on the command line (``labels`` parsed from ``KEY=VALUE``).

    The job's labels are the user's plus ``carbon-kfp: <version>``.

    Raises:
        ConfigError: the first setting that breaks its rule, named with what was expected.
    """
    from carbon_kfp._version import __version__

    region = vertex_checks.check_region(region)
    return SubmitSettings(
        project=vertex_checks.check_project(project),
        region=region,
        pipeline_root=vertex_checks.check_pipeline_root(pipeline_root),
        labels=vertex_checks.job_labels(vertex_checks.check_labels(labels or {}), __version__),
        service_account=vertex_checks.check_service_account(service_account),
        experiment=vertex_checks.check_experiment(experiment),
        network=vertex_checks.check_network(network),
        encryption_key=vertex_checks.check_encryption_key(encryption_key, region),
        enable_caching=enable_caching,
        display_name=display_name,
    )


def submit_pipeline(
    template: Path,
    settings: SubmitSettings,
    parameter_values: Mapping[str, Any],
    credentials: Any = None,
) -> Any:
    """Creates a ``PipelineJob`` from a compiled ``template`` and submits it (does not wait).

    With ``settings.experiment`` the job is added to that Vertex AI Experiment (created when
    missing), where its parameters and ``system.Metrics`` (``kpi_co2``) can be compared across runs.

    Args:
        template: Compiled pipeline YAML.
        settings: From :func:`submit_settings`.
        parameter_values: Typed pipeline arguments (:func:`carbon_kfp.kfp.params.convert_params`).
        credentials: ``google.auth`` credentials; ``None`` uses the application default ones.

    Returns:
        The submitted ``aiplatform.PipelineJob``.

    Raises:
        ConfigError: google-cloud-aiplatform is not installed.
        google.api_core.exceptions.GoogleAPICallError: Vertex AI refused the job.
    """
    aiplatform = _aiplatform()
    job = aiplatform.PipelineJob(
        display_name=settings.display_name or template.stem,
        template_path=str(template),
        pipeline_root=settings.pipeline_root,
        parameter_values=dict(parameter_values),
        enable_caching=settings.enable_caching,
        encryption_spec_key_name=settings.encryption_key,
        labels=dict(settings.labels),
        project=settings.project,
        location=settings.region,
        credentials=credentials,
    )
    job.submit(
        service_account=settings.service_account,
        network=settings.network,
        experiment=settings.experiment,
    )
    return job


def task_detail_dicts(job: Any) -> list[dict[str, Any]]:
    """The job's ``task_details`` as plain dicts (fetches the job once)."""
    from google.cloud.aiplatform_v1.types import PipelineTaskDetail

    return [
        PipelineTaskDetail.to_dict(detail, use_integers_for_enums=False)
        for detail in job.task_details
    ]


def follow_job(
    job: Any,
    show: Callable[[str], None],
    poll_interval_s: float = 15.0,
) -> str:
    """Polls ``job`` until it ends, calling ``show`` with a line each time a task changes state.

    Returns:
        The job's final state name, e.g. ``PIPELINE_STATE_SUCCEEDED``.
    """
    seen: dict[str, str] = {}
    while True:
        details = task_detail_dicts(job)  # one GetPipelineJob call
        for detail in details:
            name, state = str(detail.get("task_name", "")), task_state(detail)
            if name and seen.get(name) != state:
                seen[name] = state
                show(f"{time.strftime('%H:%M:%S')}  {name:<32} {state}")
        job_state = str(job.gca_resource.state.name)
        if job_state in _TERMINAL_JOB_STATES:
            show(f"{time.strftime('%H:%M:%S')}  job {job.resource_name}: {job_state}")
            return job_state
        time.sleep(poll_interval_s)


def get_job(job: str, project: str | None, region: str | None, credentials: Any = None) -> Any:
    """The ``PipelineJob`` named by a full resource name, a job id, or a display name (newest).

    A job id or display name needs ``project`` and ``region``.

    Raises:
        ConfigError: a bare id or display name without ``--project``/``--region``, no job by
            that display name, or google-cloud-aiplatform not installed.
        google.api_core.exceptions.GoogleAPICallError: the API refused the request.
    """
    aiplatform = _aiplatform()
    from google.api_core import exceptions

    match = _RESOURCE_NAME.fullmatch(job)
    if match:
        project, region = match.group(1), match.group(2)
    elif not (project and region):
        raise ConfigError(
            f"job {job!r}: a job id or display name needs --project and --region "
            "(or pass projects/P/locations/R/pipelineJobs/ID)"
        )
    else:
        vertex_checks.check_project(project)
        vertex_checks.check_region(region)
    where = {"project": project, "location": region, "credentials": credentials}
    try:
        return aiplatform.PipelineJob.get(job, **where)
    except (exceptions.NotFound, ValueError):  # ValueError: not shaped like a job id
        if match:
            raise
    jobs = aiplatform.PipelineJob.list(
        filter=f'display_name="{job}"', order_by="create_time desc", **where
    )
    if not jobs:
        raise ConfigError(f"job {job!r}: no pipeline job with that id or display name in {region}")
    return aiplatform.PipelineJob.get(jobs[0].resource_name, **where)
