"""Pipeline-level carbon report: records in, Metrics dict / Markdown / HTML out (DESIGN §3, §4).

Pure renderings of :class:`~carbon_kfp.record.EmissionsRecord`s, shared by the ``carbon_report``
KFP component and ``carbon-kfp report``. Nothing here imports kfp; nothing computes energy of its
own: pipeline totals are sums of the steps' record fields.

Totals: ``emissions_kg``, ``energy_kwh``, the per-device energies and ``duration_s`` are sums over
steps (``duration_s`` is compute time, not wall-clock time: parallel steps add up).
``emissions_low_kg`` and ``emissions_high_kg`` are sums of the steps' bounds, i.e. the errors are
treated as fully correlated (the steps share hardware models and grid data), which is the wide,
conservative interval. Records are checked when read (:func:`~carbon_kfp.record.parse_record`):
a NaN, infinity, ``null`` or negative number, or a field of the wrong type, is an error that names
the file and the field, never a silent 0.

Every string that came from a record (step names, methods, sources, warnings) is escaped in the
HTML, and in the Markdown too (HTML entities, ``|`` and line breaks), because Markdown viewers such
as the Vertex AI console render inline HTML.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbon_kfp.record import EmissionsRecord

#: Record fields summed into pipeline totals (also the keys of the totals in the Metrics dict).
TOTAL_KEYS: tuple[str, ...] = (
    "emissions_kg",
    "emissions_low_kg",
    "emissions_high_kg",
    "energy_kwh",
    "cpu_energy_kwh",
    "gpu_energy_kwh",
    "ram_energy_kwh",
    "duration_s",
)
#: Record fields summed over cached steps, reported as ``avoided_<key>``.
AVOIDED_KEYS: tuple[str, ...] = ("emissions_kg", "energy_kwh")
#: Prefix of the per-step share keys in the Metrics dict: ``emissions_share_<step>`` (0-1).
SHARE_PREFIX = "emissions_share_"
DEFAULT_TITLE = "Carbon report"

# Chart segments: (label, colour); "overhead" is facility energy above the devices' (PUE - 1).
_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("CPU", "#4e79a7"),
    ("GPU", "#f28e2b"),
    ("RAM", "#59a14f"),
    ("PUE overhead", "#bab0ac"),
)


def _number(value: Any) -> float:
    """A record field as a finite float; ``None``, NaN and inf count as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


@dataclass(frozen=True)
class Step:
    """One pipeline step in a report: a unique display name and its record.

    ``cached``: the record was measured in another pipeline job (the step was served from the
    cache), so its emissions are not this run's: they are out of the totals and counted as
    avoided by caching.
    """

    name: str
    record: EmissionsRecord
    cached: bool = False

    def value(self, key: str) -> float:
        """A numeric record field as a finite float (see :data:`TOTAL_KEYS`)."""
        return _number(getattr(self.record, key))

    def device_energy_kwh(self) -> tuple[float, float, float, float]:
        """CPU, GPU, RAM and PUE-overhead energy. Units: kWh; they sum to ``energy_kwh``."""
        cpu, gpu, ram = (self.value(f"{d}_energy_kwh") for d in ("cpu", "gpu", "ram"))
        overhead = max(0.0, self.value("energy_kwh") - cpu - gpu - ram)
        return cpu, gpu, ram, overhead


def step_name(record: EmissionsRecord, fallback: str) -> str:
    """A step's name in a report: ``pipeline_task``, else ``task_name``, else ``fallback``."""
    return record.pipeline_task or record.task_name or fallback


def default_step_name(path: Path) -> str:
    """A fallback step name for a record file.

    A KFP artifact file has no suffix and lives in its task's directory
    (``<root>/<run>/train/kpi_co2``): its parent's name. Otherwise the file's stem.
    """
    if not path.suffix and path.parent.name:
        return path.parent.name
    return path.stem


def build_steps(
    named_records: Iterable[tuple[str, EmissionsRecord]], current_job: str = ""
) -> tuple[Step, ...]:
    """Steps in the given order, with repeated names made unique (``train``, ``train #2``, ...).

    ParallelFor iterations share one task name, so repeats are normal. With ``current_job`` (the
    job the report is made in), a record from another job marks its step ``cached``; a record
    without a job name counts as this run's.
    """
    used: set[str] = set()
    steps = []
    for name, record in named_records:
        base = unique = name.strip() or "step"
        count = 1
        while unique in used:  # also steers clear of a given name that looks like "a #2"
            count += 1
            unique = f"{base} #{count}"
        used.add(unique)
        cached = bool(current_job) and record.pipeline_job not in ("", current_job)
        steps.append(Step(unique, record, cached))
    return tuple(steps)


def totals(steps: Iterable[Step]) -> dict[str, float]:
    """Sums of :data:`TOTAL_KEYS` over the steps measured in this run (cached ones excluded)."""
    measured = [step for step in steps if not step.cached]
    return {key: math.fsum(step.value(key) for step in measured) for key in TOTAL_KEYS}


def avoided(steps: Iterable[Step]) -> dict[str, float]:
    """``emissions_kg`` and ``energy_kwh`` of the cached steps: what caching saved this run."""
    cached = [step for step in steps if step.cached]
    return {key: math.fsum(step.value(key) for step in cached) for key in AVOIDED_KEYS}


def emissions_shares(steps: Iterable[Step]) -> dict[str, float]:
    """Each step's share of this run's emissions (0-1) by step name; cached steps have 0.0."""
    steps = tuple(steps)
    total_kg = totals(steps)["emissions_kg"]
    return {
        step.name: step.value("emissions_kg") / total_kg
        if total_kg > 0 and not step.cached
        else 0.0
        for step in steps
    }


def metric_key(name: str) -> str:
    """``name`` as a Metrics key fragment: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "step"


def report_metrics(steps: Iterable[Step]) -> dict[str, float]:
    """The pipeline-level Metrics dict (finite floats only).

    Keys: the totals of :data:`TOTAL_KEYS` over the steps measured in this run; ``steps`` (their
    count); ``cached_steps`` and ``avoided_emissions_kg`` / ``avoided_energy_kwh`` (what the cached
    steps' earlier runs used); ``carbon_intensity_g_per_kwh``,
    the energy-weighted mean intensity (when energy > 0); ``pue``, total facility over device
    energy (when device energy > 0); and ``emissions_share_<step>`` (0-1) per step, the step name
    folded by :func:`metric_key` (repeats suffixed ``_2``, ``_3``...).
    """
    steps = tuple(steps)
    metrics = totals(steps)
    cached_count = sum(step.cached for step in steps)
    metrics["steps"] = float(len(steps) - cached_count)
    metrics["cached_steps"] = float(cached_count)
    metrics |= {f"avoided_{key}": value for key, value in avoided(steps).items()}
    if metrics["energy_kwh"] > 0:
        metrics["carbon_intensity_g_per_kwh"] = (
            metrics["emissions_kg"] * 1000.0 / metrics["energy_kwh"]
        )
    device_kwh = sum(metrics[f"{d}_energy_kwh"] for d in ("cpu", "gpu", "ram"))
    if device_kwh > 0:
        metrics["pue"] = metrics["energy_kwh"] / device_kwh
    used: set[str] = set(metrics)
    for name, share in emissions_shares(steps).items():
        key = base = SHARE_PREFIX + metric_key(name)
        count = 1
        while key in used:
            count += 1
            key = f"{base}_{count}"
        used.add(key)
        metrics[key] = share
    return {key: value for key, value in metrics.items() if math.isfinite(value)}


# -- text formatting ------------------------------------------------------------------------


def _num(value: float) -> str:
    """4 significant digits; small energies stay readable (``3.142e-06``)."""
    return f"{value:.4g}"


def _methods(record: EmissionsRecord) -> str:
    return f"{record.cpu_method} / {record.gpu_method} / {record.ram_method}"


def _intensity_source(record: EmissionsRecord) -> str:
    year = f" {record.intensity_year}" if record.intensity_year else ""
    where = record.cloud_region or record.country_iso_code
    return f"{record.intensity_source}{year}" + (f" ({where})" if where else "")


_COLUMNS = (
    "Step",
    "CPU kWh",
    "GPU kWh",
    "RAM kWh",
    "Energy kWh (x PUE)",
    "CO2 kg",
    "CO2 range kg",
    "Share",
    "Duration s",
    "Methods cpu / gpu / ram",
    "Intensity gCO2/kWh",
    "Intensity source",
)

_TEXT_COLUMNS = (0, 9, 11)  # indexes of _COLUMNS that hold text; the others are numbers


def _row(step: Step, share: float) -> tuple[str, ...]:
    record = step.record
    return (
        f"{step.name} (cached)" if step.cached else step.name,
        _num(step.value("cpu_energy_kwh")),
        _num(step.value("gpu_energy_kwh")),
        _num(step.value("ram_energy_kwh")),
        _num(step.value("energy_kwh")),
        _num(step.value("emissions_kg")),
        f"{_num(step.value('emissions_low_kg'))} - {_num(step.value('emissions_high_kg'))}",
        f"{share:.1%}",
        f"{step.value('duration_s'):.1f}",
        _methods(record),
        f"{_number(record.carbon_intensity_g_per_kwh):.1f}",
        _intensity_source(record),
    )


def _total_row(total: Mapping[str, float], count: int) -> tuple[str, ...]:
    return (
        f"Total ({count} steps)",
        _num(total["cpu_energy_kwh"]),
        _num(total["gpu_energy_kwh"]),
        _num(total["ram_energy_kwh"]),
        _num(total["energy_kwh"]),
        _num(total["emissions_kg"]),
        f"{_num(total['emissions_low_kg'])} - {_num(total['emissions_high_kg'])}",
        "100.0%" if total["emissions_kg"] > 0 else "0.0%",
        f"{total['duration_s']:.1f}",
        "",
        "",
        "",
    )


def _measured_count(steps: tuple[Step, ...]) -> int:
    return sum(not step.cached for step in steps)


def _summary_line(steps: tuple[Step, ...]) -> str:
    total = totals(steps)
    cached = sum(step.cached for step in steps)
    line = (
        f"{len(steps) - cached} steps: {_num(total['emissions_kg'])} kg CO2eq "
        f"({_num(total['emissions_low_kg'])} - {_num(total['emissions_high_kg'])} kg), "
        f"{_num(total['energy_kwh'])} kWh, {total['duration_s']:.1f} s of compute."
    )
    if cached:
        line += (
            f" {cached} cached steps not in the total: {_num(avoided(steps)['emissions_kg'])} kg "
            "CO2eq avoided by caching."
        )
    return line


def _step_warnings(steps: Iterable[Step]) -> list[tuple[str, str]]:
    return [(step.name, message) for step in steps for message in step.record.warnings]


def _md_cell(text: str) -> str:
    """Escape a Markdown table cell: HTML entities, pipes, line breaks."""
    escaped = html.escape(text, quote=False).replace("|", "\\|")
    return " ".join(escaped.split())


def render_markdown(steps: Iterable[Step], title: str = DEFAULT_TITLE) -> str:
    """A Markdown report: totals, one table row per step and a total row, then warnings."""
    steps = tuple(steps)
    total = totals(steps)
    shares = emissions_shares(steps)
    lines = [f"# {_md_cell(title)}", "", _md_cell(_summary_line(steps)), ""]
    lines.append("| " + " | ".join(_COLUMNS) + " |")
    lines.append(
        "|" + "|".join("---" if i in _TEXT_COLUMNS else "---:" for i in range(len(_COLUMNS))) + "|"
    )
    for step in steps:
        lines.append("| " + " | ".join(_md_cell(c) for c in _row(step, shares[step.name])) + " |")
    total_cells = (
        f"**{_md_cell(c)}**" if c else "" for c in _total_row(total, _measured_count(steps))
    )
    lines.append("| " + " | ".join(total_cells) + " |")
    lines += [
        "",
        "Energy kWh is facility energy: device energy times PUE. The CO2 range sums the steps' "
        "bounds (errors treated as correlated). Duration adds up compute time of all steps.",
    ]
    warnings = _step_warnings(steps)
    if warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {_md_cell(name)}: {_md_cell(message)}" for name, message in warnings]
    return "\n".join(lines) + "\n"


# -- HTML ---------------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def render_chart_svg(steps: Iterable[Step]) -> str:
    """An inline SVG: one horizontal bar per step, stacked CPU / GPU / RAM / PUE overhead (kWh).

    Bars are scaled to the largest step; a pipeline without energy draws empty bars. Labels
    longer than 28 characters are cut with an ellipsis (the full name is the label's tooltip).
    """
    steps = tuple(steps)
    label_w, bar_w, value_w, row_h, top = 200, 440, 120, 26, 34
    width = label_w + bar_w + value_w
    height = top + row_h * max(1, len(steps)) + 10
    largest_kwh = max((sum(step.device_energy_kwh()) for step in steps), default=0.0)
    scale = bar_w / largest_kwh if largest_kwh > 0 else 0.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<title>Energy by step and component (kWh)</title>",
    ]
    legend_x = label_w
    for label, colour in _SEGMENTS:
        parts.append(f'<rect x="{legend_x}" y="6" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="16">{_esc(label)}</text>')
        legend_x += 24 + 8 * len(label)
    for index, step in enumerate(steps):
        y = top + index * row_h
        label = step.name if len(step.name) <= 28 else step.name[:27] + "\u2026"  # fits 200 px
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_esc(label)}'
            f"<title>{_esc(step.name)}</title></text>"
        )
        x = float(label_w)
        for (label, colour), kwh in zip(_SEGMENTS, step.device_energy_kwh(), strict=True):
            w = kwh * scale
            if w <= 0:
                continue
            parts.append(
                f'<rect x="{x:.2f}" y="{y + 3}" width="{w:.2f}" height="{row_h - 8}" '
                f'fill="{colour}"><title>{_esc(f"{step.name}: {label} {_num(kwh)} kWh")}'
                "</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.2f}" y="{y + 15}">{_esc(_num(step.value("energy_kwh")))} kWh</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-top: 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: bold; background: #f4f4f4; }
p.note { color: #555; font-size: 12px; }
"""


def render_html(steps: Iterable[Step], title: str = DEFAULT_TITLE) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts): totals, chart, table."""
    steps = tuple(steps)
    total = totals(steps)
    shares = emissions_shares(steps)

    def tr(cells: tuple[str, ...], css_class: str = "") -> str:
        tds = "".join(
            f"<td{'' if i in _TEXT_COLUMNS else ' class=num'}>{_esc(c)}</td>"
            for i, c in enumerate(cells)
        )
        return f"<tr{f' class={css_class}' if css_class else ''}>{tds}</tr>"

    rows = [tr(_row(step, shares[step.name])) for step in steps]
    rows.append(tr(_total_row(total, _measured_count(steps)), "total"))
    warnings = _step_warnings(steps)
    warning_html = (
        "<h2>Warnings</h2><ul>"
        + "".join(f"<li>{_esc(name)}: {_esc(message)}</li>" for name, message in warnings)
        + "</ul>"
        if warnings
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{_esc(title)}</h1>\n<p>{_esc(_summary_line(steps))}</p>\n"
        f"{render_chart_svg(steps)}\n"
        "<table><thead><tr>"
        + "".join(f"<th>{_esc(c)}</th>" for c in _COLUMNS)
        + "</tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
        '<p class="note">Energy kWh is facility energy: device energy times PUE. The CO2 range '
        "sums the steps' bounds (errors treated as correlated). Duration adds up compute time of "
        "all steps.</p>\n"
        f"{warning_html}</body></html>\n"
    )
