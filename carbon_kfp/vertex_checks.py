"""Checks on what ``carbon-kfp submit`` would send to Vertex AI, made before any API call.

Each check takes one setting as the user typed it and returns it (normalised where that is safe)
or raises :class:`~carbon_kfp.errors.ConfigError` naming the value and what was expected. Pure
apart from reading the packaged region list; no google-cloud import.

Sources of the rules:

* project ids: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter
  and not ending with a hyphen (Resource Manager's rule); legacy domain-scoped ids
  (``example.com:my-project``) and project numbers are accepted too;
* labels: Google Cloud's label rules — keys 1-63 characters starting with a lowercase letter,
  values 0-63 characters, both only lowercase letters, digits, ``_`` and ``-`` (international
  lowercase letters allowed), at most 64 labels;
* networks: Vertex AI peers with ``projects/PROJECT_NUMBER/global/networks/NETWORK``;
* CMEK keys: ``projects/P/locations/L/keyRings/R/cryptoKeys/K``, in the job's region;
* experiments: Vertex AI Experiment names, ``[a-z0-9][a-z0-9-]{0,127}``;
* pipeline parameters naming a model or endpoint: ``projects/P/locations/R/models/ID`` or
  ``.../endpoints/ID``, in the job's region; ``ID`` is the number Vertex AI assigns or a
  user-chosen id (a lowercase letter, then up to 62 lowercase letters, digits, ``-`` or ``_``);
  a model version (``ID@2``) is refused, since a new version goes under the model itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from carbon_kfp.errors import ConfigError, close_matches

REGIONS_FILE = "vertex-ai/pipelines_regions.csv"
#: The label every submitted job carries, with carbon-kfp's version as its value.
VERSION_LABEL = "carbon-kfp"
MAX_LABELS = 64

_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
_NETWORK = re.compile(r"projects/(\d+)/global/networks/([a-z]([-a-z0-9]{0,61}[a-z0-9])?)")
_KMS_KEY = re.compile(
    r"projects/([^/]+)/locations/([^/]+)/keyRings/([a-zA-Z0-9_-]{1,63})"
    r"/cryptoKeys/([a-zA-Z0-9_-]{1,63})"
)
_RESOURCE = re.compile(r"projects/([^/]+)/locations/([^/]+)/([a-zA-Z]+)/([^/]+)")
_RESOURCE_ID = re.compile(r"[0-9]{1,19}|[a-z][a-z0-9_-]{0,62}")
_EXPERIMENT = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_SERVICE_ACCOUNT = re.compile(r"[^@\s]+@[a-z0-9][a-z0-9.-]*[a-z0-9]")


def check_project(project: str) -> str:
    """A Google Cloud project id (``my-project-123``), domain-scoped id or project number.

    Raises:
        ConfigError: anything else, e.g. ``My_Project`` or ``proj`` (too short).
    """
    if _is_project(project):
        return project
    raise ConfigError(
        f"--project {project!r}: expected a project id (6-30 characters: lowercase letters, "
        "digits and hyphens, starting with a letter, not ending with a hyphen) or a project number"
    )


def _is_project(project: str) -> bool:
    domain, _, project_id = project.rpartition(":")
    return project.isdigit() or bool(
        _PROJECT_ID.fullmatch(project_id) and (not domain or _DOMAIN.fullmatch(domain))
    )


def pipelines_regions() -> tuple[str, ...]:
    """The regions of the packaged list (``data/vertex-ai/pipelines_regions.csv``), sorted.

    Raises:
        DataFileError: the packaged file is unreadable or malformed.
    """
    from carbon_kfp.tables import read_rows

    return tuple(row["region"] for row in read_rows(REGIONS_FILE))


def check_region(region: str) -> str:
    """A region where Vertex AI Pipelines runs, per the packaged list.

    Raises:
        ConfigError: a region not in the list (a zone such as ``europe-west4-a``, ``global``, a
            typo); the message names the closest listed regions.
    """
    regions = pipelines_regions()
    if region in regions:
        return region
    hint = close_matches(region, regions, n=3) or f"; regions: {', '.join(regions)}"
    raise ConfigError(
        f"--region {region!r}: not a region where Vertex AI Pipelines runs "
        f"(carbon_kfp/data/{REGIONS_FILE}){hint}"
    )


def check_pipeline_root(pipeline_root: str) -> str:
    """A ``gs://BUCKET[/path]`` prefix for the job's artifacts.

    Raises:
        ConfigError: another scheme, a local path or a missing bucket name.
    """
    bucket = pipeline_root.removeprefix("gs://").split("/", 1)[0]
    if pipeline_root.startswith("gs://") and _BUCKET.fullmatch(bucket):
        return pipeline_root
    raise ConfigError(
        f"--pipeline-root {pipeline_root!r}: expected gs://BUCKET/path, BUCKET being 3-222 "
        "lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )


def _optional(
    option: str, value: str | None, pattern: re.Pattern[str], expected: str
) -> str | None:
    """``value`` when it is ``None`` or matches ``pattern`` in full.

    Raises:
        ConfigError: ``"<option> '<value>': expected <expected>"``.
    """
    if value is None or pattern.fullmatch(value):
        return value
    raise ConfigError(f"{option} {value!r}: expected {expected}")


def check_service_account(service_account: str | None) -> str | None:
    """``None``, or a service account e-mail (``name@project.iam.gserviceaccount.com``).

    Raises:
        ConfigError: a value that is not an e-mail address.
    """
    return _optional(
        "--service-account",
        service_account,
        _SERVICE_ACCOUNT,
        "an e-mail such as NAME@PROJECT.iam.gserviceaccount.com",
    )


def check_network(network: str | None) -> str | None:
    """``None``, or the VPC to peer with: ``projects/PROJECT_NUMBER/global/networks/NAME``.

    Raises:
        ConfigError: another form (a bare name, a project id instead of its number).
    """
    return _optional(
        "--network",
        network,
        _NETWORK,
        "projects/PROJECT_NUMBER/global/networks/NAME (the project number, not its id)",
    )


def check_encryption_key(key: str | None, region: str) -> str | None:
    """``None``, or a Cloud KMS key in ``region`` (Vertex AI needs the key in the job's region).

    Raises:
        ConfigError: a malformed key name, or a key in another location.
    """
    if key is None:
        return None
    match = _KMS_KEY.fullmatch(key)
    if not match:
        raise ConfigError(
            f"--encryption-key {key!r}: expected "
            "projects/PROJECT/locations/REGION/keyRings/RING/cryptoKeys/KEY"
        )
    if match.group(2) != region:
        raise ConfigError(
            f"--encryption-key {key!r}: the key is in {match.group(2)!r} but the job runs in "
            f"{region!r}; Vertex AI needs a key in the job's region"
        )
    return key


def check_experiment(experiment: str | None) -> str | None:
    """``None``, or a Vertex AI Experiment name: lowercase letters, digits, ``-``; ≤ 128 chars.

    Raises:
        ConfigError: any other name.
    """
    return _optional(
        "--experiment",
        experiment,
        _EXPERIMENT,
        "1-128 lowercase letters, digits or hyphens, starting with a letter or digit",
    )


def check_resource_parameter(name: str, value: str, collection: str, region: str) -> str:
    """A pipeline parameter naming an existing resource: ``""`` (none) or
    ``projects/PROJECT/locations/REGION/COLLECTION/ID`` with ``REGION`` the job's region.

    Args:
        name: The parameter's name, for the message (``endpoint``).
        value: Its value as given.
        collection: ``"models"`` or ``"endpoints"``.
        region: The job's region (``--region``); Vertex AI deploys and versions only there.

    Raises:
        ConfigError: another form (a bare id, a display name, a model version, another
            collection), or a resource in another region.
    """
    if value == "":
        return value
    match = _RESOURCE.fullmatch(value)
    expected = f"projects/PROJECT/locations/{region}/{collection}/ID"
    if not (
        match
        and _is_project(match.group(1))
        and match.group(3) == collection
        and _RESOURCE_ID.fullmatch(match.group(4))
    ):
        raise ConfigError(
            f"parameter {name}={value!r}: expected {expected} (the full resource name; ID is "
            "the number Vertex AI shows, or the id chosen at creation)"
        )
    if match.group(2) != region:
        raise ConfigError(
            f"parameter {name}={value!r}: it is in {match.group(2)!r} but the job runs in "
            f"{region!r}; expected {expected}"
        )
    return value


def _label_chars_ok(text: str) -> bool:
    return (
        all(
            c in "_-" or c.isdigit() or (c.isalpha() and unicodedata.category(c) != "Lu")
            for c in text
        )
        and text == text.lower()
    )


def check_label(key: str, value: str) -> None:
    """One label against Google Cloud's rules.

    Raises:
        ConfigError: naming the label and the rule it breaks.
    """
    where = f"--label {key}={value}"
    if not 1 <= len(key) <= 63 or len(value) > 63:
        raise ConfigError(f"{where}: keys must be 1-63 characters and values at most 63")
    if not (key[0].isalpha() and key[0] == key[0].lower()):
        raise ConfigError(f"{where}: a key must start with a lowercase letter")
    if not _label_chars_ok(key) or not _label_chars_ok(value):
        raise ConfigError(
            f"{where}: keys and values may contain only lowercase letters, digits, '_' and '-'"
        )


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The user's labels, each checked with :func:`check_label`.

    Raises:
        ConfigError: the reserved ``carbon-kfp`` key, or a label that breaks the rules.
    """
    for key, value in labels.items():
        if key == VERSION_LABEL:
            raise ConfigError(f"--label {key!r} is set by carbon-kfp itself (its version)")
        check_label(key, value)
    return dict(labels)


def version_label_value(version: str) -> str:
    """``"0.1.0"`` -> ``"0-1-0"``: a version as a label value (no dots or ``+`` allowed there)."""
    return re.sub(r"[^a-z0-9_-]", "-", version.lower())[:63]


def job_labels(user_labels: Mapping[str, str], version: str) -> dict[str, str]:
    """The user's labels plus ``carbon-kfp: <version>``.

    Raises:
        ConfigError: more than :data:`MAX_LABELS` labels in all.
    """
    labels = {**user_labels, VERSION_LABEL: version_label_value(version)}
    if len(labels) > MAX_LABELS:
        raise ConfigError(
            f"{len(user_labels)} --label options: at most {MAX_LABELS - 1} (carbon-kfp adds one)"
        )
    return labels
