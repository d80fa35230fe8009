"""``track``: measure a block inside a lightweight Python component and write ``kpi_co2``.

::

    @dsl.component(base_image=CPU_IMAGE, packages_to_install=[], install_kfp_package=False)
    def train(kpi_co2: Output[Metrics], pipeline_job: str = "", pipeline_task: str = "",
              cloud_location: str = ""):
        from carbon_kfp.kfp import track

        with track(kpi_co2, pipeline_job=pipeline_job, pipeline_task=pipeline_task,
                   cloud_location=cloud_location):
            model.fit(...)

    # in the pipeline
    train(pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
          pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
          cloud_location=LOCATION_PLACEHOLDER)  # Vertex AI only, see track()

On exit the DESIGN §3 keys go on the artifact with ``log_metric`` (finite floats only) and the full
JSON record is written to ``kpi_co2.path``, so the artifact is a real file (on GCS under Vertex AI)
and ``kfp.local`` caching can hit: its cache treats a local artifact whose file is missing as a
miss.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kfp.dsl import Metrics

from carbon_kfp.compare import alongside, build_backends
from carbon_kfp.errors import ConfigError, warn_once
from carbon_kfp.outputs import write_record_json
from carbon_kfp.record import EmissionsRecord, Status
from carbon_kfp.sigterm import SIGTERM_EXIT_CODE, SigtermGuard, StepTerminated
from carbon_kfp.tracker import NON_MAIN_THREAD_NOTE, EmissionsTracker, exit_status
from carbon_kfp.tracker_options import resolved_or_empty

__all__ = ["SIGTERM_EXIT_CODE", "StepTerminated", "log_record", "track"]


def log_record(kpi_co2: Metrics, record: EmissionsRecord) -> None:
    """Put ``record`` on a Metrics artifact: the §3 keys as metrics, the JSON at ``kpi_co2.path``.

    Raises:
        OSError: the artifact's file cannot be written.
    """
    for key, value in record.to_metrics().items():
        kpi_co2.log_metric(key, value)
    write_record_json(Path(kpi_co2.path), record)


def _finish(
    kpi_co2: Metrics, tracker: EmissionsTracker, status: Status, error: BaseException | None
) -> None:
    record = tracker.stop(status)
    try:
        log_record(kpi_co2, record)
    except OSError as exc:
        if error is None:
            raise
        warn_once(f"carbon-kfp: could not write {kpi_co2.path} ({exc}) after the step failed")
        return
    if error is not None:
        print(
            f"carbon-kfp: step {status} after {record.duration_s:.1f} s: "
            f"{record.energy_kwh:.4g} kWh, {record.emissions_kg:.4g} kg CO2eq written to "
            f"{kpi_co2.path}",
            file=sys.stderr,
        )


@contextlib.contextmanager
def track(
    kpi_co2: Metrics,
    *,
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
    compare: Iterable[str] = (),
    handle_signals: bool = True,
    **tracker_kwargs: Any,
) -> Iterator[EmissionsTracker]:
    """Measure the block and write the record to the ``kpi_co2`` Metrics artifact.

    Yields the running :class:`~carbon_kfp.EmissionsTracker` (for ``task()``, ``epoch_start()``
    ...); after the block its ``final_record`` is what was written.

    Args:
        kpi_co2: the component's ``Output[Metrics]``.
        pipeline_job: the job name; pass ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` as the
            component argument (``kfp.local``: the local run's name).
        pipeline_task: the task name; pass ``dsl.PIPELINE_TASK_NAME_PLACEHOLDER``. The carbon
            report names steps by it.
        cloud_location: the Vertex AI region the step runs in: pass google_cloud_pipeline_
            components' ``LOCATION_PLACEHOLDER`` (``{{$.pipeline_google_cloud_location}}``) in
            pipelines compiled for Vertex AI. Grid intensity follows that region unless
            ``cloud_region`` is given; a region missing from the tables falls back with a
            warning instead of failing the step (see ``EmissionsTracker(cloud_location=)``).
            Not for ``kfp.local``: kfp 2.17's local runner fails on that placeholder
            (IndexError); pass ``""`` or a pipeline parameter there. Unresolved placeholders
            (e.g. on Kubeflow) are ignored with a warning; ``location="auto"`` is the portable
            alternative (reads ``CLOUD_ML_REGION``, which Vertex AI sets).
        compare: comparison backends run around the same block, see :mod:`carbon_kfp.compare`.
        handle_signals: turn SIGTERM (Vertex AI preemption, ``kubectl delete``) into
            :class:`StepTerminated` so the block unwinds, ``kpi_co2`` is written with
            ``status="interrupted"`` and the process exits 143; a SIGTERM handler installed
            before is chained to instead, and a SIGTERM while ``kpi_co2`` is written is acted
            on once it is written (:mod:`carbon_kfp.sigterm`). Only on the main thread.
        **tracker_kwargs: :class:`~carbon_kfp.EmissionsTracker` arguments.

    Raises:
        ConfigError: a bad tracker argument, unknown or uninstalled comparison backend, or a
            ``kpi_co2`` without a path — before the block runs.
        OSError: the artifact's file cannot be written after a block that succeeded. After a
            block that raised, a write error is only warned about.
        BaseException: whatever the block raised, re-raised unchanged after the record (with
            the energy used until then, status by :func:`carbon_kfp.tracker.exit_status`:
            ``"failed"`` for an ``Exception``, ``"interrupted"`` for ``KeyboardInterrupt`` or
            ``SystemExit``) was written.
    """
    if not getattr(kpi_co2, "path", ""):
        raise ConfigError(f"kpi_co2={kpi_co2!r} has no path; pass the component's Output[Metrics]")
    kwargs = dict(tracker_kwargs)
    kwargs["handle_signals"] = False  # SIGTERM is handled here, so kpi_co2 gets written
    tracker = EmissionsTracker(
        pipeline_job=resolved_or_empty("pipeline_job", pipeline_job),
        pipeline_task=resolved_or_empty("pipeline_task", pipeline_task),
        cloud_location=resolved_or_empty("cloud_location", cloud_location),
        **kwargs,
    )
    backends = build_backends(
        compare, tracker.context, measure_interval_s=float(kwargs.get("measure_interval_s", 1.0))
    )
    guard = SigtermGuard()
    if handle_signals and not guard.install():
        warn_once(NON_MAIN_THREAD_NOTE)
    try:
        tracker.start()
        try:
            with alongside(tracker, backends):
                yield tracker
        except BaseException as exc:
            with guard.held():
                _finish(kpi_co2, tracker, exit_status(type(exc)), exc)
            raise
        with guard.held():
            _finish(kpi_co2, tracker, "interrupted" if guard.received else "completed", None)
    finally:
        guard.remove()
