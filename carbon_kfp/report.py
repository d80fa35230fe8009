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

Numbers are shown at a readable scale (:mod:`carbon_kfp.units`: mg, g or kg; mWh, Wh or kWh).
Embodied emissions are shown beside the operational ones, never added to them. The HTML page is
self-contained (inline CSS and SVG, no scripts, no fetches) and fits 800 px: long names wrap in
tables and are cut with an ellipsis in charts. :func:`greener_regions` re-prices the run's device
energy in the regions offering Vertex AI Pipelines (:mod:`carbon_kfp.regions`).

Every string that came from a record (step names, methods, sources, warnings) is escaped in the
HTML, and in the Markdown too (HTML entities, ``|`` and line breaks), because Markdown viewers such
as the Vertex AI console render inline HTML.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbon_kfp.record import DEVICES, EmissionsRecord
from carbon_kfp.units import (
    format_co2,
    format_co2_range,
    format_duration,
    format_energy,
    format_power,
    plural,
)

if TYPE_CHECKING:
    from carbon_kfp.regions import RegionEmissions

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
        cpu, gpu, ram = (self.value(f"{device}_energy_kwh") for device in DEVICES)
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


def _unique(base: str, used: set[str], suffix: str) -> str:
    """``base``, else ``base`` + ``suffix`` with 2, 3, ... until unused; the result is marked
    used. Also steers clear of a given name that looks like a repeat (``"a #2"``)."""
    unique, count = base, 1
    while unique in used:
        count += 1
        unique = f"{base}{suffix}{count}"
    used.add(unique)
    return unique


def build_steps(
    named_records: Iterable[tuple[str, EmissionsRecord]], current_job: str = ""
) -> tuple[Step, ...]:
    """Steps in the given order, with repeated names made unique (``train``, ``train #2``, ...).

    ParallelFor iterations share one task name, so repeats are normal. With ``current_job`` (the
    job the report is made in), a record from another job marks its step ``cached``; a record
    without a job name counts as this run's.
    """
    used: set[str] = set()
    return tuple(
        Step(
            _unique(name.strip() or "step", used, " #"),
            record,
            cached=bool(current_job) and record.pipeline_job not in ("", current_job),
        )
        for name, record in named_records
    )


def _measured(steps: Iterable[Step]) -> list[Step]:
    """The steps measured in this run (not served from the cache)."""
    return [step for step in steps if not step.cached]


def totals(steps: Iterable[Step]) -> dict[str, float]:
    """Sums of :data:`TOTAL_KEYS` over the steps measured in this run (cached ones excluded)."""
    measured = _measured(steps)
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

    Keys: the totals of :data:`TOTAL_KEYS` over the steps measured in this run; ``co2_g`` and
    ``energy_wh`` (the same totals at a readable scale); ``embodied_kg``, ``embodied_low_kg``,
    ``embodied_high_kg`` and ``embodied_g`` (sums over the steps whose embodied emissions are
    known; absent when none is) and ``embodied_unknown_steps``; ``steps`` (their count);
    ``cached_steps`` and ``avoided_emissions_kg`` / ``avoided_energy_kwh`` (what the cached
    steps' earlier runs used); ``carbon_intensity_g_per_kwh``, the energy-weighted mean
    intensity (when energy > 0); ``pue``, total facility over device energy (when device
    energy > 0); and ``emissions_share_<step>`` (0-1) per step, the step name folded by
    :func:`metric_key` (repeats suffixed ``_2``, ``_3``...).
    """
    steps = tuple(steps)
    metrics = totals(steps)
    measured_count = len(_measured(steps))
    metrics["steps"] = float(measured_count)
    metrics["cached_steps"] = float(len(steps) - measured_count)
    metrics |= {f"avoided_{key}": value for key, value in avoided(steps).items()}
    if metrics["energy_kwh"] > 0:
        metrics["carbon_intensity_g_per_kwh"] = (
            metrics["emissions_kg"] * 1000.0 / metrics["energy_kwh"]
        )
    device_kwh = sum(metrics[f"{device}_energy_kwh"] for device in DEVICES)
    if device_kwh > 0:
        metrics["pue"] = metrics["energy_kwh"] / device_kwh
    metrics["co2_g"] = metrics["emissions_kg"] * 1000.0
    metrics["energy_wh"] = metrics["energy_kwh"] * 1000.0
    embodied, unknown = _embodied_totals(steps)
    if unknown < measured_count:
        metrics |= embodied
        metrics["embodied_g"] = embodied["embodied_kg"] * 1000.0
    metrics["embodied_unknown_steps"] = float(unknown)
    used: set[str] = set(metrics)
    for name, share in emissions_shares(steps).items():
        metrics[_unique(SHARE_PREFIX + metric_key(name), used, "_")] = share
    return {key: value for key, value in metrics.items() if math.isfinite(value)}


# -- greener regions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    """Greener regions for a run and what they are based on (for a footnote).

    ``alternatives`` are :func:`carbon_kfp.regions.rank_regions` entries whose ``factor`` is
    their emissions over this run's operational emissions (not over a ranking baseline).
    """

    alternatives: tuple[RegionEmissions, ...]
    basis: str


def run_energy(steps: Iterable[Step]) -> tuple[float, EmissionsRecord | None]:
    """This run's device energy (CPU + GPU + RAM before PUE; kWh) over its measured steps, and
    the record of the step that used the most energy (``None`` when no step was measured)."""
    measured = _measured(steps)
    device_kwh = math.fsum(sum(step.device_energy_kwh()[:3]) for step in measured)
    main = max(measured, key=lambda step: step.value("energy_kwh"), default=None)
    return device_kwh, main.record if main else None


def greener_regions(steps: Iterable[Step], count: int = 5) -> Advice | None:
    """Up to ``count`` regions where this run would emit less, greenest first.

    The run's device energy is re-priced with each region's intensity and the provider's PUE
    (:func:`carbon_kfp.regions.rank_regions`) among the regions offering Vertex AI Pipelines, for
    the provider, region and data year of the step that used the most energy (GCP, newest year
    when it ran off-cloud). ``None`` when nothing ran or the run's region cannot be ranked.
    Reads the packaged intensity and region tables (cached).
    """
    from carbon_kfp.errors import ConfigError
    from carbon_kfp.regions import rank_regions

    steps = tuple(steps)
    device_kwh, main = run_energy(steps)
    run_kg = totals(steps)["emissions_kg"]
    if main is None or device_kwh <= 0 or run_kg <= 0:
        return None
    provider = main.cloud_provider or "gcp"
    year = (
        main.intensity_year if provider == "gcp" and main.intensity_source == "gcp-region" else None
    )
    try:
        ranking = rank_regions(device_kwh, provider=provider, year=year)
    except ConfigError:
        return None
    options = tuple(
        dataclasses.replace(r, factor=r.emissions_kg / run_kg)
        for r in ranking.regions
        if r.emissions_kg < run_kg
    )[:count]
    first = ranking.regions[0] if ranking.regions else None
    year_text = f"{first.intensity_year} " if first and first.intensity_year else ""
    source = first.intensity_source if first else ""
    basis = (
        f"{provider} {year_text}grid intensity ({source}) x {provider} PUE, same device energy; "
        f"candidates: {ranking.candidates}"
    )
    return Advice(options, basis)


# -- text -------------------------------------------------------------------------------------


def _co2_range(values: Mapping[str, float]) -> str:
    """The range of a step's or the total's emissions (``emissions_low_kg``, ``_high_kg``)."""
    return format_co2_range(values["emissions_low_kg"], values["emissions_high_kg"])


def _embodied_text(low_kg: float | None, kg: float | None, high_kg: float | None) -> str:
    if kg is None:
        return "unknown"
    text = format_co2(kg)
    if low_kg is not None and high_kg is not None:
        text += f" ({format_co2_range(low_kg, high_kg)})"
    return text


def _methods(record: EmissionsRecord) -> str:
    return f"{record.cpu_method} / {record.gpu_method} / {record.ram_method}"


def _intensity(record: EmissionsRecord) -> str:
    year = f" {record.intensity_year}" if record.intensity_year else ""
    where = record.cloud_region or record.country_iso_code
    place = f", {where}" if where else ""
    return (
        f"{_number(record.carbon_intensity_g_per_kwh):.0f} g/kWh "
        f"({record.intensity_source}{year}{place}), PUE {_number(record.pue):.2f}"
    )


#: Columns of the main table: short values, so it reads at 800 px and in a terminal.
_COLUMNS = ("Step", "CO2", "CO2 range", "Embodied", "Energy", "Share", "Duration")
_TEXT_COLUMNS = (0,)  # indexes of _COLUMNS that hold text; the others are numbers
#: Columns of the "how it was measured" table.
_DETAIL_COLUMNS = (
    "Step",
    "CPU / GPU / RAM energy",
    "Methods cpu / gpu / ram",
    "Intensity",
    "Embodied method",
)


def _row(step: Step, share: float) -> tuple[str, ...]:
    record = step.record
    return (
        f"{step.name} (cached)" if step.cached else step.name,
        format_co2(step.value("emissions_kg")),
        format_co2_range(step.value("emissions_low_kg"), step.value("emissions_high_kg")),
        _embodied_text(record.embodied_low_kg, record.embodied_kg, record.embodied_high_kg),
        format_energy(step.value("energy_kwh")),
        f"{share:.1%}",
        format_duration(step.value("duration_s")),
    )


def _detail_row(step: Step) -> tuple[str, ...]:
    record = step.record
    cpu, gpu, ram, _ = step.device_energy_kwh()
    return (
        step.name,
        " / ".join(format_energy(kwh) for kwh in (cpu, gpu, ram)),
        _methods(record),
        _intensity(record),
        record.embodied_method or "unknown",
    )


def _embodied_totals(steps: Iterable[Step]) -> tuple[dict[str, float], int]:
    """Sums of the known embodied figures of this run's steps, and how many steps are unknown."""
    measured = _measured(steps)
    known = [step.record for step in measured if step.record.embodied_kg is not None]
    sums = {
        key: math.fsum(_number(getattr(record, key)) for record in known)
        for key in ("embodied_kg", "embodied_low_kg", "embodied_high_kg")
    }
    return sums, len(measured) - len(known)


def _total_row(steps: tuple[Step, ...]) -> tuple[str, ...]:
    total = totals(steps)
    embodied, unknown = _embodied_totals(steps)
    measured = len(_measured(steps))
    embodied_text = (
        "unknown"
        if unknown == measured
        else _embodied_text(
            embodied["embodied_low_kg"], embodied["embodied_kg"], embodied["embodied_high_kg"]
        )
        + (f" + {unknown} unknown" if unknown else "")
    )
    return (
        f"Total ({plural(measured, 'step')})",
        format_co2(total["emissions_kg"]),
        _co2_range(total),
        embodied_text,
        format_energy(total["energy_kwh"]),
        "100.0%" if total["emissions_kg"] > 0 else "0.0%",
        format_duration(total["duration_s"]),
    )


def _summary_line(steps: tuple[Step, ...]) -> str:
    total = totals(steps)
    measured = len(_measured(steps))
    cached = len(steps) - measured
    line = (
        f"{plural(measured, 'step')}: {format_co2(total['emissions_kg'])} CO2eq "
        f"({_co2_range(total)}), {format_energy(total['energy_kwh'])}, "
        f"{format_duration(total['duration_s'])} of compute."
    )
    embodied, unknown = _embodied_totals(steps)
    if unknown < measured:
        line += (
            f" Embodied (hardware manufacturing, reported separately, not in the CO2 total): "
            f"{format_co2(embodied['embodied_kg'])}"
            + (f"; unknown for {plural(unknown, 'step')}." if unknown else ".")
        )
    if cached:
        line += (
            f" {plural(cached, 'cached step')} not in the total: "
            f"{format_co2(avoided(steps)['emissions_kg'])} CO2eq avoided by caching."
        )
    return line


_NOTE = (
    "Energy is facility energy: device energy times PUE. CO2 is operational (electricity); "
    "embodied emissions are the step's share of its host server's manufacturing (Cloud Carbon "
    "Footprint's method) and are never added to it. The CO2 range sums the steps' bounds (errors "
    "treated as correlated). Duration adds up compute time of all steps."
)


def _step_warnings(steps: Iterable[Step]) -> list[tuple[str, str]]:
    return [(step.name, message) for step in steps for message in step.record.warnings]


def _alternative_row(option: RegionEmissions) -> tuple[str, ...]:
    return (
        option.region,
        f"{option.intensity_g_per_kwh:.4g} g/kWh",
        format_co2(option.emissions_kg),
        f"{option.factor:.2g}x",
    )


_ALTERNATIVE_COLUMNS = ("Region", "Grid intensity", "CO2 for this run", "vs this run")


def text_table(
    rows: Sequence[tuple[str, ...]], numeric: set[int], *, total: bool = False
) -> list[str]:
    """Lines of a plain-text table: ``rows[0]`` is the header, underlined by a rule; columns
    in ``numeric`` are right-aligned, the others left-aligned. With ``total``, the last row is
    a total, set off by a second rule."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def render(row: tuple[str, ...]) -> str:
        cells = (
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        )
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [render(rows[0]), rule, *(render(row) for row in rows[1:])]
    if total:
        lines.insert(len(lines) - 1, rule)
    return lines


def render_text(steps: Iterable[Step], advice: Advice | None = None) -> str:
    """A plain-text report for a terminal: the step table, a total, greener regions."""
    steps = tuple(steps)
    shares = emissions_shares(steps)
    numeric = set(range(1, len(_COLUMNS)))
    rows = [_COLUMNS, *(_row(step, shares[step.name]) for step in steps), _total_row(steps)]
    lines = [*text_table(rows, numeric, total=True), "", _summary_line(steps)]
    if advice is not None and advice.alternatives:
        lines += ["", "Greener regions for this run:"]
        table = [_ALTERNATIVE_COLUMNS, *map(_alternative_row, advice.alternatives)]
        lines += ["  " + line for line in text_table(table, {1, 2, 3})]
        lines.append(f"  ({advice.basis})")
    return "\n".join(lines) + "\n"


# -- Markdown ---------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    """Escape a Markdown table cell: HTML entities, pipes, line breaks."""
    escaped = html.escape(text, quote=False).replace("|", "\\|")
    return " ".join(escaped.split())


def _md_table(
    columns: tuple[str, ...], rows: Iterable[tuple[str, ...]], text_columns: set[int]
) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |"]
    lines.append(
        "|" + "|".join("---" if i in text_columns else "---:" for i in range(len(columns))) + "|"
    )
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(
    steps: Iterable[Step], title: str = DEFAULT_TITLE, advice: Advice | None = None
) -> str:
    """A Markdown report: summary, step table with a total row, how it was measured, greener
    regions, warnings."""
    steps = tuple(steps)
    shares = emissions_shares(steps)
    lines = [f"# {_md_cell(title)}", "", _md_cell(_summary_line(steps)), ""]
    table = _md_table(
        _COLUMNS, (_row(step, shares[step.name]) for step in steps), set(_TEXT_COLUMNS)
    )
    table.append("| " + " | ".join(f"**{_md_cell(c)}**" for c in _total_row(steps)) + " |")
    lines += table
    lines += ["", _NOTE, "", "## How it was measured", ""]
    lines += _md_table(_DETAIL_COLUMNS, map(_detail_row, steps), {0, 2, 3, 4})
    if advice is not None and advice.alternatives:
        lines += ["", "## Greener regions for this run", ""]
        lines += _md_table(_ALTERNATIVE_COLUMNS, map(_alternative_row, advice.alternatives), {0})
        lines += ["", _md_cell(advice.basis)]
    warnings = _step_warnings(steps)
    if warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {_md_cell(name)}: {_md_cell(message)}" for name, message in warnings]
    return "\n".join(lines) + "\n"


# -- HTML ---------------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


_CHART_W = 760  # viewBox width; the SVG scales down to its container (max-width: 100%)
_LABEL_W = 170
_VALUE_W = 150


def _label(name: str) -> str:
    """A chart label that fits ``_LABEL_W`` px: cut at 22 characters with an ellipsis."""
    return name if len(name) <= 22 else name[:21] + "\u2026"


def _svg_open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f"<title>{_esc(title)}</title>",
    ]


def _legend(parts: list[str], items: Iterable[tuple[str, str]], y: int = 6) -> None:
    x = _LABEL_W
    for label, colour in items:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{y + 10}">{_esc(label)}</text>')
        x += 24 + 7 * len(label)


def _bar_chart(
    steps: tuple[Step, ...],
    title: str,
    segments: Callable[[Step], tuple[float, ...]],
    value_text: Callable[[Step], str],
    fmt: Callable[[float], str],
    extra: Callable[[Step], float] | None = None,
) -> str:
    """Horizontal bars, one per step, stacked by :data:`_SEGMENTS`; ``extra`` draws a separate
    hatched bar under each (embodied emissions), on the same scale."""
    row_h, top = 30 if extra else 24, 30
    bar_w = _CHART_W - _LABEL_W - _VALUE_W
    height = top + row_h * max(1, len(steps)) + 8
    largest = max(
        (max(sum(segments(step)), extra(step) if extra else 0.0) for step in steps), default=0.0
    )
    scale = bar_w / largest if largest > 0 else 0.0
    parts = _svg_open(_CHART_W, height, title)
    if extra:
        parts.insert(
            2,
            '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e7e1ef"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#8e6c8a" stroke-width="3"/></pattern>'
            "</defs>",
        )
    legend = list(_SEGMENTS) + ([("Embodied (separate)", "url(#hatch)")] if extra else [])
    _legend(parts, legend)
    for index, step in enumerate(steps):
        y = top + index * row_h
        parts.append(
            f'<text x="{_LABEL_W - 8}" y="{y + 14}" text-anchor="end">{_esc(_label(step.name))}'
            f"<title>{_esc(step.name)}</title></text>"
        )
        x = float(_LABEL_W)
        bar_h = 12 if extra else row_h - 8
        for (label, colour), value in zip(_SEGMENTS, segments(step), strict=True):
            w = value * scale
            if w <= 0:
                continue
            tooltip = _esc(f"{step.name}: {label} {fmt(value)}")
            parts.append(
                f'<rect x="{x:.2f}" y="{y + 3}" width="{w:.2f}" height="{bar_h}" '
                f'fill="{colour}"><title>{tooltip}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 6:.2f}" y="{y + 14}">{_esc(value_text(step))}</text>')
        if extra:
            w = extra(step) * scale
            if w > 0:
                tooltip = _esc(f"{step.name}: embodied {fmt(extra(step))}")
                parts.append(
                    f'<rect x="{_LABEL_W}" y="{y + 17}" width="{w:.2f}" height="8" '
                    f'fill="url(#hatch)"><title>{tooltip}</title></rect>'
                )
    parts.append("</svg>")
    return "\n".join(parts)


def _co2_segments(step: Step) -> tuple[float, ...]:
    """Operational CO2 split like the energy (CPU, GPU, RAM, PUE overhead). Units: kg."""
    energy = step.device_energy_kwh()
    total_kwh = sum(energy)
    emissions_kg = step.value("emissions_kg")
    return tuple(emissions_kg * kwh / total_kwh if total_kwh > 0 else 0.0 for kwh in energy)


def _embodied_kg(step: Step) -> float:
    return _number(step.record.embodied_kg)


def render_co2_chart_svg(steps: Iterable[Step]) -> str:
    """An inline SVG: operational CO2 per step stacked by component, and the step's embodied
    emissions as a separate hatched bar under it (same scale, never stacked onto it)."""

    def value_text(step: Step) -> str:
        text = format_co2(step.value("emissions_kg"))
        if step.record.embodied_kg is not None:
            text += f"; embodied {format_co2(step.record.embodied_kg)}"
        return text

    return _bar_chart(
        tuple(steps),
        "Operational CO2 by step and component; embodied separate",
        _co2_segments,
        value_text,
        format_co2,
        _embodied_kg,
    )


def render_chart_svg(steps: Iterable[Step]) -> str:
    """An inline SVG: one horizontal bar per step, stacked CPU / GPU / RAM / PUE overhead energy.

    Bars are scaled to the largest step; a pipeline without energy draws empty bars. Labels
    longer than 22 characters are cut with an ellipsis (the full name is the label's tooltip).
    """
    return _bar_chart(
        tuple(steps),
        "Energy by step and component",
        lambda step: step.device_energy_kwh(),
        lambda step: format_energy(step.value("energy_kwh")),
        format_energy,
    )


_LINE_COLOURS = {"cpu": "#4e79a7", "gpu": "#f28e2b", "ram": "#59a14f"}


def render_timeline_svg(step: Step) -> str:
    """An inline SVG line chart of the step's power per component over time (W), or ``""``.

    The record's timeline is mean power per contiguous bucket; each bucket is drawn as a flat
    segment (a step line), so the area under a line is the energy.
    """
    timeline = step.record.power_timeline
    ends = list(timeline.get("t_s", ()))
    if not ends:
        return ""
    width, height, left, right, top, bottom = _CHART_W, 150, 56, 12, 24, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    span_s = ends[-1] or 1.0
    devices = [d for d in DEVICES if any(v > 0 for v in timeline.get(f"{d}_w", ()))]
    peak_w = max((max(timeline[f"{d}_w"]) for d in devices), default=0.0) or 1.0
    parts = _svg_open(width, height, f"Power of {step.name} over time (W)")
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#999"/>'
    )
    parts.append(
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{_esc(format_power(peak_w))}</text>'
    )
    parts.append(f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>')
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">'
        f"{_esc(format_duration(span_s))}</text>"
    )
    parts.append(f'<text x="{left}" y="{height - 8}">0 s</text>')
    x_legend = left + 60
    for device in devices:
        colour = _LINE_COLOURS[device]
        parts.append(f'<rect x="{x_legend}" y="6" width="12" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{x_legend + 16}" y="12">{device.upper()}</text>')
        x_legend += 64
        starts = [0.0, *ends[:-1]]
        points = []
        for start, end, power_w in zip(starts, ends, timeline[f"{device}_w"], strict=True):
            y = top + plot_h - power_w / peak_w * plot_h
            points.append(f"{left + start / span_s * plot_w:.1f},{y:.1f}")
            points.append(f"{left + end / span_s * plot_w:.1f},{y:.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{" ".join(points)}"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


_CSS = """
body { font-family: sans-serif; margin: 0 auto; padding: 1em; max-width: 800px; color: #222;
       box-sizing: border-box; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
svg { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 0.5em; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { overflow-wrap: anywhere; }
tr.total td { font-weight: bold; background: #f4f4f4; }
p.note { color: #555; font-size: 12px; }
h3 { font-size: 1em; margin: 1em 0 0 0; overflow-wrap: anywhere; }
"""


def _html_table(
    columns: tuple[str, ...],
    rows: Iterable[tuple[str, ...]],
    text_columns: set[int],
    total: tuple[str, ...] | None = None,
) -> str:
    def tr(cells: tuple[str, ...], css_class: str = "") -> str:
        tds = "".join(
            f'<td class="{"text" if i in text_columns else "num"}">{_esc(c)}</td>'
            for i, c in enumerate(cells)
        )
        return f'<tr class="{css_class}">{tds}</tr>' if css_class else f"<tr>{tds}</tr>"

    body = [tr(row) for row in rows]
    if total is not None:
        body.append(tr(total, "total"))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"
    )


def render_html(
    steps: Iterable[Step], title: str = DEFAULT_TITLE, advice: Advice | None = None
) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts, no fetches) that reads at
    800 px: summary, CO2 and energy charts, the step table, power timelines, how it was
    measured, greener regions and warnings."""
    steps = tuple(steps)
    shares = emissions_shares(steps)
    sections = [
        f"<h1>{_esc(title)}</h1>",
        f"<p>{_esc(_summary_line(steps))}</p>",
        "<h2>CO2 by step</h2>",
        render_co2_chart_svg(steps),
        _html_table(
            _COLUMNS,
            (_row(step, shares[step.name]) for step in steps),
            set(_TEXT_COLUMNS),
            _total_row(steps),
        ),
        f'<p class="note">{_esc(_NOTE)}</p>',
        "<h2>Energy by step</h2>",
        render_chart_svg(steps),
    ]
    timelines = [(step, render_timeline_svg(step)) for step in steps]
    if any(svg for _, svg in timelines):
        sections.append("<h2>Power over time</h2>")
        sections += [f"<h3>{_esc(step.name)}</h3>\n{svg}" for step, svg in timelines if svg]
    sections += [
        "<h2>How it was measured</h2>",
        _html_table(_DETAIL_COLUMNS, map(_detail_row, steps), {0, 2, 3, 4}),
    ]
    if advice is not None and advice.alternatives:
        sections += [
            "<h2>Greener regions for this run</h2>",
            _html_table(_ALTERNATIVE_COLUMNS, map(_alternative_row, advice.alternatives), {0}),
            f'<p class="note">{_esc(advice.basis)}</p>',
        ]
    warnings = _step_warnings(steps)
    if warnings:
        sections.append(
            "<h2>Warnings</h2><ul>"
            + "".join(f"<li>{_esc(name)}: {_esc(message)}</li>" for name, message in warnings)
            + "</ul>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
