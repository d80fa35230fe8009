"""CPU energy of a scope: RAPL counters when readable, else a CPU-time power model (DESIGN §2).

RAPL measures whole sockets (method ``rapl`` for the machine scope). For a container or process
scope each interval's socket energy is split with :func:`scope_share`: the idle part by the
scope's share of the host's CPUs, the load part by its share of the host's busy CPU-seconds
(``<proc_root>/stat``), the two parts weighted as the linear power model predicts for that
interval. So a 2-vCPU container on an idle 64-CPU host pays for 2/64 of the idle power plus the
load it added, never for the whole socket. Such a share is method ``rapl-share``, with its own
error (:mod:`carbon_kfp.uncertainty`). When the summed domains include DRAM (``psys`` alone, or
``dram`` with ``rapl_dram=True``), :meth:`CpuSensor.measures_dram` says so and the RAM sensor
stops modelling RAM on top.

Where the scope's allocation has two readings (``Scope.vcpus_range``, e.g. a ``cpu.weight`` that
two runtimes' formulas read differently), the energy is computed for ``Scope.vcpus`` and the
reading's bounds (``Reading.low_j``/``high_j``) span the energy under each end of the range.

Without RAPL: ``E = vcpus × min_w × wall + busy_cpu_s × (max_w − min_w)``
(:func:`carbon_kfp.energy.linear_power_model_energy_j`) with per-vCPU watts from
:mod:`carbon_kfp.sensors.cpuinfo`. With ``charge_idle=False`` (a rank that does not own its node:
the owner pays the node's idle power) only ``busy_cpu_s × (max_w − min_w)``, and never RAPL.

RAPL failing mid-run: the energy RAPL measured up to its last good sample is kept and the model
adds the energy from then on, so the cumulative reading stays continuous (a window spanning the
switch is RAPL before it plus model after it). Counters that never moved (frozen) measured
nothing, so the model then covers the whole run. Importing this module reads no files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from carbon_kfp.energy import linear_power_model_energy_j
from carbon_kfp.sensors.base import Method, Reading, WarningLog
from carbon_kfp.sensors.cpuinfo import (
    CpuInfo,
    CpuPowerModel,
    coefficient_provider,
    cpu_power_model,
    read_cpuinfo,
)
from carbon_kfp.sensors.rapl import RaplError, RaplMeter, RaplUnreadable
from carbon_kfp.sensors.scope import HostCpuTimes, Scope, read_host_cpu_times
from carbon_kfp.uncertainty import method_bounds_j

DEFAULT_UTILIZATION = 0.5
"""Busy fraction assumed when the scope's CPU time cannot be read at all (CCF's
``AVG_CPU_UTILIZATION_2020``, 50 %); the record carries a warning when it is used."""
FROZEN_RAPL_CHECK_S = 2.0
"""After this long, RAPL counters that have not moved while the scope used CPU are distrusted."""

_MODEL_METHODS: dict[str, Method] = {
    "container": "cgroup-model",
    "process": "process-model",
    "machine": "machine-model",
}


def scope_share(
    *,
    scope_busy_s: float,
    host_busy_s: float,
    wall_s: float,
    scope_vcpus: float,
    host_cpus: float,
    min_w_per_vcpu: float,
    max_w_per_vcpu: float,
) -> float:
    """Fraction (0-1) of one interval's host CPU energy that belongs to a scope. Pure.

    The linear model splits host power into idle ``host_cpus × min_w`` and load
    ``host_busy × (max_w − min_w)``. The idle part is charged by allocation
    (``scope_vcpus / host_cpus``), the load part by CPU time (``scope_busy_s / host_busy_s``),
    each ratio capped at 1. Negative or NaN inputs (counter skew) count as 0.

    Args:
        scope_busy_s: CPU time the scope used in the interval. Units: CPU-seconds.
        host_busy_s: CPU time the whole host used in the interval. Units: CPU-seconds.
        wall_s: interval length. Units: s.
        scope_vcpus: vCPUs allocated to the scope.
        host_cpus: logical CPUs of the host.
        min_w_per_vcpu, max_w_per_vcpu: model watts per vCPU, idle and full load. Units: W.
    """

    def clean(value: float) -> float:
        return value if value > 0 else 0.0  # also maps NaN to 0

    scope_busy, host_busy, wall = clean(scope_busy_s), clean(host_busy_s), clean(wall_s)
    vcpus, cpus = clean(scope_vcpus), clean(host_cpus)
    low, high = clean(min_w_per_vcpu), clean(max_w_per_vcpu)
    allocation = min(1.0, vcpus / cpus) if cpus > 0 else 1.0
    load = min(1.0, scope_busy / host_busy) if host_busy > 0 else 0.0
    idle_j = cpus * low * wall
    load_j = host_busy * max(0.0, high - low)
    if idle_j + load_j <= 0:
        return allocation
    idle_fraction = idle_j / (idle_j + load_j)
    return idle_fraction * allocation + (1.0 - idle_fraction) * load


class CpuSensor:
    """CPU energy of a :class:`~carbon_kfp.sensors.scope.Scope` (implements ``Sensor``).

    Args:
        scope: what to charge for.
        sysfs_root: where ``class/powercap`` is read (a host /sys mounted into a container).
        proc_root: where ``stat`` and ``cpuinfo`` are read.
        rapl_dram: also sum RAPL ``dram`` domains (off by default: RAM has its own sensor).
        cloud_provider: which CCF coefficient table to use: ``gcp`` (default, also for ""),
            ``aws`` or ``azure``.
        charge_idle: charge the scope's share of idle power (default). ``False`` for a process
            whose node's idle power another process (the node owner) already charges: the energy
            is then only its busy CPU time × (max_w − min_w) per vCPU, RAPL is never used, and
            ``Reading.model`` says so. ``capacity`` and utilisation are reported as usual.

    Raises:
        ConfigError: an unknown ``cloud_provider`` (construction only).
        DataFileError: a packaged coefficient table is broken (construction only).

    ``Reading.model`` names the CPU and the source of the figures, e.g.
    ``"Intel(R) Xeon(R) CPU @ 2.20GHz (ccf gcp Cascade Lake 0.69-3.75 W/vCPU)"``. After
    construction nothing raises: faults downgrade RAPL to the model, warn once, and are listed
    by :meth:`warnings` (so are RAPL zones skipped because their ``name`` or
    ``max_energy_range_uj`` is unreadable, warned at construction).

    Thread-safe: the tracker's sampling thread and the caller share it.
    """

    name = "cpu"

    def __init__(
        self,
        scope: Scope,
        *,
        sysfs_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        rapl_dram: bool = False,
        cloud_provider: str = "",
        charge_idle: bool = True,
    ) -> None:
        self._provider = coefficient_provider(cloud_provider)
        self._scope = scope
        self._proc_root = proc_root
        self._charge_idle = charge_idle
        self._info: CpuInfo = read_cpuinfo(proc_root)
        self._power: CpuPowerModel = cpu_power_model(self._info, self._provider)
        self._lock = threading.Lock()
        self._log = WarningLog()
        for note in scope.notes:
            self._log.add(note)
        self._rapl: RaplMeter | None = None
        if charge_idle:  # RAPL measures sockets, idle power included: only for who pays for it
            meter = RaplMeter(sysfs_root, include_dram=rapl_dram)
            for note in meter.notes:
                self._log.add(note)
            self._rapl = meter if meter.available else None
        self._use_rapl = False
        self._started = False
        self._closed = False
        self._final: Reading | None = None
        self._t0_s = self._t_last_s = 0.0
        self._cpu0_s: float | None = None
        self._cpu_last_s: float | None = None
        self._host_last: HostCpuTimes | None = None
        self._wrap_warned = False
        # The model's part of the reading: base_j (RAPL energy kept at a mid-run switch) plus the
        # model from model_t0_s / model_cpu0_s (the start, or RAPL's last good sample).
        self._model_base_j = 0.0
        self._model_base_bounds_j = (0.0, 0.0)
        self._model_t0_s = 0.0
        self._model_cpu0_s: float | None = None
        self._rapl_kept_s: float | None = None  # seconds of the run measured by RAPL, if it failed

    # ----------------------------------------------------------------- Sensor protocol

    def start(self) -> None:
        """Take the baselines (CPU time, RAPL counters); a RAPL fault selects the model."""
        with self._lock:
            now = time.monotonic()
            self._t0_s = self._t_last_s = self._model_t0_s = now
            self._cpu0_s = self._cpu_last_s = self._model_cpu0_s = self._scope_cpu_s()
            self._model_base_j = 0.0
            self._model_base_bounds_j = (0.0, 0.0)
            self._rapl_kept_s = None
            self._use_rapl = False
            if self._rapl is not None:
                try:
                    if self._scope.kind != "machine":
                        self._host_last = read_host_cpu_times(self._proc_root)
                        if self._cpu0_s is None:
                            raise RaplError("the scope's CPU time is unreadable")
                    self._rapl.start(now)
                    self._use_rapl = True
                except RaplUnreadable as exc:
                    self._log.add(str(exc))
                except (RaplError, OSError) as exc:
                    self._log.add(f"RAPL unusable ({exc}); CPU energy uses the CPU-time model")
            self._started = True
            self._closed = False
            self._final = None

    def sample(self) -> Reading:
        """Read the counters (catches RAPL wrap-around and applies each interval's share) and
        return the cumulative reading: the same as :meth:`read`."""
        return self.read()

    def read(self) -> Reading:
        """Cumulative CPU energy since ``start()`` (0 J before it). Units: J."""
        with self._lock:
            if self._final is not None:
                return self._final
            if not self._started:
                return Reading(0.0, self._model_method(), self._scope.vcpus, self._model_label())
            self._advance(time.monotonic())
            return self._reading()

    def close(self) -> None:
        """Freeze the reading (later ``read()`` calls return it). Idempotent."""
        with self._lock:
            if self._started and self._final is None:
                self._advance(time.monotonic())
                self._final = self._reading()
            self._closed = True

    def warnings(self) -> tuple[str, ...]:
        """What went wrong so far (one line each), for the record."""
        with self._lock:
            return self._log.messages()

    def measures_dram(self) -> bool:
        """Whether the CPU energy now includes DRAM (RAPL ``psys``, or ``dram`` domains), so RAM
        must not be modelled on top of it."""
        with self._lock:
            return self._use_rapl and self._rapl is not None and self._rapl.includes_dram

    @property
    def power_model(self) -> CpuPowerModel:
        """The per-vCPU figures of the model path (also used to split RAPL energy)."""
        return self._power

    # ----------------------------------------------------------------- internals

    def _scope_cpu_s(self) -> float | None:
        try:
            return self._scope.cpu_time_s()
        except Exception as exc:  # a scope source may fail in many ways; never raise here
            self._log.add(f"cannot read the {self._scope.kind} scope's CPU time ({exc})")
            return None

    def _advance(self, now: float) -> None:
        cpu = self._scope_cpu_s()
        if self._use_rapl and self._rapl is not None:
            try:
                # One share per reading of the allocation: vcpus, then vcpus_range's two ends.
                shares: tuple[float, ...] = (1.0, 1.0, 1.0)
                if self._scope.kind != "machine":
                    host = read_host_cpu_times(self._proc_root)
                    if cpu is None or self._cpu_last_s is None or self._host_last is None:
                        raise RaplError("the scope's CPU time is unreadable")
                    shares = tuple(
                        scope_share(
                            scope_busy_s=cpu - self._cpu_last_s,
                            host_busy_s=host.busy_s - self._host_last.busy_s,
                            wall_s=now - self._t_last_s,
                            scope_vcpus=vcpus,
                            host_cpus=host.cpus or self._scope.host_cpus,
                            min_w_per_vcpu=self._power.min_w_per_vcpu,
                            max_w_per_vcpu=self._power.max_w_per_vcpu,
                        )
                        for vcpus in (self._scope.vcpus, *self._scope.vcpus_range)
                    )
                    self._host_last = host
                self._rapl.sample(now, shares)
            except (RaplError, OSError, ValueError) as exc:
                # Keep what RAPL measured up to its last good sample (at _t_last_s); the model
                # continues from there.
                kept = self._rapl_reading()
                self._model_base_j = kept.energy_j
                self._model_base_bounds_j = kept.bounds_j()
                self._model_t0_s = self._t_last_s
                self._model_cpu0_s = self._cpu_last_s
                self._rapl_kept_s = self._t_last_s - self._t0_s
                self._use_rapl = False
                self._log.add(
                    f"RAPL reading failed during the run ({exc.__cause__ or exc}); CPU energy "
                    "from then on uses the CPU-time model (the RAPL energy measured before is "
                    "kept)"
                )
            else:
                if not self._wrap_warned and self._rapl.longest_interval_s > (
                    self._rapl.safe_interval_s
                ):
                    self._wrap_warned = True
                    self._log.add(
                        f"RAPL sampled after {self._rapl.longest_interval_s:.3g} s, longer than "
                        f"the {self._rapl.safe_interval_s:.3g} s in which a counter can wrap "
                        "twice; CPU energy may be undercounted (lower measure_interval_s)"
                    )
        if cpu is not None:
            if self._cpu0_s is None:
                self._cpu0_s = cpu  # first readable value becomes the baseline
            if self._model_cpu0_s is None:
                self._model_cpu0_s = cpu
            self._cpu_last_s = cpu
        self._t_last_s = now

    def _model_method(self) -> Method:
        return "tdp-model" if self._power.kind == "tdp" else _MODEL_METHODS[self._scope.kind]

    def _rapl_method(self) -> Method:
        return "rapl" if self._scope.kind == "machine" else "rapl-share"

    def _rapl_reading(self, utilization: float | None = None) -> Reading:
        """RAPL's energy for the scope so far (callers hold the lock and checked ``_rapl``)."""
        assert self._rapl is not None
        method = self._rapl_method()
        energy = self._rapl.energy_j()
        alternatives = (self._rapl.energy_j(1), self._rapl.energy_j(2))
        low_j, high_j = method_bounds_j(energy, method, alternatives)
        label = self._rapl.label()
        if self._rapl.includes_dram:
            label += ", DRAM included"
        how = ""
        if self._scope.kind != "machine":
            how = (
                f"; {self._scope.kind} share of host energy: idle by {self._scope.vcpus:g} of the "
                "host's vCPUs, load by CPU time"
            )
        return Reading(
            energy_j=energy,
            method=method,
            capacity=self._scope.vcpus,
            model=f"{self._cpu_name()} (rapl {label}{how})",
            utilization_percent=utilization,
            low_j=low_j,
            high_j=high_j,
        )

    def _cpu_name(self) -> str:
        return self._info.model_name or "unknown CPU"

    def _model_label(self) -> str:
        notes = ""
        if not self._charge_idle:
            notes += "; busy time only: idle power is the node owner's"
        if self._rapl_kept_s is not None and self._rapl is not None:
            notes += f"; rapl {self._rapl.label()} for the first {self._rapl_kept_s:.3g} s"
        return f"{self._cpu_name()} ({self._power.source}{notes})"

    def _busy_since(self, cpu0_s: float | None) -> float | None:
        """CPU time of the scope from ``cpu0_s`` to the last sample, or None if unreadable."""
        if cpu0_s is None or self._cpu_last_s is None:
            return None
        # Not capped at vcpus × wall: a container allocated by its CPU request may burst.
        return max(0.0, self._cpu_last_s - cpu0_s)

    def _reading(self) -> Reading:
        wall = max(0.0, self._t_last_s - self._t0_s)
        vcpus = self._scope.vcpus
        capacity_s = vcpus * wall
        measured_busy = self._busy_since(self._cpu0_s)
        if measured_busy is None:
            busy = DEFAULT_UTILIZATION * capacity_s
            self._log.add(
                f"the {self._scope.kind} scope's CPU time was never readable; assuming "
                f"{DEFAULT_UTILIZATION:.0%} utilisation"
            )
        else:
            busy = measured_busy
        utilization = min(100.0, 100.0 * busy / capacity_s) if capacity_s > 0 else None

        if (
            self._use_rapl
            and self._rapl is not None
            and wall >= FROZEN_RAPL_CHECK_S
            and busy > 0
            and self._rapl.raw_energy_j() == 0.0
        ):
            self._use_rapl = False
            self._log.add(
                f"RAPL counters did not move in {wall:.3g} s while the scope used {busy:.1f} "
                "CPU-s; the run's CPU energy uses the CPU-time model instead"
            )
        if self._use_rapl and self._rapl is not None:
            return self._rapl_reading(utilization)
        # The model's part: from the start, or from RAPL's last good sample after a mid-run failure.
        model_wall = max(0.0, self._t_last_s - self._model_t0_s)
        model_busy = self._busy_since(self._model_cpu0_s)
        if model_busy is None:
            model_busy = DEFAULT_UTILIZATION * vcpus * model_wall

        def model_j(allocated_vcpus: float) -> float:
            return linear_power_model_energy_j(
                allocated_vcpus=allocated_vcpus if self._charge_idle else 0.0,
                busy_cpu_s=model_busy,
                wall_s=model_wall,
                min_w_per_vcpu=self._power.min_w_per_vcpu,
                max_w_per_vcpu=self._power.max_w_per_vcpu,
            )

        method = self._model_method()
        model_low_j, model_high_j = method_bounds_j(
            model_j(vcpus), method, (model_j(v) for v in self._scope.vcpus_range)
        )
        base_low_j, base_high_j = self._model_base_bounds_j
        return Reading(
            energy_j=self._model_base_j + model_j(vcpus),
            method=method,
            capacity=vcpus,
            model=self._model_label(),
            utilization_percent=utilization,
            low_j=base_low_j + model_low_j,
            high_j=base_high_j + model_high_j,
        )
