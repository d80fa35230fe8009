"""``carbon-kfp results JOB``: a Vertex AI job's energy and CO2 per step and in total."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from carbon_kfp.cli.help import add_subcommand
from carbon_kfp.results import FORMATS


def register(commands: Any) -> None:
    """Add ``results`` to ``commands`` (an argparse subparsers object)."""
    results = add_subcommand(
        commands,
        "results",
        help="energy and CO2 of a Vertex AI pipeline job, per step and in total",
        description="Read a Vertex AI job's task details: every kpi_co2 Metrics output and the "
        "carbon_report totals. Cached steps are marked and kept out of the total.",
        examples=(
            "carbon-kfp results wine-quality-20261204112233 --project my-project "
            "--region europe-west4 --format csv",
        ),
        exit_codes="exit codes: 0 ok, 1 the service refused or the job is not found, "
        "2 bad arguments",
    )
    results.add_argument(
        "job", metavar="JOB", help="job id, display name, or projects/P/locations/R/pipelineJobs/ID"
    )
    results.add_argument("--project", help="Google Cloud project (not needed with a full name)")
    results.add_argument("--region", help="Vertex AI region (not needed with a full name)")
    results.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    results.set_defaults(handler=_results)


def _results(args: argparse.Namespace) -> int:
    from carbon_kfp.results import job_co2, render
    from carbon_kfp.vertex import api_exceptions, get_job, task_detail_dicts

    exceptions = api_exceptions()  # a ConfigError naming the vertex extra when it is missing
    try:
        job = get_job(args.job, args.project, args.region)
    except exceptions.GoogleAPICallError as exc:
        print(f"carbon-kfp results: Vertex AI refused: {exc}", file=sys.stderr)
        return 1
    text = render(job_co2(str(job.resource_name), task_detail_dicts(job)), args.format)
    print(text.rstrip("\n"))
    return 0
