"""``carbon-kfp run``: a registered pipeline on ``kfp.local``, with CO2 per step."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbon_kfp.cli.help import add_subcommand
from carbon_kfp.cli.options import add_param_option, parse_pairs


def register(commands: Any) -> None:
    """Add ``run`` to ``commands`` (an argparse subparsers object)."""
    run = add_subcommand(
        commands,
        "run",
        help="run an example pipeline locally on kfp.local",
        description=(
            "Run a registered pipeline on this machine (kfp.local, subprocesses), print progress "
            "with a heartbeat (elapsed time and power) every 10 s of a long step, then a table "
            "of every step's energy and CO2 and the path of the HTML carbon report."
        ),
        examples=(
            "carbon-kfp run wine",
            "carbon-kfp run wine --param n_estimators=50 --output runs --cache",
        ),
    )
    run.add_argument("pipeline", nargs="?", default="wine", help="pipeline name (default: wine)")
    add_param_option(run)
    run.add_argument("--output", type=Path, default=Path("local_outputs"), help="run directory")
    run.add_argument("--verbose", action="store_true", help="also stream kfp's own log")
    run.add_argument(
        "--cache",
        action="store_true",
        help="serve unchanged steps from the local cache in OUTPUT/.kfp_cache; they show as "
        "'cached' and stay out of this run's total",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from carbon_kfp.kfp.local_run import PipelineRunError, run_pipeline
    from carbon_kfp.kfp.params import convert_params
    from carbon_kfp.kfp.run_summary import format_summary
    from carbon_kfp.kfp.source import registered_source

    source = registered_source(args.pipeline)
    arguments = convert_params(source.component, parse_pairs(args.param, "--param"), source.choices)
    try:
        summary = run_pipeline(
            source.component,
            arguments,
            args.output,
            verbose=args.verbose,
            enable_caching=args.cache,
        )
    except PipelineRunError as exc:
        print(format_summary(exc.summary))
        print(f"carbon-kfp run: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0
