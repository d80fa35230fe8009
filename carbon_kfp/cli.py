"""``carbon-kfp`` command line: run · exec · report · regions · compile · submit.

Each subcommand imports what it needs when it runs, so ``carbon-kfp exec`` in a container pays
only for the tracker core. Exit codes: 0 success, 2 bad arguments (argparse), otherwise the
subcommand's own (``exec`` returns the child's).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


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

    regions = commands.add_parser("regions", help="list cloud regions with grid intensity")
    regions.add_argument("--year", type=int, default=None)
    regions.set_defaults(handler=_regions)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
