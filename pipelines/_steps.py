"""What every example pipeline does the same way around its measured steps.

Imports kfp (and the kit's components); :mod:`carbon_kfp.pipelines` itself stays cheap.
"""

from typing import Any

from kfp import dsl

from carbon_kfp.components import carbon_report
from carbon_kfp.kfp import tracking_args


def tracking_inputs(project_name: Any, cloud_location: Any) -> dict[str, Any]:
    """The task arguments of a measured step: project, job and task names, region.

    Args:
        project_name: The pipeline's ``project_name`` parameter.
        cloud_location: The pipeline's ``cloud_location`` parameter. A parameter, not
            ``LOCATION_PLACEHOLDER``: ``kfp.local`` cannot resolve that placeholder.
    """
    return {"project_name": project_name, **tracking_args(cloud_location=cloud_location)}


def report_steps(title: str, *steps: Any) -> Any:
    """The ``carbon_report`` task over the ``kpi_co2`` of ``steps`` (up to eight), in order.

    Never cached: it is rendered for every run; a cached step's record names an earlier job,
    so the report shows it as cached and keeps it out of this run's total.
    """
    report = carbon_report(
        **{f"kpi_co2_{n}": step.outputs["kpi_co2"] for n, step in enumerate(steps, start=1)},
        title=title,
        pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    )
    report.set_display_name("Carbon report").set_caching_options(False)
    return report
