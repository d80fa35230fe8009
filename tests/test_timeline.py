"""``carbon_kfp.timeline``: bounded power timeline, exact mean power, heartbeat lines."""

from __future__ import annotations

import io
import math
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp import EmissionsTracker
from carbon_kfp.record import Snapshot
from carbon_kfp.sensors.base import Reading
from carbon_kfp.timeline import HEARTBEAT_PREFIX, Heartbeat, PowerTimeline


def snapshot(t_s: float, cpu_j: float, gpu_j: float = 0.0, ram_j: float = 0.0) -> Snapshot:
    readings = {
        "cpu": Reading(cpu_j, "rapl"),
        "gpu": Reading(gpu_j, "nvml-energy"),
        "ram": Reading(ram_j, "constant"),
    }
    return Snapshot(t_s, readings)


def test_constant_power_is_kept_exactly_and_buckets_are_contiguous() -> None:
    timeline = PowerTimeline(max_points=10)
    for i in range(101):  # 100 s at 1 s, 50 W CPU, 5 W RAM
        timeline.add(snapshot(float(i), 50.0 * i, ram_j=5.0 * i))
    points = timeline.points()
    assert 1 <= len(points["t_s"]) <= 11  # at most max_points closed + the open bucket
    assert points["t_s"][-1] == 100.0
    assert all(w == pytest.approx(50.0) for w in points["cpu_w"])
    assert all(w == pytest.approx(5.0) for w in points["ram_w"])
    assert all(w == 0.0 for w in points["gpu_w"])


@given(st.lists(st.floats(0.0, 500.0), min_size=1, max_size=300), st.sampled_from([2, 4, 8, 16]))
def test_energy_is_conserved_whatever_the_merging(powers_w: list[float], max_points: int) -> None:
    timeline = PowerTimeline(max_points=max_points)
    energy_j, t_s = 0.0, 0.0
    timeline.add(snapshot(0.0, 0.0))
    for power_w in powers_w:
        t_s += 0.5
        energy_j += power_w * 0.5
        timeline.add(snapshot(t_s, energy_j))
    points = timeline.points()
    assert len(points["t_s"]) <= max_points + 1
    starts = [0.0, *points["t_s"][:-1]]
    total_j = math.fsum(
        w * (end - start)
        for w, start, end in zip(points["cpu_w"], starts, points["t_s"], strict=True)
    )
    assert total_j == pytest.approx(energy_j, rel=1e-3, abs=0.01)  # powers rounded to mW


def test_ten_minute_run_at_100_ms_stays_bounded_in_points_and_memory() -> None:
    """6,000 samples: the points stay <= 1,000 and memory stops growing once full."""
    timeline = PowerTimeline()  # the tracker's default bound
    samples = 10 * 60 * 10
    tracemalloc.start()
    try:
        for i in range(samples):
            timeline.add(snapshot(i * 0.1, 30.0 * i * 0.1))
            if i == samples // 2:
                halfway_bytes = tracemalloc.get_traced_memory()[0]
        end_bytes = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(timeline) <= 1001
    assert len(timeline.points()["t_s"]) <= 1001
    assert end_bytes <= halfway_bytes * 1.2 + 4096  # no growth with run length
    assert timeline.points()["t_s"][-1] == pytest.approx((samples - 1) * 0.1)


@given(st.lists(st.floats(0.0, 500.0), min_size=0, max_size=60), st.sampled_from([2, 4, 8]))
def test_latest_power_is_the_newest_point(powers_w: list[float], max_points: int) -> None:
    timeline = PowerTimeline(max_points=max_points)
    assert timeline.latest_power_w() == {"cpu": 0.0, "gpu": 0.0, "ram": 0.0}
    timeline.add(snapshot(0.0, 0.0))
    energy_j = 0.0
    for i, power_w in enumerate(powers_w, start=1):
        energy_j += power_w * 0.5
        timeline.add(snapshot(i * 0.5, energy_j, ram_j=2.0 * i))
        points = timeline.points()
        latest = {device: points[f"{device}_w"][-1] for device in ("cpu", "gpu", "ram")}
        assert timeline.latest_power_w() == latest


def test_latest_power_costs_the_same_however_many_buckets() -> None:
    """The tracker asks on every sample while a heartbeat is on, under its lock."""
    timeline = PowerTimeline()
    for i in range(5000):
        timeline.add(snapshot(i * 0.1, 30.0 * i * 0.1))
    assert len(timeline) > 500
    tracemalloc.start()
    try:
        timeline.latest_power_w()
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_bytes < 4096  # a few floats and one dict, not a copy of every bucket


@pytest.mark.parametrize("bad", [0, 1, 3, -2])
def test_bad_bound_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=f"max_points={bad}"):
        PowerTimeline(max_points=bad)


def test_a_timeline_without_a_bucket_has_empty_columns() -> None:
    """A tracker stopped before its clock moved still renders its record."""
    timeline = PowerTimeline(max_points=4)
    empty = {"t_s": (), "cpu_w": (), "gpu_w": (), "ram_w": ()}
    assert timeline.points() == empty
    timeline.add(snapshot(5.0, 10.0))
    timeline.add(snapshot(5.0, 20.0))  # no time passed
    assert timeline.points() == empty


def test_backwards_counters_and_stale_times_count_zero() -> None:
    timeline = PowerTimeline(max_points=4)
    timeline.add(snapshot(0.0, 100.0))
    timeline.add(snapshot(1.0, 50.0))  # counter went back: 0 J
    timeline.add(snapshot(1.0, 60.0))  # no time passed: ignored
    assert timeline.points() == {"t_s": (1.0,), "cpu_w": (0.0,), "gpu_w": (0.0,), "ram_w": (0.0,)}


def test_heartbeat_writes_elapsed_time_and_power_when_due() -> None:
    stream = io.StringIO()
    beat = Heartbeat(10.0, stream)
    assert not beat.beat(9.9, {"cpu": 40.0})
    assert beat.beat(10.2, {"cpu": 40.0, "gpu": 60.0, "ram": 2.5})
    assert not beat.beat(15.0, {"cpu": 40.0})
    assert beat.beat(31.0, {"cpu": 40.0})  # one line even after a gap
    lines = stream.getvalue().splitlines()
    assert lines[0] == (
        f"{HEARTBEAT_PREFIX} 10.2 s elapsed, 102 W now (cpu 40 W, gpu 60 W, ram 2.5 W)"
    )
    assert len(lines) == 2 and lines[1].startswith(f"{HEARTBEAT_PREFIX} 31 s elapsed")


@pytest.mark.timeout(10)
def test_heartbeat_with_a_tiny_interval_catches_up_at_once() -> None:
    """A long gap over a tiny interval: the next line is due one interval on, not a loop away."""
    stream = io.StringIO()
    beat = Heartbeat(1e-9, stream)
    assert beat.beat(3600.0, {"cpu": 1.0})
    assert not beat.beat(3600.0, {"cpu": 1.0})
    assert beat.beat(3600.5, {"cpu": 1.0})
    assert len(stream.getvalue().splitlines()) == 2


@pytest.mark.parametrize("value", ["", "0", "-5", "abc", "nan"])
def test_heartbeat_is_off_unless_the_variable_is_a_positive_number(value: str) -> None:
    assert not Heartbeat.from_env({"CARBON_KFP_HEARTBEAT_S": value}).enabled
    assert Heartbeat.from_env({"CARBON_KFP_HEARTBEAT_S": "10"}).enabled


def test_each_sampling_tick_reads_the_cpu_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timeline takes its snapshot from ``sample()``; a second ``read()`` per tick would
    walk /proc (or the cgroup and RAPL) twice every interval."""
    import time

    from carbon_kfp.sensors.cpu import CpuSensor

    calls = []
    advance = CpuSensor._advance

    def counted(self: CpuSensor, now_s: float) -> None:
        calls.append(now_s)
        advance(self, now_s)

    monkeypatch.setattr(CpuSensor, "_advance", counted)
    tracker = EmissionsTracker(
        measure_interval_s=0.05, carbon_intensity_g_per_kwh=100.0, scope="process", gpu=False
    ).start()
    time.sleep(0.3)
    record = tracker.stop()
    ticks = len(record.power_timeline["t_s"]) - 1  # buckets: one per tick, and the end
    assert ticks >= 4
    # once per tick, plus the start's read and the end's sample, read and close
    assert len(calls) == ticks + 4


def test_tracker_record_carries_the_timeline() -> None:
    tracker = EmissionsTracker(
        measure_interval_s=0.05, carbon_intensity_g_per_kwh=100.0, scope="process"
    )
    with tracker:
        sum(range(200_000))  # some CPU work while the sampler runs
    record = tracker.final_record
    assert record is not None
    timeline = record.power_timeline
    assert set(timeline) == {"t_s", "cpu_w", "gpu_w", "ram_w"}
    assert len(timeline["t_s"]) >= 1
    assert timeline["t_s"][-1] == pytest.approx(record.duration_s, abs=1e-3)
    assert all(len(series) == len(timeline["t_s"]) for series in timeline.values())


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_tracker_prints_heartbeats_when_the_variable_is_set() -> None:
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import time
        from carbon_kfp import EmissionsTracker
        with EmissionsTracker(measure_interval_s=0.05, carbon_intensity_g_per_kwh=1.0,
                              scope="process"):
            end = time.monotonic() + 0.6
            while time.monotonic() < end:
                pass
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "CARBON_KFP_HEARTBEAT_S": "0.2",
        },
    )
    assert done.returncode == 0, done.stderr
    beats = [line for line in done.stderr.splitlines() if line.startswith(HEARTBEAT_PREFIX)]
    assert beats and all(" elapsed, " in line and " W now (cpu " in line for line in beats)
