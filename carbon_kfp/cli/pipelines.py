"""``carbon-kfp run | compile | submit``: the kit's pipelines locally, as YAML, and on Vertex AI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbon_kfp.kfp.params import parse_params


def register(commands: Any) -> None:
    """Add ``run``, ``compile`` and ``submit`` to ``commands`` (an argparse subparsers object)."""
    run = commands.add_parser(
        "run",
        help="run an example pipeline locally on kfp.local",
        description=(
            "Run a registered pipeline on this machine (kfp.local, subprocesses), print progress "
            "with a heartbeat (elapsed time and power) every 10 s of a long step, then a table "
            "of every step's energy and CO2 and the path of the HTML carbon report."
        ),
        epilog=_epilog(
            "carbon-kfp run wine",
            "carbon-kfp run wine --param n_estimators=50 --output runs --cache",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("pipeline", nargs="?", default="wine", help="pipeline name (default: wine)")
    _add_param_option(run)
    run.add_argument("--output", type=Path, default=Path("local_outputs"), help="run directory")
    run.add_argument("--verbose", action="store_true", help="also stream kfp's own log")
    run.add_argument(
        "--cache",
        action="store_true",
        help="serve unchanged steps from the local cache in OUTPUT/.kfp_cache; they show as "
        "'cached' and stay out of this run's total",
    )
    run.set_defaults(handler=_run)

    compile_ = commands.add_parser(
        "compile",
        help="compile an example pipeline to YAML",
        description="Compile a registered pipeline to KFP IR YAML for Vertex AI or Kubeflow.",
        epilog=_epilog("carbon-kfp compile wine --output wine.yaml"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compile_.add_argument("pipeline", help="pipeline name, e.g. wine")
    compile_.add_argument("--output", type=Path, required=True, help="destination .yaml")
    compile_.set_defaults(handler=_compile)

    submit = commands.add_parser(
        "submit",
        help="compile and submit a pipeline to Vertex AI",
        description="Compile a registered pipeline and submit it to Vertex AI Pipelines.",
        epilog=_epilog(
            "carbon-kfp submit wine --project my-project --region europe-west4 "
            "--pipeline-root gs://my-bucket/runs --wait"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("pipeline", help="pipeline name, e.g. wine")
    _add_param_option(submit)
    submit.add_argument("--project", required=True, help="Google Cloud project ID")
    submit.add_argument("--region", required=True, help="Vertex AI region, e.g. europe-west4")
    submit.add_argument("--pipeline-root", required=True, help="gs://bucket/path")
    submit.add_argument("--service-account", default=None, help="service account to run as")
    submit.add_argument(
        "--display-name", default=None, help="job display name (default: PIPELINE-carbon-kfp)"
    )
    submit.add_argument("--no-cache", action="store_true", help="disable Vertex AI caching")
    submit.add_argument("--wait", action="store_true", help="block until the run ends")
    submit.set_defaults(handler=_submit)


_EXIT_CODES = "exit codes: 0 ok, 1 a step or the submission failed, 2 bad arguments"


def _epilog(*examples: str) -> str:
    return "examples:\n" + "".join(f"  {example}\n" for example in examples) + "\n" + _EXIT_CODES


def _add_param_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable), e.g. --param n_estimators=100",
    )


def _arguments(name: str, pairs: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    """The registered pipeline ``name`` and ``pairs`` converted to its parameter types."""
    from carbon_kfp.kfp.params import convert_params
    from carbon_kfp.pipelines import load_pipeline

    pipeline, module = load_pipeline(name)
    choices = getattr(module, "PARAMETER_CHOICES", None)
    return pipeline, convert_params(pipeline, pairs, choices)


def _run(args: argparse.Namespace) -> int:
    from carbon_kfp.kfp.local_run import PipelineRunError, run_pipeline
    from carbon_kfp.kfp.run_summary import format_summary

    pipeline, arguments = _arguments(args.pipeline, parse_params(args.param))
    try:
        summary = run_pipeline(
            pipeline, arguments, args.output, verbose=args.verbose, enable_caching=args.cache
        )
    except PipelineRunError as exc:
        print(format_summary(exc.summary))
        print(f"carbon-kfp run: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


def _compile(args: argparse.Namespace) -> int:
    from carbon_kfp.pipelines import compile_pipeline

    path = compile_pipeline(args.pipeline, args.output)
    _warn_untracked(path)
    print(f"compiled {args.pipeline} -> {path}")
    return 0


def _warn_untracked(path: Path) -> list[str]:
    """Warn (stderr) about tracked tasks that miss their job/task arguments; return them."""
    import yaml

    from carbon_kfp.kfp.wiring import untracked_tasks

    with open(path, encoding="utf-8") as file:
        problems = untracked_tasks(next(yaml.safe_load_all(file)))
    for problem in problems:
        print(
            f"carbon-kfp: warning: task input {problem} is left to its default, so on Vertex AI "
            "the record names no job/task; pass **carbon_kfp.kfp.tracking_args()",
            file=sys.stderr,
        )
    return problems


def _submit(args: argparse.Namespace) -> int:
    import tempfile

    from carbon_kfp.pipelines import compile_pipeline
    from carbon_kfp.vertex import submit_pipeline

    params = {"cloud_location": args.region} | parse_params(args.param)
    _, values = _arguments(args.pipeline, params)
    with tempfile.TemporaryDirectory() as scratch:
        template = compile_pipeline(args.pipeline, Path(scratch) / "pipeline.yaml")
        job_name = submit_pipeline(
            template,
            project=args.project,
            region=args.region,
            pipeline_root=args.pipeline_root,
            parameter_values=values,
            service_account=args.service_account,
            display_name=args.display_name or f"{args.pipeline}-carbon-kfp",
            enable_caching=not args.no_cache,
            wait=args.wait,
        )
    print(f"submitted {job_name}")
    return 0
