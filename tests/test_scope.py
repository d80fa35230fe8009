"""Scope resolution on fake cgroup / proc trees, and process-tree accounting on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp import errors
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.sensors import scope as scope_module
from carbon_kfp.sensors.proctree import TreeUsage
from carbon_kfp.sensors.scope import (
    BYTES_PER_GIB,
    ContainerScope,
    MachineScope,
    ProcessScope,
    cpu_request_vcpus,
    parse_meminfo,
    parse_proc_stat,
    read_host_cpu_times,
    resolve_scope,
)
from tests.fakes_sysfs import GIB, FakeHost


@pytest.fixture(autouse=True)
def fresh_warn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_seen", set())


def resolve(host: FakeHost, requested: str = "auto", pid: int | None = None):  # type: ignore[no-untyped-def]
    return resolve_scope(
        requested,
        sysfs_root=host.sysfs_root,
        proc_root=host.proc_root,
        pid=host.pid if pid is None else pid,
    )


# --------------------------------------------------------------------------- /proc parsers


@given(
    ticks=st.lists(st.integers(0, 10**12), min_size=10, max_size=10),
    cpus=st.integers(1, 512),
    hz=st.sampled_from([100, 250, 1000]),
)
def test_proc_stat_busy_and_total(ticks: list[int], cpus: int, hz: int) -> None:
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]
    text = "cpu  " + " ".join(map(str, ticks)) + "\n"
    text += "".join(f"cpu{i} 1 2 3 4\n" for i in range(cpus)) + "intr 5\n"
    times = parse_proc_stat(text, hz)
    assert times.cpus == cpus
    assert times.busy_s == pytest.approx((user + nice + system + irq + softirq) / hz)
    assert times.total_s == pytest.approx(sum(ticks[:8]) / hz)
    assert 0 <= times.busy_s <= times.total_s


def test_proc_stat_without_cpu_line_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1\n", 100)


def test_meminfo_in_bytes() -> None:
    info = parse_meminfo("MemTotal:       16384 kB\nHugePages_Total:       0\nbad\n")
    assert info == {"MemTotal": 16 * 2**20, "HugePages_Total": 0}


# --------------------------------------------------------------------------- resolution


def test_v2_container_2_vcpus_4_gib_of_a_big_host(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)
    host.add_cgroup_v2(cpu_max="200000 100000", memory_max=4 * GIB)
    scope = resolve(host)
    assert isinstance(scope, ContainerScope)
    assert scope.kind == "container"
    assert scope.vcpus == 2.0
    assert scope.memory_gib == 4.0  # GiB: a 4 GiB limit reads 4
    assert BYTES_PER_GIB == 2**30
    assert scope.memory_source == "cgroup-limit"
    assert scope.host_cpus == 64
    assert "cgroup v2" in scope.detail and "cpu-quota" in scope.detail


def test_v1_container_2_vcpus_4_gib_of_a_big_host(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)
    ctr = host.add_cgroup_v1(cfs_quota_us=200_000, memory_limit_bytes=4 * GIB)
    scope = resolve(host)
    assert scope.kind == "container"
    assert (scope.vcpus, scope.memory_gib, scope.memory_source) == (2.0, 4.0, "cgroup-limit")
    ctr.set_cpu_usage_s(7.5)
    ctr.set_memory_usage(GIB)
    assert scope.cpu_time_s() == 7.5
    assert scope.memory_used_gib() == 1.0
    assert scope.memory_gib == 4.0  # the limit, not the use


def test_quota_is_capped_by_the_cpuset(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2(cpu_max="800000 100000", cpuset_cpus="0-3")
    assert resolve(host).vcpus == 4.0


def test_request_only_pod_is_a_container_with_its_request(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2(cpu_weight=59)  # a 500m request as runc >= 1.3.2 writes it
    scope = resolve(host)
    assert scope.kind == "container"
    assert scope.vcpus == pytest.approx(0.5, rel=0.02)
    assert "cpu-request" in scope.detail


@pytest.mark.parametrize(("weight", "current", "legacy"), [(174, 2.0, 4.43), (79, 0.73, 2.0)])
def test_a_request_read_two_ways_carries_both(
    tmp_path: Path, weight: int, current: float, legacy: float
) -> None:
    """2000m is weight 174 now and 79 before runc 1.3.2: a weight alone cannot say which, so the
    current reading is used and the range spans the legacy one, with a note."""
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2(cpu_weight=weight)
    scope = resolve(host)
    assert scope.vcpus == pytest.approx(current, abs=0.01)
    assert scope.vcpus_range == pytest.approx((current, legacy), abs=0.01)
    [note] = scope.notes
    assert "CARBON_KFP_CPU_REQUEST_MILLICORES" in note and "cpu_request_millicores" in note


@pytest.mark.parametrize("weight", [174, 79])
def test_request_equal_to_limit_is_unchanged(tmp_path: Path, weight: int) -> None:
    """A Guaranteed-style pod (request = limit = 2000m) is sized by its quota, whichever
    runtime wrote the weight: no range, no note."""
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2(cpu_max="200000 100000", cpu_weight=weight)
    scope = resolve(host)
    assert (scope.vcpus, scope.vcpus_range, scope.notes) == (2.0, (2.0, 2.0), ())


def test_stated_request_removes_the_doubt(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2(cpu_weight=79)
    scope = resolve_scope("auto", **host.roots(), cpu_request_vcpus=cpu_request_vcpus("2000"))
    assert (scope.vcpus, scope.vcpus_range, scope.notes) == (2.0, (2.0, 2.0), ())


@pytest.mark.parametrize("bad", ["2", "2.5", "-100", "", "0", 0, 1.5, True, None])
def test_stated_request_must_be_whole_millicores(bad: object) -> None:
    if bad == "2":
        assert cpu_request_vcpus(bad) == 0.002  # millicores, as the downward API with 1m writes
        return
    with pytest.raises(ConfigError, match=r"cpu_request_millicores=.*millicores > 0"):
        cpu_request_vcpus(bad)


def test_memory_limit_above_host_uses_the_working_set(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=16 * GIB)
    ctr = host.add_cgroup_v2(cpu_max="100000 100000", memory_max=64 * GIB)
    ctr.set_memory_usage(2 * GIB, inactive_file_bytes=GIB)
    scope = resolve(host)
    assert scope.memory_source == "cgroup-usage"
    assert scope.memory_gib == 1.0  # never the host's 16 GiB
    ctr.set_memory_usage(3 * GIB)
    assert scope.memory_used_gib() == 3.0
    assert scope.memory_gib == 3.0


def test_unlimited_cgroup_resolves_to_the_process(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=64, pid=os.getpid())
    host.add_cgroup_v2()
    scope = resolve(host)
    assert isinstance(scope, ProcessScope)
    assert scope.memory_source == "process-rss"


def test_explicit_container_without_limits_notes_the_host_cpus(tmp_path: Path) -> None:
    """The note goes to the record (through the CPU sensor), not only to the log."""
    from carbon_kfp.sensors.cpu import CpuSensor

    host = FakeHost(tmp_path, cpus=64)
    host.add_cgroup_v2()
    scope = resolve(host, "container")
    assert scope.kind == "container" and scope.vcpus == 64
    [note] = scope.notes
    assert "all 64 host CPUs" in note
    with pytest.warns(CarbonKfpWarning, match="all 64 host CPUs"):
        sensor = CpuSensor(scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root)
    assert sensor.warnings() == (note,)


def test_no_cgroup_is_process_for_auto_and_an_error_for_container(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, pid=os.getpid())
    assert resolve(host).kind == "process"
    with pytest.raises(ConfigError, match=r"fs/cgroup"):
        resolve(host, "container")


def test_unknown_scope_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="auto, container, process, machine"):
        resolve_scope("contianer", sysfs_root=tmp_path, proc_root=tmp_path)
    with pytest.raises(ConfigError, match="closest valid: container"):
        resolve_scope("contianer", sysfs_root=tmp_path, proc_root=tmp_path)


def test_missing_process_is_a_lookup_error_naming_the_pid(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    with pytest.raises(ProcessLookupError, match=f"no process with pid {2**22 + 12345}"):
        resolve(host, "process", pid=2**22 + 12345)


def test_machine_scope_reads_the_host(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, cpus=8, memory_bytes=32 * GIB)
    host.set_host_cpu_seconds(10.0, idle_s=70.0)
    scope = resolve(host, "machine")
    assert isinstance(scope, MachineScope)
    assert (scope.vcpus, scope.memory_gib, scope.memory_source) == (8.0, 32.0, "host-total")
    assert scope.cpu_time_s() == pytest.approx(10.0)
    host.add_host_cpu_seconds(2.5)
    assert scope.cpu_time_s() == pytest.approx(12.5)
    assert scope.memory_used_gib() == pytest.approx(16.0)


def test_real_host_figures_are_sane() -> None:
    times = read_host_cpu_times()
    assert times.cpus >= 1 and 0 <= times.busy_s <= times.total_s
    scope = resolve_scope("auto")
    assert scope.kind in ("container", "process")
    assert scope.vcpus >= 1 or scope.kind == "container"


# --------------------------------------------------------------------------- process tree

BUSY_CHILD = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_process_tree_counts_reaped_children_and_never_decreases() -> None:
    scope = resolve_scope("process")
    assert isinstance(scope, ProcessScope)
    before = scope.cpu_time_s()
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD.format(s=0.3)])
    readings = []
    while child.poll() is None:
        readings.append(scope.cpu_time_s())
    readings.append(scope.cpu_time_s())  # after the child was reaped into children_user
    assert readings == sorted(readings)
    assert readings[-1] - before >= 0.3


def test_process_rss_is_the_tree_not_the_host() -> None:
    scope = resolve_scope("process")
    used = scope.memory_used_gib()
    assert 0.001 < used < 4.0
    assert scope.memory_gib == used


def test_cpu_then_memory_on_one_tick_walk_the_tree_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = ProcessScope(os.getpid(), host_cpus=2)
    walks = []
    walk = scope._tree.usage

    def counted_walk() -> TreeUsage:
        walks.append(1)
        return walk()

    monkeypatch.setattr(scope._tree, "usage", counted_walk)
    scope.cpu_time_s()
    scope.memory_used_gib()
    assert len(walks) == 1  # the CPU sensor's walk answered the RAM sensor
    scope.memory_used_gib()
    assert len(walks) == 2  # once only
    scope.cpu_time_s()
    scope.cpu_time_s()
    assert len(walks) == 4  # CPU time, cumulative, always walks
    monkeypatch.setattr(scope_module, "SHARED_WALK_S", -1.0)
    scope.cpu_time_s()
    scope.memory_used_gib()
    assert len(walks) == 6  # a walk older than SHARED_WALK_S answers nothing more


def test_process_scope_of_a_vanished_process_raises_oserror() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    scope = ProcessScope(child.pid, host_cpus=2)
    child.wait()
    with pytest.raises(OSError):
        scope.cpu_time_s()
