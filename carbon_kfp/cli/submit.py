"""``carbon-kfp submit SOURCE``: check everything, then submit one job to Vertex AI Pipelines."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

from carbon_kfp.cli.compile import SOURCE_HELP, add_image_options, compile_checked
from carbon_kfp.cli.help import add_subcommand
from carbon_kfp.cli.options import add_param_option, parse_pairs
from carbon_kfp.errors import ConfigError


def register(commands: Any) -> None:
    """Add ``submit`` to ``commands`` (an argparse subparsers object)."""
    submit = add_subcommand(
        commands,
        "submit",
        help="compile, check and submit a pipeline to Vertex AI Pipelines",
        description="Compile a pipeline and submit one job to Vertex AI Pipelines. Every "
        "setting, parameter, label and image is checked before any API call.",
        examples=(
            "carbon-kfp submit wine --project my-project --region europe-west4 "
            "--pipeline-root gs://my-bucket/pipelines --image-registry "
            "europe-west4-docker.pkg.dev/my-project/ml --experiment wine-co2 --wait",
        ),
    )
    submit.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    add_param_option(submit)
    submit.add_argument("--project", required=True, help="Google Cloud project id")
    submit.add_argument("--region", required=True, help="Vertex AI region, e.g. europe-west4")
    submit.add_argument("--pipeline-root", required=True, help="gs://BUCKET/path for artifacts")
    submit.add_argument("--service-account", default=None, help="run-as service account e-mail")
    submit.add_argument(
        "--experiment", default=None, help="Vertex AI Experiment to add the run to (created)"
    )
    submit.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job label (repeatable); carbon-kfp adds carbon-kfp=VERSION",
    )
    submit.add_argument(
        "--network", default=None, help="VPC to peer: projects/NUMBER/global/networks/NAME"
    )
    submit.add_argument(
        "--encryption-key",
        default=None,
        help="CMEK: projects/P/locations/REGION/keyRings/R/cryptoKeys/K (same region)",
    )
    submit.add_argument("--display-name", default=None, help="default: the pipeline's name")
    submit.add_argument(
        "--no-cache", action="store_true", help="run every task (default: the pipeline's caching)"
    )
    submit.add_argument(
        "--wait", action="store_true", help="follow the job, printing each task state change"
    )
    add_image_options(submit)
    submit.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    from carbon_kfp.vertex import api_exceptions

    exceptions = api_exceptions()
    try:
        return _checked_submit(args)
    except exceptions.GoogleAPICallError as exc:  # the request was valid here, refused there
        print(f"carbon-kfp submit: Vertex AI refused the job: {exc}", file=sys.stderr)
        return 1


def _checked_submit(args: argparse.Namespace) -> int:
    from carbon_kfp.kfp.params import convert_params
    from carbon_kfp.vertex import follow_job, submit_pipeline, submit_settings
    from carbon_kfp.vertex_checks import check_resource_parameter

    settings = submit_settings(
        project=args.project,
        region=args.region,
        pipeline_root=args.pipeline_root,
        labels=parse_pairs(args.label, "--label", "KEY"),
        service_account=args.service_account,
        experiment=args.experiment,
        network=args.network,
        encryption_key=args.encryption_key,
        enable_caching=False if args.no_cache else None,
        display_name=args.display_name,
    )
    params = parse_pairs(args.param, "--param")
    with tempfile.TemporaryDirectory() as scratch:
        source, compiled, problems = compile_checked(
            args, Path(scratch) / "pipeline.yaml", "vertex"
        )
        if problems:
            raise ConfigError("not submitted:\n  " + "\n  ".join(problems))
        declared = source.component.component_spec.inputs or {}
        if "cloud_location" in declared and "cloud_location" not in params:
            params["cloud_location"] = settings.region  # the steps' grid intensity follows it
        values = convert_params(source.component, params, source.choices)
        for name, collection in (source.resources or {}).items():
            if name in values:
                check_resource_parameter(name, values[name], collection, settings.region)
        if settings.display_name is None:
            name = str(compiled.spec.get("pipelineInfo", {}).get("name", "pipeline"))
            settings = dataclasses.replace(settings, display_name=name)
        job = submit_pipeline(compiled.path, settings, values)
    print(f"submitted {job.resource_name}")
    if not args.wait:
        return 0
    state = follow_job(job, print)
    return 0 if state == "PIPELINE_STATE_SUCCEEDED" else 1
