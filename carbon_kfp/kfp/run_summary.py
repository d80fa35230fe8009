"""What a local pipeline run did, step by step: collected from its run directory, and rendered.

:func:`collect_steps` reads each task's folder (executor output, ``kpi_co2`` record, other Metrics)
after :mod:`carbon_kfp.kfp.local_run` ran the pipeline; :func:`format_summary` renders the terminal
table. A step served from kfp.local's cache is ``cached``: its record was measured in an earlier
run, so it is shown, kept out of this run's totals, and summed as emissions avoided by caching.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbon_kfp.outputs import load_record
from carbon_kfp.record import EmissionsRecord
from carbon_kfp.report import text_table
from carbon_kfp.units import format_co2, format_duration, format_energy, plural

#: ``kpi_co2`` is the artifact name every carbon-kfp step uses for its energy/CO2 Metrics.
KPI_ARTIFACT = "kpi_co2"


@dataclass
class TaskEvents:
    """What kfp.local's log said about the tasks of one run (filled while it runs).

    Attributes:
        order: Task names in the order they started (or were served from the cache).
        wall_s: Seconds from a task's start line to its end line, by task.
        errors: Last exception line of each failed task.
        cache_keys: Cache-key prefix of each task served from the cache.
    """

    order: list[str] = field(default_factory=list)
    wall_s: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    cache_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepSummary:
    """One pipeline step as it ended.

    Attributes:
        step: Task name on disk (the component name without ``comp-``), e.g. ``train-wine-model``.
        display_name: The name the UI shows (``set_display_name``), else ``step``.
        status: ``succeeded``, ``cached`` (served from kfp.local's cache; its record is an earlier
            run's), ``failed`` or ``skipped`` (a condition was false or an upstream step failed).
        wall_s: Seconds from kfp starting the step to its end, as seen by this process
            (includes interpreter start-up); ``None`` when it did not run.
        duration_s: Seconds measured by the step's tracker (``kpi_co2`` ``duration_s``).
        energy_kwh: Energy of the step, kWh (``kpi_co2`` ``energy_kwh``).
        emissions_kg: CO2-equivalent of the step, kg (``kpi_co2`` ``emissions_kg``).
        methods: Measurement method per component, e.g. ``{"cpu": "rapl", "ram": "..."}``.
        intensity: Grid intensity and where it came from, e.g. ``"458 g/kWh world-default"``.
        metrics: Values of the step's other Metrics artifacts (e.g. accuracy), by key.
        outputs: The step's output parameters (e.g. ``deploy``).
        kpi_co2_path: The JSON record written by the tracker, when present.
        error: Last exception line of a failed step's log.
    """

    step: str
    display_name: str
    status: str
    wall_s: float | None = None
    duration_s: float | None = None
    energy_kwh: float | None = None
    emissions_kg: float | None = None
    methods: dict[str, str] = field(default_factory=dict)
    intensity: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    kpi_co2_path: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """A finished (or failed) local pipeline run.

    Attributes:
        pipeline: Registered name (``wine``).
        pipeline_name: Name in the pipeline spec (``wine-quality``).
        run_dir: ``<output_dir>/<pipeline_name>-<timestamp>``, one folder per step inside.
        parameters: Arguments after type conversion.
        steps: Every executor task of the pipeline, in the order they ran, skipped ones last.
        succeeded: Whether the pipeline finished with status SUCCESS.
        wall_s: Seconds for the whole run, measured here.
        report_html: The carbon report's HTML page (``<run_dir>/carbon-report.html``, a copy of
            the step's ``report_html`` artifact), when a report step ran.
        log_path: kfp's full local log.
    """

    pipeline: str
    pipeline_name: str
    run_dir: Path | None
    parameters: dict[str, Any]
    steps: tuple[StepSummary, ...]
    succeeded: bool
    wall_s: float
    report_html: Path | None
    log_path: Path | None

    @property
    def total_energy_kwh(self) -> float:
        """This run's energy, kWh: the steps that ran (no record and cached steps count 0)."""
        return sum(step.energy_kwh or 0.0 for step in self.steps if step.status != "cached")

    @property
    def total_emissions_kg(self) -> float:
        """This run's CO2-equivalent, kg (cached steps excluded)."""
        return sum(step.emissions_kg or 0.0 for step in self.steps if step.status != "cached")

    @property
    def avoided_emissions_kg(self) -> float:
        """CO2-equivalent the cached steps' earlier runs emitted, kg: avoided by caching."""
        return sum(step.emissions_kg or 0.0 for step in self.steps if step.status == "cached")


# ---------------------------------------------------------------- reading results


def executor_tasks(spec: Any) -> list[tuple[str, str, Any]]:
    """``(task dir name, display name, component spec)`` of every container task, nested DAGs
    (conditions) included, upstream tasks first (ties by name: the same order every run)."""
    components = spec.components
    found: list[tuple[str, str, Any]] = []

    def walk(dag: Any) -> None:
        for task_name in _dependency_order(dag.tasks):
            task = dag.tasks[task_name]
            component_name = task.component_ref.name
            component = components[component_name]
            if component.WhichOneof("implementation") == "dag":
                walk(component.dag)
            else:
                display = task.task_info.name or task_name
                found.append((component_name.removeprefix("comp-"), display, component))

    walk(spec.root.dag)
    return found


def _dependency_order(tasks: Any) -> list[str]:
    """Task names of one DAG level, each after the tasks it depends on, ties by name."""
    waiting = {name: set(task.dependent_tasks) & set(tasks) for name, task in tasks.items()}
    ordered: list[str] = []
    while waiting:
        ready = sorted(name for name, needs in waiting.items() if not needs) or sorted(waiting)
        ordered.append(ready[0])
        del waiting[ready[0]]
        for needs in waiting.values():
            needs.discard(ready[0])
    return ordered


def collect_steps(
    spec: Any, run_dir: Path | None, events: TaskEvents, cache_root: Path | None = None
) -> tuple[StepSummary, ...]:
    """Every executor task of a finished local run, in the order they ran, skipped ones last.

    Args:
        spec: The pipeline's ``PipelineSpec`` proto.
        run_dir: ``<pipeline root>/<run name>``; each task that ran has a folder inside.
        events: What the log said (:class:`TaskEvents`).
        cache_root: kfp.local's cache directory, where a cached task's outputs are found.

    Returns:
        One :class:`StepSummary` per task. Unreadable files count as absent (never raises).
    """
    run_name = run_dir.name if run_dir is not None else ""
    steps = []
    for step, display, component in executor_tasks(spec):
        task_dir = run_dir / step if run_dir is not None else None
        executor_output = _read_json(task_dir / "executor_output.json") if task_dir else {}
        kpi_path = task_dir / KPI_ARTIFACT if task_dir is not None else None
        if step in events.cache_keys:
            executor_output = _cached_outputs(cache_root, events.cache_keys[step])
            kpi_path = _artifact_path(executor_output, KPI_ARTIFACT)
        record = _read_kpi(kpi_path)
        if executor_output and record is not None and record.pipeline_job not in ("", run_name):
            status = "cached"  # measured in the run named by record.pipeline_job
        elif executor_output:
            status = "succeeded"
        elif step in events.order:
            status = "failed"
        else:
            status = "skipped"
        steps.append(
            StepSummary(
                step=step,
                display_name=display,
                status=status,
                wall_s=events.wall_s.get(step),
                duration_s=record.duration_s if record else None,
                energy_kwh=record.energy_kwh if record else None,
                emissions_kg=record.emissions_kg if record else None,
                methods=_methods(record) if record else {},
                intensity=_intensity(record) if record else "",
                metrics=_other_metrics(component, executor_output),
                outputs=dict(executor_output.get("parameterValues", {})),
                kpi_co2_path=kpi_path if record else None,
                error=events.errors.get(step),
            )
        )
    ran = {step: index for index, step in enumerate(events.order)}
    return tuple(sorted(steps, key=lambda s: ran.get(s.step, len(ran))))


def _other_metrics(component: Any, executor_output: dict[str, Any]) -> dict[str, float]:
    """Numeric values of a step's Metrics outputs other than ``kpi_co2`` (e.g. accuracy)."""
    metrics: dict[str, float] = {}
    artifacts = executor_output.get("artifacts", {})
    for name, artifact_spec in component.output_definitions.artifacts.items():
        if (
            name.endswith(KPI_ARTIFACT)  # energy is in the columns; report totals too
            or artifact_spec.artifact_type.schema_title != "system.Metrics"
        ):
            continue
        for artifact in artifacts.get(name, {}).get("artifacts", []):
            metrics.update(
                (key, float(value))
                for key, value in artifact.get("metadata", {}).items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            )
    return metrics


def _cached_outputs(cache_root: Path | None, key_prefix: str) -> dict[str, Any]:
    """A cached task's outputs in executor-output shape, from kfp.local's cache entry.

    The entry maps output names to parameter values or serialised artifacts (``uri`` and
    ``metadata``); the log names the entry by the first characters of its key.
    """
    if cache_root is None or not key_prefix:
        return {}
    entries = sorted(cache_root.glob(f"{key_prefix}*.json"))
    entry = _read_json(entries[0]) if len(entries) == 1 else {}
    artifacts: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    for name, value in entry.items():
        if isinstance(value, dict) and "uri" in value:
            artifacts[name] = {"artifacts": [value]}
        elif isinstance(value, dict) and isinstance(value.get("artifacts"), list):
            artifacts[name] = {"artifacts": value["artifacts"]}
        else:
            parameters[name] = value
    return {"artifacts": artifacts, "parameterValues": parameters} if entry else {}


def _artifact_path(executor_output: dict[str, Any], name: str) -> Path | None:
    artifacts = executor_output.get("artifacts", {}).get(name, {}).get("artifacts", [])
    uri = artifacts[0].get("uri", "") if artifacts and isinstance(artifacts[0], dict) else ""
    return Path(uri) if uri and "://" not in uri else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_kpi(path: Path | None) -> EmissionsRecord | None:
    """The record ``track`` wrote to a step's ``kpi_co2`` file; None when there is none."""
    if path is None or not path.is_file():
        return None
    try:
        return load_record(path)
    except (OSError, ValueError):
        return None


def _methods(record: EmissionsRecord) -> dict[str, str]:
    return {"cpu": record.cpu_method, "gpu": record.gpu_method, "ram": record.ram_method}


def _intensity(record: EmissionsRecord) -> str:
    region = record.cloud_region or record.country_iso_code
    text = f"{record.carbon_intensity_g_per_kwh:.0f} g/kWh {record.intensity_source}"
    return text + (f" ({region})" if region else "")


def find_report(spec: Any, run_dir: Path | None) -> Path | None:
    """The first ``system.HTML`` output of any step, copied to ``<run_dir>/<step>.html`` (KFP
    names artifact files without an extension; a browser wants one)."""
    if run_dir is None:
        return None
    for step, _, component in executor_tasks(spec):
        for name, artifact_spec in component.output_definitions.artifacts.items():
            if artifact_spec.artifact_type.schema_title == "system.HTML":
                path = run_dir / step / name
                if path.is_file():
                    page = run_dir / f"{step}.html"
                    shutil.copyfile(path, page)
                    return page
    return None


# ---------------------------------------------------------------- rendering


def format_summary(summary: RunSummary) -> str:
    """Renders a run as a plain-text table: one row per step, then totals and outputs.

    Args:
        summary: What :func:`run_pipeline` returned (or ``PipelineRunError.summary``).

    Returns:
        Text ending without a newline.
    """
    header = (
        "step",
        "status",
        "wall",
        "measured",
        "energy",
        "CO2",
        "methods",
        "intensity",
    )
    rows = [header]
    for step in summary.steps:
        rows.append(
            (
                step.step,
                step.status,
                _cell(step.wall_s, format_duration),
                _cell(step.duration_s, format_duration),
                _cell(step.energy_kwh, format_energy),
                _cell(step.emissions_kg, format_co2),
                " ".join(f"{part}={method}" for part, method in step.methods.items()) or "-",
                step.intensity or "-",
            )
        )
    rows.append(
        (
            "total",
            "succeeded" if summary.succeeded else "failed",
            _cell(summary.wall_s, format_duration),
            "",
            _cell(summary.total_energy_kwh, format_energy),
            _cell(summary.total_emissions_kg, format_co2),
            "",
            "",
        )
    )
    lines = text_table(rows, numeric={2, 3, 4, 5}, total=True)
    cached = [step for step in summary.steps if step.status == "cached"]
    if cached:
        lines.append(
            f"cached: {plural(len(cached), 'step')} measured in earlier runs, not in the total; "
            f"{format_co2(summary.avoided_emissions_kg)} CO2 avoided by caching"
        )
    for step in summary.steps:
        values = {**step.metrics}
        shown = ", ".join(f"{key}={value:.4g}" for key, value in sorted(values.items()))
        if shown:
            lines.append(f"{step.step}: {shown}")
        if step.error:
            lines.append(f"{step.step}: {step.error}")
    if summary.report_html is not None:
        lines.append(f"report: {summary.report_html}")
    if summary.run_dir is not None:
        lines.append(f"outputs: {summary.run_dir}")
    return "\n".join(lines)


def _cell(value: float | None, render: Callable[[float], str]) -> str:
    return "-" if value is None else render(value)
