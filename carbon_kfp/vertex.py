"""Submit a compiled pipeline to Vertex AI Pipelines (``carbon-kfp submit``).

Everything that reaches Vertex AI is explicit: project, region, pipeline root, service account and
typed parameter values; nothing is read from source. ``google-cloud-aiplatform`` is imported only
here, when submitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carbon_kfp.errors import ConfigError


def submit_pipeline(
    template: Path,
    *,
    project: str,
    region: str,
    pipeline_root: str,
    parameter_values: Mapping[str, Any],
    service_account: str | None = None,
    display_name: str | None = None,
    enable_caching: bool = True,
    wait: bool = False,
) -> str:
    """Create a Vertex AI ``PipelineJob`` from ``template``, submit it, return its resource name.

    Args:
        template: compiled pipeline YAML.
        project: Google Cloud project id.
        region: Vertex AI region (``location`` of the job).
        pipeline_root: ``gs://`` prefix for artifacts.
        parameter_values: typed pipeline arguments (see ``pipelines.local_run.convert_params``).
        wait: block until the run finishes (raises on failure, as the SDK does).

    Raises:
        ConfigError: a pipeline root that is not ``gs://``.
    """
    if not pipeline_root.startswith("gs://"):
        raise ConfigError(f"pipeline_root={pipeline_root!r}; expected a gs:// URI")
    from google.cloud import aiplatform

    job = aiplatform.PipelineJob(
        display_name=display_name or template.stem,
        template_path=str(template),
        pipeline_root=pipeline_root,
        parameter_values=dict(parameter_values),
        enable_caching=enable_caching,
        project=project,
        location=region,
    )
    if wait:
        job.run(service_account=service_account)
    else:
        job.submit(service_account=service_account)
    return str(job.resource_name)
