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
)


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
