"""Fake Linux hosts on disk for sensor and tracker tests: powercap, cgroup v1 / v2, ``/proc``.

Everything is a real file under a temporary directory; point the code under test at
``host.sysfs_root`` and ``host.proc_root``. Values that a reader may race with are written to a
temporary file and renamed into place, so a reader never sees a half-written number.

Typical use::

    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)        # writes proc/ and sys/
    ctr = host.add_cgroup_v2("/kubepods/pod1/ctr", cpu_max="200000 100000", memory_max=4 * GIB)
    scope = resolve_scope("auto", sysfs_root=host.sysfs_root, proc_root=host.proc_root,
                          pid=host.pid)                                 # -> 2 vCPUs, 4 GiB

    package = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    sensor = CpuSensor(scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root)
    with CounterThread(lambda: package.advance(50_000), ticks_per_sample=3) as driver:
        driver.locked(sensor.start)            # baseline while the counter thread is held
        for _ in range(20):
            time.sleep(0.005)
            driver.locked(sensor.sample)       # each sample sees at most 3 ticks
    # CounterThread.__exit__ stopped the thread: package.total_uj is the truth.

Units follow the kernel: energy in µJ, CPU quota and period in µs, memory in bytes, ``/proc/stat``
in ``USER_HZ`` ticks (the helpers take seconds and convert).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypedDict, TypeVar

T = TypeVar("T")

GIB = 2**30
INTEL_PACKAGE_RANGE_UJ = 262_143_328_850  # a typical Xeon package's max_energy_range_uj


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (readers never see a torn
    value). Creates parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _ticks_per_s() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


@dataclass(frozen=True)
class CpuInfoSpec:
    """What :meth:`FakeHost.write_cpuinfo` puts in ``/proc/cpuinfo`` (first processor block)."""

    model_name: str
    vendor_id: str = "GenuineIntel"
    family: int = 6
    model: int = 85
    stepping: int = 7
    siblings: int = 64


GCP_CASCADE_LAKE = CpuInfoSpec("Intel(R) Xeon(R) CPU @ 2.20GHz", "GenuineIntel", 6, 85, 7, 64)
"""GCP's generic Cascade Lake name (n2 / c2): needs family/model/stepping to be recognised."""
GCP_EPYC_ROME = CpuInfoSpec("AMD EPYC 7B12", "AuthenticAMD", 23, 49, 0, 64)
UNKNOWN_CPU = CpuInfoSpec("Imaginary CPU 9000", "", 0, 0, 0, 8)


class FakeRaplZone:
    """One powercap zone directory (``<sysfs_root>/class/powercap/<zone>``).

    Attributes:
        zone: directory name, e.g. ``"intel-rapl:0"`` or ``"intel-rapl:0:0"`` (a subzone).
        name: contents of the ``name`` file (``"package-0"``, ``"dram"``, ``"psys"``...).
        path: the directory.
        max_energy_range_uj: the largest value the counter shows (inclusive: it wraps to 0 after
            it, so its modulus is one more). Units: µJ.
    """

    def __init__(self, path: Path, name: str, max_energy_range_uj: int) -> None:
        self.path = path
        self.zone = path.name
        self.name = name
        self.max_energy_range_uj = max_energy_range_uj

    def write_energy_uj(self, value: int) -> None:
        """Set ``energy_uj`` (atomically). Units: µJ."""
        write_atomic(self.path / "energy_uj", f"{value}\n")

    def make_unreadable(self) -> None:
        """Make ``energy_uj`` unreadable even for root: it becomes a directory, so ``open()``
        fails with ``IsADirectoryError`` (an ``OSError`` like the ``PermissionError`` a non-root
        user gets from the real root-only file). ``chmod 000`` would not stop root."""
        target = self.path / "energy_uj"
        target.unlink(missing_ok=True)
        target.mkdir()

    def make_root_only(self) -> None:
        """``chmod 000`` on ``energy_uj``, as on hosts since Linux 5.10 (root still reads it)."""
        (self.path / "energy_uj").chmod(0)


class FakeRaplCounter:
    """One physical energy counter shown in one or more zones (several zones = mirrors).

    Attributes:
        zones: the zones that show this counter.
        value_uj: the current (wrapped) counter value. Units: µJ.
        total_uj: true energy added since creation, without wrapping. Units: µJ.
    """

    def __init__(self, zones: Sequence[FakeRaplZone], *, start_uj: int = 0) -> None:
        if not zones:
            raise ValueError("a counter needs at least one zone")
        ranges = {zone.max_energy_range_uj for zone in zones}
        if len(ranges) != 1:
            raise ValueError(f"mirrored zones must share one max_energy_range_uj, got {ranges}")
        self.zones = list(zones)
        self.max_energy_range_uj = ranges.pop()
        self.value_uj = start_uj % (self.max_energy_range_uj + 1)
        self.total_uj = 0
        self._write()

    def _write(self) -> None:
        for zone in self.zones:
            zone.write_energy_uj(self.value_uj)

    def advance(self, energy_uj: int) -> None:
        """Add ``energy_uj`` (wrapping to 0 after the range's maximum) and write every zone.
        Units: µJ."""
        self.total_uj += energy_uj
        self.value_uj = (self.value_uj + energy_uj) % (self.max_energy_range_uj + 1)
        self._write()


class FakeCgroup:
    """A process's cgroup in a fake v1 or v2 hierarchy; lets a test move its usage counters.

    Attributes:
        version: 1 or 2.
        dirs: controller -> directory (``cpu``, ``cpuacct``, ``memory``, ``cpuset``; for v2 all
            point at the one unified directory).
        cpu_usage_s: the CPU time written so far. Units: CPU-seconds.
    """

    def __init__(self, version: int, dirs: dict[str, Path]) -> None:
        self.version = version
        self.dirs = dirs
        self.cpu_usage_s = 0.0
        self.set_cpu_usage_s(0.0)
        self.set_memory_usage(0)

    def set_cpu_usage_s(self, seconds: float) -> None:
        """Set cumulative CPU time (v2 ``cpu.stat usage_usec``, v1 ``cpuacct.usage`` ns)."""
        self.cpu_usage_s = seconds
        if self.version == 2:
            usec = round(seconds * 1e6)
            write_atomic(
                self.dirs["cpu"] / "cpu.stat",
                f"usage_usec {usec}\nuser_usec {usec}\nsystem_usec 0\n",
            )
        else:
            write_atomic(self.dirs["cpuacct"] / "cpuacct.usage", f"{round(seconds * 1e9)}\n")

    def add_cpu_usage_s(self, seconds: float) -> None:
        """Advance cumulative CPU time by ``seconds``."""
        self.set_cpu_usage_s(self.cpu_usage_s + seconds)

    def set_memory_usage(self, usage_bytes: int, *, inactive_file_bytes: int = 0) -> None:
        """Set memory in use (``memory.current`` / ``memory.usage_in_bytes``) and the inactive
        page cache in ``memory.stat``. Units: bytes."""
        memory = self.dirs["memory"]
        if self.version == 2:
            write_atomic(memory / "memory.current", f"{usage_bytes}\n")
            write_atomic(memory / "memory.stat", f"anon 0\ninactive_file {inactive_file_bytes}\n")
        else:
            write_atomic(memory / "memory.usage_in_bytes", f"{usage_bytes}\n")
            write_atomic(
                memory / "memory.stat",
                f"cache 0\ninactive_file {inactive_file_bytes}\n"
                f"total_inactive_file {inactive_file_bytes}\n",
            )


class Roots(TypedDict):
    """Where a :class:`FakeHost` lives, as ``resolve_scope`` keyword arguments."""

    sysfs_root: Path
    proc_root: Path
    pid: int


class FakeHost:
    """A fake host: ``root/sys`` (``sysfs_root``) and ``root/proc`` (``proc_root``).

    On creation it writes ``proc/stat`` (``cpus`` CPUs, all idle), ``proc/meminfo``,
    ``proc/cpuinfo`` and ``proc/<pid>/cgroup`` (``0::/``, with no cgroup fs yet).

    Args:
        root: an empty directory (``tmp_path``).
        cpus: logical CPUs of the host.
        memory_bytes: ``MemTotal``. Units: bytes.
        pid: the pid whose ``/proc/<pid>/cgroup`` the cgroup helpers write.
        cpuinfo: what ``/proc/cpuinfo`` describes.
    """

    def __init__(
        self,
        root: Path,
        *,
        cpus: int = 64,
        memory_bytes: int = 256 * GIB,
        pid: int = 4242,
        cpuinfo: CpuInfoSpec = GCP_CASCADE_LAKE,
    ) -> None:
        self.root = root
        self.sysfs_root = root / "sys"
        self.proc_root = root / "proc"
        self.cpus = cpus
        self.memory_bytes = memory_bytes
        self.pid = pid
        self.host_busy_s = 0.0
        self.host_idle_s = 0.0
        self.sysfs_root.mkdir(parents=True, exist_ok=True)
        self._write_stat()
        write_atomic(
            self.proc_root / "meminfo",
            f"MemTotal: {memory_bytes // 1024} kB\nMemFree: {memory_bytes // 2048} kB\n"
            f"MemAvailable: {memory_bytes // 2048} kB\n",
        )
        self.write_cpuinfo(cpuinfo)
        write_atomic(self.proc_root / str(pid) / "cgroup", "0::/\n")

    def roots(self) -> Roots:
        """``sysfs_root``, ``proc_root`` and ``pid`` as keyword arguments:
        ``resolve_scope("auto", **host.roots())``."""
        return Roots(sysfs_root=self.sysfs_root, proc_root=self.proc_root, pid=self.pid)

    # ------------------------------------------------------------------ /proc

    def _write_stat(self) -> None:
        hz = _ticks_per_s()
        busy, idle = round(self.host_busy_s * hz), round(self.host_idle_s * hz)
        lines = [f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0"]
        lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(self.cpus)]
        lines += ["intr 0", "ctxt 0", "btime 0", "processes 1"]
        write_atomic(self.proc_root / "stat", "\n".join(lines) + "\n")

    def set_host_cpu_seconds(self, busy_s: float, idle_s: float = 0.0) -> None:
        """Set the host's cumulative busy (as ``user``) and idle CPU time in ``/proc/stat``.
        Units: CPU-seconds (written in ``USER_HZ`` ticks, so use multiples of 1/USER_HZ)."""
        self.host_busy_s, self.host_idle_s = busy_s, idle_s
        self._write_stat()

    def add_host_cpu_seconds(self, busy_s: float, idle_s: float = 0.0) -> None:
        """Advance the host's busy and idle CPU time. Units: CPU-seconds."""
        self.set_host_cpu_seconds(self.host_busy_s + busy_s, self.host_idle_s + idle_s)

    def write_cpuinfo(self, spec: CpuInfoSpec) -> None:
        """Write ``/proc/cpuinfo`` with two processor blocks described by ``spec``."""
        blocks = []
        for processor in range(2):
            blocks.append(
                f"processor\t: {processor}\nvendor_id\t: {spec.vendor_id}\n"
                f"cpu family\t: {spec.family}\nmodel\t\t: {spec.model}\n"
                f"model name\t: {spec.model_name}\nstepping\t: {spec.stepping}\n"
                f"siblings\t: {spec.siblings}\nflags\t\t: fpu vme\n"
            )
        write_atomic(self.proc_root / "cpuinfo", "\n".join(blocks) + "\n")

    # ------------------------------------------------------------------ powercap

    def add_rapl_zone(
        self,
        zone: str,
        name: str,
        *,
        max_energy_range_uj: int = INTEL_PACKAGE_RANGE_UJ,
        max_power_uw: int | None = None,
    ) -> FakeRaplZone:
        """Create ``<sysfs_root>/class/powercap/<zone>`` with ``name``, ``energy_uj`` (0),
        ``max_energy_range_uj`` and, if given, ``constraint_0_max_power_uw``.

        ``zone`` follows the kernel: ``intel-rapl:N`` for a top-level zone, ``intel-rapl:N:M``
        for a subzone (``dram``, ``core``), ``intel-rapl-mmio:N`` for the MMIO interface.
        """
        base = self.sysfs_root / "class" / "powercap"
        (base / zone.split(":")[0]).mkdir(parents=True, exist_ok=True)  # the control-type dir
        path = base / zone
        path.mkdir(parents=True, exist_ok=True)
        write_atomic(path / "name", f"{name}\n")
        write_atomic(path / "max_energy_range_uj", f"{max_energy_range_uj}\n")
        if max_power_uw is not None:
            write_atomic(path / "constraint_0_max_power_uw", f"{max_power_uw}\n")
        fake = FakeRaplZone(path, name, max_energy_range_uj)
        fake.write_energy_uj(0)
        return fake

    # ------------------------------------------------------------------ cgroups

    def add_cgroup_v2(
        self,
        path: str = "/kubepods/pod1/ctr",
        *,
        cpu_max: str = "max 100000",
        memory_max: int | None = None,
        cpuset_cpus: str | None = None,
        cpu_weight: int = 1,
        parent_cpu_max: str | None = None,
        parent_memory_max: int | None = None,
    ) -> FakeCgroup:
        """Create a v2 unified hierarchy at ``<sysfs_root>/fs/cgroup`` with the process in
        ``path``, and point ``/proc/<pid>/cgroup`` at it.

        Args:
            path: cgroup path as ``/proc/<pid>/cgroup`` shows it.
            cpu_max: ``cpu.max`` contents (``"200000 100000"`` = 2 vCPUs).
            memory_max: ``memory.max`` in bytes, or None for ``max``.
            cpuset_cpus: ``cpuset.cpus.effective`` (default: all host CPUs).
            cpu_weight: ``cpu.weight`` (1 = shares 2: kubelet's value without a CPU request).
            parent_cpu_max, parent_memory_max: limits on the parent cgroup (a pod-level limit).
        """
        mount = self.sysfs_root / "fs" / "cgroup"
        write_atomic(mount / "cgroup.controllers", "cpuset cpu io memory pids\n")
        directory = mount.joinpath(*path.strip("/").split("/")) if path.strip("/") else mount
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / "cpu.max", f"{cpu_max}\n")
        write_atomic(directory / "memory.max", "max\n" if memory_max is None else f"{memory_max}\n")
        write_atomic(directory / "cpu.weight", f"{cpu_weight}\n")
        cpus = cpuset_cpus if cpuset_cpus is not None else f"0-{self.cpus - 1}"
        write_atomic(directory / "cpuset.cpus.effective", f"{cpus}\n")
        if directory != mount:
            parent = directory.parent
            if parent_cpu_max is not None:
                write_atomic(parent / "cpu.max", f"{parent_cpu_max}\n")
            if parent_memory_max is not None:
                write_atomic(parent / "memory.max", f"{parent_memory_max}\n")
        write_atomic(self.proc_root / str(self.pid) / "cgroup", f"0::{path}\n")
        dirs = {name: directory for name in ("cpu", "cpuacct", "memory", "cpuset")}
        return FakeCgroup(2, dirs)

    def add_cgroup_v1(
        self,
        path: str = "/kubepods/pod1/ctr",
        *,
        cfs_quota_us: int = -1,
        cfs_period_us: int = 100_000,
        memory_limit_bytes: int | None = None,
        cpuset_cpus: str | None = None,
        cpu_shares: int = 2,
    ) -> FakeCgroup:
        """Create v1 hierarchies (``cpu,cpuacct``, ``memory``, ``cpuset``) under
        ``<sysfs_root>/fs/cgroup`` with the process in ``path`` in each, plus an empty v2
        ``unified`` mount as on hybrid hosts, and write ``/proc/<pid>/cgroup`` accordingly.

        Args:
            cfs_quota_us: ``cpu.cfs_quota_us`` (-1 = unlimited; 200000 with the default period
                = 2 vCPUs).
            memory_limit_bytes: ``memory.limit_in_bytes``; None writes the kernel's "unlimited"
                9223372036854771712.
            cpuset_cpus: ``cpuset.effective_cpus`` (default: all host CPUs).
            cpu_shares: ``cpu.shares`` (2: kubelet's value without a CPU request).
        """
        mount = self.sysfs_root / "fs" / "cgroup"
        relative = path.strip("/").split("/") if path.strip("/") else []
        dirs: dict[str, Path] = {}
        for mount_name in ("cpu,cpuacct", "memory", "cpuset", "unified"):
            directory = mount.joinpath(mount_name, *relative)
            directory.mkdir(parents=True, exist_ok=True)
            dirs[mount_name] = directory
        cpu = dirs["cpu,cpuacct"]
        write_atomic(cpu / "cpu.cfs_quota_us", f"{cfs_quota_us}\n")
        write_atomic(cpu / "cpu.cfs_period_us", f"{cfs_period_us}\n")
        write_atomic(cpu / "cpu.shares", f"{cpu_shares}\n")
        limit = 9223372036854771712 if memory_limit_bytes is None else memory_limit_bytes
        write_atomic(dirs["memory"] / "memory.limit_in_bytes", f"{limit}\n")
        cpus = cpuset_cpus if cpuset_cpus is not None else f"0-{self.cpus - 1}"
        write_atomic(dirs["cpuset"] / "cpuset.effective_cpus", f"{cpus}\n")
        write_atomic(dirs["cpuset"] / "cpuset.cpus", f"{cpus}\n")
        write_atomic(
            self.proc_root / str(self.pid) / "cgroup",
            f"12:memory:{path}\n11:cpuset:{path}\n4:cpu,cpuacct:{path}\n"
            f"1:name=systemd:{path}\n0::/\n",
        )
        return FakeCgroup(
            1,
            {"cpu": cpu, "cpuacct": cpu, "memory": dirs["memory"], "cpuset": dirs["cpuset"]},
        )


class CounterThread(threading.Thread):
    """Calls ``tick()`` every ``tick_s`` from a background thread, optionally in lock-step with
    a sampler.

    ``locked(fn)`` runs ``fn`` while no tick is in progress (a consistent snapshot of every fake
    file) and marks a sample point. With ``ticks_per_sample=n`` the thread waits after ``n``
    ticks until the next sample point, so a sampler sees at most ``n`` ticks per interval however
    the scheduler treats the test: this is what makes "at most one wrap per interval" exact.
    Use as a context manager; leaving it stops and joins the thread (and re-raises a tick error).
    """

    def __init__(
        self,
        tick: Callable[[], None],
        *,
        tick_s: float = 0.001,
        ticks_per_sample: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name="fake-counter")
        self._tick = tick
        self._tick_s = tick_s
        self._ticks_per_sample = ticks_per_sample
        self._condition = threading.Condition()
        self._stopping = False
        self._since_sample = 0
        self.ticks = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            with self._condition:
                while (
                    not self._stopping
                    and self._ticks_per_sample is not None
                    and self._since_sample >= self._ticks_per_sample
                ):
                    self._condition.wait()
                if self._stopping:
                    return
                try:
                    self._tick()
                except BaseException as exc:  # surfaced by stop()
                    self.error = exc
                    return
                self.ticks += 1
                self._since_sample += 1
                # Wait for the next tick outside any lock-step pause; wakes early on stop().
                self._condition.wait(self._tick_s)

    def locked(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with ticks paused and count it as a sample point; returns its result."""
        with self._condition:
            result = fn()
            self._since_sample = 0
            self._condition.notify_all()
            return result

    def stop(self) -> None:
        """Stop ticking and join; re-raise an exception raised by ``tick``."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self.join(timeout=10)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> CounterThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
