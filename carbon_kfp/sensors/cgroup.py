"""Where a process's cgroup is, what it is allocated, and what it has used (cgroup v1 and v2).

The cgroup filesystem is read at ``<sysfs_root>/fs/cgroup``: either the v2 unified hierarchy
(``cgroup.controllers`` at its root) or v1 per-controller mounts (``cpu``, ``cpuacct``,
``cpu,cpuacct``, ``memory``, ``cpuset``). Membership comes from ``<proc_root>/<pid>/cgroup``.

The ``parse_*`` functions are pure and tested exhaustively; the ``read_*`` functions are thin
shells over them. Readers raise ``OSError`` / ``ValueError`` on a vanished or malformed file; the
scope and sensor layers turn that into a downgrade and a warning.

Units: CPU time in seconds, memory in bytes, CPU allocations in vCPUs (logical CPUs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple, TypeVar

T = TypeVar("T")
N = TypeVar("N", int, float)

# cgroup v1 reports "no memory limit" as PAGE_COUNTER_MAX pages rounded to a page
# (9223372036854771712 on 4 KiB pages); anything this large is not a real limit.
V1_UNLIMITED_BYTES = 2**62
V2_DEFAULT_PERIOD_US = 100_000
# Kubernetes writes a CPU request as v1 cpu.shares = millicores * 1024 / 1000 (at least 2, its
# value for a container without a request); the OCI runtime converts shares to a v2 cpu.weight
# (see weight_to_cpu_request). The kernel defaults, when nothing set them, are shares 1024 and
# weight 100, which in a Kubernetes container are a 1000m request instead.
V1_DEFAULT_SHARES = 1024
V1_MIN_SHARES = 2
V2_DEFAULT_WEIGHT = 100
V2_MAX_WEIGHT = 10_000
MAX_SHARES = 262_144
SHARES_PER_VCPU = 1024

_V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
_V1_CPUACCT_MOUNTS = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")


# --------------------------------------------------------------------------- pure parsers


class Membership(NamedTuple):
    """A process's cgroup paths, as listed in ``/proc/<pid>/cgroup``.

    Attributes:
        v2_path: the unified-hierarchy path (line ``0::<path>``), or None.
        v1_paths: controller name -> path for each v1 hierarchy (``4:cpu,cpuacct:/kubepods/...``
            gives both ``cpu`` and ``cpuacct``).
    """

    v2_path: str | None
    v1_paths: Mapping[str, str] = MappingProxyType({})


def parse_proc_cgroup(text: str) -> Membership:
    """Parse ``/proc/<pid>/cgroup``.

    Raises:
        ValueError: a non-empty line without the ``id:controllers:path`` shape.
    """
    v2_path: str | None = None
    v1_paths: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"line {number} {line!r}: expected 'id:controllers:path'")
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2_path = path
        else:
            for controller in controllers.split(","):
                if controller:
                    v1_paths[controller] = path
    return Membership(v2_path=v2_path, v1_paths=v1_paths)


def parse_cpu_max(text: str) -> tuple[int | None, int]:
    """Parse v2 ``cpu.max`` (``"200000 100000"`` or ``"max 100000"``).

    Returns:
        ``(quota_us or None when unlimited, period_us)``. Units: µs.

    Raises:
        ValueError: not one or two fields, or a non-positive number.
    """
    fields = text.split()
    if not 1 <= len(fields) <= 2:
        raise ValueError(f"cpu.max {text!r}: expected '<quota|max> [period]'")
    period_us = int(fields[1]) if len(fields) == 2 else V2_DEFAULT_PERIOD_US
    if period_us <= 0:
        raise ValueError(f"cpu.max {text!r}: period must be > 0")
    if fields[0] == "max":
        return None, period_us
    quota_us = int(fields[0])
    if quota_us <= 0:
        raise ValueError(f"cpu.max {text!r}: quota must be > 0 or 'max'")
    return quota_us, period_us


def parse_cpu_list(text: str) -> frozenset[int]:
    """Parse a kernel CPU list such as ``"0-3,8,10-11"`` (cpuset files, ``cpu/online``).

    Raises:
        ValueError: a malformed element or a descending range.
    """
    cpus: set[int] = set()
    for element in text.strip().split(","):
        element = element.strip()
        if not element:
            continue
        low_text, dash, high_text = element.partition("-")
        low = int(low_text)
        high = int(high_text) if dash else low
        if low < 0 or high < low:
            raise ValueError(f"CPU list element {element!r} is not 'n' or 'low-high'")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def parse_flat_keyed(text: str) -> dict[str, int]:
    """Parse a flat-keyed cgroup file (``cpu.stat``, ``memory.stat``): ``key value`` per line.

    Lines that are not ``key integer`` are skipped (newer kernels add fields freely).
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def parse_memory_limit(text: str) -> int | None:
    """Parse v2 ``memory.max`` or v1 ``memory.limit_in_bytes``.

    Returns:
        The limit in bytes, or None for ``max`` / the v1 "unlimited" sentinel.

    Raises:
        ValueError: not ``max`` nor a non-negative integer.
    """
    value = text.strip()
    if value == "max":
        return None
    limit = int(value)
    if limit < 0:
        raise ValueError(f"memory limit {value!r} is negative")
    return None if limit >= V1_UNLIMITED_BYTES else limit


def shares_to_vcpus(shares: int, *, kubernetes: bool) -> float | None:
    """vCPUs requested, from v1 ``cpu.shares``. Pure.

    None for 2 (kubelet's value without a CPU request) and, outside Kubernetes, for the kernel
    default 1024; in a Kubernetes container 1024 is a 1000m request.
    """
    if shares <= V1_MIN_SHARES or (shares == V1_DEFAULT_SHARES and not kubernetes):
        return None
    return shares / SHARES_PER_VCPU


class WeightReading(NamedTuple):
    """A v2 ``cpu.weight`` read as a CPU request, by the two runtime formulas in use.

    Attributes:
        vcpus: the request under the current formula (runc >= 1.3.2, crun >= 1.23), or None when
            the weight says nothing. Units: vCPUs.
        legacy_vcpus: the request under the linear formula of older runtimes, or None. Units:
            vCPUs.
    """

    vcpus: float | None
    legacy_vcpus: float | None


def weight_to_cpu_request(weight: int, *, kubernetes: bool) -> WeightReading:
    """The CPU request a v2 ``cpu.weight`` encodes, read by both runtime formulas. Pure.

    Kubernetes writes ``shares = millicores * 1024 / 1000``; the runtime turns shares into a
    weight, and the weight alone cannot say which runtime wrote it:

    - current (runc pull request 4785, runc >= 1.3.2, crun >= 1.23): with ``l = log2(shares)``,
      ``weight = ceil(10 ** ((l**2 + 125 l) / 612 - 7/34))``, a quadratic in log space through
      (2, 1), (1024, 100) and (262144, 10000). Inverted here at ``weight - 0.5`` (the middle of
      the values the ceiling maps to ``weight``): within 4 % at 100m, 0.1 % from 1000m up.
    - legacy (older runc, kubelet's own helper): ``weight = 1 + (shares - 2) * 9999 / 262142``
      (integer division); inverted exactly to about 26 shares (0.03 vCPU).

    So a 1000m request reads as weight 100 now (39 before) and 2000m as 174 (79 before), and
    174 read the legacy way is 4.43 vCPU. Weight 1 (shares 2) is no request either way; outside
    Kubernetes, 100 is the kernel default (no request).
    """
    if weight <= 1 or (weight == V2_DEFAULT_WEIGHT and not kubernetes):
        return WeightReading(None, None)
    weight = min(weight, V2_MAX_WEIGHT)
    exponent = math.log10(weight - 0.5) + 7 / 34
    log2_shares = (-125 + math.sqrt(125**2 + 4 * 612 * exponent)) / 2
    shares = min(2**log2_shares, MAX_SHARES)
    legacy_shares = 2 + (weight - 1) * 262142 / 9999
    return WeightReading(shares / SHARES_PER_VCPU, legacy_shares / SHARES_PER_VCPU)


# --------------------------------------------------------------------------- location


class CgroupDirs(NamedTuple):
    """The directories of one process's cgroup, per controller, on the mounted cgroup fs.

    Attributes:
        version: 1 or 2.
        path: the cgroup path from ``/proc/<pid>/cgroup`` (v2 path, or the v1 cpu/memory path).
        cpu, cpuacct, memory, cpuset: ``(mount_root, dir)`` per controller, or None when that
            controller is not mounted. For v2 all four are the same unified directory.
    """

    version: Literal[1, 2]
    path: str
    cpu: tuple[Path, Path] | None
    cpuacct: tuple[Path, Path] | None
    memory: tuple[Path, Path] | None
    cpuset: tuple[Path, Path] | None


def _resolve_dir(mount: Path, cgroup_path: str) -> Path:
    """The directory of ``cgroup_path`` under ``mount``.

    Without a cgroup namespace a container sees its host path (``/docker/<id>``) in
    ``/proc/self/cgroup`` while its cgroup fs is mounted at that cgroup itself, so leading
    components are dropped until a directory exists; the mount root is the last resort.
    """
    parts = [p for p in cgroup_path.strip("/").split("/") if p and p != ".."]
    for start in range(len(parts)):
        candidate = mount.joinpath(*parts[start:])
        if candidate.is_dir():
            return candidate
    return mount


def locate_cgroup(sysfs_root: Path, proc_root: Path, pid: int) -> CgroupDirs:
    """Find the cgroup directories of process ``pid``.

    Raises:
        LookupError: no membership file or no cgroup fs; the message names the paths looked at.
    """
    membership_file = proc_root / str(pid) / "cgroup"
    cgroup_fs = sysfs_root / "fs" / "cgroup"
    try:
        membership = parse_proc_cgroup(membership_file.read_text())
    except (OSError, ValueError) as exc:
        raise LookupError(f"cannot read cgroup membership {membership_file} ({exc})") from None

    if (cgroup_fs / "cgroup.controllers").is_file() and membership.v2_path is not None:
        unified = (cgroup_fs, _resolve_dir(cgroup_fs, membership.v2_path))
        return CgroupDirs(2, membership.v2_path, unified, unified, unified, unified)

    def v1(controller: str, mount_names: tuple[str, ...]) -> tuple[Path, Path] | None:
        path = membership.v1_paths.get(controller)
        if path is None:
            return None
        for name in mount_names:
            mount = cgroup_fs / name
            if mount.is_dir():
                return mount, _resolve_dir(mount, path)
        return None

    cpu = v1("cpu", _V1_CPU_MOUNTS)
    cpuacct = v1("cpuacct", _V1_CPUACCT_MOUNTS)
    memory = v1("memory", ("memory",))
    cpuset = v1("cpuset", ("cpuset",))
    if cpu is None and cpuacct is None and memory is None:
        raise LookupError(
            f"no cgroup v2 hierarchy ({cgroup_fs}/cgroup.controllers with a '0::' line in "
            f"{membership_file}) and no cgroup v1 cpu/cpuacct/memory controller for pid {pid} "
            f"under {cgroup_fs}"
        )
    path = membership.v1_paths.get("cpu") or membership.v1_paths.get("memory") or "/"
    return CgroupDirs(1, path, cpu, cpuacct, memory, cpuset)


def _chain(controller: tuple[Path, Path]) -> Iterator[Path]:
    """The cgroup dir and its ancestors up to (and including) the mount root."""
    mount, directory = controller
    yield directory
    while directory != mount and mount in directory.parents:
        directory = directory.parent
        yield directory


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


# --------------------------------------------------------------------------- readers


class CgroupLimits(NamedTuple):
    """What a cgroup is allocated (the tightest value over its ancestors for quotas and limits).

    Attributes:
        cpu_quota_vcpus: CFS quota / period, in vCPUs, or None when unlimited.
        cpuset_cpus: number of CPUs in the effective cpuset, or None when unknown.
        cpu_request_vcpus: vCPUs requested (cpu.shares / cpu.weight, Kubernetes' encoding, read
            by the current runtime formula; or given explicitly), or None when nothing says.
        memory_limit_bytes: memory limit in bytes, or None when unlimited. Units: bytes.
        cpu_request_legacy_vcpus: the same ``cpu.weight`` read by the legacy runtime formula
            (:func:`weight_to_cpu_request`), or None (v1, no request, or an explicit request).
    """

    cpu_quota_vcpus: float | None
    cpuset_cpus: int | None
    cpu_request_vcpus: float | None
    memory_limit_bytes: int | None
    cpu_request_legacy_vcpus: float | None = None


def _read_parsed(path: Path, parse: Callable[[str], T]) -> T | None:
    """``parse`` of the file's text, or None when it is unreadable or malformed (= no limit)."""
    text = _read(path)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def _tightest(values: Iterable[N | None]) -> N | None:
    """The smallest of the limits that are set (a parent's limit caps its children)."""
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _quota_vcpus(directory: Path, version: int) -> float | None:
    """vCPUs of one cgroup's CFS quota (v2 ``cpu.max``, v1 ``cfs_quota_us``/``cfs_period_us``)."""
    if version == 2:
        parsed = _read_parsed(directory / "cpu.max", parse_cpu_max)
        quota_us, period_us = parsed if parsed is not None else (None, 0)
    else:
        quota_us = _read_parsed(directory / "cpu.cfs_quota_us", int)
        period_us = _read_parsed(directory / "cpu.cfs_period_us", int) or 0
    if quota_us is None or quota_us <= 0 or period_us <= 0:  # v1 writes -1 for "no quota"
        return None
    return quota_us / period_us


def read_limits(
    dirs: CgroupDirs, *, kubernetes: bool = False, cpu_request_vcpus: float | None = None
) -> CgroupLimits:
    """Read the CPU and memory allocation of a cgroup; unreadable files count as "no limit".

    Args:
        dirs: the cgroup's directories.
        kubernetes: whether the cgroup is a Kubernetes container's, where ``cpu.weight`` 100 and
            ``cpu.shares`` 1024 are a 1000m request rather than the kernel default.
        cpu_request_vcpus: the CPU request as the user states it (e.g. from the downward API);
            replaces what ``cpu.weight`` / ``cpu.shares`` say. Units: vCPUs.
    """
    quota: float | None = None
    request: float | None = cpu_request_vcpus
    legacy: float | None = None
    cpuset: int | None = None
    memory: int | None = None

    if dirs.cpu is not None:
        quota = _tightest(_quota_vcpus(directory, dirs.version) for directory in _chain(dirs.cpu))
        weight_file = "cpu.weight" if dirs.version == 2 else "cpu.shares"
        weight = _read_parsed(dirs.cpu[1] / weight_file, int)
        if weight is not None and request is None:
            if dirs.version == 2:
                reading = weight_to_cpu_request(weight, kubernetes=kubernetes)
                request, legacy = reading.vcpus, reading.legacy_vcpus
            else:
                request = shares_to_vcpus(weight, kubernetes=kubernetes)

    if dirs.cpuset is not None:
        names = (
            ("cpuset.cpus.effective",)
            if dirs.version == 2
            else ("cpuset.effective_cpus", "cpuset.cpus")
        )
        for name in names:
            cpus = _read_parsed(dirs.cpuset[1] / name, parse_cpu_list)
            if cpus:
                cpuset = len(cpus)
                break

    if dirs.memory is not None:
        file_name = "memory.max" if dirs.version == 2 else "memory.limit_in_bytes"
        memory = _tightest(
            _read_parsed(directory / file_name, parse_memory_limit)
            for directory in _chain(dirs.memory)
        )

    return CgroupLimits(
        cpu_quota_vcpus=quota,
        cpuset_cpus=cpuset,
        cpu_request_vcpus=request,
        memory_limit_bytes=memory,
        cpu_request_legacy_vcpus=legacy,
    )


def read_cpu_usage_s(dirs: CgroupDirs) -> float:
    """Cumulative CPU time of the cgroup (all its tasks, user + system). Units: CPU-seconds.

    v2: ``cpu.stat`` ``usage_usec``; v1: ``cpuacct.usage`` (ns).

    Raises:
        OSError: the file vanished or the controller is not mounted.
        ValueError: the file is malformed.
    """
    if dirs.version == 2:
        assert dirs.cpu is not None
        path = dirs.cpu[1] / "cpu.stat"
        stat = parse_flat_keyed(path.read_text())
        if "usage_usec" not in stat:
            raise ValueError(f"{path} has no usage_usec line")
        return stat["usage_usec"] / 1e6
    if dirs.cpuacct is None:
        raise FileNotFoundError("cgroup v1 cpuacct controller is not mounted")
    return int((dirs.cpuacct[1] / "cpuacct.usage").read_text()) / 1e9


def read_memory_working_set_bytes(dirs: CgroupDirs) -> int:
    """Memory in use by the cgroup: usage minus inactive file cache (cAdvisor's working set).

    Reclaimable page cache is left out because the kernel drops it before it would OOM-kill the
    container; this is the figure ``kubectl top`` shows. Units: bytes.

    Raises:
        OSError: the file vanished or the controller is not mounted.
        ValueError: the file is malformed.
    """
    if dirs.memory is None:
        raise FileNotFoundError("memory controller is not mounted")
    own = dirs.memory[1]
    if dirs.version == 2:
        usage = int((own / "memory.current").read_text())
        inactive_key = "inactive_file"
    else:
        usage = int((own / "memory.usage_in_bytes").read_text())
        inactive_key = "total_inactive_file"
    stat_text = _read(own / "memory.stat")
    inactive = parse_flat_keyed(stat_text).get(inactive_key, 0) if stat_text else 0
    return usage - inactive if 0 <= inactive <= usage else usage


def effective_vcpus(limits: CgroupLimits, host_cpus: int) -> tuple[float, str]:
    """vCPUs a cgroup may use, and which setting gave the number.

    Quota (capped by the cpuset and the host) first; then a cpuset narrower than the host; then
    the CPU request; finally the host's CPU count (source ``"host"``).
    """
    ceiling = float(host_cpus)
    if limits.cpuset_cpus is not None:
        ceiling = min(ceiling, float(limits.cpuset_cpus))
    if limits.cpu_quota_vcpus is not None:
        return min(limits.cpu_quota_vcpus, ceiling), "cpu-quota"
    if limits.cpuset_cpus is not None and limits.cpuset_cpus < host_cpus:
        return ceiling, "cpuset"
    if limits.cpu_request_vcpus is not None:
        return min(limits.cpu_request_vcpus, ceiling), "cpu-request"
    return ceiling, "host"


def has_allocation(limits: CgroupLimits, host_cpus: int, host_memory_bytes: int) -> bool:
    """True when the cgroup is narrower than the host: a CPU quota, a smaller cpuset, a CPU
    request, or a memory limit below the host's memory."""
    return (
        limits.cpu_quota_vcpus is not None
        or (limits.cpuset_cpus is not None and limits.cpuset_cpus < host_cpus)
        or limits.cpu_request_vcpus is not None
        or (limits.memory_limit_bytes is not None and limits.memory_limit_bytes < host_memory_bytes)
    )
