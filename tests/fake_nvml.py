"""A scripted stand-in for ``pynvml``: GPUs whose power follows a known curve in real time.

Each :class:`FakeGpu` draws power along a piecewise-linear curve of ``(t_s, power_w)`` points,
with ``t_s`` measured on ``time.monotonic()`` from the fake's ``epoch_s`` (constant before the
first point and after the last). Its total-energy counter is the exact integral of that curve
(plus an offset, as a real counter counts from driver load), in whole mJ, so a test can compare a
sensor's answer with :meth:`FakeNvml.energy_j` over the times the sensor actually called NVML
(every call is logged in :attr:`FakeNvml.calls`).

Two ways in:

- in-process: ``fake = FakeNvml([FakeGpu(...)])`` and ``GpuSensor(nvml=fake)``;
- in a subprocess: ``CARBON_KFP_NVML_MODULE=tests.fake_nvml`` and ``FAKE_NVML_SCRIPT`` set to
  :func:`script_json`; the module-level ``nvml*`` functions then act on :data:`DEFAULT`, built from
  that script at import. ``CLOCK_MONOTONIC`` is system-wide on Linux, so a parent and its children
  agree on the curve's time axis.

Only the part of the pynvml API that ``carbon_kfp.sensors.gpu`` uses is modelled. Handles are new
objects on every lookup and compare by identity only, like pynvml's ctypes pointers, so code under
test must de-duplicate devices by UUID.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_GPU_IS_LOST = 15

_ERROR_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
}


class NVMLError(Exception):
    """Same shape as pynvml's: the NVML return code is in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_NotSupported(NVMLError):  # pynvml's name
    def __init__(self, value: int = NVML_ERROR_NOT_SUPPORTED) -> None:
        super().__init__(value)


class NVMLError_NotFound(NVMLError):  # pynvml's name
    def __init__(self, value: int = NVML_ERROR_NOT_FOUND) -> None:
        super().__init__(value)


class NVMLError_GpuIsLost(NVMLError):  # pynvml's name
    def __init__(self, value: int = NVML_ERROR_GPU_IS_LOST) -> None:
        super().__init__(value)


_ERROR_CLASSES: dict[str, Callable[[], NVMLError]] = {
    "NotSupported": NVMLError_NotSupported,
    "NotFound": NVMLError_NotFound,
    "GpuIsLost": NVMLError_GpuIsLost,
}


@dataclass(frozen=True)
class PowerCurve:
    """Piecewise-linear power over time: ``points`` are ``(t_s, power_w)``, ``t_s`` increasing."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a power curve needs at least one point")
        times = [t for t, _ in self.points]
        if times != sorted(times):
            raise ValueError(f"curve times must increase: {times}")

    @classmethod
    def constant(cls, power_w: float) -> PowerCurve:
        return cls(((0.0, power_w),))

    def power_w(self, t_s: float) -> float:
        """Power at ``t_s`` seconds after the epoch. Units: W."""
        pts = self.points
        if t_s <= pts[0][0]:
            return pts[0][1]
        for (t0, p0), (t1, p1) in itertools.pairwise(pts):
            if t_s <= t1:
                return p0 + (p1 - p0) * (t_s - t0) / (t1 - t0) if t1 > t0 else p1
        return pts[-1][1]

    def cumulative_j(self, t_s: float) -> float:
        """Exact energy from the first point's time to ``t_s`` (negative before it). Units: J."""
        pts = self.points
        start = pts[0][0]
        if t_s <= start:
            return pts[0][1] * (t_s - start)
        energy_j = 0.0
        for (t0, p0), (t1, _) in itertools.pairwise(pts):
            if t_s <= t0:
                break
            end = min(t_s, t1)
            energy_j += 0.5 * (p0 + self.power_w(end)) * (end - t0)
        if t_s > pts[-1][0]:
            energy_j += pts[-1][1] * (t_s - pts[-1][0])
        return energy_j

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Exact energy between two times after the epoch. Units: J."""
        return self.cumulative_j(t1_s) - self.cumulative_j(t0_s)


@dataclass
class FakeGpu:
    """One scripted GPU.

    Attributes:
        uuid: ``GPU-...`` UUID.
        name: what ``nvmlDeviceGetName`` answers.
        curve: its power draw over time.
        energy_counter: whether ``nvmlDeviceGetTotalEnergyConsumption`` is supported (Volta+).
        counter_offset_mj: counter value at the epoch (energy since driver load). Units: mJ.
        fail: NVML function name -> the 1-based call number from which that call raises;
            the error is ``fail_with`` (a key of the module's error classes).
        fail_with: "NotSupported", "NotFound" or "GpuIsLost".
        mig: UUIDs of MIG devices carved from this GPU (``MIG-...``).
        utilization_percent: what ``nvmlDeviceGetUtilizationRates().gpu`` answers; None raises
            NotSupported (as a MIG-enabled parent does).
    """

    uuid: str
    name: str = "Tesla T4"
    curve: PowerCurve = field(default_factory=lambda: PowerCurve.constant(70.0))
    energy_counter: bool = True
    counter_offset_mj: int = 987_654_321
    fail: dict[str, int] = field(default_factory=dict)
    fail_with: str = "NotSupported"
    mig: tuple[str, ...] = ()
    utilization_percent: int | None = 50


@dataclass(frozen=True)
class Call:
    """One logged NVML call: its name, when (``time.monotonic()``), and the GPU it was about."""

    name: str
    t_s: float
    uuid: str


class _Handle:
    """Opaque, identity-compared, like a ctypes ``c_nvmlDevice_t``."""

    __slots__ = ("gpu", "mig_uuid")

    def __init__(self, gpu: FakeGpu, mig_uuid: str | None = None) -> None:
        self.gpu = gpu
        self.mig_uuid = mig_uuid


@dataclass(frozen=True)
class Utilization:
    gpu: int
    memory: int


class FakeNvml:
    """The pynvml-shaped object. Pass it as ``GpuSensor(nvml=...)``."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED

    def __init__(self, gpus: Sequence[FakeGpu], *, epoch_s: float | None = None) -> None:
        self.gpus = list(gpus)
        self.epoch_s = time.monotonic() if epoch_s is None else epoch_s
        self.calls: list[Call] = []
        self.init_count = 0
        self.shutdown_count = 0
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    # -- test helpers ---------------------------------------------------------------------

    def gpu(self, uuid: str) -> FakeGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise KeyError(uuid)

    def energy_j(self, uuid: str, t0_s: float, t1_s: float) -> float:
        """Exact energy of one GPU between two ``time.monotonic()`` instants. Units: J."""
        return self.gpu(uuid).curve.energy_j(t0_s - self.epoch_s, t1_s - self.epoch_s)

    def calls_named(self, name: str, uuid: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.name == name and uuid in (None, c.uuid)]

    @property
    def initialized(self) -> bool:
        return self.init_count > self.shutdown_count

    # -- the modelled pynvml API ------------------------------------------------------------

    def _enter(self, name: str, gpu: FakeGpu | None) -> float:
        """Log the call, enforce init, raise scripted failures; return the call's time."""
        t_s = time.monotonic()
        uuid = gpu.uuid if gpu else ""
        with self._lock:
            self.calls.append(Call(name, t_s, uuid))
            if not self.initialized:
                raise NVMLError(NVML_ERROR_UNINITIALIZED)
            if gpu is None:
                return t_s
            n = self._counts[(name, uuid)] = self._counts.get((name, uuid), 0) + 1
        fail_from = gpu.fail.get(name)
        if fail_from is not None and n >= fail_from:
            raise _ERROR_CLASSES[gpu.fail_with]()
        return t_s

    def nvmlInit(self) -> None:
        with self._lock:
            self.init_count += 1
            self.calls.append(Call("nvmlInit", time.monotonic(), ""))

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown", None)
        with self._lock:
            self.shutdown_count += 1

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount", None)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex", None)
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(self.gpus[index])

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._enter("nvmlDeviceGetHandleByUUID", None)
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for gpu in self.gpus:
            if gpu.uuid == text:
                return _Handle(gpu)
            if text in gpu.mig:
                return _Handle(gpu, mig_uuid=text)
        raise NVMLError_NotFound()

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        self._enter("nvmlDeviceGetUUID", handle.gpu)
        return handle.mig_uuid or handle.gpu.uuid

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        self._enter("nvmlDeviceGetName", handle.gpu)
        return handle.gpu.name

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceIsMigDeviceHandle", handle.gpu)
        return int(handle.mig_uuid is not None)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: _Handle) -> _Handle:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle.gpu)
        if handle.mig_uuid is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(handle.gpu)

    def _whole_gpu(self, handle: _Handle, name: str) -> FakeGpu:
        gpu = handle.gpu
        self._enter(name, gpu)
        if handle.mig_uuid is not None:  # device-level queries are not answered for MIG slices
            raise NVMLError_NotSupported()
        return gpu

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        """Energy since driver load. Units: mJ (whole)."""
        gpu = handle.gpu
        t_s = self._enter("nvmlDeviceGetTotalEnergyConsumption", gpu)
        if handle.mig_uuid is not None or not gpu.energy_counter:
            raise NVMLError_NotSupported()
        energy_j = gpu.curve.cumulative_j(t_s - self.epoch_s)
        return gpu.counter_offset_mj + math.floor(energy_j * 1000.0)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        """Instantaneous power. Units: mW."""
        gpu = handle.gpu
        t_s = self._enter("nvmlDeviceGetPowerUsage", gpu)
        if handle.mig_uuid is not None:
            raise NVMLError_NotSupported()
        return round(gpu.curve.power_w(t_s - self.epoch_s) * 1000.0)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> Utilization:
        gpu = self._whole_gpu(handle, "nvmlDeviceGetUtilizationRates")
        if gpu.utilization_percent is None:
            raise NVMLError_NotSupported()
        return Utilization(gpu=gpu.utilization_percent, memory=10)


# -- module-level API for subprocesses (CARBON_KFP_NVML_MODULE=tests.fake_nvml) -------------

SCRIPT_ENV = "FAKE_NVML_SCRIPT"


def script_json(gpus: Sequence[FakeGpu], epoch_s: float) -> str:
    """Serialise a fake node for :data:`SCRIPT_ENV` in a child process's environment."""
    return json.dumps(
        {
            "epoch_s": epoch_s,
            "gpus": [
                {
                    "uuid": g.uuid,
                    "name": g.name,
                    "curve": [list(p) for p in g.curve.points],
                    "energy_counter": g.energy_counter,
                    "counter_offset_mj": g.counter_offset_mj,
                    "fail": g.fail,
                    "fail_with": g.fail_with,
                    "mig": list(g.mig),
                    "utilization_percent": g.utilization_percent,
                }
                for g in gpus
            ],
        }
    )


def from_script(text: str) -> FakeNvml:
    data: dict[str, Any] = json.loads(text)
    gpus = [
        FakeGpu(
            uuid=g["uuid"],
            name=g["name"],
            curve=PowerCurve(tuple((float(t), float(p)) for t, p in g["curve"])),
            energy_counter=g["energy_counter"],
            counter_offset_mj=g["counter_offset_mj"],
            fail=dict(g["fail"]),
            fail_with=g["fail_with"],
            mig=tuple(g["mig"]),
            utilization_percent=g["utilization_percent"],
        )
        for g in data["gpus"]
    ]
    return FakeNvml(gpus, epoch_s=float(data["epoch_s"]))


DEFAULT: FakeNvml = (
    from_script(os.environ[SCRIPT_ENV])
    if os.environ.get(SCRIPT_ENV)
    else FakeNvml([FakeGpu(uuid="GPU-00000000-0000-0000-0000-000000000000")])
)

_API = [name for name in dir(FakeNvml) if name.startswith("nvml")]
for _name in _API:
    globals()[_name] = getattr(DEFAULT, _name)
