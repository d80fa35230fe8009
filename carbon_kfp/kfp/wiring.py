"""Give tracked steps their job, task and region names in a way that works on every backend.

KFP's backends substitute ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` and
``dsl.PIPELINE_TASK_NAME_PLACEHOLDER`` only where they are passed as *task arguments*; as a
component's parameter default they reach the step unresolved on Vertex AI (``kfp.local``
substitutes them everywhere and hides this). So a tracked component declares ``pipeline_job``,
``pipeline_task`` (and ``cloud_location``) inputs with ``""`` defaults, and the pipeline passes
them at the call site::

    train = train_model(data=..., **tracking_args(cloud_location=cloud_location))

:func:`untracked_tasks` finds the tasks of a compiled pipeline that miss them; ``carbon-kfp
compile`` warns about them and ``carbon-kfp submit`` refuses them. At run time
:func:`carbon_kfp.kfp.track` ignores a placeholder that arrives unresolved, with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kfp import dsl

#: Component inputs a tracked step takes from placeholders, and the placeholder each needs.
PLACEHOLDER_INPUTS: dict[str, str] = {
    "pipeline_job": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    "pipeline_task": dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
}


def tracking_args(cloud_location: Any = None) -> dict[str, Any]:
    """Task arguments that tell a tracked step which job and task it is, and where it runs.

    Args:
        cloud_location: The region the step runs in, for its grid intensity: a pipeline
            parameter (``carbon-kfp submit`` fills a ``cloud_location`` parameter with
            ``--region``), a string, or google_cloud_pipeline_components' ``LOCATION_PLACEHOLDER``
            in pipelines meant only for Vertex AI (``kfp.local`` cannot resolve that one).
            ``None`` leaves it out.

    Returns:
        ``{"pipeline_job": ..., "pipeline_task": ...[, "cloud_location": ...]}`` to splat into
        the component call.
    """
    arguments: dict[str, Any] = dict(PLACEHOLDER_INPUTS)
    if cloud_location is not None:
        arguments["cloud_location"] = cloud_location
    return arguments


def untracked_tasks(pipeline_spec: Mapping[str, Any]) -> list[str]:
    """Tasks whose component has ``pipeline_job``/``pipeline_task`` inputs left to their defaults.

    Args:
        pipeline_spec: A compiled pipeline as a dict (the YAML document), nested DAGs included.

    Returns:
        ``"<task>: <input>"`` for each such input, in spec order; empty when every tracked task
        gets its names as task arguments (a placeholder constant, or a value passed down from
        the pipeline).
    """
    components = pipeline_spec.get("components", {})
    problems: list[str] = []

    def walk(dag: Mapping[str, Any]) -> None:
        for task_name, task in dag.get("tasks", {}).items():
            component = components.get(task.get("componentRef", {}).get("name", ""), {})
            if "dag" in component:
                walk(component["dag"])
                continue
            declared = component.get("inputDefinitions", {}).get("parameters", {})
            given = task.get("inputs", {}).get("parameters", {})
            problems.extend(
                f"{task_name}: {name}"
                for name in PLACEHOLDER_INPUTS
                if name in declared and name not in given
            )

    walk(pipeline_spec.get("root", {}).get("dag", {}))
    return problems
