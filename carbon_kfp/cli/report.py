"""``carbon-kfp report``: read step records from files and render the pipeline report.

The file reading lives here; :mod:`carbon_kfp.report` renders (pure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from carbon_kfp.report import (
    DEFAULT_TITLE,
    build_steps,
    default_step_name,
    render_html,
    render_markdown,
    report_metrics,
    step_name,
)


def register(commands: Any) -> None:
    """Add the ``report`` subcommand to ``commands`` (an argparse subparsers object)."""
    report = commands.add_parser("report", help="sum step records into a carbon report")
    configure_report_parser(report)
    report.set_defaults(handler=report_command)


def configure_report_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``carbon-kfp report`` (register :func:`report_command` as its handler)."""
    parser.description = (
        "Sum the JSON records of pipeline steps (kpi_co2 artifact files) into a report. "
        "Without --markdown/--html/--metrics-json the Markdown goes to stdout."
    )
    parser.add_argument("records", nargs="+", type=Path, help="JSON record files")
    parser.add_argument("--markdown", type=Path, default=None, help="write Markdown here")
    parser.add_argument("--html", type=Path, default=None, help="write HTML here")
    parser.add_argument(
        "--metrics-json", type=Path, default=None, help="write the pipeline Metrics dict as JSON"
    )
    parser.add_argument("--title", default=DEFAULT_TITLE)


def report_command(args: argparse.Namespace) -> int:
    """Handler of ``carbon-kfp report``; returns 0.

    Raises:
        ValueError: a file is not a record (named in the message).
        OSError: a file cannot be read or an output cannot be written.
    """
    from carbon_kfp.outputs import load_record, write_text_atomic

    paths: list[Path] = list(args.records)
    steps = build_steps(
        (step_name(record, default_step_name(path)), record)
        for path, record in ((path, load_record(path)) for path in paths)
    )
    outputs = [
        (args.markdown, lambda: render_markdown(steps, args.title)),
        (args.html, lambda: render_html(steps, args.title)),
        (args.metrics_json, lambda: json.dumps(report_metrics(steps), indent=2, sort_keys=True)),
    ]
    wanted = [(path, render) for path, render in outputs if path is not None]
    for path, render in wanted:
        write_text_atomic(path, render())
    if not wanted:
        sys.stdout.write(render_markdown(steps, args.title))
    return 0
