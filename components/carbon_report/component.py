"""``carbon_report``: sum the ``kpi_co2`` artifacts of a pipeline's steps into one report.

The body is self-contained (KFP ships only the function's source to the container); the rendering
is :mod:`carbon_kfp.report`, which the image carries with carbon-kfp.
"""

from kfp.dsl import HTML, Input, Markdown, Metrics, Output

from .._kit import kit_component


@kit_component
def carbon_report(
    pipeline_kpi_co2: Output[Metrics],
    report_markdown: Output[Markdown],
    report_html: Output[HTML],
    step_metrics: Input[list[Metrics]] | None = None,
    kpi_co2_1: Input[Metrics] | None = None,
    kpi_co2_2: Input[Metrics] | None = None,
    kpi_co2_3: Input[Metrics] | None = None,
    kpi_co2_4: Input[Metrics] | None = None,
    kpi_co2_5: Input[Metrics] | None = None,
    kpi_co2_6: Input[Metrics] | None = None,
    kpi_co2_7: Input[Metrics] | None = None,
    kpi_co2_8: Input[Metrics] | None = None,
    title: str = "Carbon report",
    pipeline_job: str = "",
) -> None:
    """Sums the steps' ``kpi_co2`` records into pipeline totals, Markdown and HTML.

    Steps come from ``step_metrics`` (``dsl.Collected(task.outputs["kpi_co2"])`` of a
    ParallelFor) followed by ``kpi_co2_1`` ... ``kpi_co2_8`` (one step's artifact each), in that
    order. A step is named by its record's ``pipeline_task``, else its ``task_name``, else the
    artifact's directory (its task's folder); repeated names get ``#2``, ``#3``.

    Args:
        pipeline_kpi_co2: Totals over the steps measured in this run: summed ``emissions_kg``,
            ``emissions_low_kg``, ``emissions_high_kg``, ``energy_kwh``,
            ``cpu/gpu/ram_energy_kwh``, ``duration_s`` (compute time), ``co2_g``,
            ``energy_wh``, ``embodied_kg`` (and ``_low_kg``, ``_high_kg``, ``embodied_g``; when
            known) and ``embodied_unknown_steps``, ``steps``, the
            energy-weighted ``carbon_intensity_g_per_kwh`` and ``pue``, ``cached_steps``,
            ``avoided_emissions_kg``, ``avoided_energy_kwh``, and ``emissions_share_<step>``
            (0-1) per step. The same dict is written as
            JSON to its file.
        report_markdown: A table with a row per step (CO2 and its range, embodied emissions
            beside them, energy, share, duration) and a total row, how each step was measured
            (energy by component, methods, intensity, embodied method), and the top 5 greener
            regions for this run's energy. Numbers in mg/g/kg and mWh/Wh/kWh.
        report_html: The same as a self-contained page that reads at 800 px: inline SVG charts
            of CO2 (embodied as separate bars) and energy by step and component, and each step's
            power over time; every string is HTML-escaped, no scripts, no network fetches.
        step_metrics: ``kpi_co2`` artifacts collected from a ParallelFor.
        kpi_co2_1: One step's ``kpi_co2`` (likewise ``kpi_co2_2`` ... ``kpi_co2_8``).
        kpi_co2_2: See ``kpi_co2_1``.
        kpi_co2_3: See ``kpi_co2_1``.
        kpi_co2_4: See ``kpi_co2_1``.
        kpi_co2_5: See ``kpi_co2_1``.
        kpi_co2_6: See ``kpi_co2_1``.
        kpi_co2_7: See ``kpi_co2_1``.
        kpi_co2_8: See ``kpi_co2_1``.
        title: Heading of the Markdown and HTML reports.
        pipeline_job: This run's job name (pass ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``, e.g. with
            ``**carbon_kfp.kfp.tracking_args()``). A step whose record names another job was
            served from the cache: it is marked ``cached``, kept out of the totals and counted in
            ``avoided_emissions_kg``. ``""``: every step counts as this run's.

    Raises:
        ValueError: an artifact's file is not a carbon-kfp JSON record (the file is named).
    """
    import json
    from pathlib import Path

    from carbon_kfp import report
    from carbon_kfp.outputs import load_record, write_text_atomic
    from carbon_kfp.tracker_options import resolved_or_empty

    singles = [kpi_co2_1, kpi_co2_2, kpi_co2_3, kpi_co2_4]
    singles += [kpi_co2_5, kpi_co2_6, kpi_co2_7, kpi_co2_8]
    artifacts = [*(step_metrics or []), *(a for a in singles if a is not None)]
    named = []
    for artifact in artifacts:
        record = load_record(Path(artifact.path))
        fallback = report.default_step_name(Path(artifact.path)) or artifact.name
        named.append((report.step_name(record, fallback), record))
    steps = report.build_steps(named, resolved_or_empty("pipeline_job", pipeline_job))

    metrics = report.report_metrics(steps)
    for key, value in metrics.items():
        pipeline_kpi_co2.log_metric(key, value)
    write_text_atomic(Path(pipeline_kpi_co2.path), json.dumps(metrics, indent=2, sort_keys=True))
    advice = report.greener_regions(steps)
    write_text_atomic(Path(report_markdown.path), report.render_markdown(steps, title, advice))
    write_text_atomic(Path(report_html.path), report.render_html(steps, title, advice))
    print(report.render_text(steps, advice))
