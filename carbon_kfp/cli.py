"""``carbon-kfp`` command line: run · compile · submit · exec · report · regions.

Each subcommand imports what it needs when it runs, so ``carbon-kfp exec`` in a container pays
only for the tracker core. Exit codes: 0 success, 1 a pipeline step failed, 2 bad arguments or
configuration (the message names the value), otherwise the subcommand's own (``exec`` returns the
child's).

``run``, ``compile`` and ``submit`` work on the kit's example pipelines (``pipelines/`` beside
``carbon_kfp/`` in a checkout, or the directory named by ``$CARBON_KFP_KIT_ROOT``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carbon_kfp.errors import ConfigError

KIT_ROOT_ENV = "CARBON_KFP_KIT_ROOT"


def add_tracker_options(parser: argparse.ArgumentParser) -> None:
    """Options that map one-to-one onto :class:`carbon_kfp.EmissionsTracker` keyword arguments."""
    group = parser.add_argument_group("tracker options")
    group.add_argument("--project-name", default="carbon-kfp")
    group.add_argument("--output-dir", default=None, help="directory for emissions.csv")
    group.add_argument("--measure-interval-s", type=float, default=1.0)
    group.add_argument("--pue", type=float, default=None)
    group.add_argument("--carbon-intensity-g-per-kwh", type=float, default=None)
    group.add_argument("--country-iso-code", default=None, help="ISO-3 or ISO-2 code")
    group.add_argument("--cloud-provider", default=None, choices=["gcp", "aws", "azure"])
    group.add_argument("--cloud-region", default=None, help="e.g. europe-west4")
    group.add_argument("--intensity-year", type=int, default=None)
    group.add_argument("--location", default="off", choices=["off", "auto"])
    group.add_argument(
        "--scope", default="auto", choices=["auto", "container", "process", "machine"]
    )
    group.add_argument("--sysfs-root", default=None)
    group.add_argument("--pipeline-job", default="")
    group.add_argument("--pipeline-task", default="")


_TRACKER_OPTIONS = (
    "project_name",
    "output_dir",
    "measure_interval_s",
    "pue",
    "carbon_intensity_g_per_kwh",
    "country_iso_code",
    "cloud_provider",
    "cloud_region",
    "intensity_year",
    "location",
    "scope",
    "sysfs_root",
    "pipeline_job",
    "pipeline_task",
)


def tracker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~carbon_kfp.EmissionsTracker` keyword arguments given on the command line."""
    return {name: getattr(args, name) for name in _TRACKER_OPTIONS}


def build_parser() -> argparse.ArgumentParser:
    from carbon_kfp._version import __version__

    parser = argparse.ArgumentParser(
        prog="carbon-kfp", description="Energy and CO2 of ML pipeline steps."
    )
    parser.add_argument("--version", action="version", version=f"carbon-kfp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an example pipeline locally on kfp.local")
    run.add_argument("pipeline", nargs="?", default="wine", help="pipeline name (default: wine)")
    _add_param_option(run)
    run.add_argument("--output", type=Path, default=Path("local_outputs"), help="run directory")
    run.add_argument("--verbose", action="store_true", help="also stream kfp's own log")
    run.set_defaults(handler=_run)

    compile_ = commands.add_parser("compile", help="compile an example pipeline to YAML")
    compile_.add_argument("pipeline")
    compile_.add_argument("--output", type=Path, required=True, help="destination .yaml")
    compile_.set_defaults(handler=_compile)

    submit = commands.add_parser("submit", help="compile and submit a pipeline to Vertex AI")
    submit.add_argument("pipeline", help="pipeline name, e.g. wine")
    _add_param_option(submit)
    submit.add_argument("--project", required=True)
    submit.add_argument("--region", required=True, help="Vertex AI region, e.g. europe-west4")
    submit.add_argument("--pipeline-root", required=True, help="gs://bucket/path")
    submit.add_argument("--service-account", default=None)
    submit.add_argument("--display-name", default=None)
    submit.add_argument("--no-cache", action="store_true", help="disable Vertex AI caching")
    submit.add_argument("--wait", action="store_true", help="block until the run ends")
    submit.set_defaults(handler=_submit)

    from carbon_kfp.executor import configure_exec_parser, exec_command
    from carbon_kfp.report import configure_report_parser, report_command

    exec_ = commands.add_parser("exec", help="run a command as a measured KFP container step")
    configure_exec_parser(exec_)
    exec_.set_defaults(handler=exec_command)

    report = commands.add_parser("report", help="sum step records into a carbon report")
    configure_report_parser(report)
    report.set_defaults(handler=report_command)

    regions = commands.add_parser("regions", help="list cloud regions with grid intensity")
    regions.add_argument("--year", type=int, default=None)
    regions.set_defaults(handler=_regions)
    return parser


def _add_param_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable), e.g. --param n_estimators=100",
    )


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``.

    Raises:
        ConfigError: an item without ``=`` or with an empty name, or a name given twice.
    """
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {pair!r}; expected NAME=VALUE")
        if name.strip() in params:
            raise ConfigError(f"--param {name.strip()!r} given twice")
        params[name.strip()] = value
    return params


def kit_root() -> Path:
    """The directory holding the kit's ``pipelines/`` and ``components/`` packages.

    ``$CARBON_KFP_KIT_ROOT``, else the nearest directory at or above the working directory that
    has ``pipelines/__init__.py``, else the checkout this package was installed from (editable).

    Raises:
        ConfigError: none of these has ``pipelines/``.
    """
    package_parent = Path(__file__).resolve().parents[1]
    explicit = os.environ.get(KIT_ROOT_ENV)
    candidates = [Path(explicit)] if explicit else [*Path.cwd().resolve().parents, package_parent]
    if not explicit:
        candidates.insert(0, Path.cwd().resolve())
    for root in candidates:
        if (root / "pipelines" / "__init__.py").is_file():
            return root
    raise ConfigError(
        f"no pipelines/ package found in {', '.join(map(str, candidates[:3]))}; run from a "
        f"carbon-kfp checkout or set {KIT_ROOT_ENV}"
    )


def _import_pipelines() -> Any:
    root = str(kit_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    import pipelines

    return pipelines


def _run(args: argparse.Namespace) -> int:
    _import_pipelines()
    from pipelines.local_run import PipelineRunError, format_summary, run_pipeline

    params = parse_params(args.param)
    try:
        summary = run_pipeline(args.pipeline, params, args.output, verbose=args.verbose)
    except PipelineRunError as exc:
        print(format_summary(exc.summary))
        print(f"carbon-kfp run: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


def _compile(args: argparse.Namespace) -> int:
    path = _import_pipelines().compile_pipeline(args.pipeline, args.output)
    print(f"compiled {args.pipeline} -> {path}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    import tempfile

    from carbon_kfp.vertex import submit_pipeline

    pipelines = _import_pipelines()
    from pipelines.local_run import convert_params

    pipeline, module = pipelines.load_pipeline(args.pipeline)
    params = {"cloud_location": args.region} | parse_params(args.param)
    values = convert_params(pipeline, params, getattr(module, "PARAMETER_CHOICES", None))
    with tempfile.TemporaryDirectory() as scratch:
        template = pipelines.compile_pipeline(args.pipeline, Path(scratch) / "pipeline.yaml")
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


def _regions(args: argparse.Namespace) -> int:
    from carbon_kfp.intensity import gcp_regions, resolve_intensity

    for region in gcp_regions(args.year):
        intensity = resolve_intensity(cloud_provider="gcp", cloud_region=region, year=args.year)
        print(f"gcp  {region:<28} {intensity.g_per_kwh:>8.1f} gCO2/kWh  ({intensity.year})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbon-kfp`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ValueError as exc:  # configuration errors carry a message naming the bad value
        print(f"carbon-kfp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"carbon-kfp {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
