"""``carbon-kfp report``: read step records from files and render the pipeline report.

The file reading lives here; :mod:`carbon_kfp.report` renders (pure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from carbon_kfp.cli.help import add_subcommand
from carbon_kfp.record import EmissionsRecord
from carbon_kfp.report import (
    DEFAULT_TITLE,
    Step,
    build_steps,
    default_step_name,
    greener_regions,
    render_html,
    render_markdown,
    render_text,
    report_metrics,
    step_name,
)


def register(commands: Any) -> None:
    """Add the ``report`` subcommand to ``commands`` (an argparse subparsers object)."""
    report = add_subcommand(
        commands,
        "report",
        help="sum step records into a carbon report (terminal, Markdown, HTML)",
        description=(
            "Sum the records of pipeline steps into a report: a table in the terminal, and with "
            "--html a self-contained page (inline SVG charts, no network) or with --markdown a "
            "Markdown file. Each PATH is a local run directory (its steps' kpi_co2 files), an "
            "emissions.csv, or JSON record files (kpi_co2 artifact files)."
        ),
        examples=(
            "carbon-kfp report local_outputs/wine-quality-20260101-120000 --html report.html",
            "carbon-kfp report emissions.csv --markdown report.md",
            "carbon-kfp report train/kpi_co2 evaluate/kpi_co2 --metrics-json totals.json",
        ),
        exit_codes="exit codes: 0 report written, 1 a file could not be read or written, 2 bad "
        "arguments or a file\nthat is not a carbon-kfp record (the message names the file and "
        "the field)",
    )
    configure_report_parser(report)
    report.set_defaults(handler=report_command)


def configure_report_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``carbon-kfp report`` (register :func:`report_command` as its handler)."""
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="run directory, emissions.csv or JSON"
    )
    parser.add_argument("--markdown", type=Path, default=None, help="write Markdown to FILE")
    parser.add_argument("--html", type=Path, default=None, help="write the HTML page to FILE")
    parser.add_argument(
        "--metrics-json", type=Path, default=None, help="write the pipeline Metrics dict as JSON"
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="report heading")


def _run_directory_records(directory: Path) -> list[tuple[str, EmissionsRecord]]:
    """Records in a directory: its ``kpi_co2`` files, else its ``emissions.csv`` files, else
    its ``*.json`` files (recursively, sorted).

    Raises:
        ValueError: none of them is there.
    """
    for pattern in ("kpi_co2", "emissions.csv", "*.json"):
        found = sorted(path for path in directory.rglob(pattern) if path.is_file())
        if found:
            return [item for path in found for item in _file_records(path)]
    raise ValueError(
        f"{directory}: no records found (expected kpi_co2 files from a local run, an "
        "emissions.csv or *.json records)"
    )


def _file_records(path: Path) -> list[tuple[str, EmissionsRecord]]:
    from carbon_kfp.outputs import load_csv_records, load_record

    if path.suffix.lower() == ".csv":
        return [
            (step_name(record, f"{record.project_name} {record.run_id[:8]}"), record)
            for record in load_csv_records(path)
        ]
    record = load_record(path)
    return [(step_name(record, default_step_name(path)), record)]


def read_steps(paths: list[Path]) -> tuple[Step, ...]:
    """The report's steps from the command's PATHs, in order.

    A run directory's own name is the local run's job name, so its steps whose records name
    another job were served from the cache (marked ``cached``, out of the totals).

    Raises:
        ValueError: a file is not a record, or a directory holds none (named in the message).
        OSError: a path cannot be read.
    """
    named: list[tuple[str, EmissionsRecord]] = []
    current_job = ""
    for path in paths:
        if path.is_dir():
            found = _run_directory_records(path)
            if any(record.pipeline_job == path.name for _, record in found):
                current_job = path.name
            named += found
        else:
            named += _file_records(path)
    return build_steps(named, current_job)


def report_command(args: argparse.Namespace) -> int:
    """Handler of ``carbon-kfp report``: prints the terminal table, writes the files; returns 0.

    Raises:
        ValueError: a file is not a record (named in the message).
        OSError: a file cannot be read or an output cannot be written.
    """
    from carbon_kfp.outputs import write_text_atomic

    steps = read_steps(list(args.paths))
    advice = greener_regions(steps)
    outputs = [
        (args.markdown, lambda: render_markdown(steps, args.title, advice)),
        (args.html, lambda: render_html(steps, args.title, advice)),
        (args.metrics_json, lambda: json.dumps(report_metrics(steps), indent=2, sort_keys=True)),
    ]
    sys.stdout.write(render_text(steps, advice))
    for path, render in outputs:
        if path is not None:
            write_text_atomic(path, render())
            print(f"wrote {path}")
    return 0
