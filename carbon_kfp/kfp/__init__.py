"""KFP integration: ``kpi_co2`` Metrics artifacts for Python and container components (DESIGN §4).

This package imports kfp; ``import carbon_kfp`` does not. The pieces:

* :func:`track` — measure a block inside a lightweight Python component and write ``kpi_co2``;
* :func:`log_record` — put any :class:`~carbon_kfp.EmissionsRecord` on a Metrics artifact;
* :func:`carbon_container_component` / :func:`carbon_exec_command` — container components in
  any language, measured by ``carbon-kfp exec`` (:mod:`carbon_kfp.executor`, kfp-free);
* :func:`tracking_args` — the task arguments that carry job, task and region to a tracked step;
* :mod:`carbon_kfp.kfp.local_run` / :mod:`~carbon_kfp.kfp.run_summary` — run a pipeline on
  ``kfp.local`` and summarise CO2 per step; :mod:`~carbon_kfp.kfp.params` — typed parameters;
* the components themselves are :mod:`carbon_kfp.components`; the ``carbon_report`` component
  renders with :mod:`carbon_kfp.report`.
"""

from __future__ import annotations

import kfp  # noqa: F401  (this package is where kfp gets imported; see the module docstring)

from carbon_kfp.kfp.container import carbon_container_component, carbon_exec_command
from carbon_kfp.kfp.metrics import SIGTERM_EXIT_CODE, StepTerminated, log_record, track
from carbon_kfp.kfp.wiring import tracking_args, untracked_tasks

__all__ = [
    "SIGTERM_EXIT_CODE",
    "StepTerminated",
    "carbon_container_component",
    "carbon_exec_command",
    "log_record",
    "track",
    "tracking_args",
    "untracked_tasks",
]
