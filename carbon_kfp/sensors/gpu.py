"""GPU energy from NVML: the total-energy counter where a GPU has one, 10 Hz power otherwise.

Which devices
    Those CUDA gives this process: the entries of ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-``
    UUIDs or unique prefixes of them, ``MIG-<uuid>`` and legacy ``MIG-GPU-<uuid>/<gi>/<ci>``
    instance UUIDs), or every device NVML sees when it is unset. As in CUDA, an empty value or a
    negative index hides everything after it, and an entry that names no device ends the list (with
    a warning here). A MIG instance is measured as its whole parent GPU, because NVML reports power
    and energy per physical GPU only; the parent is counted once however many of its instances are
    visible, and the reading says so (model ``"... (MIG parent)"`` and a warning: the energy
    includes the other instances on that GPU). Indices are NVML's (PCI bus) order; CUDA uses the
    same order only with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or identical GPUs, and a node with mixed
    models and neither gets a warning.

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
    the gap since its last good read is charged at the first power sample. The sensor's method is
    the weakest of its devices that still measure.

Which NVML (import discipline, DESIGN §1)
    ``pynvml`` (package ``nvidia-ml-py``) is imported only when an NVIDIA driver is present:
    ``/proc/driver/nvidia/version``, ``/dev/nvidiactl`` or WSL's ``libnvidia-ml.so.1`` exists
    (:data:`DRIVER_MARKERS`). Without one the sensor answers method ``"none"``, 0 J, capacity 0, and
    ``pynvml`` stays out of ``sys.modules``. A module with pynvml's API can stand in for it:

    - ``GpuSensor(nvml=obj)`` in-process (tests, tools);
    - ``CARBON_KFP_NVML_MODULE=package.module`` in the environment (subprocesses, exec wrappers):
      the module is imported by name instead of ``pynvml`` and the driver check is skipped.

Distributed runs: construct with ``measure=False`` on ranks that do not own the node (see
:func:`carbon_kfp.distributed.elect_node_owner`); such a sensor never imports or calls NVML.

Reentrancy: the state is guarded by an ``RLock``. A ``start``/``sample``/``read`` made from a
signal handler while another call is in progress on the same thread makes no NVML call and answers
from the last completed reads (an NVML read interrupted halfway would otherwise be counted twice);
a ``close`` made there stops measuring at once and leaves ``nvmlShutdown`` to the end of the
interrupted call, which may still be using NVML.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from carbon_kfp.energy import trapezoid_energy_j
from carbon_kfp.errors import ConfigError, get_logger, log_debug, warn_once
from carbon_kfp.sensors.base import CallDepth, Method, Reading

NVML_MODULE_ENV = "CARBON_KFP_NVML_MODULE"
"""Environment variable naming a module to use instead of ``pynvml`` (skips the driver check)."""

DRIVER_MARKERS: tuple[str, ...] = (
    "/proc/driver/nvidia/version",
    "/dev/nvidiactl",
    "/usr/lib/wsl/lib/libnvidia-ml.so.1",
)
"""Any of these existing means an NVIDIA driver is loaded, so importing ``pynvml`` is worth it."""

MIN_POWER_SAMPLE_HZ = 10.0
MAX_POWER_SAMPLE_HZ = 1000.0

GpuMethodChoice = Literal["auto", "nvml-power"]

_STRENGTH: dict[str, int] = {"nvml-energy": 2, "nvml-power": 1, "none": 0}


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded on this machine (cheap: a few ``stat`` calls)."""
    return any(Path(marker).exists() for marker in DRIVER_MARKERS)


def parse_visible_devices(spec: str | None) -> tuple[str, ...] | None:
    """The device entries of a ``CUDA_VISIBLE_DEVICES`` value, in order.

    Returns:
        ``None`` when ``spec`` is ``None`` (unset: every device is visible); otherwise the
        comma-separated entries, stripped, up to (not including) the first empty entry or negative
        index, as CUDA reads them (``""`` and ``"-1"`` hide all devices).
    """
    if spec is None:
        return None
    entries: list[str] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry or (_is_int(entry) and int(entry) < 0):
            break
        entries.append(entry)
    return tuple(entries)


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


@dataclass(frozen=True)
class GpuDeviceReading:
    """One physical GPU's share of a :class:`~carbon_kfp.sensors.base.Reading`.

    Attributes:
        uuid: the GPU's ``GPU-...`` UUID (the parent's for MIG instances).
        name: NVML's device name, e.g. ``"Tesla T4"``.
        method: how its energy is measured now (``nvml-energy``, ``nvml-power`` or ``none``).
        energy_j: energy since ``start()``. Units: J.
        power_samples: power readings integrated so far (0 in ``nvml-energy``).
        visible_as: the ``CUDA_VISIBLE_DEVICES`` entries (or NVML indices) that named it.
        mig_uuids: the MIG instances measured through it, if any.
    """

    uuid: str
    name: str
    method: Method
    energy_j: float
    power_samples: int
    visible_as: tuple[str, ...]
    mig_uuids: tuple[str, ...]


@dataclass
class _Device:
    """Mutable per-GPU state, guarded by the sensor's lock."""

    uuid: str
    name: str
    handle: Any
    visible_as: list[str] = field(default_factory=list)
    mig_uuids: list[str] = field(default_factory=list)
    method: Method = "none"
    energy_j: float = 0.0  # Units: J, since start()
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
        where = ",".join(self.visible_as)
        return f"GPU {where} ({self.name}, {self.uuid})"


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
        self._lock = threading.RLock()
        self._depth = CallDepth()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warnings: list[str] = []
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
        self._nvml = self._load_nvml(nvml)
        if self._nvml is None:
            return
        try:
            self._devices = self._discover(entries)
            for device in self._devices:
                self._choose_method(device, method)
        except Exception as exc:  # a broken NVML must not stop the user's training
            self._warn(f"NVML device discovery failed ({_describe(exc)}); GPU energy not measured")
            self._devices = []
        if not self._devices:
            self._shutdown_nvml()

    # -- Sensor protocol ---------------------------------------------------------------------

    def start(self) -> None:
        """Take the baseline: energy counts from now. Starts the power thread if needed."""
        with self._entered() as live:
            if live:
                self._baseline()

    def _baseline(self) -> None:
        self._started = True
        for device in self._devices:
            device.energy_j = 0.0
            device.counter_mj = device.counter_t_s = device.power_t_s = None
            device.power_samples = device.util_count = 0
            device.util_sum_percent = 0.0
            self._refresh(device, power=True)
        self._ensure_power_thread()

    def sample(self) -> None:
        """Read counters and utilisation (the tracker calls this every interval)."""
        with self._entered() as live:
            if live and self._started:
                for device in self._devices:
                    self._refresh(device, power=False)  # the power thread samples power
                    self._read_utilization(device)

    def read(self) -> Reading:
        """Cumulative energy since ``start()``, refreshed from NVML unless closed."""
        with self._entered() as live:
            if live and self._started:
                for device in self._devices:
                    self._refresh(device, power=True)
            return self._reading()

    @contextlib.contextmanager
    def _entered(self) -> Iterator[bool]:
        """Hold the lock; yield whether this call may change the measurement (the outermost
        call of this thread, sensor not closed). Shuts NVML down once the sensor is closed."""
        with self._lock:
            try:
                with self._depth as outermost:
                    yield outermost and not self._closed
            finally:
                self._shutdown_if_closed()

    def _refresh(self, device: _Device, *, power: bool) -> None:
        """Read the device's energy counter, or with ``power`` its power (by its method)."""
        if device.method == "nvml-energy":
            self._read_counter(device)
        elif power and device.method == "nvml-power":
            self._read_power(device)

    def close(self) -> None:
        """Stop the power thread and shut NVML down. Idempotent; later reads return the last one."""
        with self._lock, self._depth as outermost:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            thread = self._thread
            if not outermost:
                # From a signal handler during another call on this thread: that call holds the
                # lock (the power thread may be waiting for it) and may be inside NVML, so do not
                # join or shut down here; the interrupted call shuts NVML down when it ends.
                return
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._lock:
            self._shutdown_nvml()

    def warnings(self) -> tuple[str, ...]:
        """Downgrades and scope notes so far, one line each."""
        with self._lock:
            return tuple(self._warnings)

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
                    uuid=d.uuid,
                    name=d.name,
                    method=d.method,
                    energy_j=d.energy_j,
                    power_samples=d.power_samples,
                    visible_as=tuple(d.visible_as),
                    mig_uuids=tuple(d.mig_uuids),
                )
                for d in self._devices
            )

    # -- discovery ----------------------------------------------------------------------------

    def _load_nvml(self, injected: Any) -> Any:
        """The NVML module to use, initialised, or None (and no import) when there is none."""
        if injected is not None:
            nvml = injected
        elif os.environ.get(NVML_MODULE_ENV):
            name = os.environ[NVML_MODULE_ENV]
            try:
                nvml = importlib.import_module(name)
            except Exception as exc:
                self._warn(f"{NVML_MODULE_ENV}={name!r} cannot be imported ({_describe(exc)})")
                return None
        elif not nvidia_driver_present():
            log_debug(
                __name__,
                "no NVIDIA driver found (%s); GPU method 'none'",
                ", ".join(DRIVER_MARKERS),
            )
            return None
        else:
            try:
                nvml = importlib.import_module("pynvml")
            except Exception as exc:
                self._warn(
                    f"an NVIDIA driver is present but pynvml cannot be imported ({_describe(exc)});"
                    " install nvidia-ml-py to measure GPU energy"
                )
                return None
        try:
            nvml.nvmlInit()
        except Exception as exc:
            self._warn(f"nvmlInit failed ({_describe(exc)}); GPU energy not measured")
            return None
        return nvml

    def _discover(self, entries: tuple[str, ...] | None) -> list[_Device]:
        nvml = self._nvml
        by_uuid: dict[str, _Device] = {}

        def add(handle: Any, visible_as: str, mig_uuid: str | None) -> None:
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            device = by_uuid.get(uuid)
            if device is None:
                name = _text(nvml.nvmlDeviceGetName(handle))
                device = by_uuid[uuid] = _Device(uuid=uuid, name=name, handle=handle)
            if visible_as not in device.visible_as:
                device.visible_as.append(visible_as)
            if mig_uuid is not None and mig_uuid not in device.mig_uuids:
                device.mig_uuids.append(mig_uuid)

        if entries is None:
            for index in range(int(nvml.nvmlDeviceGetCount())):
                add(nvml.nvmlDeviceGetHandleByIndex(index), str(index), None)
            return list(by_uuid.values())

        for entry in entries:
            try:
                handle, mig_uuid = self._resolve(entry)
            except Exception as exc:
                self._warn(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} names no GPU that NVML sees "
                    f"({_describe(exc)}); as in CUDA, it and the entries after it are ignored"
                )
                break
            add(handle, entry, mig_uuid)
        if any(_is_int(e) for e in entries):
            self._check_index_order()
        for device in by_uuid.values():
            if device.mig_uuids:
                device.util_supported = False  # not answered for a MIG-enabled GPU
                self._warn(
                    f"{device.label}: MIG instance(s) {', '.join(device.mig_uuids)} measured as the"
                    " whole parent GPU; its energy includes any other MIG instances on it"
                )
        return list(by_uuid.values())

    def _resolve(self, entry: str) -> tuple[Any, str | None]:
        """NVML handle of the physical GPU an entry names, and the MIG UUID if it named one."""
        nvml = self._nvml
        if _is_int(entry):
            return nvml.nvmlDeviceGetHandleByIndex(int(entry)), None
        if entry.startswith("MIG-GPU-"):  # R450/R460 form: MIG-GPU-<gpu uuid>/<gi>/<ci>
            parent_uuid = "GPU-" + entry[len("MIG-GPU-") :].split("/", 1)[0]
            return self._handle_by_uuid(parent_uuid), entry
        if entry.startswith("MIG-"):
            mig_handle = nvml.nvmlDeviceGetHandleByUUID(entry)
            return nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig_handle), entry
        if entry.startswith("GPU-"):
            return self._handle_by_uuid(entry), None
        raise ValueError("not an index, a GPU- UUID or a MIG- UUID")

    def _handle_by_uuid(self, uuid: str) -> Any:
        """Handle by full UUID, or by a unique prefix as CUDA accepts."""
        nvml = self._nvml
        try:
            return nvml.nvmlDeviceGetHandleByUUID(uuid)
        except Exception:
            matches = []
            for index in range(int(nvml.nvmlDeviceGetCount())):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(uuid):
                    matches.append(handle)
            if len(matches) == 1:
                return matches[0]
            raise ValueError(f"{len(matches)} GPUs have a UUID starting {uuid!r}") from None

    def _check_index_order(self) -> None:
        if os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID":
            return
        nvml = self._nvml
        try:
            names = {
                _text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i)))
                for i in range(int(nvml.nvmlDeviceGetCount()))
            }
        except Exception as exc:  # only a sanity check
            log_debug(__name__, "cannot list GPU models (%s)", _describe(exc))
            return
        if len(names) > 1:
            self._warn(
                "CUDA_VISIBLE_DEVICES uses indices on a node with mixed GPU models "
                f"({', '.join(sorted(names))}); CUDA orders them fastest-first unless "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML by PCI bus, so the measured GPUs may differ"
            )

    def _choose_method(self, device: _Device, choice: GpuMethodChoice) -> None:
        device.method = "nvml-energy" if choice == "auto" else "nvml-power"
        if device.method == "nvml-energy":
            self._read_counter(device)  # probe; if unsupported it falls back to (and probes) power
        else:
            self._read_power(device)  # probe; downgrades to "none" if unsupported
        device.counter_mj = device.counter_t_s = device.power_t_s = None
        device.energy_j = 0.0
        device.power_samples = 0

    # -- measurement (callers hold the lock) ---------------------------------------------------

    def _read_counter(self, device: _Device) -> None:
        before_s = time.monotonic()
        try:
            counter_mj = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(device.handle))
        except Exception as exc:
            self._counter_failed(device, exc)
            return
        t_s = 0.5 * (before_s + time.monotonic())
        if device.counter_mj is not None:
            if counter_mj >= device.counter_mj:
                device.energy_j += (counter_mj - device.counter_mj) / 1000.0
            else:
                self._warn(
                    f"{device.label}: NVML energy counter went backwards ({device.counter_mj} -> "
                    f"{counter_mj} mJ; driver reloaded?); that interval is not counted"
                )
        device.counter_mj = counter_mj
        device.counter_t_s = t_s

    def _counter_failed(self, device: _Device, exc: Exception) -> None:
        self._warn(
            f"{device.label}: NVML total-energy counter unavailable ({_describe(exc)}); "
            f"sampling power at {self.power_sample_hz:g} Hz instead (nvml-power)"
        )
        device.method = "nvml-power"
        bridge_from_s = device.counter_t_s
        device.counter_mj = device.counter_t_s = None
        self._read_power(device)
        if bridge_from_s is not None and device.power_t_s is not None:
            # Charge the gap since the counter's last good read at the first power sample.
            device.energy_j += device.power_w * max(0.0, device.power_t_s - bridge_from_s)
        self._ensure_power_thread()

    def _read_power(self, device: _Device) -> None:
        before_s = time.monotonic()
        try:
            power_mw = self._nvml.nvmlDeviceGetPowerUsage(device.handle)
            power_w = float(power_mw) / 1000.0
            if not (math.isfinite(power_w) and power_w >= 0):
                raise ValueError(f"power reading {power_mw!r} mW")
        except Exception as exc:
            self._warn(
                f"{device.label}: NVML power reading unavailable ({_describe(exc)}); "
                "its energy from now on is not measured"
            )
            device.method = "none"
            return
        # Serialised by the lock, so sample times never go backwards.
        t_s = max(0.5 * (before_s + time.monotonic()), device.power_t_s or 0.0)
        if device.power_t_s is not None:
            device.energy_j += trapezoid_energy_j(
                (device.power_t_s, t_s), (device.power_w, power_w)
            )
        device.power_t_s = t_s
        device.power_w = power_w
        device.power_samples += 1

    def _read_utilization(self, device: _Device) -> None:
        if not device.util_supported:
            return
        try:
            percent = float(self._nvml.nvmlDeviceGetUtilizationRates(device.handle).gpu)
        except Exception as exc:  # optional: stop asking, no downgrade
            log_debug(__name__, "%s: utilisation unavailable (%s)", device.label, _describe(exc))
            device.util_supported = False
            return
        device.util_sum_percent += percent
        device.util_count += 1

    def _reading(self) -> Reading:
        devices = self._devices
        method = weakest_method([d.method for d in devices])
        utils = [d.util_sum_percent / d.util_count for d in devices if d.util_count]
        names = [d.name + (" (MIG parent)" if d.mig_uuids else "") for d in devices]
        return Reading(
            energy_j=sum(d.energy_j for d in devices),
            method=method,
            capacity=float(len(devices)),
            model=model_label(names),
            utilization_percent=sum(utils) / len(utils) if utils else None,
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

    def _shutdown_if_closed(self) -> None:
        """At the end of an outermost call: finish a ``close`` that a nested call deferred."""
        if self._closed and not self._depth.active:
            self._shutdown_nvml()

    def _shutdown_nvml(self) -> None:
        nvml, self._nvml = self._nvml, None
        if nvml is None:
            return
        try:
            nvml.nvmlShutdown()
        except Exception as exc:
            log_debug(__name__, "nvmlShutdown failed (%s)", _describe(exc))

    def _warn(self, message: str) -> None:
        if message in self._warnings:
            return
        self._warnings.append(message)
        try:
            warn_once(message)
        except Exception:  # e.g. warnings turned into errors: still never raise (DESIGN §5)
            log_debug(__name__, "warning suppressed: %s", message)


def _env_visible_devices() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
