"""Embodied (manufacturing) emissions of a step's share of its host server, by CCF's method.

Cloud Carbon Footprint (CCF) charges an instance a share of its host server's embodied emissions::

    embodied_kg = server_kg x (duration_s / lifespan_s) x (vcpus_used / platform_vcpus)

``server_kg`` is the host server's embodied kgCO2e for the machine type (CCF's Teads-based
``coefficients-<provider>-embodied.csv``: a 1,000 kg base server plus extra memory, storage, CPUs
and GPUs), ``lifespan_s`` is CCF's 4-year server life (35,040 h), and ``platform_vcpus`` is the
largest vCPU count of the machine family's host platform (CCF's ``<provider>-instances.csv``). A
machine type that may run on several microarchitectures gets the mean of their figures, as CCF's
``coefficients-gcp-embodied-mean.csv`` does.

These emissions are never added to ``emissions_kg``: records and reports show them beside the
operational figure. Uncertainty: the interval spans the machine type's microarchitectures
(lowest to highest server figure) widened by :data:`RELATIVE_ERROR`, an assumed ±50 % because the
server figures are life-cycle estimates of typical servers, not of the provider's hardware.

Coverage: GCP machine types in CCF's tables (e2, n1, n2, n2d, t2d, c2, m1, m2, a2 ...) and Azure
VM sizes (330 of the table's 393, as ``"D4s v3"`` or the API's ``"Standard_D4s_v3"``; the
constrained-vCPU sizes are known but say why they have no figure, see :func:`_catalogue`). GPUs
attached to an N1 host (e.g. a Vertex AI T4) are not in the host's figure and CCF has no GPU
embodied figure of its own, so they are marked unknown in ``method``; A2 and Azure GPU sizes (NC,
ND, NV) include their GPUs. AWS: planned (CCF's AWS platform table carries third-party power data
whose licence is unstated, see ``data/PROVENANCE.md``); AWS records say ``unknown`` and why.

Pure arithmetic plus one cached table read; imports only the standard library.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from carbon_kfp.errors import ConfigError, close_matches
from carbon_kfp.tables import DataFileError, parse_float, read_rows

#: CCF's server lifespan: 4 years of 365 days. Units: s.
LIFESPAN_S = 4 * 365 * 24 * 3600.0
#: Assumed relative error of a server's embodied figure (see the module docstring).
RELATIVE_ERROR = 0.5
METHOD = "ccf-server-share"


class _Tables(NamedTuple):
    """One provider's pair of CCF tables (``data/PROVENANCE.md`` 7d, 7e)."""

    label: str  # as messages name the provider
    embodied_path: str  # columns: type, total (several rows per type: one per microarchitecture)
    instances_path: str  # columns: type_column, Instance vCPUs, Platform vCPUs ..., Platform GPU
    type_column: str
    family_column: str


_TABLES: dict[str, _Tables] = {
    "gcp": _Tables(
        "GCP",
        "ccf/coefficients-gcp-embodied.csv",
        "ccf/gcp-instances.csv",
        "Machine type",
        "Machine Family",
    ),
    "azure": _Tables(
        "Azure",
        "ccf/coefficients-azure-embodied.csv",
        "ccf/azure-instances.csv",
        "Virtual Machine",
        "Series",
    ),
}


class HostServer(NamedTuple):
    """A machine type's host server, as CCF describes it.

    Attributes:
        provider: ``"gcp"`` or ``"azure"``.
        machine_type: as CCF's table spells it, e.g. ``"n1-standard-8"``, ``"D4s v3"``.
        server_kg: mean embodied emissions of the host server over its microarchitectures.
            Units: kg CO2eq.
        server_low_kg: the lowest microarchitecture's figure. Units: kg CO2eq.
        server_high_kg: the highest microarchitecture's figure. Units: kg CO2eq.
        platform_vcpus: vCPUs of the host platform (CCF's figure for the type; see
            :func:`_catalogue` for the families where it is corrected).
        instance_vcpus: vCPUs of the machine type itself.
        includes_gpus: the server figure counts the machine type's GPUs (A2 and other
            accelerator-optimised types, Azure's GPU sizes).
    """

    provider: str
    machine_type: str
    server_kg: float
    server_low_kg: float
    server_high_kg: float
    platform_vcpus: float
    instance_vcpus: float
    includes_gpus: bool


class EmbodiedEstimate(NamedTuple):
    """A window's embodied emissions, or ``None`` values and a ``method`` saying why not.

    Units: kg CO2eq. ``low_kg <= kg <= high_kg`` when known.
    """

    kg: float | None
    low_kg: float | None
    high_kg: float | None
    method: str


def share_kg(
    server_kg: float, duration_s: float, vcpus_used: float, platform_vcpus: float
) -> float:
    """CCF's share of a server's embodied emissions (kg) for ``duration_s`` on ``vcpus_used``.

    The vCPU fraction is capped at 1 (a scope cannot use more than its host).

    Raises:
        ValueError: a negative input or ``platform_vcpus <= 0``.
    """
    if min(server_kg, duration_s, vcpus_used) < 0 or platform_vcpus <= 0:
        raise ValueError(
            f"embodied share needs server_kg, duration_s, vcpus_used >= 0 and platform_vcpus > 0; "
            f"got {server_kg}, {duration_s}, {vcpus_used}, {platform_vcpus}"
        )
    return server_kg * (duration_s / LIFESPAN_S) * min(1.0, vcpus_used / platform_vcpus)


def estimate(
    host: HostServer | None,
    duration_s: float,
    vcpus_used: float,
    gpu_count: float,
    why_unknown: str,
) -> EmbodiedEstimate:
    """The embodied emissions of a window on ``host``.

    Args:
        host: the host server, or ``None`` when the machine type is unknown.
        duration_s: the window's length. Units: s.
        vcpus_used: vCPUs allocated to the measured scope; 0 (unknown) charges the machine type's
            own vCPUs.
        gpu_count: GPUs the step used; on a host whose figure excludes GPUs they are unknown.
        why_unknown: the ``method`` text when ``host`` is ``None``.

    Returns:
        The estimate; never raises for finite non-negative inputs.
    """
    if host is None:
        return EmbodiedEstimate(None, None, None, why_unknown)
    vcpus = vcpus_used if vcpus_used > 0 else host.instance_vcpus
    duration_s = max(0.0, duration_s)

    def share(server_kg: float) -> float:
        return share_kg(server_kg, duration_s, vcpus, host.platform_vcpus)

    method = (
        f"{METHOD} ({host.provider} {host.machine_type}, {vcpus:g}/{host.platform_vcpus:g} vCPUs)"
    )
    if gpu_count > 0 and not host.includes_gpus:
        method += "; attached GPUs unknown (no CCF embodied figure)"
    return EmbodiedEstimate(
        kg=share(host.server_kg),
        low_kg=share(host.server_low_kg) * (1.0 - RELATIVE_ERROR),
        high_kg=share(host.server_high_kg) * (1.0 + RELATIVE_ERROR),
        method=method,
    )


def _number(row: dict[str, str], column: str, path: str, *, blank: float | None = None) -> float:
    """``row[column]`` as a number >= 0; ``blank`` (when given) stands for an empty cell.

    Raises:
        DataFileError: a value that is not a number, or a negative one.
    """
    if blank is not None and not row[column].strip():
        return blank
    value = parse_float(row[column], where=f"carbon_kfp/data/{path} ({column} of {row!r})")
    if value < 0:
        raise DataFileError(f"carbon_kfp/data/{path}: {column} {value} is negative")
    return value


def machine_key(provider: str, machine_type: str) -> str:
    """How ``machine_type`` is looked up: lower case; for Azure without the API's ``Standard_``
    prefix and with spaces for underscores (``"Standard_NC4as_T4_v3"`` -> ``"nc4as t4 v3"``)."""
    key = machine_type.strip().lower()
    if provider == "azure":
        key = key.removeprefix("standard_").replace("_", " ")
    return key


class _Catalogue(NamedTuple):
    """One provider's host servers, and the types whose table rows cannot be used."""

    hosts: dict[str, HostServer]  # by machine_key
    unusable: dict[str, str]  # machine_key -> why its row cannot be used
    spelled: dict[str, str]  # machine_key -> the table's spelling, for messages


@functools.cache
def _catalogue(provider: str) -> _Catalogue:
    """``provider``'s two tables, read once: hosts by :func:`machine_key`, and the rows left out.

    A type's platform is its row's ``Platform vCPUs``, except in a family where some size has
    more vCPUs than its listed platform (the list is wrong there): then every size of the family
    gets the family's largest size, CCF's own definition of the platform. Only CCF's Azure table
    has such families (``NCas_T4_v3``: ``NC64as T4 v3`` has 64 vCPUs on a listed 24; ``Mv2``).
    Left out: rows whose instance has fewer than 1 vCPU (the Azure
    constrained-vCPU sizes, e.g. ``E64-16s v3``, hold a ratio such as ``0.25`` there).
    """
    tables = _TABLES[provider]
    path = tables.instances_path
    totals: dict[str, list[float]] = {}
    for row in read_rows(tables.embodied_path):
        figure = _number(row, "total", tables.embodied_path)
        totals.setdefault(row["type"], []).append(figure)
    rows = [row for row in read_rows(path) if row[tables.type_column] in totals]
    largest: dict[str, float] = {}  # family -> its largest size
    wrong: set[str] = set()  # families with a size above its listed platform
    for row in rows:
        family, vcpus = row[tables.family_column], _number(row, "Instance vCPUs", path)
        largest[family] = max(largest.get(family, 0.0), vcpus)
        if vcpus > _number(row, "Platform vCPUs (highest vCPU possible)", path):
            wrong.add(family)
    catalogue = _Catalogue({}, {}, {})
    for row in rows:
        machine_type = row[tables.type_column]
        key = machine_key(provider, machine_type)
        if key in catalogue.spelled:
            continue  # one row per microarchitecture: the figures are the same
        catalogue.spelled[key] = machine_type
        instance_vcpus = _number(row, "Instance vCPUs", path)
        if instance_vcpus < 1:
            catalogue.unusable[key] = (
                f"CCF's {tables.label} row for {machine_type} gives {instance_vcpus:g} instance "
                "vCPUs (a constrained-vCPU ratio, not a count)"
            )
            continue
        figures = totals[machine_type]
        family = row[tables.family_column]
        listed = _number(row, "Platform vCPUs (highest vCPU possible)", path)
        catalogue.hosts[key] = HostServer(
            provider=provider,
            machine_type=machine_type,
            server_kg=math.fsum(figures) / len(figures),
            server_low_kg=min(figures),
            server_high_kg=max(figures),
            platform_vcpus=max(listed, largest[family]) if family in wrong else listed,
            instance_vcpus=instance_vcpus,
            includes_gpus=_number(row, "Platform GPU", path, blank=0.0) > 0,
        )
    return catalogue


def lookup_host(provider: str, machine_type: str) -> HostServer | None:
    """The host server of ``machine_type`` on ``provider``.

    Returns:
        ``None`` for a provider without packaged tables (aws, off-cloud) or a type whose table
        row cannot be used; :func:`why_no_host` says why.

    Raises:
        ConfigError: a machine type CCF's tables for ``provider`` do not list (the message names
            close ones, as the table spells them).
        DataFileError: a packaged CCF table is malformed.
    """
    if provider not in _TABLES:
        return None
    key = machine_key(provider, machine_type)
    catalogue = _catalogue(provider)
    if key not in catalogue.spelled:
        raise ConfigError(
            f"machine_type={machine_type!r} has no embodied figure in CCF's "
            f"{_TABLES[provider].label} tables"
            f"{close_matches(key, catalogue.spelled, shown=catalogue.spelled)}"
        )
    return catalogue.hosts.get(key)


def why_no_host(provider: str, machine_type: str) -> str:
    """The record's ``embodied_method`` when :func:`lookup_host` returns ``None``."""
    if not provider:
        return "unknown: machine_type needs cloud_provider= (gcp or azure) for CCF's tables"
    if provider in _TABLES:  # then lookup_host returns None only for an unusable row
        return f"unknown: {_catalogue(provider).unusable[machine_key(provider, machine_type)]}"
    return (
        f"unknown: no packaged CCF embodied tables for {provider} (gcp and azure only; CCF's "
        "AWS platform table carries third-party data whose licence is unstated)"
    )
