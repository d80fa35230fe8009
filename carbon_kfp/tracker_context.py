"""What a tracker works out before it measures: where it runs, and which sensors measure what.

:func:`resolve_site` gives grid intensity and PUE from the configuration and the platform's
region. :func:`assemble_sensors` elects the node owner's part, resolves the scope and builds the
CPU, GPU and RAM sensors. Both return the notes that belong in ``record.warnings``.

Failure behaviour (DESIGN §5): a :class:`~carbon_kfp.errors.ConfigError` (a bad value the user
gave) propagates. Anything else that stops a sensor from being built, such as a procfs without
this process in it or a broken packaged table, is a measurement fault: that device class gets a
:class:`~carbon_kfp.sensors.base.NullSensor` (method ``none``) and a warning, and the work runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from carbon_kfp.errors import ConfigError, warn_once
from carbon_kfp.sensors.base import NullSensor, Sensor

if TYPE_CHECKING:
    from carbon_kfp.distributed import NodeRole
    from carbon_kfp.embodied import HostServer
    from carbon_kfp.intensity import GridIntensity
    from carbon_kfp.location import CloudLocation
    from carbon_kfp.pue import PowerUsageEffectiveness

LocationMode = Literal["off", "auto"]


class Site(NamedTuple):
    """Grid intensity and PUE for the records, with the notes that explain fallbacks.

    ``off_platform``: ``location="auto"`` looked for GCP (variables, metadata server) and found
    nothing, so nothing more is asked of the metadata server.
    """

    intensity: GridIntensity
    pue: PowerUsageEffectiveness
    notes: tuple[str, ...]
    off_platform: bool = False


class Sensors(NamedTuple):
    """The sensors of one tracker (``cpu``, ``gpu``, ``ram``), the scope they charge, and notes."""

    sensors: tuple[Sensor, ...]
    scope_kind: str
    notes: tuple[str, ...]


def resolve_site(
    *,
    carbon_intensity_g_per_kwh: float | None,
    country_iso_code: str | None,
    cloud_provider: str | None,
    cloud_region: str | None,
    cloud_location: str,
    intensity_year: int | None,
    location: LocationMode,
    pue: float | None,
) -> Site:
    """Intensity and PUE: explicit values, else the platform's region, else the configuration.

    A region the platform names (``cloud_location``, or detected with ``location="auto"``) that
    is missing from the packaged tables falls back to the configured location with a note; an
    explicit ``cloud_region`` wins over both.

    Raises:
        ConfigError: a bad explicit argument (a platform region is never an error).
    """
    from carbon_kfp.intensity import resolve_intensity
    from carbon_kfp.pue import resolve_pue

    if location not in ("off", "auto"):
        raise ConfigError(f"location={location!r}; expected 'off' or 'auto'")
    explicit: dict[str, Any] = {
        "carbon_intensity_g_per_kwh": carbon_intensity_g_per_kwh,
        "cloud_provider": cloud_provider,
        "cloud_region": cloud_region,
        "country_iso_code": country_iso_code,
        "year": intensity_year,
    }
    notes: list[str] = []
    platform = _platform_location(cloud_location, location, cloud_region)
    intensity: GridIntensity | None = None
    if platform is not None:
        located = explicit | {
            "cloud_provider": platform.cloud_provider,
            "cloud_region": platform.cloud_region,
        }
        try:
            intensity = resolve_intensity(**located)
        except ConfigError as exc:
            note = (
                f"the platform's region {platform.cloud_region!r} ({platform.source}) is not "
                f"in carbon-kfp's tables ({exc}); using the configured location instead"
            )
            notes.append(note)
            warn_once(note)
    if intensity is None:
        intensity = resolve_intensity(**explicit)
    resolved_pue = resolve_pue(
        pue=pue, cloud_provider=intensity.cloud_provider or cloud_provider, year=intensity_year
    )
    notes += (*intensity.warnings, *resolved_pue.warnings)
    asked = location == "auto" and not cloud_region and not cloud_location.strip()
    return Site(intensity, resolved_pue, tuple(notes), off_platform=asked and platform is None)


def _platform_location(
    cloud_location: str, location: LocationMode, cloud_region: str | None
) -> CloudLocation | None:
    """Where the platform says we run, unless the caller named a region."""
    from carbon_kfp.location import CloudLocation, detect_location

    if cloud_region:
        return None
    if cloud_location.strip():
        return CloudLocation("gcp", cloud_location.strip(), "cloud_location")
    return detect_location(timeout_s=1.0) if location == "auto" else None


def resolve_host(site: Site, machine_type: str, location: LocationMode) -> dict[str, Any]:
    """RunContext fields for embodied emissions (``machine_type``, ``host``).

    An explicit ``machine_type`` must be in CCF's tables of the provider (gcp, azure; for other
    providers the record says why it has no embodied share); with ``location="auto"`` the GCP
    metadata server is asked (1 s timeout) unless :func:`resolve_site` already found no GCP
    platform (one wait off GCP, not two), and a type the tables lack is only noted
    (``embodied_unknown``). Without either, no fields: the record has no embodied share.

    Raises:
        ConfigError: an explicit ``machine_type`` CCF's tables do not list.
    """
    from carbon_kfp.embodied import lookup_host
    from carbon_kfp.location import detect_machine_type

    provider = site.intensity.cloud_provider
    if machine_type.strip():
        return _host_fields(provider, machine_type.strip(), lookup_host(provider, machine_type))
    ask = location == "auto" and not site.off_platform
    detected = detect_machine_type(timeout_s=1.0) if ask else None
    if detected is None:
        return {}
    provider = provider or "gcp"  # the metadata server that answered is GCP's
    try:
        return _host_fields(provider, detected, lookup_host(provider, detected))
    except ConfigError as exc:
        return {"machine_type": detected, "embodied_unknown": f"unknown: {exc}"}


def _host_fields(provider: str, machine_type: str, host: HostServer | None) -> dict[str, Any]:
    """RunContext fields for a machine type and its host (``None``: the record says why)."""
    from carbon_kfp.embodied import why_no_host

    fields: dict[str, Any] = {"machine_type": machine_type, "host": host}
    if host is None:
        fields["embodied_unknown"] = why_no_host(provider, machine_type)
    return fields


def cpu_request_vcpus(millicores: int | None) -> float | None:
    """The stated CPU request in vCPUs: the argument, else the environment, else None.

    Raises:
        ConfigError: a value that is not a whole number of millicores > 0.
    """
    from carbon_kfp.sensors.scope import CPU_REQUEST_ENV
    from carbon_kfp.sensors.scope import cpu_request_vcpus as to_vcpus

    if millicores is not None:
        return to_vcpus(millicores)
    from_env = os.environ.get(CPU_REQUEST_ENV, "").strip()
    return to_vcpus(from_env, name=CPU_REQUEST_ENV) if from_env else None


def assemble_sensors(
    role: NodeRole,
    *,
    scope: str,
    cpu_request_vcpus: float | None,
    sysfs_root: Path,
    proc_root: Path,
    rapl_dram: bool,
    cloud_provider: str,
    gpu: bool,
) -> Sensors:
    """CPU, GPU and RAM sensors for this process's role on the node.

    The node owner measures its scope and the node's GPUs. Another rank measures nothing when
    the owner's scope already contains it (a container's cgroup, the machine), else only its own
    process's busy CPU time and memory: the owner charges the idle power.

    Raises:
        ConfigError: an unknown scope, or ``scope="container"`` without a readable cgroup.
    """
    from carbon_kfp.sensors.cpu import CpuSensor
    from carbon_kfp.sensors.gpu import GpuSensor
    from carbon_kfp.sensors.ram import RamSensor
    from carbon_kfp.sensors.scope import resolve_scope

    owner = role.is_owner
    notes: list[str] = []
    try:
        resolved = resolve_scope(
            scope, sysfs_root=sysfs_root, proc_root=proc_root, cpu_request_vcpus=cpu_request_vcpus
        )
    except ConfigError:
        raise
    except Exception as exc:  # the environment, not the configuration: measure what we can
        notes.append(_cannot_start("cpu and ram sensors", f"{scope} scope: {exc!r}"))
        gpu_sensor = _built("gpu", lambda: GpuSensor(measure=gpu and owner), notes)
        kind = scope if scope != "auto" else "process"
        return Sensors((NullSensor("cpu"), gpu_sensor, NullSensor("ram")), kind, tuple(notes))
    if not owner and resolved.kind != "process":
        notes.append(
            f"not the node owner ({role.how}): this process's CPU and RAM are in the owner's "
            f"{resolved.kind} scope, so they are not counted here; the owner measures the node's "
            "GPUs"
        )
        sensors = (NullSensor("cpu"), NullSensor("gpu"), NullSensor("ram"))
        return Sensors(sensors, resolved.kind, tuple(notes))
    if not owner:
        notes.append(
            f"not the node owner ({role.how}): this record has only this process's busy CPU "
            "time and memory; the owner measures the node's GPUs, RAPL counters and idle power"
        )
    cpu = _built(
        "cpu",
        lambda: CpuSensor(
            resolved,
            sysfs_root=sysfs_root,
            proc_root=proc_root,
            rapl_dram=rapl_dram,
            cloud_provider=cloud_provider,
            charge_idle=owner,
        ),
        notes,
    )
    gpu_sensor = _built("gpu", lambda: GpuSensor(measure=gpu and owner), notes)
    dram_measured = cpu.measures_dram if isinstance(cpu, CpuSensor) else None
    ram = _built("ram", lambda: RamSensor(resolved, dram_measured=dram_measured), notes)
    return Sensors((cpu, gpu_sensor, ram), resolved.kind, tuple(notes))


def _built(name: str, build: Callable[[], Sensor], notes: list[str]) -> Sensor:
    """``build()``, or a :class:`NullSensor` and a note when it fails for a reason other than a
    :class:`ConfigError` (which propagates)."""
    try:
        return build()
    except ConfigError:
        raise
    except Exception as exc:
        notes.append(_cannot_start(f"{name} sensor", repr(exc)))
        return NullSensor(name)


def start_failed(name: str, exc: Exception) -> str:
    """The note (warned once) for a sensor whose ``start()`` raised: it is replaced by a
    :class:`NullSensor`."""
    return _cannot_start(f"{name} sensor", repr(exc))


def _cannot_start(what: str, why: str) -> str:
    note = f"the {what} cannot start ({why}); its energy is not measured (method none)"
    warn_once(note)
    return note
