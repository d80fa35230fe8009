"""GPU energy from NVML: the total-energy counter where a GPU has one, 10 Hz power otherwise.

Which devices, and which NVML: :mod:`carbon_kfp.sensors.nvml_devices` (``CUDA_VISIBLE_DEVICES``,
UUIDs, MIG instances measured as their parent GPU; ``pynvml`` imported only where a driver is
present, or a stand-in named by ``CARBON_KFP_NVML_MODULE``). Without NVML or without a visible
device the sensor answers method ``"none"``, 0 J, capacity 0. This module only measures.

Per device, strongest first
    ``nvml-energy``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load; Volta and
    newer), read at ``start``, ``sample`` and ``read``; the energy is the counter's increase.
    ``nvml-power``: ``nvmlDeviceGetPowerUsage`` (mW) sampled at ``power_sample_hz`` (>= 10 Hz) on
    one daemon thread per sensor, and on every ``start``/``read`` so a window's edges are sampled,
    integrated with the trapezoid rule (:func:`carbon_kfp.energy.trapezoid_energy_j`). On Ampere
    and newer (except GA100) NVML returns a 1 s moving average here, which shifts the curve by about
    half a second; over a step of minutes that error is well under 1 %.
    ``none``: nothing left to ask; energy stops accumulating.

    Any exception from an NVML call (``NVMLError_NotSupported``, a lost GPU, a missing symbol in an
    old driver) moves that device one step down, warns once through
    :func:`carbon_kfp.errors.warn_once` and is listed in :meth:`GpuSensor.warnings`; the sensor
    never raises after construction. A counter that fails mid-run hands over to power sampling, and
    the gap since its last good read is charged at the first power sample.

Degrading mid-run keeps what was measured: each device keeps the energy of each method that
measured it, with that method's error (``Reading.low_j``/``high_j``), so energy above zero never
gets a 0 % interval. The reading's method is the weakest method that contributed energy (or that
a device still measures with), e.g. ``nvml-power`` for a device that went counter -> power -> none.

Distributed runs: construct with ``measure=False`` on ranks that do not own the node (see
:func:`carbon_kfp.distributed.elect_node_owner`); such a sensor never imports or calls NVML.

Threads: the state is guarded by one lock, shared by the tracker's sampling thread, the power
thread and the caller; no call comes from a signal handler (:mod:`carbon_kfp.sigterm`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from carbon_kfp.energy import trapezoid_energy_j
from carbon_kfp.errors import ConfigError, get_logger, log_debug
from carbon_kfp.sensors.base import Method, Reading, WarningLog
from carbon_kfp.sensors.nvml_devices import (
    DRIVER_MARKERS,
    NVML_MODULE_ENV,
    VisibleGpu,
    describe,
    load_nvml,
    nvidia_driver_present,
    parse_visible_devices,
    visible_gpus,
)
from carbon_kfp.uncertainty import method_bounds_j

__all__ = [
    "DRIVER_MARKERS",
    "NVML_MODULE_ENV",
    "GpuDeviceReading",
    "GpuSensor",
    "model_label",
    "nvidia_driver_present",
    "parse_visible_devices",
    "weakest_method",
]

MIN_POWER_SAMPLE_HZ = 10.0
MAX_POWER_SAMPLE_HZ = 1000.0

GpuMethodChoice = Literal["auto", "nvml-power"]

_STRENGTH: dict[str, int] = {"nvml-energy": 2, "nvml-power": 1, "none": 0}


def weakest_method(methods: Sequence[Method]) -> Method:
    """The least precise of ``methods`` that measures anything, or ``"none"``."""
    measuring = [m for m in methods if m != "none"]
    if not measuring:
        return "none"
    return min(measuring, key=lambda m: _STRENGTH.get(m, 0))


def model_label(names: Sequence[str]) -> str:
    """``"Tesla T4"``, ``"2 x Tesla T4"``, ``"2 x Tesla T4 + NVIDIA L4"`` (first-seen order)."""
    counts = Counter(names)
    return " + ".join(name if n == 1 else f"{n} x {name}" for name, n in counts.items())


class GpuDeviceReading(NamedTuple):
    """One physical GPU's share of a :class:`~carbon_kfp.sensors.base.Reading`.

    Attributes:
        uuid: the GPU's ``GPU-...`` UUID (the parent's for MIG instances).
        name: NVML's device name, e.g. ``"Tesla T4"``.
        method: how its energy is measured now (``nvml-energy``, ``nvml-power`` or ``none``).
        energy_j: energy since ``start()``. Units: J.
        power_samples: power readings integrated so far (0 in ``nvml-energy``).
        visible_as: the ``CUDA_VISIBLE_DEVICES`` entries (or NVML indices) that named it.
        mig_uuids: the MIG instances measured through it, if any.
        energy_by_method_j: ``energy_j`` split by the method that measured each part. Units: J.
    """

    uuid: str
    name: str
    method: Method
    energy_j: float
    power_samples: int
    visible_as: tuple[str, ...]
    mig_uuids: tuple[str, ...]
    energy_by_method_j: dict[Method, float]


@dataclass
class _Device:
    """Mutable per-GPU state, guarded by the sensor's lock."""

    gpu: VisibleGpu
    method: Method = "none"
    energy_by_method_j: dict[Method, float] = field(default_factory=dict)  # since start(). J
    counter_mj: int | None = None  # last counter value. Units: mJ
    counter_t_s: float | None = None  # when it was read (time.monotonic)
    power_t_s: float | None = None  # last power sample time (time.monotonic)
    power_w: float = 0.0  # last power sample. Units: W
    power_samples: int = 0
    util_sum_percent: float = 0.0
    util_count: int = 0
    util_supported: bool = True

    @property
    def label(self) -> str:
        return self.gpu.label

    @property
    def energy_j(self) -> float:
        """Energy since ``start()``, all methods. Units: J."""
        return sum(self.energy_by_method_j.values())

    def add_energy(self, energy_j: float, method: Method) -> None:
        """Charge ``energy_j`` (J) measured by ``method``."""
        self.energy_by_method_j[method] = self.energy_by_method_j.get(method, 0.0) + energy_j

    def reset(self) -> None:
        """Forget every reading: energy counts from the next one."""
        self.energy_by_method_j = {}
        self.counter_mj = self.counter_t_s = self.power_t_s = None
        self.power_samples = 0


class GpuSensor:
    """Energy of the NVIDIA GPUs visible to this process, from NVML (see the module docstring).

    Args:
        visible_devices: a ``CUDA_VISIBLE_DEVICES``-style list; default: that environment variable.
        power_sample_hz: power sampling rate for devices without an energy counter. Units: Hz,
            10 to 1000.
        measure: ``False`` on ranks that do not own the node: method ``"none"``, NVML untouched.
        method: ``"auto"`` (counter where supported) or ``"nvml-power"`` to sample power even where
            a counter exists, e.g. to cross-check the two (``benchmarks/gpu_check.py``).
        nvml: a module or object with pynvml's API to use instead of ``pynvml`` (tests).

    Raises:
        ConfigError: ``power_sample_hz`` outside 10-1000 Hz or an unknown ``method``. Nothing else,
            and nothing at all after construction.
    """

    name = "gpu"

    def __init__(
        self,
        *,
        visible_devices: str | None = None,
        power_sample_hz: float = 10.0,
        measure: bool = True,
        method: GpuMethodChoice = "auto",
        nvml: Any = None,
    ) -> None:
        if not (
            math.isfinite(power_sample_hz)
            and MIN_POWER_SAMPLE_HZ <= power_sample_hz <= MAX_POWER_SAMPLE_HZ
        ):
            raise ConfigError(
                f"power_sample_hz={power_sample_hz!r}; expected {MIN_POWER_SAMPLE_HZ:g} to "
                f"{MAX_POWER_SAMPLE_HZ:g} Hz (DESIGN §2: GPU power is sampled at >= 10 Hz)"
            )
        if method not in ("auto", "nvml-power"):
            raise ConfigError(f"method={method!r}; expected 'auto' or 'nvml-power'")
        self.power_sample_hz = float(power_sample_hz)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = WarningLog()
        self._devices: list[_Device] = []
        self._nvml: Any = None
        self._started = False
        self._closed = False
        if not measure:
            return
        spec = visible_devices if visible_devices is not None else _env_visible_devices()
        entries = parse_visible_devices(spec)
        if entries == ():
            return  # CUDA sees no device: nothing to import
        self._nvml = load_nvml(nvml, self._log.add)
        if self._nvml is None:
            return
        try:
            self._devices = [
                _Device(gpu) for gpu in visible_gpus(self._nvml, entries, self._log.add)
            ]
            for device in self._devices:
                if device.gpu.mig_uuids:
                    device.util_supported = False  # not answered for a MIG-enabled GPU
                self._choose_method(device, method)
        except Exception as exc:  # a broken NVML must not stop the user's training
            self._log.add(
                f"NVML device discovery failed ({describe(exc)}); GPU energy not measured"
            )
            self._devices = []
        if not self._devices:
            self._shutdown_nvml()

    # -- Sensor protocol ---------------------------------------------------------------------

    def start(self) -> None:
        """Take the baseline: energy counts from now. Starts the power thread if needed."""
        with self._lock:
            if not self._closed:
                self._baseline()

    def _baseline(self) -> None:
        self._started = True
        for device in self._devices:
            device.reset()
            device.util_count = 0
            device.util_sum_percent = 0.0
            self._refresh(device, power=True)
        self._ensure_power_thread()

    def sample(self) -> Reading:
        """Read counters and utilisation (the tracker calls this every interval) and return the
        cumulative reading; power is left to the power thread."""
        with self._lock:
            if self._started and not self._closed:
                for device in self._devices:
                    self._refresh(device, power=False)
                    self._read_utilization(device)
            return self._reading()

    def read(self) -> Reading:
        """Cumulative energy since ``start()``, refreshed from NVML unless closed."""
        with self._lock:
            if self._started and not self._closed:
                for device in self._devices:
                    self._refresh(device, power=True)
            return self._reading()

    def _refresh(self, device: _Device, *, power: bool) -> None:
        """Read the device's energy counter, or with ``power`` its power (by its method)."""
        if device.method == "nvml-energy":
            self._read_counter(device)
        elif power and device.method == "nvml-power":
            self._read_power(device)

    def close(self) -> None:
        """Stop the power thread and shut NVML down. Idempotent; later reads return the last one."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._lock:
            self._shutdown_nvml()

    def warnings(self) -> tuple[str, ...]:
        """Downgrades and scope notes so far, one line each."""
        with self._lock:
            return self._log.messages()

    # -- more than the protocol ---------------------------------------------------------------

    @property
    def power_sample_interval_s(self) -> float:
        """Period of the power thread for devices without an energy counter (0.1 s or less,
        DESIGN §2). Units: s."""
        return 1.0 / self.power_sample_hz

    def device_readings(self) -> tuple[GpuDeviceReading, ...]:
        """Per-GPU energy and method as of the last ``start``/``sample``/``read`` (no NVML call)."""
        with self._lock:
            return tuple(
                GpuDeviceReading(
                    uuid=d.gpu.uuid,
                    name=d.gpu.name,
                    method=d.method,
                    energy_j=d.energy_j,
                    power_samples=d.power_samples,
                    visible_as=tuple(d.gpu.visible_as),
                    mig_uuids=tuple(d.gpu.mig_uuids),
                    energy_by_method_j=dict(d.energy_by_method_j),
                )
                for d in self._devices
            )

    # -- discovery ----------------------------------------------------------------------------

    def _choose_method(self, device: _Device, choice: GpuMethodChoice) -> None:
        device.method = "nvml-energy" if choice == "auto" else "nvml-power"
        if device.method == "nvml-energy":
            self._read_counter(device)  # probe; if unsupported it falls back to (and probes) power
        else:
            self._read_power(device)  # probe; downgrades to "none" if unsupported
        device.reset()

    # -- measurement (callers hold the lock) ---------------------------------------------------

    def _read_counter(self, device: _Device) -> None:
        before_s = time.monotonic()
        try:
            counter_mj = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(device.gpu.handle))
        except Exception as exc:
            self._counter_failed(device, exc)
            return
        t_s = 0.5 * (before_s + time.monotonic())
        if device.counter_mj is not None:
            if counter_mj >= device.counter_mj:
                device.add_energy((counter_mj - device.counter_mj) / 1000.0, "nvml-energy")
            else:
                self._log.add(
                    f"{device.label}: NVML energy counter went backwards ({device.counter_mj} -> "
                    f"{counter_mj} mJ; driver reloaded?); that interval is not counted"
                )
        device.counter_mj = counter_mj
        device.counter_t_s = t_s

    def _counter_failed(self, device: _Device, exc: Exception) -> None:
        self._log.add(
            f"{device.label}: NVML total-energy counter unavailable ({describe(exc)}); "
            f"sampling power at {self.power_sample_hz:g} Hz instead (nvml-power)"
        )
        device.method = "nvml-power"
        bridge_from_s = device.counter_t_s
        device.counter_mj = device.counter_t_s = None
        self._read_power(device)
        if bridge_from_s is not None and device.power_t_s is not None:
            # Charge the gap since the counter's last good read at the first power sample.
            gap_s = max(0.0, device.power_t_s - bridge_from_s)
            device.add_energy(device.power_w * gap_s, "nvml-power")
        self._ensure_power_thread()

    def _read_power(self, device: _Device) -> None:
        before_s = time.monotonic()
        try:
            power_mw = self._nvml.nvmlDeviceGetPowerUsage(device.gpu.handle)
            power_w = float(power_mw) / 1000.0
            if not (math.isfinite(power_w) and power_w >= 0):
                raise ValueError(f"power reading {power_mw!r} mW")
        except Exception as exc:
            self._log.add(
                f"{device.label}: NVML power reading unavailable ({describe(exc)}); its energy "
                "from now on is not measured (the energy measured before is kept, with the error "
                "of the method that measured it)"
            )
            device.method = "none"
            return
        # Serialised by the lock, so sample times never go backwards.
        t_s = max(0.5 * (before_s + time.monotonic()), device.power_t_s or 0.0)
        if device.power_t_s is not None:
            device.add_energy(
                trapezoid_energy_j((device.power_t_s, t_s), (device.power_w, power_w)),
                "nvml-power",
            )
        device.power_t_s = t_s
        device.power_w = power_w
        device.power_samples += 1

    def _read_utilization(self, device: _Device) -> None:
        if not device.util_supported:
            return
        try:
            percent = float(self._nvml.nvmlDeviceGetUtilizationRates(device.gpu.handle).gpu)
        except Exception as exc:  # optional: stop asking, no downgrade
            log_debug(__name__, "%s: utilisation unavailable (%s)", device.label, describe(exc))
            device.util_supported = False
            return
        device.util_sum_percent += percent
        device.util_count += 1

    def _reading(self) -> Reading:
        devices = self._devices
        # Each part keeps its method's error; the label is the weakest method that measured any
        # energy or still measures (a device that went counter -> power -> none: nvml-power).
        parts = [(e, m) for d in devices for m, e in d.energy_by_method_j.items() if e > 0]
        method = weakest_method([m for _, m in parts] + [d.method for d in devices])
        bounds = [method_bounds_j(energy_j, part_method) for energy_j, part_method in parts]
        utils = [d.util_sum_percent / d.util_count for d in devices if d.util_count]
        names = [d.gpu.name + (" (MIG parent)" if d.gpu.mig_uuids else "") for d in devices]
        return Reading(
            energy_j=sum(energy_j for energy_j, _ in parts),
            method=method,
            capacity=float(len(devices)),
            model=model_label(names),
            utilization_percent=sum(utils) / len(utils) if utils else None,
            low_j=sum(low_j for low_j, _ in bounds),
            high_j=sum(high_j for _, high_j in bounds),
        )

    # -- the power thread ---------------------------------------------------------------------

    def _ensure_power_thread(self) -> None:
        if not self._started or self._closed:
            return
        if not any(d.method == "nvml-power" for d in self._devices):
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(
            target=self._power_loop, name="carbon-kfp-gpu-power", daemon=True
        )
        self._thread.start()

    def _power_loop(self) -> None:
        period_s = self.power_sample_interval_s
        due_s = time.monotonic() + period_s
        while not self._stop.wait(max(0.0, due_s - time.monotonic())):
            with self._lock:
                if self._closed:
                    return
                power_devices = [d for d in self._devices if d.method == "nvml-power"]
                if not power_devices:
                    self._thread = None
                    return
                for device in power_devices:
                    try:
                        self._read_power(device)
                    except Exception:  # never let the thread die silently mid-run
                        get_logger(__name__).exception("%s: power sample failed", device.label)
            # Keep the cadence; after a stall resume from now rather than bursting to catch up.
            due_s = max(due_s + period_s, time.monotonic())

    # -- small helpers ------------------------------------------------------------------------

    def _shutdown_nvml(self) -> None:
        nvml, self._nvml = self._nvml, None
        if nvml is None:
            return
        try:
            nvml.nvmlShutdown()
        except Exception as exc:
            log_debug(__name__, "nvmlShutdown failed (%s)", describe(exc))


def _env_visible_devices() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")
