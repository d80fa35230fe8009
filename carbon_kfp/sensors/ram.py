"""RAM energy of a scope: memory allocated (GiB) × a documented W/GiB constant, over time.

Coefficient: 0.3725 W per GB, Green Algorithms' ``memoryPower`` (``green-algorithms/
referenceValues.csv``, CC BY 4.0), read from the packaged table. Cloud Carbon Footprint uses
0.392 W/GB (0.000392 kWh per GB-hour, the mean of Crucial ~0.375 and Micron ~0.4083 W/GB); the two
differ by 5 %. Both are per GB of installed DRAM, i.e. per GiB, the unit ``Scope.memory_gib`` uses.

What is charged is the scope's allocation (DESIGN §2): the cgroup memory limit in a container,
the process tree's RSS for a process (averaged over time by the trapezoid rule over samples), the
host total only for the machine scope. There is no floor: 100 MB draws 0.037 W, not CodeCarbon's
minimum of two 5 W DIMMs.

Not on top of a measurement that already holds DRAM: while ``dram_measured()`` (the CPU sensor's
:meth:`~carbon_kfp.sensors.cpu.CpuSensor.measures_dram`: RAPL ``psys``, or ``dram`` domains) is
true, no RAM energy is modelled; the reading says so (method ``"none"`` when nothing was
modelled at all) and a warning goes into the record.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from carbon_kfp import tables
from carbon_kfp.energy import trapezoid_energy_j
from carbon_kfp.sensors.base import Reading, WarningLog
from carbon_kfp.sensors.scope import Scope

REFERENCE_VALUES = "green-algorithms/referenceValues.csv"


@functools.lru_cache(maxsize=1)
def memory_w_per_gib() -> float:
    """Green Algorithms' memory power coefficient. Units: W per GiB (its "GB" of DRAM).

    Raises:
        DataFileError: the packaged table is missing, malformed, or has no ``memoryPower`` row.
    """
    # The file has a units line before the header (PROVENANCE §4).
    for number, row in enumerate(tables.read_rows(REFERENCE_VALUES, skip_lines=1), start=3):
        if row.get("variable") == "memoryPower":
            where = f"carbon_kfp/data/{REFERENCE_VALUES} line {number}"
            value = tables.parse_float(row.get("value", ""), where=where)
            if value <= 0:
                raise tables.DataFileError(f"{where}: memoryPower {value} must be > 0")
            return value
    raise tables.DataFileError(f"carbon_kfp/data/{REFERENCE_VALUES} has no memoryPower row")


class RamSensor:
    """RAM energy of a :class:`~carbon_kfp.sensors.scope.Scope` (implements ``Sensor``).

    ``Reading``: ``energy_j`` in J; ``method`` ``"constant"``; ``capacity`` the time-averaged
    ``scope.memory_gib`` (GiB; constant for a limit or host total); ``used`` the memory in use at
    the last sample (GiB), when readable.

    Args:
        scope: what to charge for.
        dram_measured: asked at every sample; while it returns true the interval's RAM energy is
            already in another reading (the CPU's RAPL ``psys`` or ``dram``) and is not modelled.

    Raises:
        DataFileError: the packaged coefficient table is broken (construction only).

    Thread-safe: the tracker's sampling thread and the caller share it.
    """

    name = "ram"

    def __init__(self, scope: Scope, *, dram_measured: Callable[[], bool] | None = None) -> None:
        self._scope = scope
        self._dram_measured = dram_measured
        self._in_cpu = False  # whether the last interval's RAM energy was the CPU reading's
        self._w_per_gib = memory_w_per_gib()
        self._lock = threading.Lock()
        self._log = WarningLog()
        self._started = False
        self._final: Reading | None = None
        self._t0_s = self._t_last_s = 0.0
        self._gib_last = 0.0
        self._energy_j = 0.0
        self._gib_s = 0.0
        self._used_gib: float | None = None

    def start(self) -> None:
        """Take the first memory sample."""
        with self._lock:
            self._used_gib = self._read_used()
            self._t0_s = self._t_last_s = time.monotonic()
            self._gib_last = self._scope.memory_gib
            self._energy_j = self._gib_s = 0.0
            self._in_cpu = self._dram_in_cpu()
            self._started = True
            self._final = None

    def sample(self) -> Reading:
        """Integrate memory power up to now (updates RSS / working set where that is the size)
        and return the cumulative reading: the same as :meth:`read`."""
        return self.read()

    def read(self) -> Reading:
        """Cumulative RAM energy since ``start()`` (0 J before it). Units: J."""
        with self._lock:
            if self._final is not None:
                return self._final
            if self._started:
                self._advance()
            return self._reading()

    def close(self) -> None:
        """Freeze the reading (later ``read()`` calls return it). Idempotent."""
        with self._lock:
            if self._started and self._final is None:
                self._advance()
                self._final = self._reading()

    def warnings(self) -> tuple[str, ...]:
        """What went wrong so far (one line each), for the record."""
        with self._lock:
            return self._log.messages()

    def _dram_in_cpu(self) -> bool:
        if self._dram_measured is None:
            return False
        try:
            inside = bool(self._dram_measured())
        except Exception as exc:  # never raise to the tracker: model RAM then
            self._log.add(f"cannot tell whether the CPU reading includes DRAM ({exc})")
            return False
        if inside:
            self._log.add(
                "RAM energy is inside the CPU's RAPL reading (psys or dram domains); it is not "
                "modelled on top while RAPL measures"
            )
        return inside

    def _read_used(self) -> float | None:
        try:
            return self._scope.memory_used_gib()
        except Exception as exc:  # never raise to the tracker; keep the last size
            self._log.add(f"cannot read the {self._scope.kind} scope's memory use ({exc})")
            return None

    def _advance(self) -> None:
        used = self._read_used()
        if used is not None:
            self._used_gib = used
        now = time.monotonic()
        gb = self._scope.memory_gib
        times, sizes = [self._t_last_s, now], [self._gib_last, gb]
        self._gib_s += trapezoid_energy_j(times, sizes)  # GiB·s: the same integral, unit-free
        self._in_cpu = self._dram_in_cpu()
        if not self._in_cpu:
            self._energy_j += trapezoid_energy_j(times, [s * self._w_per_gib for s in sizes])
        self._t_last_s, self._gib_last = now, gb

    def _reading(self) -> Reading:
        wall = self._t_last_s - self._t0_s
        capacity = self._gib_s / wall if wall > 0 else self._scope.memory_gib
        model = (
            f"{self._w_per_gib:g} W/GiB (green-algorithms) × {self._scope.memory_source} "
            f"{capacity:.3f} GiB"
        )
        modelled = self._energy_j > 0 or not self._in_cpu
        if self._in_cpu:
            before = f"; before: {model}" if modelled else ""
            model = f"included in the CPU's RAPL reading{before}"
        return Reading(
            energy_j=self._energy_j,
            method="constant" if modelled else "none",
            capacity=capacity,
            model=model,
            used=self._used_gib,
        )
