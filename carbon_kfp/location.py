"""Where am I running: the cloud provider and region of this step, when it can be known cheaply.

:func:`detect_location` looks, in order, at:

1. the environment, for a Google Cloud region name:

   * ``CLOUD_ML_REGION`` — set by Vertex AI on custom-training and pipeline jobs;
   * ``GOOGLE_CLOUD_REGION`` — set by hand (or by a Kubeflow pod spec) to say which region the
     cluster runs in;

2. the GCP metadata server, ``http://<host>/computeMetadata/v1/instance/zone`` with the header
   ``Metadata-Flavor: Google``. ``<host>`` is ``$GCE_METADATA_HOST`` when set (the variable
   google-auth reads; it may carry a port), else ``metadata.google.internal``. The zone
   ``projects/123/zones/us-central1-a`` gives the region ``us-central1``.

It never raises and never blocks longer than its ``timeout_s`` budget: off GCP it returns ``None``
and the caller falls back to a country or the world average (DESIGN §2). AWS and Azure are not
probed; pass their region explicitly.

:func:`detect_machine_type` asks the same server, within the same kind of budget, for
``/computeMetadata/v1/instance/machine-type`` (for embodied emissions, :mod:`carbon_kfp.embodied`).

This module also owns the spelling of provider names (:func:`normalize_cloud_provider`), shared by
the intensity and PUE lookups.
"""

from __future__ import annotations

import math
import os
import re
import threading
from typing import NamedTuple

from carbon_kfp.errors import ConfigError, close_matches, warn_once

#: Environment variables read for the region, in priority order.
REGION_ENV_VARS: tuple[str, ...] = ("CLOUD_ML_REGION", "GOOGLE_CLOUD_REGION")
#: Environment variable that overrides the metadata server's host (``host`` or ``host:port``).
METADATA_HOST_ENV_VAR = "GCE_METADATA_HOST"
DEFAULT_METADATA_HOST = "metadata.google.internal"
METADATA_ZONE_PATH = "/computeMetadata/v1/instance/zone"
METADATA_MACHINE_TYPE_PATH = "/computeMetadata/v1/instance/machine-type"

#: Canonical provider names, and the other spellings accepted for them (case-insensitive).
CLOUD_PROVIDERS: tuple[str, ...] = ("gcp", "aws", "azure")
_PROVIDER_ALIASES = {
    "gcp": "gcp",
    "google": "gcp",
    "aws": "aws",
    "amazon": "aws",
    "azure": "azure",
    "microsoft": "azure",
}

# A GCP region is words joined by "-" ending in a number ("us-central1", "europe-west12"); a zone
# adds "-<letter>" ("us-central1-a").
_REGION_RE = re.compile(r"[a-z]+(?:-[a-z]+)*[0-9]+")
_ZONE_RE = re.compile(r"([a-z]+(?:-[a-z]+)*[0-9]+)-[a-z]")
_MACHINE_TYPE_RE = re.compile(r"projects/[^/]+/machineTypes/([a-z0-9][a-z0-9-]*)")
_MAX_METADATA_BYTES = 1024


class CloudLocation(NamedTuple):
    """A detected cloud location.

    Attributes:
        cloud_provider: ``"gcp"`` (the only provider detected automatically).
        cloud_region: region name, e.g. ``"us-central1"``.
        source: how it was found: ``"env:CLOUD_ML_REGION"``, ``"env:GOOGLE_CLOUD_REGION"`` or
            ``"gcp-metadata"``.
    """

    cloud_provider: str
    cloud_region: str
    source: str


def normalize_cloud_provider(cloud_provider: str) -> str:
    """The canonical name (``"gcp"``, ``"aws"``, ``"azure"``) of a provider, case-insensitively.

    ``"google"``, ``"amazon"`` and ``"microsoft"`` are accepted as aliases.

    Raises:
        ConfigError: not a string, or not a known provider (the message lists the valid names).
    """
    if not isinstance(cloud_provider, str):
        raise ConfigError(
            f"cloud_provider must be a string, one of {', '.join(CLOUD_PROVIDERS)}; "
            f"got {cloud_provider!r}"
        )
    key = cloud_provider.strip().lower()
    if key not in _PROVIDER_ALIASES:
        raise ConfigError(
            f"unknown cloud_provider {cloud_provider!r}: expected one of "
            f"{', '.join(CLOUD_PROVIDERS)}{close_matches(key, _PROVIDER_ALIASES)}"
        )
    return _PROVIDER_ALIASES[key]


def region_from_zone(zone: str) -> str | None:
    """The GCP region of a zone, or ``None`` when ``zone`` is not zone-shaped.

    Accepts a bare zone (``"us-central1-a"``) or the metadata server's full path
    (``"projects/123/zones/us-central1-a"``).
    """
    match = _ZONE_RE.fullmatch(zone.strip().rsplit("/", 1)[-1].lower())
    return match.group(1) if match else None


def _region_from_env_value(name: str, raw: str) -> str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if _REGION_RE.fullmatch(value):
        return value
    from_zone = region_from_zone(value)
    if from_zone is not None:
        return from_zone
    warn_once(f"{name}={raw!r} is not a Google Cloud region name (like 'us-central1'); ignored")
    return None


def _fetch_metadata(url: str, timeout_s: float) -> str | None:
    """The metadata server's answer at ``url`` (a zone, a machine type), or ``None``; may raise
    (the caller swallows)."""
    import urllib.request  # with http.client and ssl: loaded only when the server is asked

    request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})
    # No proxies: the metadata server is link-local, and an HTTP(S)_PROXY must not see the request.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout_s) as response:
        # Like google-auth, trust only an answer that says it comes from the metadata server.
        if response.status != 200 or response.headers.get("Metadata-Flavor") != "Google":
            return None
        body: bytes = response.read(_MAX_METADATA_BYTES)
    return body.decode("utf-8", errors="replace")


def _query_metadata(path: str, timeout_s: float) -> str | None:
    """The metadata server's answer for ``path`` within ``timeout_s`` in total, or ``None``.

    A non-positive or non-finite budget asks nothing. Never raises.
    """
    try:
        budget_s = float(timeout_s)
        if not math.isfinite(budget_s) or budget_s <= 0:
            return None
        host = os.environ.get(METADATA_HOST_ENV_VAR, "").strip() or DEFAULT_METADATA_HOST
        url = f"http://{host}{path}"
        answer: list[str | None] = [None]

        def ask() -> None:
            try:
                answer[0] = _fetch_metadata(url, budget_s)
            except Exception:  # any failure means "not on GCP"; never raise to the caller
                answer[0] = None

        # urllib's timeout bounds each socket operation, not DNS resolution or the total; a
        # daemon thread joined with the budget bounds the whole call, and is left to die alone.
        worker = threading.Thread(target=ask, name="carbon-kfp-gcp-metadata", daemon=True)
        worker.start()
        worker.join(budget_s)
    except Exception:  # a bad argument or environment must not stop the user's training
        return None
    return None if worker.is_alive() else answer[0]


def detect_machine_type(*, timeout_s: float = 1.0) -> str | None:
    """This VM's machine type (``"n1-standard-8"``) from the GCP metadata server, or ``None``.

    The server answers ``projects/<number>/machineTypes/<type>``; an answer of another shape,
    no answer within ``timeout_s`` (total), or a non-positive budget gives ``None``. Never raises.
    """
    answer = _query_metadata(METADATA_MACHINE_TYPE_PATH, timeout_s)
    match = _MACHINE_TYPE_RE.fullmatch((answer or "").strip())
    return match.group(1) if match else None


def detect_location(*, timeout_s: float = 1.0) -> CloudLocation | None:
    """The GCP provider and region of this process, or ``None`` when it cannot be told.

    Reads ``CLOUD_ML_REGION`` then ``GOOGLE_CLOUD_REGION`` (a zone name there is reduced to its
    region; a value that is neither is ignored with a warning), then asks the GCP metadata server
    (see the module docstring).

    Args:
        timeout_s: total time budget for the metadata query, in seconds. A non-positive or
            non-finite budget skips the query.

    Returns:
        The location, or ``None`` when no variable is set and the metadata server did not answer
        with a zone within ``timeout_s``. Never raises.
    """
    try:
        for name in REGION_ENV_VARS:
            region = _region_from_env_value(name, os.environ.get(name, ""))
            if region is not None:
                return CloudLocation("gcp", region, f"env:{name}")
    except Exception:  # a bad environment must not stop the user's training
        return None
    zone = _query_metadata(METADATA_ZONE_PATH, timeout_s)
    region = region_from_zone(zone) if zone is not None else None
    return CloudLocation("gcp", region, "gcp-metadata") if region is not None else None
