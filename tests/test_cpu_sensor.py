"""CPU sensor: CPU identification and coefficients, the share rule, model energy on fake
cgroups, and a real CPU-bound subprocess measured on the process scope."""

from __future__ import annotations

import functools
import math
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon_kfp import errors, tables
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.sensors import cpu as cpu_module
from carbon_kfp.sensors.cpu import CpuSensor, scope_share
from carbon_kfp.sensors.cpuinfo import (
    TDP_IDLE_FRACTION,
    CpuInfo,
    ccf_table,
    cpu_power_model,
    microarchitecture,
    normalize_model_name,
    parse_cpuinfo,
    provider_fallback,
    tdp_watts,
)
from carbon_kfp.sensors.scope import Scope, ScopeKind, resolve_scope
from tests.fakes_sysfs import (
    GCP_EPYC_ROME,
    GIB,
    UNKNOWN_CPU,
    CpuInfoSpec,
    FakeHost,
    FakeRaplCounter,
)

T = TypeVar("T")


@pytest.fixture(autouse=True)
def fresh_warn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_seen", set())


class FakeClock:
    """Stands in for the ``time`` module of carbon_kfp.sensors.cpu: time moves only when told."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def monotonic(self) -> float:
        return self.now_s


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(cpu_module, "time", fake)
    return fake


class FakeScope(Scope):
    """A scope whose CPU time the test sets (``cpu_s``)."""

    def __init__(self, kind: ScopeKind = "process", vcpus: float = 2.0, host_cpus: int = 2):
        super().__init__()
        self.kind = kind
        self.vcpus = vcpus
        self.host_cpus = host_cpus
        self.memory_source = "process-rss"
        self.detail = "fake"
        self.cpu_s = 0.0

    def cpu_time_s(self) -> float:
        return self.cpu_s

    def memory_used_gib(self) -> float:
        return self._memory_gib


# --------------------------------------------------------------------------- identification


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("AMD EPYC 7B12", "EPYC 2nd Gen"),
        ("AMD EPYC 7B12 64-Core Processor", "EPYC 2nd Gen"),
        ("AMD EPYC 7B13", "EPYC 3rd Gen"),
        ("AMD EPYC 9B14", "EPYC 4th Gen"),
        ("AMD EPYC 7571", "EPYC 1st Gen"),
        ("AMD EPYC 9R45", "EPYC 5th Gen"),
        ("Intel(R) Xeon(R) Platinum 8273CL CPU @ 2.20GHz", "Cascade Lake"),
        ("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", "Cascade Lake"),
        ("Intel(R) Xeon(R) Platinum 8373C CPU @ 2.60GHz", "Ice Lake"),
        ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "Ice Lake"),
        ("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "Sapphire Rapids"),
        ("Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz", "Emerald Rapids"),
        ("Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz", "Skylake"),
        ("Intel(R) Xeon(R) Platinum 8380H CPU @ 2.90GHz", "Cascade Lake"),  # Cooper Lake
        ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", "Broadwell"),
        ("Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz", "Haswell"),
        ("Intel(R) Xeon(R) CPU E5-2670 v2 @ 2.50GHz", "Ivy Bridge"),
        ("Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz", "Sandy Bridge"),
        ("Intel(R) Xeon(R) E-2176G CPU @ 3.70GHz", "Coffee Lake"),
        ("Intel(R) Xeon(R) 6985P-C", "Granite Rapids"),
        ("Imaginary CPU 9000", None),
    ],
)
def test_microarchitecture_from_model_name(model_name: str, expected: str | None) -> None:
    assert microarchitecture(CpuInfo(model_name=model_name)) == expected


@pytest.mark.parametrize(
    ("model", "stepping", "expected"),
    [
        (85, 7, "Cascade Lake"),
        (85, 5, "Cascade Lake"),
        (85, 4, "Skylake"),
        (85, 3, "Skylake"),
        (79, 1, "Broadwell"),
        (63, 0, "Haswell"),
        (62, 4, "Ivy Bridge"),
        (45, 7, "Sandy Bridge"),
        (106, 6, "Ice Lake"),
        (143, 8, "Sapphire Rapids"),
        (207, 2, "Emerald Rapids"),
        (173, 1, "Granite Rapids"),
        (1, 1, None),
    ],
)
def test_gcp_generic_xeon_by_family_model_stepping(
    model: int, stepping: int, expected: str | None
) -> None:
    info = CpuInfo("Intel(R) Xeon(R) CPU @ 2.20GHz", "GenuineIntel", 6, model, stepping, 2)
    assert microarchitecture(info) == expected


@pytest.mark.parametrize(
    ("family", "model", "expected"),
    [
        (23, 1, "EPYC 1st Gen"),
        (23, 49, "EPYC 2nd Gen"),
        (25, 1, "EPYC 3rd Gen"),
        (25, 17, "EPYC 4th Gen"),
        (25, 160, "EPYC 4th Gen"),
        (26, 2, "EPYC 5th Gen"),
    ],
)
def test_generic_amd_by_family_model(family: int, model: int, expected: str) -> None:
    assert (
        microarchitecture(CpuInfo("AMD EPYC Processor", "AuthenticAMD", family, model)) == expected
    )


def test_parse_cpuinfo_first_block() -> None:
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
        "model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nstepping\t: 7\nsiblings\t: 4\n\n"
        "processor\t: 1\nmodel name\t: something else\n"
    )
    assert parse_cpuinfo(text) == CpuInfo(
        "Intel(R) Xeon(R) CPU @ 2.20GHz", "GenuineIntel", 6, 85, 7, 4
    )
    assert parse_cpuinfo("") == CpuInfo()


@given(st.text(max_size=300))
def test_parse_cpuinfo_never_raises(text: str) -> None:
    info = parse_cpuinfo(text)
    microarchitecture(info)  # nor does identification


def test_model_name_normalisation_matches_codecarbon_names() -> None:
    assert normalize_model_name("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz") == (
        "intel xeon platinum 8280"
    )
    assert normalize_model_name("AMD EPYC 7B12 64-Core Processor") == "amd epyc 7b12"


# --------------------------------------------------------------------------- coefficients


def test_ccf_coefficients_by_provider() -> None:
    info = CpuInfo("Intel(R) Xeon(R) CPU @ 2.20GHz", "GenuineIntel", 6, 85, 7, 64)
    gcp = cpu_power_model(info, "gcp")
    aws = cpu_power_model(info, "aws")
    assert gcp.kind == aws.kind == "ccf"
    assert (gcp.min_w_per_vcpu, gcp.max_w_per_vcpu) == ccf_table("gcp")["Cascade Lake"]
    assert aws.max_w_per_vcpu > gcp.max_w_per_vcpu  # GCP's max has the memory share removed
    assert gcp.source == "ccf gcp Cascade Lake 0.69-3.75 W/vCPU"


def test_architecture_missing_from_gcp_uses_the_aws_row_labelled() -> None:
    model = cpu_power_model(CpuInfo("Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz"), "gcp")
    assert model.kind == "ccf"
    assert model.source.startswith("ccf aws Haswell")


def test_tdp_per_thread_for_a_known_model_without_ccf_row() -> None:
    # EPYC 5th Gen's CCF row is distrusted (PROVENANCE §7b); the 9655 is in cpu_power.csv.
    info = CpuInfo("AMD EPYC 9655 96-Core Processor", "AuthenticAMD", 26, 2, 1, 192)
    model = cpu_power_model(info)
    assert model.kind == "tdp"
    assert model.max_w_per_vcpu == pytest.approx(400 / 192)
    assert model.min_w_per_vcpu == pytest.approx(TDP_IDLE_FRACTION * 400 / 192)


@functools.cache
def full_tdp_table() -> dict[str, float]:
    """Every row normalised: the table the one-key lookup must agree with."""
    table: dict[str, float] = {}
    for row in tables.read_rows("codecarbon/cpu_power.csv"):
        key = normalize_model_name(row["Name"])
        try:
            tdp = float(row["TDP"])
        except ValueError:
            continue
        if key and key not in table and math.isfinite(tdp) and tdp > 0:
            table[key] = tdp
    return table


def test_no_row_is_filtered_out_of_its_own_lookup() -> None:
    """The lookup for a key parses only lines holding the key's longest word: every row's line
    holds the longest word of its own normalised name."""
    lines = tables.read_text("codecarbon/cpu_power.csv").splitlines()
    for number, row in tables.read_rows_matching("codecarbon/cpu_power.csv", re.compile(r"\S")):
        key = normalize_model_name(row["Name"])
        if key:
            line = lines[number - 1]
            assert re.search(re.escape(max(key.split(), key=len)), line, re.IGNORECASE), line


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from([row["Name"] for row in tables.read_rows("codecarbon/cpu_power.csv")])
    | st.text(max_size=30)
)
def test_tdp_lookup_agrees_with_the_whole_table(name: str) -> None:
    key = normalize_model_name(name)
    assert tdp_watts(name) == (full_tdp_table().get(key) if key else None)


def test_tdp_idle_fraction_is_the_median_ccf_gcp_ratio() -> None:
    ratios = [low / high for low, high in ccf_table("gcp").values()]
    assert abs(TDP_IDLE_FRACTION - statistics.median(ratios)) < 0.005


@pytest.mark.parametrize("provider", ["gcp", "aws", "azure"])
def test_unknown_cpu_uses_the_provider_fallback(provider: str) -> None:
    model = cpu_power_model(CpuInfo("Imaginary CPU 9000"), provider)
    assert model.kind == "fallback"
    assert (model.min_w_per_vcpu, model.max_w_per_vcpu) == provider_fallback(provider)
    assert "not recognised" in model.source


def test_fallback_values_are_ccfs() -> None:
    assert provider_fallback("gcp") == (0.68, 4.11)
    assert provider_fallback("aws") == (0.74, 3.5)


def test_unknown_provider_is_a_config_error(tmp_path: Path) -> None:
    scope = resolve_scope("machine", proc_root=FakeHost(tmp_path).proc_root)
    with pytest.raises(ConfigError, match="gcp, aws, azure"):
        CpuSensor(scope, cloud_provider="gpc")


# --------------------------------------------------------------------------- share rule

shares = st.floats(0, 1e4, allow_nan=False)


@given(
    scope_busy=shares,
    host_busy=shares,
    wall=shares,
    vcpus=st.floats(0, 512),
    host_cpus=st.integers(1, 512),
    low=st.floats(0, 10),
    extra=st.floats(0, 10),
)
def test_share_is_a_fraction(
    scope_busy: float,
    host_busy: float,
    wall: float,
    vcpus: float,
    host_cpus: int,
    low: float,
    extra: float,
) -> None:
    share = scope_share(
        scope_busy_s=scope_busy,
        host_busy_s=host_busy,
        wall_s=wall,
        scope_vcpus=vcpus,
        host_cpus=host_cpus,
        min_w_per_vcpu=low,
        max_w_per_vcpu=low + extra,
    )
    assert 0.0 <= share <= 1.0


@given(
    host_busy=st.floats(0, 1e4),
    wall=st.floats(0, 1e4),
    host_cpus=st.integers(1, 512),
    low=st.floats(0.01, 10),
    extra=st.floats(0, 10),
)
def test_the_whole_host_gets_everything(
    host_busy: float, wall: float, host_cpus: int, low: float, extra: float
) -> None:
    share = scope_share(
        scope_busy_s=host_busy,
        host_busy_s=host_busy,
        wall_s=wall,
        scope_vcpus=host_cpus,
        host_cpus=host_cpus,
        min_w_per_vcpu=low,
        max_w_per_vcpu=low + extra,
    )
    assert share == pytest.approx(1.0)


@given(
    busy_a=st.floats(0, 100),
    busy_b=st.floats(0, 100),
    host_busy=st.floats(100, 1e4),
    wall=st.floats(0.1, 100),
)
def test_share_grows_with_the_scopes_cpu_time(
    busy_a: float, busy_b: float, host_busy: float, wall: float
) -> None:
    def share(busy: float) -> float:
        return scope_share(
            scope_busy_s=busy,
            host_busy_s=host_busy,
            wall_s=wall,
            scope_vcpus=2,
            host_cpus=64,
            min_w_per_vcpu=0.69,
            max_w_per_vcpu=3.75,
        )

    low, high = sorted((busy_a, busy_b))
    assert share(low) <= share(high) + 1e-12


def test_share_on_an_idle_host_is_the_allocation() -> None:
    share = scope_share(
        scope_busy_s=0,
        host_busy_s=0,
        wall_s=10,
        scope_vcpus=2,
        host_cpus=64,
        min_w_per_vcpu=0.69,
        max_w_per_vcpu=3.75,
    )
    assert share == pytest.approx(2 / 64)


def test_share_ignores_nan_and_negative_skew() -> None:
    share = scope_share(
        scope_busy_s=float("nan"),
        host_busy_s=-1.0,
        wall_s=1,
        scope_vcpus=2,
        host_cpus=4,
        min_w_per_vcpu=1,
        max_w_per_vcpu=2,
    )
    assert share == 0.5


# --------------------------------------------------------------------------- model energy


def _charged_for(tmp_path: Path, version: int) -> None:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)
    if version == 2:
        ctr = host.add_cgroup_v2(cpu_max="200000 100000", memory_max=4 * GIB)
    else:
        ctr = host.add_cgroup_v1(cfs_quota_us=200_000, memory_limit_bytes=4 * GIB)
    scope = resolve_scope("auto", **host.roots())
    sensor = CpuSensor(scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root)
    host.set_host_cpu_seconds(5000.0)  # the host is busy elsewhere: must not matter
    low, high = ccf_table("gcp")["Cascade Lake"]

    outer_start = time.monotonic()
    sensor.start()
    inner_start = time.monotonic()
    time.sleep(0.05)
    ctr.add_cpu_usage_s(0.08)
    host.add_host_cpu_seconds(60.0)
    sensor.sample()
    time.sleep(0.05)
    inner_wall = time.monotonic() - inner_start
    reading = sensor.read()
    outer_wall = time.monotonic() - outer_start

    assert reading.method == "cgroup-model"
    assert reading.capacity == 2.0
    assert "ccf gcp Cascade Lake" in reading.model
    busy_j = 0.08 * (high - low)
    assert 2 * low * inner_wall + busy_j <= reading.energy_j <= 2 * low * outer_wall + busy_j
    host_j = 64 * low * inner_wall + 60.0 * (high - low)
    assert reading.energy_j < host_j / 20  # charged for 2 vCPUs, not the 64-CPU host
    assert reading.utilization_percent == pytest.approx(100 * 0.08 / (2 * inner_wall), rel=0.1)
    assert sensor.warnings() == ()


def test_v2_container_is_charged_for_its_2_vcpus(tmp_path: Path) -> None:
    _charged_for(tmp_path, 2)


def test_v1_container_is_charged_for_its_2_vcpus(tmp_path: Path) -> None:
    _charged_for(tmp_path, 1)


def test_tdp_and_fallback_methods(tmp_path: Path) -> None:
    turin = CpuInfoSpec("AMD EPYC 9655 96-Core Processor", "AuthenticAMD", 26, 2, 1, 192)
    host = FakeHost(tmp_path / "a", cpuinfo=turin)
    sensor = CpuSensor(resolve_scope("machine", proc_root=host.proc_root), proc_root=host.proc_root)
    assert sensor.read().method == "tdp-model"
    other = FakeHost(tmp_path / "b", cpuinfo=UNKNOWN_CPU)
    sensor = CpuSensor(
        resolve_scope("machine", proc_root=other.proc_root), proc_root=other.proc_root
    )
    assert sensor.read().method == "machine-model"
    assert "fallback" in sensor.power_model.source
    rome = FakeHost(tmp_path / "c", cpuinfo=GCP_EPYC_ROME)
    sensor = CpuSensor(resolve_scope("machine", proc_root=rome.proc_root), proc_root=rome.proc_root)
    assert sensor.read().model == "AMD EPYC 7B12 (ccf gcp EPYC 2nd Gen 0.47-1.58 W/vCPU)"


def test_vanished_cgroup_mid_run_never_raises(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    ctr = host.add_cgroup_v2(cpu_max="200000 100000")
    scope = resolve_scope("auto", **host.roots())
    sensor = CpuSensor(scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root)
    sensor.start()
    ctr.add_cpu_usage_s(0.5)
    sensor.sample()
    (ctr.dirs["cpu"] / "cpu.stat").unlink()
    with pytest.warns(CarbonKfpWarning, match="CPU time"):
        sensor.sample()
        reading = sensor.read()
    sensor.close()
    sensor.close()
    assert reading.energy_j > 0
    assert len(sensor.warnings()) == 1 and "CPU time" in sensor.warnings()[0]
    assert sensor.read() == sensor.read()  # frozen after close


def test_container_bursting_above_its_request_is_charged_for_all_its_cpu_time(
    tmp_path: Path,
) -> None:
    host = FakeHost(tmp_path, cpus=64)
    ctr = host.add_cgroup_v2(cpu_weight=59)  # a 500m request (runc >= 1.3.2), no limit
    scope = resolve_scope("auto", **host.roots())
    assert scope.vcpus == pytest.approx(0.5, rel=0.02)
    sensor = CpuSensor(scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root)
    low, high = ccf_table("gcp")["Cascade Lake"]
    sensor.start()
    ctr.add_cpu_usage_s(3.0)  # 3 CPU-seconds in a few ms: bursting on idle host CPUs
    reading = sensor.read()
    assert reading.energy_j >= 3.0 * (high - low)
    assert reading.utilization_percent == 100.0


def test_non_owner_ranks_pay_busy_time_only(tmp_path: Path, clock: FakeClock) -> None:
    """Four ranks on a 2-vCPU host, none owning it: the idle ones are charged nothing (not the
    host's idle power each), the busy one its CPU time above idle; never RAPL, even readable."""
    host = FakeHost(tmp_path, cpus=2)
    socket = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    low, high = ccf_table("gcp")["Cascade Lake"]
    scopes = [FakeScope(vcpus=2, host_cpus=2) for _ in range(4)]
    ranks = [
        CpuSensor(s, sysfs_root=host.sysfs_root, proc_root=host.proc_root, charge_idle=False)
        for s in scopes
    ]
    for rank in ranks:
        rank.start()
    clock.now_s += 10.0
    socket.advance(50_000_000)
    scopes[0].cpu_s = 3.0
    busy, *idle = [rank.read() for rank in ranks]

    assert busy.energy_j == pytest.approx(3.0 * (high - low))
    assert busy.method == "process-model"
    assert busy.capacity == 2
    assert busy.utilization_percent == pytest.approx(15.0)  # 3 CPU-s of 2 vCPUs x 10 s
    assert "busy time only: idle power is the node owner's" in busy.model
    assert busy.model.startswith("Intel(R) Xeon(R) CPU @ 2.20GHz (ccf gcp Cascade Lake")
    for reading in idle:
        assert (reading.energy_j, reading.utilization_percent) == (0.0, 0.0)
    assert all(rank.warnings() == () for rank in ranks)

    owner = CpuSensor(
        FakeScope(vcpus=2, host_cpus=2), sysfs_root=tmp_path / "no-rapl", proc_root=host.proc_root
    )
    owner.start()
    clock.now_s += 10.0
    assert owner.read().energy_j == pytest.approx(2 * low * 10.0)  # the owner pays the idle


def test_busy_time_only_with_no_vcpus_has_no_utilisation(tmp_path: Path, clock: FakeClock) -> None:
    host = FakeHost(tmp_path)
    scope = FakeScope(vcpus=0.0)
    sensor = CpuSensor(
        scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root, charge_idle=False
    )
    sensor.start()
    clock.now_s += 5.0
    scope.cpu_s = 1.0
    reading = sensor.read()
    low, high = sensor.power_model.min_w_per_vcpu, sensor.power_model.max_w_per_vcpu
    assert reading.energy_j == pytest.approx(high - low)
    assert reading.utilization_percent is None


def test_read_before_start_is_zero(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    sensor = CpuSensor(resolve_scope("machine", proc_root=host.proc_root), proc_root=host.proc_root)
    assert sensor.read().energy_j == 0.0


def test_import_reads_no_data_files() -> None:
    code = (
        "import carbon_kfp.sensors.cpu, carbon_kfp.sensors.ram\n"
        "from carbon_kfp import tables\n"
        "assert tables.read_rows.cache_info().currsize == 0\n"
        "assert tables.read_text.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --------------------------------------------------------------------------- real workload

BUSY_CHILD = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def _measure_child(busy_s: float) -> tuple[float, float]:
    scope = resolve_scope("process")
    sensor = CpuSensor(scope)
    sensor.start()
    subprocess.run([sys.executable, "-c", BUSY_CHILD.format(s=busy_s)], check=True)
    reading = sensor.read()
    sensor.close()
    assert reading.method in ("process-model", "tdp-model", "rapl")
    return reading.energy_j, reading.utilization_percent or 0.0


@pytest.mark.slow
def test_twice_the_busy_time_is_twice_the_cpu_energy() -> None:
    """A real CPU-bound child on the process scope (the model path on hosts without RAPL)."""
    once, _ = _measure_child(0.4)
    twice, _ = _measure_child(0.8)
    assert twice / once == pytest.approx(2.0, rel=0.15)
