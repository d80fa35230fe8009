"""What we charge for: the step's container (cgroup), a process tree, or the whole machine.

Memory unit: ``memory_gib`` and ``memory_used_gib()`` are in **GiB (2**30 bytes)**, the unit DRAM
is sized and sold in (a "16 GB" DIMM holds 16 GiB), the unit Kubernetes limits are usually written
in (``4Gi``), and the unit CodeCarbon's ``ram_total_size`` uses (``bytes / 1024**3``). So a 4 GiB
limit reads 4.0, and the W/GB coefficients (measured per marketed DIMM GB) apply per GiB. See
:data:`BYTES_PER_GIB`.

CPU unit: ``vcpus`` counts logical CPUs (hardware threads); ``cpu_time_s()`` is CPU-seconds.

Host-wide figures come from ``<proc_root>/stat`` and ``<proc_root>/meminfo``, process figures from
``<proc_root>/<pid>/...`` (:mod:`carbon_kfp.sensors.proctree`), so a test can point every reader
at a fake tree. psutil is imported only where there is no procfs (macOS).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Literal, NamedTuple

from carbon_kfp.errors import ConfigError, close_matches
from carbon_kfp.sensors import cgroup
from carbon_kfp.sensors.proctree import TreeUsage, clock_ticks_per_s, open_process_tree

ScopeKind = Literal["container", "process", "machine"]
SCOPE_CHOICES: tuple[str, ...] = ("auto", "container", "process", "machine")
MemorySource = Literal["cgroup-limit", "cgroup-usage", "process-rss", "host-total"]

CPU_REQUEST_ENV = "CARBON_KFP_CPU_REQUEST_MILLICORES"
"""Environment variable stating the container's CPU request in millicores (see
:func:`cpu_request_vcpus`); the tracker reads it when ``cpu_request_millicores`` is not given."""

BYTES_PER_GIB = 2**30
"""Bytes in a GiB, the unit of ``memory_gib`` (see the module docstring for why)."""

SHARED_WALK_S = 0.05
"""A process-tree walk for CPU time younger than this also answers the next memory question (see
:class:`ProcessScope`). Units: s."""


# --------------------------------------------------------------------------- host figures


class HostCpuTimes(NamedTuple):
    """Cumulative CPU time of the whole host since boot, from ``/proc/stat``.

    Attributes:
        busy_s: user + nice + system + irq + softirq (guest time is already inside user/nice).
            Units: CPU-seconds.
        total_s: ``busy_s`` + idle + iowait + steal. Units: CPU-seconds.
        cpus: number of ``cpuN`` lines (online logical CPUs).
    """

    busy_s: float
    total_s: float
    cpus: int


def parse_proc_stat(text: str, ticks_per_s: float) -> HostCpuTimes:
    """Parse ``/proc/stat``; ``ticks_per_s`` is ``USER_HZ`` (``os.sysconf("SC_CLK_TCK")``).

    Raises:
        ValueError: no aggregate ``cpu`` line, or a non-numeric field in it.
    """
    aggregate: list[float] | None = None
    cpus = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            aggregate = [float(v) for v in line.split()[1:]]
        elif line.startswith("cpu") and line[3:4].isdigit():
            cpus += 1
    if aggregate is None or len(aggregate) < 4:
        raise ValueError("no 'cpu' line with at least 4 fields")
    fields = aggregate + [0.0] * (8 - len(aggregate))
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    total = busy + idle + iowait + steal
    return HostCpuTimes(busy_s=busy / ticks_per_s, total_s=total / ticks_per_s, cpus=cpus)


def read_host_cpu_times(proc_root: Path = Path("/proc")) -> HostCpuTimes:
    """Host CPU times from ``<proc_root>/stat``, else psutil (non-Linux).

    Raises:
        OSError: neither source is available.
    """
    try:
        return parse_proc_stat((proc_root / "stat").read_text(), clock_ticks_per_s())
    except (OSError, ValueError):
        if proc_root != Path("/proc"):
            raise OSError(f"cannot read host CPU times from {proc_root / 'stat'}") from None
    import psutil  # no procfs (macOS): only then

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0) + getattr(times, "steal", 0.0)
    total = sum(times)
    # guest / guest_nice are already counted in user / nice on Linux.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return HostCpuTimes(busy_s=total - idle, total_s=total, cpus=psutil.cpu_count() or 1)


def host_cpu_count(proc_root: Path = Path("/proc")) -> int:
    """Logical CPUs of the host (``cpuN`` lines of ``<proc_root>/stat``, else ``os.cpu_count``)."""
    try:
        cpus = read_host_cpu_times(proc_root).cpus
    except OSError:
        cpus = 0
    return cpus if cpus > 0 else (os.cpu_count() or 1)


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as bytes per key (``MemTotal: 16 kB`` -> ``{"MemTotal": 16384}``)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts:
            continue
        try:
            number = int(parts[0])
        except ValueError:
            continue
        values[key.strip()] = number * 1024 if parts[1:2] == ["kB"] else number
    return values


def read_meminfo(proc_root: Path = Path("/proc")) -> dict[str, int]:
    """Host memory figures in bytes (``MemTotal``, ``MemAvailable``), else psutil's."""
    try:
        values = parse_meminfo((proc_root / "meminfo").read_text())
        if "MemTotal" in values:
            return values
    except OSError:
        pass
    import psutil  # no procfs (macOS): only then

    vm = psutil.virtual_memory()
    return {"MemTotal": vm.total, "MemAvailable": vm.available}


# --------------------------------------------------------------------------- scopes


class Scope:
    """What a measurement is charged to. Subclasses answer for a cgroup, a process tree, a host.

    Attributes:
        kind: ``"container"``, ``"process"`` or ``"machine"``.
        vcpus: logical CPUs allocated to the scope (see :func:`resolve_scope`). Units: vCPUs.
        memory_source: where ``memory_gib`` comes from: ``"cgroup-limit"``, ``"cgroup-usage"``
            (a container without a memory limit: its working set), ``"process-rss"`` or
            ``"host-total"``.
        host_cpus: logical CPUs of the host, for apportioning host-wide counters.
        detail: one line saying how the allocation was found, for the record.
        notes: warnings about the allocation (a guess, an ambiguity), for the record; the CPU
            sensor reports them.
    """

    kind: ScopeKind
    vcpus: float
    memory_source: MemorySource
    host_cpus: int
    detail: str

    def __init__(self) -> None:
        self._memory_gib = 0.0
        self.notes: tuple[str, ...] = ()

    @property
    def memory_gib(self) -> float:
        """Memory allocated to the scope. Units: GiB (see module docstring).

        Fixed for a cgroup limit or the host total; for ``process-rss`` / ``cgroup-usage`` it is
        the value at the last :meth:`memory_used_gib` call (the RAM sensor averages it over time).
        """
        return self._memory_gib

    @property
    def vcpus_range(self) -> tuple[float, float]:
        """Lowest and highest allocation the scope's settings allow, when they can be read two
        ways (see :class:`ContainerScope`); ``(vcpus, vcpus)`` otherwise. Units: vCPUs."""
        return self.vcpus, self.vcpus

    def cpu_time_s(self) -> float:
        """Cumulative CPU time of the scope. Units: CPU-seconds. Only differences are meaningful.

        Raises:
            OSError: the source vanished (cgroup removed, process gone); sensors catch this.
        """
        raise NotImplementedError

    def memory_used_gib(self) -> float:
        """Memory in use by the scope now. Units: GiB.

        Raises:
            OSError: the source vanished; sensors catch this.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, vcpus={self.vcpus:g}, "
            f"memory_gib={self.memory_gib:.3f}, memory_source={self.memory_source!r})"
        )


class ContainerScope(Scope):
    """The cgroup of the step's container (v1 or v2).

    ``vcpus``: the CPU quota (``cpu.max`` / ``cfs_quota_us ÷ cfs_period_us``, tightest over the
    ancestors), capped by the effective cpuset; without a quota, a cpuset narrower than the host,
    else the CPU request (stated explicitly, else Kubernetes' ``cpu.weight`` / ``cpu.shares``),
    else the host's CPUs (noted). A request read from ``cpu.weight`` by the current runtime
    formula may have been written by the legacy one (:func:`~carbon_kfp.sensors.cgroup.
    weight_to_cpu_request`): ``vcpus`` is the current reading, ``vcpus_range`` spans both, and a
    note says how to remove the doubt. ``memory_gib``: the memory limit (``memory.max`` /
    ``memory.limit_in_bytes``, tightest over the ancestors) when below the host's memory, else the
    cgroup's working set. ``cpu_time_s``: ``cpu.stat usage_usec`` (v2) or ``cpuacct.usage`` (v1).
    """

    kind: ScopeKind = "container"

    def __init__(
        self,
        dirs: cgroup.CgroupDirs,
        limits: cgroup.CgroupLimits,
        *,
        host_cpus: int,
        host_memory_bytes: int,
    ) -> None:
        super().__init__()
        self.dirs = dirs
        self.limits = limits
        self.host_cpus = host_cpus
        self.vcpus, cpu_source = cgroup.effective_vcpus(limits, host_cpus)
        self._vcpus_range = (self.vcpus, self.vcpus)
        notes: list[str] = []
        legacy = limits.cpu_request_legacy_vcpus
        if cpu_source == "cpu-request" and legacy is not None:
            legacy_vcpus, _ = cgroup.effective_vcpus(
                limits._replace(cpu_request_vcpus=legacy), host_cpus
            )
            self._vcpus_range = (min(self.vcpus, legacy_vcpus), max(self.vcpus, legacy_vcpus))
            if abs(legacy_vcpus - self.vcpus) > 0.01 * self.vcpus:
                notes.append(
                    f"container cgroup {dirs.path}: cpu.weight reads as a {self.vcpus:.3g} vCPU "
                    f"request (runc >= 1.3.2 / crun >= 1.23 formula) or {legacy_vcpus:.3g} vCPU "
                    "(older runtimes); using the first, the uncertainty spans both. Set "
                    f"{CPU_REQUEST_ENV} (e.g. from the downward API, divisor 1m) or "
                    "cpu_request_millicores= to state the request"
                )
        limit = limits.memory_limit_bytes
        if limit is not None and limit < host_memory_bytes:
            self.memory_source = "cgroup-limit"
            self._memory_gib = limit / BYTES_PER_GIB
        else:
            self.memory_source = "cgroup-usage"
            try:
                self._memory_gib = cgroup.read_memory_working_set_bytes(dirs) / BYTES_PER_GIB
            except (OSError, ValueError):
                self._memory_gib = 0.0
        self.detail = (
            f"cgroup v{dirs.version} {dirs.path}: {self.vcpus:g} vCPUs ({cpu_source}), "
            f"{self._memory_gib:.3f} GiB ({self.memory_source})"
        )
        if cpu_source == "host":
            notes.append(
                f"container cgroup {dirs.path} has no CPU quota, cpuset or request: charging the "
                f"idle power of all {host_cpus} host CPUs; set a CPU limit or request on the step"
            )
        self.notes = tuple(notes)

    @property
    def vcpus_range(self) -> tuple[float, float]:
        return self._vcpus_range

    def cpu_time_s(self) -> float:
        try:
            return cgroup.read_cpu_usage_s(self.dirs)
        except ValueError as exc:
            raise OSError(str(exc)) from exc

    def memory_used_gib(self) -> float:
        try:
            used = cgroup.read_memory_working_set_bytes(self.dirs) / BYTES_PER_GIB
        except ValueError as exc:
            raise OSError(str(exc)) from exc
        if self.memory_source == "cgroup-usage":
            self._memory_gib = used
        return used


class ProcessScope(Scope):
    """A process and its descendants (:mod:`carbon_kfp.sensors.proctree`).

    ``vcpus``: the host's logical CPUs (narrowed to the process's CPU affinity when set).
    ``memory_gib``: resident set size of the tree at the last :meth:`memory_used_gib` call (RSS
    counts shared pages once per process, so it can overstate a forked tree slightly).
    ``cpu_time_s``: user + system of the process and its live descendants, plus the times of
    children they have already reaped (``cutime`` / ``cstime``). Descendants that exit unreaped
    (re-parented to init) lose their last interval; the total never decreases.

    One walk of the tree answers both questions. CPU time, cumulative and read at window edges,
    always walks; memory, a level integrated over time, reuses the walk of a CPU-time call less
    than :data:`SHARED_WALK_S` old, once. The CPU and RAM sensors sample on the same tick, in
    that order, so they walk the tree once between them.

    Thread-safe: the CPU and RAM sensors share it across the sampling thread and the caller.
    """

    kind: ScopeKind = "process"
    memory_source: MemorySource = "process-rss"

    def __init__(self, pid: int, *, host_cpus: int, proc_root: Path = Path("/proc")) -> None:
        super().__init__()
        self.pid = pid
        self.host_cpus = host_cpus
        try:
            self._tree = open_process_tree(pid, proc_root)
        except ProcessLookupError as exc:  # the environment, not the configuration
            raise ProcessLookupError(f"no process with pid {pid} ({exc})") from None
        affinity = _affinity_cpus(pid)
        self.vcpus = float(min(host_cpus, affinity) if affinity > 0 else host_cpus)
        self._lock = threading.Lock()
        self._walk_for_memory: TreeUsage | None = None  # the last CPU-time walk, until used
        self._walk_s = 0.0
        self._last_tree_s: float | None = None
        self._accumulated_s = 0.0
        with contextlib.suppress(OSError):
            self.memory_used_gib()
        self.detail = f"process tree of pid {pid}: {self.vcpus:g} vCPUs (host), RSS"

    def cpu_time_s(self) -> float:
        with self._lock:
            walk = self._tree.usage()
            self._walk_for_memory, self._walk_s = walk, time.monotonic()
            if self._last_tree_s is None:
                self._accumulated_s = walk.cpu_s
            else:
                # A descendant leaving the tree unreaped makes the sum drop; count increases only.
                self._accumulated_s += max(0.0, walk.cpu_s - self._last_tree_s)
            self._last_tree_s = walk.cpu_s
            return self._accumulated_s

    def memory_used_gib(self) -> float:
        with self._lock:
            walk = self._walk_for_memory
            if walk is None or time.monotonic() - self._walk_s > SHARED_WALK_S:
                walk = self._tree.usage()
            self._walk_for_memory = None
            self._memory_gib = walk.rss_bytes / BYTES_PER_GIB
            return self._memory_gib


def _affinity_cpus(pid: int) -> int:
    """How many CPUs ``pid`` may run on; 0 when the system cannot say."""
    try:
        return len(os.sched_getaffinity(pid))
    except (AttributeError, OSError):  # no sched_getaffinity off Linux; a fake or gone pid
        return 0


class MachineScope(Scope):
    """The whole host: all logical CPUs, all memory, host-wide busy CPU time (labelled)."""

    kind: ScopeKind = "machine"
    memory_source: MemorySource = "host-total"

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        super().__init__()
        self.proc_root = proc_root
        self.host_cpus = host_cpu_count(proc_root)
        self.vcpus = float(self.host_cpus)
        self._memory_gib = read_meminfo(proc_root)["MemTotal"] / BYTES_PER_GIB
        self.detail = f"whole machine: {self.host_cpus} vCPUs, {self._memory_gib:.3f} GiB"

    def cpu_time_s(self) -> float:
        return read_host_cpu_times(self.proc_root).busy_s

    def memory_used_gib(self) -> float:
        info = read_meminfo(self.proc_root)
        available = info.get("MemAvailable", info.get("MemFree", 0))
        return max(0, info["MemTotal"] - available) / BYTES_PER_GIB


def cpu_request_vcpus(millicores: object, *, name: str = "cpu_request_millicores") -> float:
    """vCPUs of a CPU request stated in millicores (``2000`` -> 2.0), checked. Pure.

    Accepts an int, or a string of digits as the Kubernetes downward API writes
    ``requests.cpu`` with ``divisor: 1m``.

    Raises:
        ConfigError: not a whole number of millicores > 0; the message names ``name``.
    """
    text = millicores.strip() if isinstance(millicores, str) else millicores
    if isinstance(text, str) and text.isdigit():
        text = int(text)
    if isinstance(text, bool) or not isinstance(text, int) or text <= 0:
        raise ConfigError(
            f"{name}={millicores!r}; expected a whole number of millicores > 0, e.g. 2000 for "
            "two vCPUs (the downward API's requests.cpu with divisor 1m)"
        )
    return text / 1000.0


def resolve_scope(
    requested: str = "auto",
    *,
    sysfs_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    pid: int | None = None,
    cpu_request_vcpus: float | None = None,
) -> Scope:
    """Decide what to charge for.

    ``"auto"``: the container when the process's own cgroup (from ``<proc_root>/<pid>/cgroup``,
    cgroup fs at ``<sysfs_root>/fs/cgroup``) is narrower than the host (a CPU quota, a smaller
    cpuset, a CPU request, or a memory limit below host memory), else the process tree of
    ``pid`` (default: this process). ``"container"``, ``"process"``, ``"machine"``: that scope.

    ``cpu_request_vcpus``: the container's CPU request as the user states it; it replaces what
    the cgroup's ``cpu.weight`` / ``cpu.shares`` say (the quota, if any, still wins). A cgroup is
    a Kubernetes container's when its path contains ``kubepods`` or ``KUBERNETES_SERVICE_HOST`` is
    set (every pod has it; with a private cgroup namespace the path is just ``/``).

    Raises:
        ConfigError: an unknown ``requested``, ``"container"`` without a readable cgroup (the
            message names what was looked for).
        ProcessLookupError: no process ``pid`` in ``proc_root`` (a procfs of another pid
            namespace): a fault of the environment, which the tracker degrades to method
            ``none``.
    """
    if requested not in SCOPE_CHOICES:
        raise ConfigError(
            f"unknown scope {requested!r}; valid: {', '.join(SCOPE_CHOICES)}"
            f"{close_matches(requested, SCOPE_CHOICES)}"
        )
    pid = os.getpid() if pid is None else pid
    if requested == "machine":
        return MachineScope(proc_root)
    host_cpus = host_cpu_count(proc_root)
    if requested == "process":
        return ProcessScope(pid, host_cpus=host_cpus, proc_root=proc_root)

    host_memory = read_meminfo(proc_root)["MemTotal"]
    try:
        dirs = cgroup.locate_cgroup(sysfs_root, proc_root, pid)
    except LookupError as exc:
        if requested == "container":
            raise ConfigError(f"scope='container' but no cgroup was found: {exc}") from None
        return ProcessScope(pid, host_cpus=host_cpus, proc_root=proc_root)
    kubernetes = "kubepods" in dirs.path or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    limits = cgroup.read_limits(dirs, kubernetes=kubernetes, cpu_request_vcpus=cpu_request_vcpus)
    if requested == "container" or cgroup.has_allocation(limits, host_cpus, host_memory):
        return ContainerScope(dirs, limits, host_cpus=host_cpus, host_memory_bytes=host_memory)
    return ProcessScope(pid, host_cpus=host_cpus, proc_root=proc_root)
