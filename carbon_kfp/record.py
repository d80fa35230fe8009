"""``EmissionsRecord``: the one schema every output renders (DESIGN §3).

:func:`build_record` turns two snapshots of cumulative sensor readings into a record; it is pure,
so task, epoch and whole-run records are the same arithmetic over different windows. CSV rows,
Metrics keys and JSON are renderings of a record and never compute numbers of their own.

Memory unit: ``ram_total_size_gib`` and ``ram_used_gib`` are GiB (2**30 bytes), as the sensors
measure them. CodeCarbon's CSV columns ``ram_total_size`` and ``ram_used_gb`` hold the same GiB
figures (CodeCarbon computes them as ``bytes / 1024**3`` and calls them GB), so tools that read
CodeCarbon's file read carbon-kfp's.

Energy convention: ``cpu_energy_kwh``, ``gpu_energy_kwh`` and ``ram_energy_kwh`` are what the
devices drew (IT energy); ``energy_kwh`` is the facility energy, their sum times ``pue``;
``emissions_kg = energy_kwh × carbon_intensity_g_per_kwh / 1000``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

from carbon_kfp._version import __version__
from carbon_kfp.energy import joules_to_kwh
from carbon_kfp.errors import json_type
from carbon_kfp.sensors.base import Reading
from carbon_kfp.uncertainty import intensity_interval, window_bounds_j

if TYPE_CHECKING:
    from carbon_kfp.embodied import HostServer
    from carbon_kfp.intensity import GridIntensity
    from carbon_kfp.pue import PowerUsageEffectiveness

Status = Literal["completed", "partial", "interrupted", "failed"]
DEVICES = ("cpu", "gpu", "ram")
_NO_READING = Reading(energy_j=0.0, method="none")
_RENAMED_KEYS = {"ram_total_size_gb": "ram_total_size_gib", "ram_used_gb": "ram_used_gib"}


class Snapshot(NamedTuple):
    """Cumulative readings at one instant.

    Attributes:
        elapsed_s: seconds since the sensors' ``start()`` (monotonic clock). Units: s.
        readings: the latest :class:`Reading` per device class ("cpu", "gpu", "ram").
    """

    elapsed_s: float
    readings: Mapping[str, Reading]

    def reading(self, device: str) -> Reading:
        return self.readings.get(device, _NO_READING)


@dataclass(frozen=True)
class RunContext:
    """What stays constant over a tracker's life and goes into every record it makes."""

    project_name: str
    run_id: str
    intensity: GridIntensity
    pue: PowerUsageEffectiveness
    scope: str
    experiment_id: str = ""
    pipeline_job: str = ""
    pipeline_task: str = ""
    node_rank: int | None = None
    node_owner: bool = True
    machine_type: str = ""
    host: HostServer | None = None  # for embodied emissions (carbon_kfp.embodied)
    embodied_unknown: str = "unknown: no machine type (pass machine_type=, or location='auto')"


@dataclass(frozen=True)
class EmissionsRecord:
    """Energy and emissions of one window (a run, a task or a partial flush)."""

    timestamp: str  # ISO-8601 UTC at the window's end
    project_name: str
    run_id: str
    experiment_id: str
    task_name: str
    status: Status
    duration_s: float
    emissions_kg: float
    emissions_low_kg: float
    emissions_high_kg: float
    energy_kwh: float  # facility energy: (cpu + gpu + ram) x pue
    cpu_energy_kwh: float
    gpu_energy_kwh: float
    ram_energy_kwh: float
    cpu_power_w: float  # mean over the window
    gpu_power_w: float
    ram_power_w: float
    cpu_method: str
    gpu_method: str
    ram_method: str
    carbon_intensity_g_per_kwh: float
    intensity_source: str
    intensity_year: int | None
    intensity_lifecycle: bool
    country_iso_code: str
    country_name: str
    cloud_provider: str
    cloud_region: str
    pue: float
    pue_source: str
    scope: str
    cpu_count: float  # vCPUs allocated to the scope
    cpu_model: str
    gpu_count: float
    gpu_model: str
    ram_total_size_gib: float  # GiB (2**30 bytes) allocated to the scope
    ram_used_gib: float | None  # GiB in use at the window's end
    cpu_utilization_percent: float | None
    gpu_utilization_percent: float | None
    ram_utilization_percent: float | None
    on_cloud: bool
    os: str
    python_version: str
    tracker_version: str
    pipeline_job: str
    pipeline_task: str
    node_rank: int | None
    node_owner: bool
    epochs_completed: int = 0
    epochs_planned: int | None = None
    predicted_energy_kwh: float | None = None
    predicted_emissions_kg: float | None = None
    comparisons_kg: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Embodied (manufacturing) emissions of the host's share, never part of emissions_kg
    # (carbon_kfp.embodied); None when unknown, and embodied_method says why.
    machine_type: str = ""
    embodied_kg: float | None = None
    embodied_low_kg: float | None = None
    embodied_high_kg: float | None = None
    embodied_method: str = ""
    # Downsampled mean power per bucket (carbon_kfp.timeline): "t_s" bucket end times (s since
    # start; buckets are contiguous from 0), "cpu_w", "gpu_w", "ram_w" (W); whole-run records only.
    power_timeline: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def to_metrics(self) -> dict[str, float]:
        """The ``kpi_co2`` Metrics keys (DESIGN §3): finite floats only, optional keys when set."""
        metrics = {
            "emissions_kg": self.emissions_kg,
            "emissions_low_kg": self.emissions_low_kg,
            "emissions_high_kg": self.emissions_high_kg,
            "energy_kwh": self.energy_kwh,
            "cpu_energy_kwh": self.cpu_energy_kwh,
            "gpu_energy_kwh": self.gpu_energy_kwh,
            "ram_energy_kwh": self.ram_energy_kwh,
            "duration_s": self.duration_s,
            "cpu_power_w": self.cpu_power_w,
            "gpu_power_w": self.gpu_power_w,
            "ram_power_w": self.ram_power_w,
            "carbon_intensity_g_per_kwh": self.carbon_intensity_g_per_kwh,
            "pue": self.pue,
        }
        if self.predicted_emissions_kg is not None:
            metrics["predicted_emissions_kg"] = self.predicted_emissions_kg
        for backend, emissions_kg in sorted(self.comparisons_kg.items()):
            metrics[f"{backend}_emissions_kg"] = emissions_kg
        # Grams and watt-hours, the scale a person reads in the Vertex AI Node Info panel.
        metrics["co2_g"] = self.emissions_kg * 1000.0
        metrics["co2_low_g"] = self.emissions_low_kg * 1000.0
        metrics["co2_high_g"] = self.emissions_high_kg * 1000.0
        metrics["energy_wh"] = self.energy_kwh * 1000.0
        if self.embodied_kg is not None:
            metrics["embodied_kg"] = self.embodied_kg
            metrics["embodied_g"] = self.embodied_kg * 1000.0
            for bound in ("low", "high"):
                value = getattr(self, f"embodied_{bound}_kg")
                if value is not None:
                    metrics[f"embodied_{bound}_kg"] = value
        return {key: float(value) for key, value in metrics.items() if math.isfinite(value)}

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (``comparisons_kg`` as a plain dict, ``warnings`` as a list)."""
        data = asdict(self)
        data["comparisons_kg"] = dict(self.comparisons_kg)
        data["warnings"] = list(self.warnings)
        data["power_timeline"] = {key: list(values) for key, values in self.power_timeline.items()}
        return data

    def to_json(self) -> str:
        """The full record as JSON (non-finite floats become ``null``)."""
        import json  # only renderings need it; not on ``import carbon_kfp``'s path

        return json.dumps(_finite_or_none(self.to_dict()), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmissionsRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, missing ones raise TypeError.

        Records written before the memory fields were named in GiB (``ram_total_size_gb``,
        ``ram_used_gb``, which held GiB too) are read under the new names."""
        names = {f.name for f in fields(cls)}
        data = {_RENAMED_KEYS.get(key, key): value for key, value in data.items()}
        values = {key: value for key, value in data.items() if key in names}
        values["warnings"] = tuple(values.get("warnings", ()))
        timeline = values.get("power_timeline", {})
        values["power_timeline"] = {key: tuple(series) for key, series in timeline.items()}
        return cls(**values)


@functools.lru_cache(maxsize=1)
def _os_name() -> str:
    """``Linux-6.1.0-x86_64``: cheap (``platform.platform()`` scans the interpreter binary)."""
    uname = os.uname()
    return f"{uname.sysname}-{uname.release}-{uname.machine}"


def _python_version() -> str:
    """``"3.11.7"``, as ``platform.python_version()`` says it (without importing platform)."""
    return sys.version.split()[0]


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def _window_utilization(begin: Reading, end: Reading, begin_s: float, end_s: float) -> float | None:
    """Mean utilisation over [begin_s, end_s] from two since-start means (time-weighted)."""
    if end.utilization_percent is None:
        return None
    duration_s = end_s - begin_s
    if duration_s <= 0:
        return end.utilization_percent
    begin_part = (begin.utilization_percent or 0.0) * begin_s
    return max(0.0, (end.utilization_percent * end_s - begin_part) / duration_s)


def build_record(
    context: RunContext,
    begin: Snapshot,
    end: Snapshot,
    *,
    timestamp: str,
    status: Status,
    task_name: str = "",
    warnings: tuple[str, ...] = (),
    epochs_completed: int = 0,
    epochs_planned: int | None = None,
    predicted_energy_kwh: float | None = None,
    comparisons_kg: Mapping[str, float] | None = None,
    power_timeline: Mapping[str, tuple[float, ...]] | None = None,
) -> EmissionsRecord:
    """The record of the window between two snapshots (pure).

    Args:
        context: run-wide facts (location, intensity, PUE, scope, pipeline tags).
        begin: snapshot at the window's start.
        end: snapshot at the window's end (``end.elapsed_s >= begin.elapsed_s``).
        timestamp: ISO-8601 UTC time of ``end``.
        status: "completed", "partial" (a flush), "interrupted" (SIGTERM / exit) or "failed".
        predicted_energy_kwh: facility energy predicted for all planned epochs, if known.
        power_timeline: the run's downsampled power (:meth:`PowerTimeline.points`), if kept.

    Raises:
        ValueError: ``end`` precedes ``begin``.
    """
    duration_s = end.elapsed_s - begin.elapsed_s
    if duration_s < 0:
        raise ValueError(f"window ends before it begins: {begin.elapsed_s} s -> {end.elapsed_s} s")
    energy_kwh: dict[str, float] = {}
    it_low_kwh = it_high_kwh = 0.0
    for device in DEVICES:
        first, last = begin.reading(device), end.reading(device)
        delta_j = max(0.0, last.energy_j - first.energy_j)
        low_j, high_j = window_bounds_j(delta_j, first.bounds_j(), last.bounds_j())
        energy_kwh[device] = joules_to_kwh(delta_j)
        it_low_kwh += joules_to_kwh(low_j)
        it_high_kwh += joules_to_kwh(high_j)

    pue = context.pue.value
    intensity = context.intensity.g_per_kwh
    intensity_low, intensity_high = intensity_interval(intensity, context.intensity.source)
    facility_kwh = sum(energy_kwh.values()) * pue

    def power_w(device: str) -> float:
        return energy_kwh[device] * 3.6e6 / duration_s if duration_s > 0 else 0.0

    cpu, gpu, ram = (end.reading(device) for device in DEVICES)
    predicted_emissions_kg = (
        predicted_energy_kwh * intensity / 1000.0 if predicted_energy_kwh is not None else None
    )
    from carbon_kfp.embodied import estimate  # its tables load with the first record

    embodied = estimate(
        context.host if context.node_owner else None,
        duration_s,
        cpu.capacity,
        gpu.capacity,
        context.embodied_unknown if context.node_owner else "charged by the node owner",
    )
    return EmissionsRecord(
        timestamp=timestamp,
        project_name=context.project_name,
        run_id=context.run_id,
        experiment_id=context.experiment_id,
        task_name=task_name,
        status=status,
        duration_s=duration_s,
        emissions_kg=facility_kwh * intensity / 1000.0,
        emissions_low_kg=it_low_kwh * pue * intensity_low / 1000.0,
        emissions_high_kg=it_high_kwh * pue * intensity_high / 1000.0,
        energy_kwh=facility_kwh,
        cpu_energy_kwh=energy_kwh["cpu"],
        gpu_energy_kwh=energy_kwh["gpu"],
        ram_energy_kwh=energy_kwh["ram"],
        cpu_power_w=power_w("cpu"),
        gpu_power_w=power_w("gpu"),
        ram_power_w=power_w("ram"),
        cpu_method=cpu.method,
        gpu_method=gpu.method,
        ram_method=ram.method,
        carbon_intensity_g_per_kwh=intensity,
        intensity_source=context.intensity.source,
        intensity_year=context.intensity.year,
        intensity_lifecycle=context.intensity.lifecycle,
        country_iso_code=context.intensity.country_iso_code,
        country_name=context.intensity.country_name,
        cloud_provider=context.intensity.cloud_provider,
        cloud_region=context.intensity.cloud_region,
        pue=pue,
        pue_source=context.pue.source,
        scope=context.scope,
        cpu_count=cpu.capacity,
        cpu_model=cpu.model,
        gpu_count=gpu.capacity,
        gpu_model=gpu.model,
        ram_total_size_gib=ram.capacity,
        ram_used_gib=ram.used,
        cpu_utilization_percent=_window_utilization(
            begin.reading("cpu"), cpu, begin.elapsed_s, end.elapsed_s
        ),
        gpu_utilization_percent=_window_utilization(
            begin.reading("gpu"), gpu, begin.elapsed_s, end.elapsed_s
        ),
        ram_utilization_percent=(
            100.0 * ram.used / ram.capacity if ram.used is not None and ram.capacity > 0 else None
        ),
        on_cloud=bool(context.intensity.cloud_provider),
        os=_os_name(),
        python_version=_python_version(),
        tracker_version=__version__,
        pipeline_job=context.pipeline_job,
        pipeline_task=context.pipeline_task,
        node_rank=context.node_rank,
        node_owner=context.node_owner,
        epochs_completed=epochs_completed,
        epochs_planned=epochs_planned,
        predicted_energy_kwh=predicted_energy_kwh,
        predicted_emissions_kg=predicted_emissions_kg,
        comparisons_kg=dict(comparisons_kg or {}),
        warnings=warnings,
        machine_type=context.machine_type,
        embodied_kg=embodied.kg,
        embodied_low_kg=embodied.low_kg,
        embodied_high_kg=embodied.high_kg,
        embodied_method=embodied.method,
        power_timeline=dict(power_timeline or {}),
    )


# -- validation of records read back from JSON ---------------------------------------------------


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"is a JSON {json_type(value)}; expected a finite number >= 0")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"is {value!r}; expected a finite number >= 0")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"is a JSON {json_type(value)} ({value!r}); expected an integer >= 0")
    if value < 0:
        raise ValueError(f"is {value}; expected an integer >= 0")
    return value


def _optional(check: Callable[[object], Any]) -> Callable[[object], Any]:
    return lambda value: None if value is None else check(value)


def _of_type(kind: type) -> Callable[[object], Any]:
    def check(value: object) -> Any:
        if not isinstance(value, kind):
            raise ValueError(f"is a JSON {json_type(value)}; expected a JSON {json_type(kind())}")
        return value

    return check


def _status(value: object) -> Status:
    if value not in get_args(Status):
        raise ValueError(f"is {value!r}; expected one of {', '.join(get_args(Status))}")
    return value  # type: ignore[return-value]


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"is {value!r}; expected a JSON array of strings")
    return tuple(value)


def _comparisons(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"is a JSON {json_type(value)}; expected an object of numbers")
    result = {}
    for backend, emissions_kg in value.items():
        try:
            result[backend] = _number(emissions_kg)
        except ValueError as exc:
            raise ValueError(f"entry {backend!r} {exc}") from None
    return result


def _timeline(value: object) -> dict[str, tuple[float, ...]]:
    if not isinstance(value, dict):
        raise ValueError(f"is a JSON {json_type(value)}; expected an object of number arrays")
    result = {}
    for key, series in value.items():
        if not isinstance(series, list):
            raise ValueError(f"entry {key!r} is a JSON {json_type(series)}; expected an array")
        try:
            result[key] = tuple(_number(item) for item in series)
        except ValueError as exc:
            raise ValueError(f"entry {key!r} has an item that {exc}") from None
    if len({len(series) for series in result.values()}) > 1:
        raise ValueError("has arrays of different lengths; expected one value per time")
    return result


# Per field annotation (as written in EmissionsRecord): the check of a JSON value, which returns
# the field's value or raises ValueError saying what the value is and what was expected. Every
# number in a record is a quantity that cannot be negative (energy, power, time, counts, shares).
_FIELD_CHECKS: dict[str, Callable[[object], Any]] = {
    "str": _of_type(str),
    "bool": _of_type(bool),
    "float": _number,
    "float | None": _optional(_number),
    "int": _integer,
    "int | None": _optional(_integer),
    "Status": _status,
    "tuple[str, ...]": _strings,
    "Mapping[str, float]": _comparisons,
    "Mapping[str, tuple[float, ...]]": _timeline,
}


def parse_record(data: object) -> EmissionsRecord:
    """A record from parsed JSON (:meth:`EmissionsRecord.to_json`'s output), checked field by field.

    Strict where :meth:`EmissionsRecord.from_dict` is not: every number must be finite and
    ``>= 0`` (a ``null``, which is how ``to_json`` writes NaN and infinity, is accepted only
    where the field is optional), every field must have its type (``warnings`` an array of
    strings, ``status`` one of the statuses), and a field without a default must be present.
    Unknown keys are ignored (a newer schema's record still loads); the old ``_gb`` memory names
    are read as their ``_gib`` successors, as :meth:`EmissionsRecord.from_dict` does.

    Raises:
        ValueError: ``data`` is not an object, or a field is missing or bad; the message names
            the field, what it holds and what was expected.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {json_type(data)}; expected a record object")
    data = {_RENAMED_KEYS.get(key, key): value for key, value in data.items()}
    values: dict[str, Any] = {}
    for spec in fields(EmissionsRecord):
        if spec.name not in data:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ValueError(f"field {spec.name!r} is missing")
            continue
        try:
            values[spec.name] = _FIELD_CHECKS[str(spec.type)](data[spec.name])
        except ValueError as exc:
            raise ValueError(f"field {spec.name!r} {exc}") from None
    return EmissionsRecord(**values)
