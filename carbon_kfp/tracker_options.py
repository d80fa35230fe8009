"""Tracker options shared by the ``carbon-kfp`` commands and the KFP wrappers (kfp-free).

``carbon-kfp exec`` (:mod:`carbon_kfp.executor`), the CLI (:mod:`carbon_kfp.cli`) and
:func:`carbon_kfp.kfp.track` all take the same tracker options and the same pipeline tags (job,
task, region). They live here so that each of those modules imports downwards only.
"""

from __future__ import annotations

import argparse
from typing import Any

from carbon_kfp.errors import warn_once

#: Tracker keyword arguments the command-line options map onto, one to one.
TRACKER_OPTIONS = (
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
    "machine_type",
)


def add_tracker_options(parser: argparse.ArgumentParser) -> None:
    """Options that map one-to-one onto :class:`carbon_kfp.EmissionsTracker` keyword arguments."""
    group = parser.add_argument_group("tracker options")
    group.add_argument("--project-name", default="carbon-kfp", help="label for the records")
    group.add_argument("--output-dir", default=None, help="directory for emissions.csv")
    group.add_argument(
        "--measure-interval-s", type=float, default=1.0, help="sampling period, s (default: 1)"
    )
    group.add_argument("--pue", type=float, default=None, help="PUE override (>= 1.0)")
    group.add_argument(
        "--carbon-intensity-g-per-kwh", type=float, default=None, help="explicit gCO2eq/kWh"
    )
    group.add_argument("--country-iso-code", default=None, help="ISO-3 or ISO-2 code")
    group.add_argument(
        "--cloud-provider", default=None, choices=["gcp", "aws", "azure"], help="cloud provider"
    )
    group.add_argument("--cloud-region", default=None, help="e.g. europe-west4")
    group.add_argument(
        "--intensity-year", type=int, default=None, help="grid data year (default: newest)"
    )
    group.add_argument(
        "--location",
        default="off",
        choices=["off", "auto"],
        help="auto: find region and machine type from the environment / GCP metadata server",
    )
    group.add_argument(
        "--scope",
        default="auto",
        choices=["auto", "container", "process", "machine"],
        help="what is charged (default: auto)",
    )
    group.add_argument("--sysfs-root", default=None, help="root of sysfs (default: /sys)")
    group.add_argument("--pipeline-job", default="", help="pipeline job name for the records")
    group.add_argument("--pipeline-task", default="", help="pipeline task name for the records")
    group.add_argument(
        "--machine-type",
        default="",
        help="e.g. n1-standard-8 (GCP) or Standard_D4s_v3 (Azure), for embodied emissions",
    )


def tracker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~carbon_kfp.EmissionsTracker` keyword arguments given on the command line."""
    return {name: getattr(args, name) for name in TRACKER_OPTIONS}


def is_unresolved_placeholder(value: str) -> bool:
    """True for a KFP placeholder left unresolved (``{{$.pipeline_google_cloud_location}}``)."""
    return value.startswith("{{$") and value.endswith("}}")


def resolved_or_empty(name: str, value: str) -> str:
    """``value`` stripped, or ``""`` (with one warning) when it is an unresolved KFP placeholder.

    A backend leaves a placeholder unresolved when it was a parameter *default* rather than a task
    argument (Vertex AI), or when it does not know it (``kfp.local`` and the region placeholder).
    """
    value = value.strip()
    if is_unresolved_placeholder(value):
        warn_once(
            f"carbon-kfp: {name}={value!r} was not resolved by this backend; ignored (pass the "
            "placeholder as a task argument: carbon_kfp.kfp.tracking_args())"
        )
        return ""
    return value
