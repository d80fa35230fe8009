"""``carbon-kfp regions``: rank cloud regions by what the same run would emit there."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from carbon_kfp.cli.help import add_subcommand


def register(commands: Any) -> None:
    """Add the ``regions`` subcommand to ``commands`` (an argparse subparsers object)."""
    from carbon_kfp.regions import DEFAULT_SERVICE, PROVIDERS

    regions = add_subcommand(
        commands,
        "regions",
        help="rank cloud regions by the emissions the same run would have there",
        description=(
            "Rank cloud regions by the operational emissions of the same device energy there, "
            "with the provider's PUE applied, lowest first. The factor compares each region with "
            "the region the run used (--region, or the run's own with --from); without one, with "
            "the greenest region. Regions come from the packaged list of where the service is "
            "offered (carbon_kfp/data/vertex-ai/pipelines_regions.csv, the list submit checks) "
            "and the accelerator too (carbon_kfp/data/compiled/accelerator_regions.csv, "
            "partial), with sources and dates in carbon_kfp/data/PROVENANCE.md."
        ),
        examples=(
            "carbon-kfp regions --energy-kwh 1 --year 2024 --top 10",
            "carbon-kfp regions --energy-kwh 0.5 --region us-central1 --accelerator "
            "nvidia-tesla-t4",
            "carbon-kfp regions --from local_outputs/wine-quality-20260101-120000",
            "carbon-kfp regions --energy-kwh 1 --provider aws",
        ),
        exit_codes="exit codes: 0 ok, 1 a file could not be read, 2 bad arguments (unknown year, "
        "region, service)",
    )
    source = regions.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--energy-kwh", type=float, metavar="X", help="device energy of the run (before PUE), kWh"
    )
    source.add_argument(
        "--from",
        dest="from_path",
        type=Path,
        metavar="PATH",
        help="take the energy and region from a run directory, emissions.csv or JSON records",
    )
    regions.add_argument("--provider", choices=PROVIDERS, default=None, help="default: gcp")
    regions.add_argument(
        "--year", type=int, default=None, help="grid data year (gcp; default: the newest)"
    )
    regions.add_argument("--top", type=int, default=None, metavar="N", help="show the N first")
    regions.add_argument(
        "--service",
        default=DEFAULT_SERVICE,
        help=f"only regions offering it (default: {DEFAULT_SERVICE}; 'any' for no filter)",
    )
    regions.add_argument(
        "--accelerator", default=None, help="also only regions offering it, e.g. nvidia-tesla-t4"
    )
    regions.add_argument(
        "--region", default="", help="the region the run used: factors compare with it"
    )
    regions.set_defaults(handler=_regions)


def _from_run(path: Path) -> tuple[float, str, str, int | None]:
    """Device energy (kWh), provider, region and data year of the steps under ``path``."""
    from carbon_kfp.cli.report import read_steps
    from carbon_kfp.report import run_energy

    device_kwh, main = run_energy(read_steps([path]))
    if main is None:
        raise ValueError(f"{path}: no measured steps")
    year = main.intensity_year if main.intensity_source == "gcp-region" else None
    return device_kwh, main.cloud_provider, main.cloud_region, year


def _regions(args: argparse.Namespace) -> int:
    from carbon_kfp.errors import ConfigError
    from carbon_kfp.regions import rank_regions
    from carbon_kfp.units import format_co2

    if args.top is not None and args.top < 1:
        raise ConfigError(f"--top {args.top}; expected a whole number >= 1")
    energy_kwh, provider, region, year = args.energy_kwh, args.provider, args.region, args.year
    if args.from_path is not None:
        energy_kwh, run_provider, run_region, run_year = _from_run(args.from_path)
        provider = provider or run_provider
        region = region or (run_region if run_provider == (provider or "gcp") else "")
        year = year if year is not None else run_year
    provider = provider or "gcp"
    service = None if args.service.strip().lower() == "any" else args.service
    ranking = rank_regions(
        energy_kwh,
        provider=provider,
        year=year,
        service=service,
        accelerator=args.accelerator,
        run_region=region,
    )
    shown = ranking.regions[: args.top] if args.top else ranking.regions
    baseline = ranking.baseline
    versus = "vs " + (
        f"{baseline.region}" if ranking.baseline_is_run and baseline else "the greenest"
    )
    print(f"{'rank':>4}  {'region':<26} {'g/kWh':>8}  {'CO2':>10}  {versus}")
    for rank, entry in enumerate(shown, 1):
        mark = "  <- the run's region" if ranking.baseline_is_run and entry is baseline else ""
        print(
            f"{rank:>4}  {entry.region:<26} {entry.intensity_g_per_kwh:>8.4g}  "
            f"{format_co2(entry.emissions_kg):>10}  {entry.factor:.3g}x{mark}"
        )
    first = ranking.regions[0] if ranking.regions else None
    if first is not None:
        year_text = f"data year {first.intensity_year}" if first.intensity_year else "undated data"
        print(
            f"{energy_kwh:g} kWh of device energy x {provider} PUE {first.pue:g}; "
            f"{year_text}, source {first.intensity_source}; {ranking.candidates}"
        )
    return 0
