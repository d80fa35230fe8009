"""``carbon-kfp regions``: cloud regions with their grid intensity."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Add the ``regions`` subcommand to ``commands`` (an argparse subparsers object)."""
    regions = commands.add_parser("regions", help="list cloud regions with grid intensity")
    regions.add_argument("--year", type=int, default=None)
    regions.set_defaults(handler=_regions)


def _regions(args: argparse.Namespace) -> int:
    from carbon_kfp.intensity import gcp_regions, resolve_intensity

    for region in gcp_regions(args.year):
        intensity = resolve_intensity(cloud_provider="gcp", cloud_region=region, year=args.year)
        print(f"gcp  {region:<28} {intensity.g_per_kwh:>8.1f} gCO2/kWh  ({intensity.year})")
    return 0
