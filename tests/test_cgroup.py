"""cgroup v1 / v2: exhaustive tests of the parsers, real-file tests of location and limits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.sensors import cgroup
from carbon_kfp.sensors.cgroup import (
    CgroupLimits,
    WeightReading,
    effective_vcpus,
    has_allocation,
    locate_cgroup,
    parse_cpu_list,
    parse_cpu_max,
    parse_flat_keyed,
    parse_memory_limit,
    parse_proc_cgroup,
    read_cpu_usage_s,
    read_limits,
    read_memory_working_set_bytes,
    weight_to_cpu_request,
)
from tests.fakes_sysfs import GIB, FakeHost

# --------------------------------------------------------------------------- parsers


def format_cpu_list(cpus: frozenset[int] | set[int]) -> str:
    """Compact kernel form of a CPU set, for generated inputs: {0,1,2,3,8} -> "0-3,8"."""
    ordered = sorted(cpus)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@given(st.frozensets(st.integers(0, 4095), max_size=200))
def test_cpu_list_round_trips(cpus: frozenset[int]) -> None:
    assert parse_cpu_list(format_cpu_list(cpus)) == cpus


@pytest.mark.parametrize(
    ("text", "count"), [("0-63\n", 64), ("0-3,8,10-11", 7), ("5", 1), ("", 0), ("0,0-1", 2)]
)
def test_cpu_list_examples(text: str, count: int) -> None:
    assert len(parse_cpu_list(text)) == count


@pytest.mark.parametrize("text", ["3-1", "a", "1-", "-1"])
def test_cpu_list_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cpu_list(text)


@given(quota=st.integers(1, 10**9), period=st.integers(1, 10**7))
def test_cpu_max_round_trips(quota: int, period: int) -> None:
    assert parse_cpu_max(f"{quota} {period}\n") == (quota, period)
    assert parse_cpu_max(f"max {period}") == (None, period)


@pytest.mark.parametrize("text", ["", "1 2 3", "0 100000", "200000 0", "x 100000"])
def test_cpu_max_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cpu_max(text)


def test_cpu_max_without_period_uses_the_kernel_default() -> None:
    assert parse_cpu_max("max") == (None, 100_000)


@given(st.integers(0, 2**62 - 1))
def test_memory_limit_values(limit: int) -> None:
    assert parse_memory_limit(f"{limit}\n") == limit


@pytest.mark.parametrize("text", ["max\n", "9223372036854771712", "9223372036854775807"])
def test_memory_limit_unlimited(text: str) -> None:
    assert parse_memory_limit(text) is None


def test_proc_cgroup_v1_and_v2_lines() -> None:
    text = "12:memory:/kubepods/a\n4:cpu,cpuacct:/kubepods/b\n1:name=systemd:/x\n0::/unified\n"
    membership = parse_proc_cgroup(text)
    assert membership.v2_path == "/unified"
    assert membership.v1_paths["memory"] == "/kubepods/a"
    assert membership.v1_paths["cpu"] == membership.v1_paths["cpuacct"] == "/kubepods/b"
    with pytest.raises(ValueError):
        parse_proc_cgroup("garbage\n")


def test_paths_with_colons_survive() -> None:
    assert parse_proc_cgroup("0::/a:b/c\n").v2_path == "/a:b/c"


def test_flat_keyed_skips_noise() -> None:
    assert parse_flat_keyed("usage_usec 12\nnr_periods x\n\nsome 1 2\n") == {"usage_usec": 12}


def runc_weight(shares: int) -> int:
    """cpu.weight as runc >= 1.3.2 and crun >= 1.23 write it (runc pull request 4785)."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    log2 = math.log2(shares)
    return math.ceil(10 ** ((log2 * log2 + 125 * log2) / 612.0 - 7.0 / 34.0))


def legacy_weight(shares: int) -> int:
    """cpu.weight as older runc (and kubelet's helper) wrote it, in integer arithmetic."""
    return 1 + ((shares - 2) * 9999) // 262142


def kubelet_shares(millicores: int) -> int:
    return max(2, millicores * 1024 // 1000)


REQUESTS_M = [100, 250, 500, 1000, 1500, 2000, 4000, 8000]


def test_the_reference_formulas_give_the_weights_the_issue_names() -> None:
    assert (runc_weight(1024), runc_weight(2048)) == (100, 174)
    assert (legacy_weight(1024), legacy_weight(2048)) == (39, 79)


@pytest.mark.parametrize("millicores", REQUESTS_M)
def test_weight_table_current_runtimes(millicores: int) -> None:
    """runc >= 1.3.2 / crun >= 1.23: the preferred reading is the request (1000m is weight
    100, which is not "no request" in a Kubernetes container)."""
    reading = weight_to_cpu_request(runc_weight(kubelet_shares(millicores)), kubernetes=True)
    assert reading.vcpus == pytest.approx(millicores / 1000, rel=0.05)
    assert reading.legacy_vcpus is not None and reading.legacy_vcpus > reading.vcpus


@pytest.mark.parametrize("millicores", REQUESTS_M)
def test_weight_table_legacy_runtimes(millicores: int) -> None:
    """Older runtimes: the legacy reading is the request, and the two readings bracket it."""
    reading = weight_to_cpu_request(legacy_weight(kubelet_shares(millicores)), kubernetes=True)
    assert reading.vcpus is not None and reading.legacy_vcpus is not None
    assert reading.legacy_vcpus == pytest.approx(millicores / 1000, abs=0.03)
    assert reading.vcpus < millicores / 1000 < reading.legacy_vcpus + 0.03


@given(millicores=st.integers(100, 256_000))
def test_current_formula_inverts_within_5_percent(millicores: int) -> None:
    reading = weight_to_cpu_request(runc_weight(kubelet_shares(millicores)), kubernetes=True)
    assert reading.vcpus == pytest.approx(millicores / 1000, rel=0.05)


def test_weight_100_and_shares_1024_are_requests_only_in_kubernetes() -> None:
    assert weight_to_cpu_request(100, kubernetes=False) == WeightReading(None, None)
    assert weight_to_cpu_request(100, kubernetes=True).vcpus == pytest.approx(1.0, rel=0.01)
    assert cgroup.shares_to_vcpus(1024, kubernetes=False) is None
    assert cgroup.shares_to_vcpus(1024, kubernetes=True) == 1.0


@given(
    quota=st.one_of(st.none(), st.floats(0.01, 512)),
    cpuset=st.one_of(st.none(), st.integers(1, 512)),
    request=st.one_of(st.none(), st.floats(0.01, 512)),
    host=st.integers(1, 512),
)
def test_effective_vcpus_never_exceeds_the_host_or_the_cpuset(
    quota: float | None, cpuset: int | None, request: float | None, host: int
) -> None:
    vcpus, source = effective_vcpus(CgroupLimits(quota, cpuset, request, None), host)
    assert 0 < vcpus <= host
    if cpuset is not None:
        assert vcpus <= cpuset
    if quota is not None:
        assert source == "cpu-quota" and vcpus <= quota


def test_no_request_encodings_are_not_requests() -> None:
    for kubernetes in (True, False):
        assert cgroup.shares_to_vcpus(2, kubernetes=kubernetes) is None
        assert cgroup.shares_to_vcpus(512, kubernetes=kubernetes) == 0.5
        assert weight_to_cpu_request(1, kubernetes=kubernetes) == WeightReading(None, None)


def test_has_allocation() -> None:
    none = CgroupLimits(None, 64, None, None)
    assert not has_allocation(none, 64, 256 * GIB)
    assert has_allocation(CgroupLimits(2.0, 64, None, None), 64, 256 * GIB)
    assert has_allocation(CgroupLimits(None, 8, None, None), 64, 256 * GIB)
    assert has_allocation(CgroupLimits(None, None, 0.5, None), 64, 256 * GIB)
    assert has_allocation(CgroupLimits(None, None, None, 4 * GIB), 64, 256 * GIB)
    assert not has_allocation(CgroupLimits(None, None, None, 300 * GIB), 64, 256 * GIB)


# --------------------------------------------------------------------------- real files


def test_v2_location_limits_and_usage(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    ctr = host.add_cgroup_v2(cpu_max="200000 100000", memory_max=4 * GIB, cpu_weight=79)
    dirs = locate_cgroup(host.sysfs_root, host.proc_root, host.pid)
    assert dirs.version == 2 and dirs.path == "/kubepods/pod1/ctr"
    assert dirs.cpu is not None and dirs.cpu[1] == ctr.dirs["cpu"]
    limits = read_limits(dirs)
    assert limits.cpu_quota_vcpus == 2.0
    assert limits.cpuset_cpus == 64
    assert limits.memory_limit_bytes == 4 * GIB
    assert limits.cpu_request_vcpus == pytest.approx(0.73, abs=0.01)  # 79: current formula
    assert limits.cpu_request_legacy_vcpus == pytest.approx(2.0, abs=0.03)  # 79: legacy formula
    stated = read_limits(dirs, cpu_request_vcpus=1.5)
    assert (stated.cpu_request_vcpus, stated.cpu_request_legacy_vcpus) == (1.5, None)
    ctr.set_cpu_usage_s(12.5)
    ctr.set_memory_usage(3 * GIB, inactive_file_bytes=GIB)
    assert read_cpu_usage_s(dirs) == 12.5
    assert read_memory_working_set_bytes(dirs) == 2 * GIB


def test_v1_location_limits_and_usage(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    ctr = host.add_cgroup_v1(cfs_quota_us=200_000, memory_limit_bytes=4 * GIB)
    dirs = locate_cgroup(host.sysfs_root, host.proc_root, host.pid)
    assert dirs.version == 1
    limits = read_limits(dirs)
    assert limits.cpu_quota_vcpus == 2.0
    assert limits.memory_limit_bytes == 4 * GIB
    assert limits.cpu_request_vcpus is None  # shares 2: kubelet's value without a request
    ctr.set_cpu_usage_s(3.25)
    ctr.set_memory_usage(GIB, inactive_file_bytes=GIB // 4)
    assert read_cpu_usage_s(dirs) == 3.25
    assert read_memory_working_set_bytes(dirs) == GIB * 3 // 4


def test_v1_unlimited_is_no_limit(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v1()
    limits = read_limits(locate_cgroup(host.sysfs_root, host.proc_root, host.pid))
    assert limits == CgroupLimits(None, 64, None, None)


def test_parent_limit_is_the_tighter_one(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2(
        cpu_max="400000 100000",
        memory_max=8 * GIB,
        parent_cpu_max="150000 100000",  # pod-level limit below the container's
        parent_memory_max=6 * GIB,
    )
    limits = read_limits(locate_cgroup(host.sysfs_root, host.proc_root, host.pid))
    assert limits.cpu_quota_vcpus == 1.5
    assert limits.memory_limit_bytes == 6 * GIB


def test_container_without_cgroup_namespace_finds_its_mount_root(tmp_path: Path) -> None:
    """Docker without cgroupns: /proc/self/cgroup says /docker/<id>, but the container's own
    cgroup is mounted at the root of <sysfs_root>/fs/cgroup."""
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2("/", cpu_max="100000 100000")
    (host.proc_root / str(host.pid) / "cgroup").write_text("0::/docker/0123abcd\n")
    dirs = locate_cgroup(host.sysfs_root, host.proc_root, host.pid)
    assert dirs.cpu is not None and dirs.cpu[1] == host.sysfs_root / "fs" / "cgroup"
    assert read_limits(dirs).cpu_quota_vcpus == 1.0


def test_no_cgroup_is_a_lookup_error_naming_the_paths(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    with pytest.raises(LookupError, match=r"fs/cgroup"):
        locate_cgroup(host.sysfs_root, host.proc_root, host.pid)
    with pytest.raises(LookupError, match=r"/999999/cgroup"):
        locate_cgroup(host.sysfs_root, host.proc_root, 999_999)


def test_vanished_cgroup_raises_oserror(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    ctr = host.add_cgroup_v2(cpu_max="200000 100000")
    dirs = locate_cgroup(host.sysfs_root, host.proc_root, host.pid)
    (ctr.dirs["cpu"] / "cpu.stat").unlink()
    with pytest.raises(OSError):
        read_cpu_usage_s(dirs)


def test_this_machine_is_readable() -> None:
    """Whatever this host runs (v1, v2, hybrid or none), reading it must not raise."""
    import os

    try:
        dirs = locate_cgroup(Path("/sys"), Path("/proc"), os.getpid())
    except LookupError:
        return
    limits = read_limits(dirs)
    assert limits.cpu_quota_vcpus is None or limits.cpu_quota_vcpus > 0
    assert cgroup.V1_UNLIMITED_BYTES > 2**61
