"""RAPL: domain selection, mirrors, wrap-around and fallbacks, on fake powercap trees sampled
while a background thread advances the counters (tests/fakes_sysfs.py)."""

from __future__ import annotations

import itertools
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon_kfp import errors
from carbon_kfp.errors import CarbonKfpWarning
from carbon_kfp.sensors import cpu as cpu_module
from carbon_kfp.sensors.cpu import CpuSensor
from carbon_kfp.sensors.rapl import (
    MIRROR_TOLERANCE_UJ,
    RaplDomain,
    RaplMeter,
    RaplUnreadable,
    classify,
    counted_zones,
    discover_domains,
    mirror_candidates,
    select_domains,
)
from carbon_kfp.sensors.scope import MachineScope, resolve_scope
from tests.fakes_sysfs import GIB, CounterThread, FakeHost, FakeRaplCounter, write_atomic


@pytest.fixture(autouse=True)
def fresh_warn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """warn_once de-duplicates per process; give each test its own slate."""
    monkeypatch.setattr(errors, "_seen", set())


def sample_run(
    sensor: CpuSensor,
    tick: Callable[[], None],
    *,
    samples: int = 30,
    ticks_per_sample: int = 3,
    sleep_s: float = 0.002,
) -> None:
    """start(), then ``samples`` sample() calls while a thread ticks; the thread is stopped
    before returning, so every counter's ``total_uj`` is the truth for ``sensor.read()``."""
    sensor.start()
    with CounterThread(tick, ticks_per_sample=ticks_per_sample) as driver:
        for _ in range(samples):
            time.sleep(sleep_s)
            driver.locked(sensor.sample)


def machine_sensor(host: FakeHost, **kwargs: object) -> CpuSensor:
    return CpuSensor(
        MachineScope(host.proc_root),
        sysfs_root=host.sysfs_root,
        proc_root=host.proc_root,
        **kwargs,  # type: ignore[arg-type]
    )


class FakeClock:
    """Stands in for the ``time`` module of carbon_kfp.sensors.cpu: time moves only when told."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def monotonic(self) -> float:
        return self.now_s


def assert_within_1_percent(measured_j: float, truth_uj: int) -> None:
    assert truth_uj > 0
    assert measured_j == pytest.approx(truth_uj / 1e6, rel=0.01)


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("package-0", ("package", 0)),
        ("package-1-die-1", ("package", 1)),
        ("dram", ("dram", None)),
        ("psys", ("psys", None)),
        ("core", ("other", None)),
        ("uncore", ("other", None)),
    ],
)
def test_classify(name: str, expected: tuple[str, int | None]) -> None:
    assert classify(name) == expected


def _domain(zone: str, name: str, parent: str | None = None, rng: int = 1000) -> RaplDomain:
    kind, package = classify(name)
    return RaplDomain(zone, Path(zone), name, kind, package, zone.split(":")[0], parent, rng, 100.0)


def test_select_domains_policy() -> None:
    domains = [
        _domain("intel-rapl:0", "package-0"),
        _domain("intel-rapl:0:0", "core", "intel-rapl:0"),
        _domain("intel-rapl:0:1", "dram", "intel-rapl:0"),
        _domain("intel-rapl:1", "psys"),
        _domain("intel-rapl-mmio:0", "package-0"),
    ]
    default = select_domains(domains, include_dram=False)
    assert [d.zone for d in default] == ["intel-rapl:0"]  # no core, psys, dram or mmio copy
    with_dram = select_domains(domains, include_dram=True)
    assert [d.zone for d in with_dram] == ["intel-rapl:0", "intel-rapl:0:1"]
    only_psys = select_domains([_domain("intel-rapl:1", "psys")], include_dram=False)
    assert [d.name for d in only_psys] == ["psys"]


@given(
    start=st.integers(0, 10**9),
    offset=st.integers(0, MIRROR_TOLERANCE_UJ),
    deltas=st.lists(st.integers(0, 10**7), min_size=1, max_size=20),
    rng=st.integers(2 * 10**9, 2**40),
)
def test_mirrored_counter_counted_once(
    start: int, offset: int, deltas: list[int], rng: int
) -> None:
    a = _domain("intel-rapl:0", "package-0-die-0", rng=rng)
    b = _domain("intel-rapl:1", "package-0-die-1", rng=rng)
    groups = mirror_candidates([a, b], {a.zone: start, b.zone: start + offset}, MIRROR_TOLERANCE_UJ)
    assert groups == [[a.zone, b.zone]]
    total = float(sum(deltas))
    assert counted_zones(groups, {a.zone: total, b.zone: total}, MIRROR_TOLERANCE_UJ) == [a.zone]


@given(
    start=st.integers(0, 10**9),
    a_total=st.integers(0, 10**10),
    b_total=st.integers(0, 10**10),
)
def test_candidates_that_drift_apart_are_both_counted(
    start: int, a_total: int, b_total: int
) -> None:
    a = _domain("intel-rapl:0", "package-0-die-0", rng=2**40)
    b = _domain("intel-rapl:1", "package-0-die-1", rng=2**40)
    groups = mirror_candidates([a, b], {a.zone: start, b.zone: start}, MIRROR_TOLERANCE_UJ)
    zones = counted_zones(groups, {a.zone: a_total, b.zone: b_total}, MIRROR_TOLERANCE_UJ)
    if abs(a_total - b_total) <= MIRROR_TOLERANCE_UJ:
        assert zones == [a.zone]
    else:
        assert zones == [a.zone, b.zone]


@given(start=st.integers(0, 10**9), gap=st.integers(MIRROR_TOLERANCE_UJ + 1, 10**8))
def test_different_packages_or_distant_values_are_never_mirrors(start: int, gap: int) -> None:
    a = _domain("intel-rapl:0", "package-0", rng=2**40)
    b = _domain("intel-rapl:1", "package-1", rng=2**40)
    assert len(mirror_candidates([a, b], {a.zone: start, b.zone: start}, 10**6)) == 2
    c = _domain("intel-rapl:2", "package-0-die-1", rng=2**40)
    assert len(mirror_candidates([a, c], {a.zone: start, c.zone: start + gap}, 10**6)) == 2


def test_mirror_distance_is_circular() -> None:
    a = _domain("intel-rapl:0", "package-0-die-0", rng=10**9)
    b = _domain("intel-rapl:1", "package-0-die-1", rng=10**9)
    # b has just wrapped past a's value: 10 µJ apart around the circle, not 999999990.
    groups = mirror_candidates([a, b], {a.zone: 10**9 - 5, b.zone: 5}, MIRROR_TOLERANCE_UJ)
    assert groups == [[a.zone, b.zone]]


def test_discover_reads_tree_and_parent_package(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.add_rapl_zone("intel-rapl:1", "package-1", max_power_uw=205_000_000)
    host.add_rapl_zone("intel-rapl:1:0", "dram", max_energy_range_uj=65_532_610_987)
    domains, notes = discover_domains(host.sysfs_root)
    assert notes == []
    by_zone = {d.zone: d for d in domains}
    assert set(by_zone) == {"intel-rapl:1", "intel-rapl:1:0"}  # the bare control dir is skipped
    assert by_zone["intel-rapl:1"].max_power_w == 205.0
    assert by_zone["intel-rapl:1:0"].package_id == 1
    assert by_zone["intel-rapl:1:0"].parent_zone == "intel-rapl:1"
    # 262 kJ at 205 W: more than 20 minutes between reads before a second wrap could hide.
    assert by_zone["intel-rapl:1"].safe_interval_s > 1200


def test_no_powercap_dir_means_no_rapl(tmp_path: Path) -> None:
    assert discover_domains(tmp_path / "nowhere") == ([], [])
    assert not RaplMeter(tmp_path / "nowhere", include_dram=False).available


# --------------------------------------------------------------------------- sampling runs


def test_wraps_every_interval_within_1_percent(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    wrap_range = 1_000_000  # 1 J: wraps about once per interval below
    # max_power_uw only sets the wrap bound (1 J / 1 W = 1 s), which the test stays inside.
    zone = host.add_rapl_zone(
        "intel-rapl:0", "package-0", max_energy_range_uj=wrap_range, max_power_uw=1_000_000
    )
    counter = FakeRaplCounter([zone], start_uj=700_000)
    sensor = machine_sensor(host)
    # <= 3 ticks of 0.31 J between samples: at most 0.93 J, so at most one wrap per interval.
    sample_run(sensor, lambda: counter.advance(310_000), samples=40, ticks_per_sample=3)
    reading = sensor.read()
    # It really wrapped many times (up to 37 J in 40 samples; fewer when the ticking thread is
    # starved on a loaded machine, and 14 J were seen).
    assert counter.total_uj > 5 * wrap_range
    assert reading.method == "rapl"
    assert_within_1_percent(reading.energy_j, counter.total_uj)
    assert sensor.warnings() == ()


def test_two_dies_mirroring_one_counter_are_counted_once(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    die0 = host.add_rapl_zone("intel-rapl:0", "package-0-die-0")
    die1 = host.add_rapl_zone("intel-rapl:1", "package-0-die-1")
    other = host.add_rapl_zone("intel-rapl:2", "package-1-die-0")
    socket0 = FakeRaplCounter([die0, die1], start_uj=123_456_789_000)
    socket1 = FakeRaplCounter([other], start_uj=5_000_000_000)

    def tick() -> None:
        socket0.advance(40_000)
        socket1.advance(25_000)

    sensor = machine_sensor(host)
    sample_run(sensor, tick)
    reading = sensor.read()
    assert reading.method == "rapl"
    assert_within_1_percent(reading.energy_j, socket0.total_uj + socket1.total_uj)
    assert "package-0-die-0+package-1-die-0" in reading.model


def test_distinct_dies_that_start_equal_are_both_counted(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    die0 = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0-die-0")])
    die1 = FakeRaplCounter([host.add_rapl_zone("intel-rapl:1", "package-0-die-1")])

    def tick() -> None:  # both start at 0 (as fresh fakes do) but are separate counters
        die0.advance(40_000)
        die1.advance(90_000)

    sensor = machine_sensor(host)
    sample_run(sensor, tick)
    assert_within_1_percent(sensor.read().energy_j, die0.total_uj + die1.total_uj)


def test_dram_under_mirrored_dies_is_counted_once(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    die0 = host.add_rapl_zone("intel-rapl:0", "package-0-die-0")
    die1 = host.add_rapl_zone("intel-rapl:1", "package-0-die-1")
    dram_range = 65_532_610_987
    dram0 = host.add_rapl_zone("intel-rapl:0:0", "dram", max_energy_range_uj=dram_range)
    dram1 = host.add_rapl_zone("intel-rapl:1:0", "dram", max_energy_range_uj=dram_range)
    socket = FakeRaplCounter([die0, die1], start_uj=9_000_000_000)
    dram = FakeRaplCounter([dram0, dram1], start_uj=77_000_000)

    def tick() -> None:
        socket.advance(40_000)
        dram.advance(6_000)

    sensor = machine_sensor(host, rapl_dram=True)
    sample_run(sensor, tick)
    assert_within_1_percent(sensor.read().energy_j, socket.total_uj + dram.total_uj)


def test_mmio_copy_of_a_package_is_counted_once(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    msr = host.add_rapl_zone("intel-rapl:0", "package-0")
    mmio = host.add_rapl_zone("intel-rapl-mmio:0", "package-0")
    socket = FakeRaplCounter([msr, mmio], start_uj=42)
    sensor = machine_sensor(host)
    sample_run(sensor, lambda: socket.advance(50_000))
    assert_within_1_percent(sensor.read().energy_j, socket.total_uj)


def test_psys_beside_package_is_not_summed(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    package = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    psys = FakeRaplCounter([host.add_rapl_zone("intel-rapl:1", "psys")])

    def tick() -> None:
        package.advance(30_000)
        psys.advance(55_000)  # the platform includes the package

    sensor = machine_sensor(host)
    sample_run(sensor, tick)
    reading = sensor.read()
    assert_within_1_percent(reading.energy_j, package.total_uj)
    assert "psys" not in reading.model


@pytest.mark.parametrize("rapl_dram", [False, True])
def test_dram_only_when_asked(tmp_path: Path, rapl_dram: bool) -> None:
    host = FakeHost(tmp_path)
    package = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    dram = FakeRaplCounter(
        [host.add_rapl_zone("intel-rapl:0:0", "dram", max_energy_range_uj=65_532_610_987)]
    )

    def tick() -> None:
        package.advance(30_000)
        dram.advance(7_000)

    sensor = machine_sensor(host, rapl_dram=rapl_dram)
    sample_run(sensor, tick)
    truth = package.total_uj + (dram.total_uj if rapl_dram else 0)
    reading = sensor.read()
    assert_within_1_percent(reading.energy_j, truth)
    assert ("dram" in reading.model) is rapl_dram


def test_unreadable_counter_falls_back_with_exactly_one_warning(tmp_path: Path) -> None:
    """As root, ``chmod 000`` does not stop a read, so ``energy_uj`` is made a directory:
    ``open()`` then fails with IsADirectoryError, an OSError like the PermissionError that an
    unprivileged process gets from the real root-only file."""
    host = FakeHost(tmp_path)
    zone = host.add_rapl_zone("intel-rapl:0", "package-0")
    zone.make_unreadable()
    host.set_host_cpu_seconds(100.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sensor = machine_sensor(host)
        sensor.start()
        host.add_host_cpu_seconds(3.0)
        for _ in range(3):
            sensor.sample()
        reading = sensor.read()
        sensor.close()
    ours = [w for w in caught if issubclass(w.category, CarbonKfpWarning)]
    assert len(ours) == 1
    assert len(sensor.warnings()) == 1
    message = sensor.warnings()[0]
    assert "chmod a+r" in message and "CARBON_KFP_SYSFS_ROOT" in message
    assert reading.method == "machine-model"
    assert "ccf gcp Cascade Lake" in reading.model
    assert reading.energy_j > 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
def test_root_only_counter_raises_permission_error_for_users(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.add_rapl_zone("intel-rapl:0", "package-0").make_root_only()
    meter = RaplMeter(host.sysfs_root, include_dram=False)
    with pytest.raises(RaplUnreadable, match="Permission denied"):
        meter.start(0.0)


def test_counter_failing_mid_run_keeps_rapl_energy_and_warns_once(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    zone = host.add_rapl_zone("intel-rapl:0", "package-0")
    counter = FakeRaplCounter([zone])
    sensor = machine_sensor(host)
    sample_run(sensor, lambda: counter.advance(10_000), samples=5)
    measured = sensor.read()
    assert measured.method == "rapl"
    zone.make_unreadable()
    with pytest.warns(CarbonKfpWarning, match="during the run"):
        sensor.sample()
        sensor.sample()
        reading = sensor.read()
    assert reading.method == "machine-model"
    assert reading.energy_j >= measured.energy_j == pytest.approx(counter.total_uj / 1e6)
    assert "rapl package-0 for the first" in reading.model
    assert len(sensor.warnings()) == 1
    assert "during the run" in sensor.warnings()[0]


def test_window_spanning_a_mid_run_failure_is_rapl_before_plus_model_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(cpu_module, "time", clock)
    host = FakeHost(tmp_path, cpus=64)
    zone = host.add_rapl_zone("intel-rapl:0", "package-0")
    counter = FakeRaplCounter([zone])
    sensor = machine_sensor(host)
    low, high = sensor.power_model.min_w_per_vcpu, sensor.power_model.max_w_per_vcpu

    def advance(seconds: float, busy_s: float, rapl_j: float = 0.0) -> None:
        clock.now_s += seconds
        host.add_host_cpu_seconds(busy_s)
        if rapl_j:
            counter.advance(round(rapl_j * 1e6))

    sensor.start()
    advance(1, 1, 50.0)
    sensor.sample()
    advance(1, 1, 50.0)
    begin = sensor.read()  # a task / epoch / flush window opens here
    advance(1, 1, 50.0)
    sensor.sample()  # RAPL's last good sample, 3 s into the run
    zone.make_unreadable()
    advance(1, 2)
    with pytest.warns(CarbonKfpWarning, match="during the run"):
        sensor.sample()  # fails: the model takes over from the last good sample
    advance(2, 4)
    end = sensor.read()

    assert begin.method == "rapl"
    assert begin.energy_j == pytest.approx(100.0)
    assert end.method == "machine-model"
    rapl_before_j = 50.0  # from the window's start to RAPL's last good sample
    model_after_j = 64 * low * 3 + 6 * (high - low)  # 3 s, 6 CPU-s since that sample
    assert end.energy_j - begin.energy_j == pytest.approx(rapl_before_j + model_after_j)
    assert "rapl package-0 for the first 3 s" in end.model
    # Each part keeps its own method's error: RAPL's 10 % on the 150 J it measured, the model's
    # 30 % on the rest; the window's bounds are the differences of the cumulative ones.
    model_j = end.energy_j - 150.0
    assert end.bounds_j() == pytest.approx((135.0 + 0.7 * model_j, 165.0 + 1.3 * model_j))
    window_low = end.bounds_j()[0] - begin.bounds_j()[0]
    assert window_low == pytest.approx(0.9 * rapl_before_j + 0.7 * model_after_j)
    sensor.close()
    assert sensor.read() == end  # nothing moved since: close() freezes the same value


Step = tuple[float, int, int, bool]


@st.composite
def switch_runs(draw: st.DrawFn) -> tuple[list[Step], int | None, bool]:
    """Steps after start(): (seconds since the previous step, host busy CPU time added in 1/100
    s, RAPL energy added in µJ unless frozen, whether a sample() precedes the step's read());
    the step before which the counter fails, after at least one good read (or None); whether the
    counters are frozen (never move)."""
    steps = draw(
        st.lists(
            st.tuples(
                st.floats(0.0, 4.0),
                st.integers(0, 400),
                st.integers(1_000_000, 500_000_000),
                st.booleans(),
            ),
            min_size=2,
            max_size=12,
        )
    )
    fail_at = draw(st.none() | st.integers(1, len(steps) - 1))
    return steps, fail_at, draw(st.booleans())


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(switch_runs())
def test_cumulative_cpu_energy_never_decreases_across_a_switch_to_the_model(
    run: tuple[list[Step], int | None, bool],
) -> None:
    """Whatever the timing, a counter failing mid-run or counters that never move (frozen)
    switch to the model without the cumulative reading going down."""
    steps, fail_at, frozen = run
    readings: list[float] = []
    with (
        tempfile.TemporaryDirectory() as root,
        pytest.MonkeyPatch.context() as patch,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        clock = FakeClock()
        patch.setattr(cpu_module, "time", clock)
        host = FakeHost(Path(root), cpus=8)
        zone = host.add_rapl_zone("intel-rapl:0", "package-0")
        counter = FakeRaplCounter([zone])
        sensor = machine_sensor(host)
        sensor.start()
        readings.append(sensor.read().energy_j)
        failed = False
        for index, (seconds, busy_ticks, rapl_uj, sample_first) in enumerate(steps):
            if index == fail_at:
                zone.make_unreadable()
                failed = True
            clock.now_s += seconds
            host.add_host_cpu_seconds(busy_ticks / 100)
            if not frozen and not failed:
                counter.advance(rapl_uj)
            if sample_first:
                sensor.sample()
            readings.append(sensor.read().energy_j)
        sensor.close()
        readings.append(sensor.read().energy_j)
    assert all(later >= earlier for earlier, later in itertools.pairwise(readings)), readings


def test_frozen_counters_are_not_reported_as_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpu_module, "FROZEN_RAPL_CHECK_S", 0.05)
    host = FakeHost(tmp_path)
    FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])  # never advances
    sensor = machine_sensor(host)
    sensor.start()
    host.add_host_cpu_seconds(2.0)
    time.sleep(0.06)
    with pytest.warns(CarbonKfpWarning, match="did not move"):
        reading = sensor.read()
    assert reading.method == "machine-model"
    assert reading.energy_j > 0
    assert "did not move" in sensor.warnings()[0]


def test_zones_skipped_at_discovery_are_warned_at_construction(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    package0 = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    broken = host.add_rapl_zone("intel-rapl:1", "package-1")
    write_atomic(broken.path / "max_energy_range_uj", "garbage\n")
    with pytest.warns(CarbonKfpWarning, match=r"intel-rapl:1 skipped"):
        sensor = machine_sensor(host)
    [note] = sensor.warnings()
    assert "max_energy_range_uj of package-1 is 'garbage'" in note
    assert "not counted" in note
    sample_run(sensor, lambda: package0.advance(20_000), samples=5)
    reading = sensor.read()
    assert reading.method == "rapl"  # package-0 is still measured
    assert reading.model.endswith("(rapl package-0)")
    assert sensor.warnings() == (note,)


def test_sampling_slower_than_the_wrap_bound_is_warned(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    # 0.01 J range at 1 kW: a second wrap could hide after 10 µs.
    zone = host.add_rapl_zone(
        "intel-rapl:0", "package-0", max_energy_range_uj=10_000, max_power_uw=10**9
    )
    FakeRaplCounter([zone])
    sensor = machine_sensor(host)
    sensor.start()
    time.sleep(0.01)
    with pytest.warns(CarbonKfpWarning, match="wrap"):
        sensor.sample()
        sensor.sample()
    assert sensor.read().method == "rapl"
    assert len(sensor.warnings()) == 1
    assert "wrap" in sensor.warnings()[0]


def test_counter_outside_its_range_downgrades(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    zone = host.add_rapl_zone("intel-rapl:0", "package-0", max_energy_range_uj=1000)
    zone.write_energy_uj(5000)
    sensor = machine_sensor(host)
    with pytest.warns(CarbonKfpWarning, match="outside"):
        sensor.start()
    assert sensor.read().method == "machine-model"
    assert "outside" in sensor.warnings()[0]


# --------------------------------------------------------------------------- container share


def _container_on_rapl(tmp_path: Path) -> tuple[FakeHost, object, FakeRaplCounter, CpuSensor]:
    host = FakeHost(tmp_path, cpus=64, memory_bytes=256 * GIB)
    ctr = host.add_cgroup_v2(cpu_max="200000 100000", memory_max=4 * GIB)
    socket = FakeRaplCounter([host.add_rapl_zone("intel-rapl:0", "package-0")])
    scope = resolve_scope("auto", **host.roots())
    assert scope.kind == "container"
    sensor = CpuSensor(scope, sysfs_root=host.sysfs_root, proc_root=host.proc_root)
    return host, ctr, socket, sensor


def test_container_on_a_busy_host_pays_its_share_not_the_socket(tmp_path: Path) -> None:
    host, ctr, socket, sensor = _container_on_rapl(tmp_path)

    def tick() -> None:  # host fully busy on 64 CPUs, the container on its 2
        socket.advance(200_000)
        host.add_host_cpu_seconds(0.64)
        ctr.add_cpu_usage_s(0.02)  # type: ignore[attr-defined]

    sample_run(sensor, tick)
    reading = sensor.read()
    assert reading.method == "rapl-share"  # not RAPL's own 10 %: the split adds its error
    assert "container share" in reading.model
    assert reading.bounds_j() == pytest.approx((0.8 * reading.energy_j, 1.2 * reading.energy_j))
    # Idle share 2/64 by allocation and load share 0.02/0.64 by CPU time: 2/64 either way.
    assert reading.energy_j == pytest.approx(socket.total_uj / 1e6 * 2 / 64, rel=0.01)
    assert reading.capacity == 2


def test_container_alone_on_an_idle_host_never_pays_the_whole_socket(tmp_path: Path) -> None:
    host, ctr, socket, sensor = _container_on_rapl(tmp_path)

    def tick() -> None:  # only the container is busy
        socket.advance(200_000)
        host.add_host_cpu_seconds(0.02)
        ctr.add_cpu_usage_s(0.02)  # type: ignore[attr-defined]

    sample_run(sensor, tick)
    charged = sensor.read().energy_j
    socket_j = socket.total_uj / 1e6
    assert socket_j * 2 / 64 <= charged < 0.9 * socket_j


def test_the_range_maximum_is_a_valid_reading_and_wraps_to_zero(tmp_path: Path) -> None:
    """``max_energy_range_uj`` is inclusive: a counter at it is valid, and the next µJ reads 0
    (modulus max + 1)."""
    host = FakeHost(tmp_path)
    zone = host.add_rapl_zone("intel-rapl:0", "package-0", max_energy_range_uj=1000)
    zone.write_energy_uj(1000)
    meter = RaplMeter(host.sysfs_root, include_dram=False)
    meter.start(0.0)  # the maximum itself: no "outside its range"
    zone.write_energy_uj(4)  # 1000 -> 1001 = 0 -> 4: five µJ
    meter.sample(1.0)
    assert meter.raw_energy_j() * 1e6 == pytest.approx(5)
