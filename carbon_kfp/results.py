"""A Vertex AI job's energy and CO2, read back from its task details (``carbon-kfp results``).

Pure: works on ``PipelineTaskDetail`` messages turned into dicts (enum names, snake_case keys,
artifact metadata as plain values), so it is tested on constructed protos and imports nothing
from Google. Each executor task's ``system.Metrics`` output named ``kpi_co2`` gives one step; a
task whose execution was a cache hit is marked ``cached`` and kept out of the total (its energy
was spent by an earlier job). A ``carbon_report`` task's ``pipeline_kpi_co2`` totals are read too,
so the two can be compared.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from carbon_kfp.report import text_table
from carbon_kfp.units import plural

STEP_METRICS = "kpi_co2"
REPORT_METRICS = "pipeline_kpi_co2"
FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class StepCo2:
    """One tracked step: kWh, kg CO2eq (and its low/high bounds) and seconds, from ``kpi_co2``."""

    step: str
    state: str
    cached: bool
    energy_kwh: float
    emissions_kg: float
    emissions_low_kg: float
    emissions_high_kg: float
    duration_s: float


@dataclass(frozen=True)
class JobCo2:
    """A job's steps, their totals without cached steps, and the ``carbon_report`` totals."""

    job: str
    steps: tuple[StepCo2, ...]
    report: Mapping[str, float] | None

    @property
    def ran(self) -> tuple[StepCo2, ...]:
        """The steps this job ran itself (cached steps excluded): what its totals sum."""
        return tuple(step for step in self.steps if not step.cached)

    @property
    def energy_kwh(self) -> float:
        """Energy of the steps this job ran, kWh (cached steps excluded)."""
        return sum(step.energy_kwh for step in self.ran)

    @property
    def emissions_kg(self) -> float:
        """CO2eq of the steps this job ran, kg (cached steps excluded)."""
        return sum(step.emissions_kg for step in self.ran)

    @property
    def avoided_emissions_kg(self) -> float:
        """CO2eq the cached steps cost in the jobs that ran them, kg: not spent again here."""
        return sum(step.emissions_kg for step in self.steps if step.cached)


def task_state(detail: Mapping[str, Any]) -> str:
    """A task's state as shown to users: ``CACHED`` for a cache hit, else the API's state name.

    ``detail`` is a ``PipelineTaskDetail`` as a dict (enum names, snake_case keys).
    """
    if detail.get("execution", {}).get("state") == "CACHED":
        return "CACHED"
    return str(detail.get("state", "STATE_UNSPECIFIED"))


def _metrics(detail: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for artifact in detail.get("outputs", {}).get(name, {}).get("artifacts", []):
        if artifact.get("schema_title") == "system.Metrics":
            return dict(artifact.get("metadata") or {})
    return None


def _number(metrics: Mapping[str, Any], key: str) -> float:
    value = metrics.get(key, 0.0)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def job_co2(job: str, details: Iterable[Mapping[str, Any]]) -> JobCo2:
    """Collects the steps and report totals of ``job`` from its task details (as dicts).

    Only executor tasks count (``system.ContainerExecution``): a condition or loop DAG that
    re-exposes a step's ``kpi_co2`` is not counted twice. Steps keep the API's order.
    """
    steps: list[StepCo2] = []
    report: dict[str, float] | None = None
    for detail in details:
        execution = detail.get("execution", {})
        if execution.get("schema_title", "system.ContainerExecution") != (
            "system.ContainerExecution"
        ):
            continue
        state = task_state(detail)
        kpi = _metrics(detail, STEP_METRICS)
        if kpi is not None:
            steps.append(
                StepCo2(
                    step=str(detail.get("task_name", "")),
                    state=state,
                    cached=state == "CACHED",
                    energy_kwh=_number(kpi, "energy_kwh"),
                    emissions_kg=_number(kpi, "emissions_kg"),
                    emissions_low_kg=_number(kpi, "emissions_low_kg"),
                    emissions_high_kg=_number(kpi, "emissions_high_kg"),
                    duration_s=_number(kpi, "duration_s"),
                )
            )
        totals = _metrics(detail, REPORT_METRICS)
        if totals is not None:
            report = {key: _number(totals, key) for key in totals}
    return JobCo2(job=job, steps=tuple(steps), report=report)


def to_json(result: JobCo2) -> str:
    """The steps, the totals (kWh, kg) and the report's own totals as a JSON document."""
    document = {
        "job": result.job,
        "steps": [asdict(step) for step in result.steps],
        "total": {
            "energy_kwh": result.energy_kwh,
            "emissions_kg": result.emissions_kg,
            "avoided_emissions_kg": result.avoided_emissions_kg,
        },
        "carbon_report": dict(result.report) if result.report is not None else None,
    }
    return json.dumps(document, indent=2)


def to_csv(result: JobCo2) -> str:
    """One row per step, then a ``total`` row (cached steps excluded), in kWh, kg and s."""
    out = io.StringIO()
    columns = list(StepCo2.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for step in result.steps:
        writer.writerow(asdict(step))
    writer.writerow(
        {
            "step": "total",
            "state": "",
            "cached": False,
            "energy_kwh": result.energy_kwh,
            "emissions_kg": result.emissions_kg,
            "emissions_low_kg": sum(step.emissions_low_kg for step in result.ran),
            "emissions_high_kg": sum(step.emissions_high_kg for step in result.ran),
            "duration_s": sum(step.duration_s for step in result.ran),
        }
    )
    return out.getvalue()


def to_table(result: JobCo2) -> str:
    """A terminal table: energy (kWh) and CO2 (g, with its low-high range) per step and total."""
    header = ("step", "state", "energy kWh", "CO2 g", "CO2 range g", "measured s")
    rows = [
        (
            f"{step.step} (cached)" if step.cached else step.step,
            step.state,
            f"{step.energy_kwh:.3g}",
            f"{step.emissions_kg * 1000:.3g}",
            f"{step.emissions_low_kg * 1000:.3g}-{step.emissions_high_kg * 1000:.3g}",
            f"{step.duration_s:.1f}",
        )
        for step in result.steps
    ]
    rows.append(
        ("total", "", f"{result.energy_kwh:.3g}", f"{result.emissions_kg * 1000:.3g}", "", "")
    )
    text = [f"job {result.job}", *text_table([header, *rows], {2, 3, 5}, total=True)]
    cached = len(result.steps) - len(result.ran)
    if cached:
        text.append(
            f"cached: {plural(cached, 'step')} measured in earlier jobs, not in the total; "
            f"{result.avoided_emissions_kg * 1000:.3g} g CO2 avoided"
        )
    if result.report is not None:
        report = result.report
        text.append(
            f"carbon_report: {report.get('emissions_kg', 0.0) * 1000:.3g} g CO2, "
            f"{report.get('energy_kwh', 0.0):.3g} kWh over {report.get('steps', 0.0):.0f} "
            f"steps ({report.get('cached_steps', 0.0):.0f} cached)"
        )
    if not result.steps:
        text.append("no kpi_co2 outputs: no tracked step has finished in this job")
    return "\n".join(line.rstrip() for line in text)


def render(result: JobCo2, fmt: str) -> str:
    """``result`` as ``table``, ``json`` or ``csv``.

    Raises:
        ValueError: another format.
    """
    renderers = {"table": to_table, "json": to_json, "csv": to_csv}
    if fmt not in renderers:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return renderers[fmt](result)
