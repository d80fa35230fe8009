"""The one question every sensor answers: how many joules since ``start()``, and how do we know.

A sensor never raises to the tracker once started: a fault downgrades its method, warns once and
is recorded (DESIGN §1, §5). Construction may raise ``ValueError`` for bad configuration only.

Sensors are called from the tracker's sampling thread and from the caller's thread, never from a
signal handler (the tracker's SIGTERM handler only raises, :mod:`carbon_kfp.sigterm`), so a plain
``threading.Lock`` per sensor is enough.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

from carbon_kfp.errors import warn_once
from carbon_kfp.uncertainty import method_bounds_j

Method = Literal[
    "rapl",  # RAPL powercap counters (CPU package / dram / psys) of the whole machine
    "rapl-share",  # a container's or process's share of RAPL energy (idle by allocation, load
    # by CPU time)
    "nvml-energy",  # NVML total-energy counter (Volta and newer)
    "nvml-power",  # NVML power sampled at >= 10 Hz, trapezoid-integrated
    "cgroup-model",  # cgroup CPU time x per-vCPU watts (container scope)
    "process-model",  # process-tree CPU time x per-vCPU watts
    "machine-model",  # whole-machine CPU time x per-vCPU watts
    "tdp-model",  # CPU time x TDP per thread of a known CPU model
    "constant",  # a documented constant (e.g. RAM W per GiB x allocated GiB)
    "none",  # nothing to measure (e.g. no GPU)
]

METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


class Reading(NamedTuple):
    """Cumulative energy of one device class since the sensor's ``start()``.

    Attributes:
        energy_j: energy used since ``start()``. Units: J. Never negative, never NaN.
        method: how ``energy_j`` was obtained (see :data:`Method`).
        capacity: what the scope is allocated: vCPUs for ``cpu``, GiB for ``ram``, devices for
            ``gpu``. Units: per device class, as named.
        model: human-readable device model ("Intel(R) Xeon(R) CPU @ 2.20GHz", "Tesla T4"), or "".
        utilization_percent: mean utilisation of ``capacity`` since ``start()``, 0-100, if known.
        used: amount in use at the last sample (GiB for ``ram``), if known.
        low_j, high_j: cumulative bounds of ``energy_j`` since ``start()`` where the method's
            relative error alone would be wrong (mixed methods, an allocation read two ways);
            ``None`` for ``energy_j × (1 ∓ error of method)``. Units: J. See :meth:`bounds_j`.
    """

    energy_j: float
    method: Method
    capacity: float = 0.0
    model: str = ""
    utilization_percent: float | None = None
    used: float | None = None
    low_j: float | None = None
    high_j: float | None = None

    def bounds_j(self) -> tuple[float, float]:
        """Cumulative ``(low_j, high_j)`` of ``energy_j`` (see
        :mod:`carbon_kfp.uncertainty`). Units: J."""
        low_j, high_j = method_bounds_j(self.energy_j, self.method)
        return (
            low_j if self.low_j is None else self.low_j,
            high_j if self.high_j is None else self.high_j,
        )


class Sensor(Protocol):
    """A device-class energy meter driven by the tracker's sampling thread.

    ``start`` takes the baseline; ``sample`` is called every ``measure_interval_s`` (it integrates
    power or catches counter wrap-around) and returns the cumulative :class:`Reading` it reached,
    so a tick reads each device once; ``read`` returns the cumulative reading and is cheap enough
    to call at any time; ``close`` releases handles and is idempotent. None of them
    raise after construction.
    """

    name: str  # "cpu", "gpu" or "ram"

    def start(self) -> None: ...

    def sample(self) -> Reading: ...

    def read(self) -> Reading: ...

    def close(self) -> None: ...

    def warnings(self) -> tuple[str, ...]:
        """What went wrong so far (one line each), for the record."""
        ...


class NullSensor:
    """A device class that another process measures (implements ``Sensor``).

    E.g. a rank that does not own its node inside a container whose cgroup the node owner
    already measures: counting the container again here would count it twice. Every reading is
    ``Reading(0.0, "none")`` and it has no warnings of its own: the tracker that chose it says
    why in the record.

    Args:
        name: the device class it stands for: ``"cpu"``, ``"gpu"`` or ``"ram"``.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def start(self) -> None:
        """Nothing to baseline."""

    def sample(self) -> Reading:
        """Nothing to sample: the same as :meth:`read`."""
        return self.read()

    def read(self) -> Reading:
        """Always 0 J, method ``"none"``."""
        return Reading(0.0, "none")

    def close(self) -> None:
        """Nothing to release."""

    def warnings(self) -> tuple[str, ...]:
        """Nothing: the tracker explains the stand-in."""
        return ()


class WarningLog:
    """A sensor's warnings for the record: each message kept once, in order, and warned once
    through :func:`carbon_kfp.errors.warn_once` (which never raises). Callers hold the sensor's
    lock; :meth:`messages` is what ``Sensor.warnings()`` returns."""

    __slots__ = ("_messages",)

    def __init__(self) -> None:
        self._messages: list[str] = []

    def add(self, message: str) -> None:
        """Keep ``message`` (once) and warn it (once per process)."""
        if message not in self._messages:
            self._messages.append(message)
        warn_once(message)

    def messages(self) -> tuple[str, ...]:
        """Every message so far, in the order first added."""
        return tuple(self._messages)
