"""GpuSensor against a scripted fake NVML (tests/fake_nvml.py): energies, downgrades, scope."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon_kfp import errors
from carbon_kfp.energy import trapezoid_energy_j
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.sensors.base import METHODS, Reading
from carbon_kfp.sensors.gpu import GpuSensor, model_label, weakest_method
from carbon_kfp.sensors.nvml_devices import NVML_MODULE_ENV, parse_visible_devices
from tests.fake_nvml import SCRIPT_ENV, FakeGpu, FakeNvml, PowerCurve, script_json

REPO = Path(__file__).resolve().parents[1]
COUNTER = "nvmlDeviceGetTotalEnergyConsumption"
POWER = "nvmlDeviceGetPowerUsage"
UUID_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
UUID_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"
MIG_1 = "MIG-11111111-aaaa-bbbb-cccc-dddddddddddd"
MIG_2 = "MIG-22222222-aaaa-bbbb-cccc-dddddddddddd"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """warn_once is process-wide; each test starts with nothing seen and no env overrides."""
    monkeypatch.setattr(errors, "_seen", set())
    monkeypatch.delenv(NVML_MODULE_ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    yield


def carbon_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, CarbonKfpWarning)]


def window(fake: FakeNvml, name: str, uuid: str, since_s: float) -> tuple[float, float]:
    """First and last time the sensor asked ``name`` about ``uuid`` after ``since_s``."""
    calls = [c for c in fake.calls_named(name, uuid) if c.t_s >= since_s]
    assert len(calls) >= 2, calls
    return calls[0].t_s, calls[-1].t_s


def sleep_until(fake: FakeNvml, t_s: float) -> None:
    time.sleep(max(0.0, fake.epoch_s + t_s - time.monotonic()))


def sampled_power(fake: FakeNvml, uuid: str, since_s: float) -> tuple[list[float], list[float]]:
    """The times of the sensor's power calls about ``uuid`` after ``since_s`` and the power the
    fake answered at each: the samples the sensor integrated, however the threads were scheduled.
    """
    times = [c.t_s for c in fake.calls_named(POWER, uuid) if c.t_s >= since_s]
    curve = fake.gpu(uuid).curve
    return times, [curve.power_w(t_s - fake.epoch_s) for t_s in times]


def final_reading(sensor: GpuSensor) -> Reading:
    """read(), close(), and the reading as closed: it includes every NVML call the sensor made
    (a power sample the thread takes between read() and close() included)."""
    sensor.read()
    sensor.close()
    return sensor.read()


def wait_for_calls(fake: FakeNvml, name: str, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(fake.calls_named(name)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} {name} calls in {timeout_s} s"
        time.sleep(0.01)


# -- measurement ------------------------------------------------------------------------------


def test_counter_energy_is_exact() -> None:
    ramp = PowerCurve(((0.0, 60.0), (0.4, 250.0), (0.8, 90.0)))
    fake = FakeNvml(
        [FakeGpu(uuid=UUID_A, curve=ramp), FakeGpu(uuid=UUID_B, curve=PowerCurve.constant(35.0))]
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sensor = GpuSensor(nvml=fake)
        since_s = time.monotonic()
        sensor.start()
        time.sleep(0.2)
        sensor.sample()
        time.sleep(0.2)
        reading = sensor.read()
        sensor.close()

    expected_j = sum(fake.energy_j(u, *window(fake, COUNTER, u, since_s)) for u in (UUID_A, UUID_B))
    assert reading.method == "nvml-energy"
    assert reading.energy_j == pytest.approx(expected_j, rel=1e-3)
    assert reading.energy_j > 30.0
    assert reading.capacity == 2
    assert reading.model == "2 x Tesla T4"
    assert reading.utilization_percent == 50.0
    assert sensor.warnings() == ()
    assert carbon_warnings(record) == []
    assert fake.calls_named(POWER) == []  # no sampling thread where a counter exists


@pytest.mark.slow
def test_power_integration_matches_piecewise_linear_integral() -> None:
    # Kinks at 1, 2 and 3 s, slope changes 100 + 50 + 50 W/s.
    curve = PowerCurve(((0.0, 100.0), (1.0, 200.0), (2.0, 200.0), (3.0, 150.0)))
    fake = FakeNvml([FakeGpu(uuid=UUID_A, curve=curve, energy_counter=False)])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sensor = GpuSensor(nvml=fake)
        since_s = time.monotonic()
        sensor.start()
        for t_s in (0.8, 1.6, 2.4):  # the tracker's own cadence does not disturb the integral
            sleep_until(fake, t_s)
            sensor.sample()
        sleep_until(fake, 3.2)
        reading = final_reading(sensor)

    # DESIGN §2: power sampled at >= 10 Hz is the sensor's configuration (and its default).
    assert sensor.power_sample_interval_s <= 0.1
    times, powers = sampled_power(fake, UUID_A, since_s)
    [device] = sensor.device_readings()
    assert device.power_samples == len(times) > 2  # the thread sampled between the edges
    assert reading.method == "nvml-power"
    # The trapezoid over the samples actually taken, whenever the scheduler ran the thread...
    assert reading.energy_j == pytest.approx(trapezoid_energy_j(times, powers), rel=1e-3)
    # ...is within the trapezoid rule's bound of the exact integral: a kink inside a gap of h
    # seconds costs at most |slope change| x h^2 / 8.
    max_gap_s = max(b - a for a, b in itertools.pairwise(times))
    exact_j = fake.energy_j(UUID_A, times[0], times[-1])
    assert abs(reading.energy_j - exact_j) <= 200.0 * max_gap_s**2 / 8 + 1e-3 * exact_j
    # Missing counter is a downgrade like any other: one warning, kept in the record.
    assert len(carbon_warnings(record)) == 1
    assert "counter unavailable" in sensor.warnings()[0]


@pytest.mark.parametrize("fail_with", ["NotSupported", "GpuIsLost"])
def test_counter_failing_mid_run_downgrades_once(fail_with: str) -> None:
    # Counter calls: 1 = probe at construction, 2 = start baseline, 3 = first sample -> fails.
    gpu = FakeGpu(
        uuid=UUID_A,
        curve=PowerCurve.constant(120.0),
        fail={COUNTER: 3},
        fail_with=fail_with,
    )
    fake = FakeNvml([gpu])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sensor = GpuSensor(nvml=fake)
        since_s = time.monotonic()
        sensor.start()
        time.sleep(0.1)
        sensor.sample()  # the counter fails here: hand over to power sampling
        time.sleep(0.2)
        for _ in range(3):
            sensor.sample()
        reading = final_reading(sensor)

    assert reading.method == "nvml-power"
    assert len(carbon_warnings(record)) == 1
    assert len(sensor.warnings()) == 1
    assert (
        fail_with.replace("GpuIsLost", "GPU is lost").replace("NotSupported", "Not Supp")
        in (sensor.warnings()[0])
    )
    assert len(fake.calls_named(COUNTER)) == 3  # never asked again after the failure
    # The counter's window, the bridged gap and the power samples add up to the whole window.
    start_s = fake.calls_named(COUNTER)[1].t_s
    end_s = window(fake, POWER, UUID_A, since_s)[1]
    assert reading.energy_j == pytest.approx(fake.energy_j(UUID_A, start_s, end_s), rel=1e-3)


def test_power_failure_stops_that_device_without_raising() -> None:
    gpu = FakeGpu(uuid=UUID_A, energy_counter=False, fail={POWER: 6})
    fake = FakeNvml([gpu])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sensor = GpuSensor(nvml=fake)
        sensor.start()
        wait_for_calls(fake, POWER, 6)  # the thread's samples up to the failing one
        first = sensor.read()
        time.sleep(0.2)
        second = sensor.read()
        sensor.close()

    # What was measured stays, labelled and bounded by the method that measured it.
    assert first.method == second.method == "nvml-power"
    assert second.energy_j == first.energy_j > 0  # nothing is invented after the failure
    assert second.bounds_j() == pytest.approx((0.9 * second.energy_j, 1.1 * second.energy_j))
    assert len(carbon_warnings(record)) == 2  # counter missing, then power lost: one each
    assert "not measured" in sensor.warnings()[1]
    assert len(fake.calls_named(POWER)) == 6


def test_counter_then_power_then_nothing_keeps_each_part_and_its_error() -> None:
    """counter -> power -> none mid-run: the energy stays, each part keeps its method's error,
    and the record's interval is not degenerate (it used to collapse to low = mid = high)."""
    from carbon_kfp.record import Snapshot, build_record
    from tests.records import make_context

    # Counter calls: 1 probe, 2 start, 3 a good sample, 4 fails. Power calls: the bridge's
    # first sample, then the thread's, until the 4th fails.
    gpu = FakeGpu(uuid=UUID_A, curve=PowerCurve.constant(100.0), fail={COUNTER: 4, POWER: 4})
    fake = FakeNvml([gpu])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sensor = GpuSensor(nvml=fake)
        begin = Snapshot(0.0, {"gpu": sensor.read()})
        sensor.start()
        time.sleep(0.1)
        sensor.sample()  # counted by the counter
        time.sleep(0.1)
        sensor.sample()  # the counter fails: power sampling takes over
        wait_for_calls(fake, POWER, 4)  # power fails too
        time.sleep(0.1)
        end = Snapshot(1.0, {"gpu": final_reading(sensor)})

    counter_j, power_j = (
        sensor.device_readings()[0].energy_by_method_j.get(m, 0.0)
        for m in ("nvml-energy", "nvml-power")
    )
    assert counter_j > 0 and power_j > 0
    reading = end.reading("gpu")
    assert reading.method == "nvml-power"  # the weakest method that contributed energy
    assert reading.energy_j == pytest.approx(counter_j + power_j)
    assert reading.bounds_j() == pytest.approx(
        (0.95 * counter_j + 0.9 * power_j, 1.05 * counter_j + 1.1 * power_j)
    )
    assert len(carbon_warnings(record)) == 2
    context = make_context(intensity_g_per_kwh=100.0)  # explicit: exact, so the spread is GPU's
    rec = build_record(context, begin, end, timestamp="t", status="completed")
    assert rec.gpu_method == "nvml-power"
    assert rec.emissions_low_kg < rec.emissions_kg < rec.emissions_high_kg
    assert rec.emissions_high_kg / rec.emissions_kg == pytest.approx(
        reading.bounds_j()[1] / reading.energy_j
    )


def test_mixed_methods_report_the_weakest() -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID_A), FakeGpu(uuid=UUID_B, energy_counter=False)])
    with pytest.warns(CarbonKfpWarning, match="GPU 1 .* counter unavailable"):
        sensor = GpuSensor(nvml=fake)
    since_s = time.monotonic()
    sensor.start()
    time.sleep(0.15)
    reading = final_reading(sensor)
    assert reading.method == "nvml-power"
    assert {d.method for d in sensor.device_readings()} == {"nvml-energy", "nvml-power"}
    assert reading.capacity == 2
    # Both draw 70 W: the counter's GPU over its first and last read, the other over the power
    # samples actually taken (the trapezoid of a constant is exact), whatever the sleep lasted.
    counter_j = fake.energy_j(UUID_A, *window(fake, COUNTER, UUID_A, since_s))
    times, powers = sampled_power(fake, UUID_B, since_s)
    assert reading.energy_j == pytest.approx(
        counter_j + trapezoid_energy_j(times, powers), rel=1e-3
    )


# -- which devices ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "visible",
    [f"{MIG_1},{MIG_2}", f"{MIG_1}", f"MIG-{UUID_A}/1/0,MIG-{UUID_A}/2/0"],
    ids=["two-instances", "one-instance", "legacy-form"],
)
def test_mig_instance_is_measured_as_its_parent_once(visible: str) -> None:
    parent = FakeGpu(
        uuid=UUID_A,
        name="NVIDIA A100-SXM4-40GB",
        curve=PowerCurve.constant(180.0),
        mig=(MIG_1, MIG_2),
        utilization_percent=None,
    )
    other = FakeGpu(uuid=UUID_B, name="NVIDIA A100-SXM4-40GB")
    fake = FakeNvml([parent, other])
    with pytest.warns(CarbonKfpWarning, match="whole parent GPU"):
        sensor = GpuSensor(nvml=fake, visible_devices=visible)
    since_s = time.monotonic()
    sensor.start()
    time.sleep(0.1)
    sensor.sample()
    reading = sensor.read()
    sensor.close()

    assert reading.capacity == 1
    assert reading.model == "NVIDIA A100-SXM4-40GB (MIG parent)"
    assert reading.method == "nvml-energy"
    [device] = sensor.device_readings()
    assert device.uuid == UUID_A
    assert device.mig_uuids == tuple(visible.split(","))
    assert reading.energy_j == pytest.approx(
        fake.energy_j(UUID_A, *window(fake, COUNTER, UUID_A, since_s)), rel=1e-3
    )
    assert fake.calls_named(COUNTER, UUID_B) == []
    assert [w for w in sensor.warnings() if "whole parent GPU" in w]


def test_visible_devices_by_index_uuid_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID_A), FakeGpu(uuid=UUID_B, name="NVIDIA L4")])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    # Mixed models addressed by index without CUDA_DEVICE_ORDER=PCI_BUS_ID: say so.
    with pytest.warns(CarbonKfpWarning, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        by_index = GpuSensor(nvml=fake)
    assert by_index.read().model == "NVIDIA L4"
    assert GpuSensor(nvml=fake, visible_devices=UUID_A).read().model == "Tesla T4"
    prefix = GpuSensor(nvml=fake, visible_devices="GPU-bbbb,0")
    assert [d.uuid for d in prefix.device_readings()] == [UUID_B, UUID_A]
    assert prefix.read().model == "NVIDIA L4 + Tesla T4"
    assert any("CUDA_DEVICE_ORDER" in w for w in prefix.warnings())
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert GpuSensor(nvml=fake).warnings() == ()


def test_unknown_visible_entry_ends_the_list_like_cuda() -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID_A), FakeGpu(uuid=UUID_B)])
    with pytest.warns(CarbonKfpWarning, match="'GPU-nope' names no GPU"):
        sensor = GpuSensor(nvml=fake, visible_devices="0,GPU-nope,1")
    assert [d.uuid for d in sensor.device_readings()] == [UUID_A]
    assert "'GPU-nope'" in sensor.warnings()[0]


@pytest.mark.parametrize("visible", ["", "-1", " , 0"])
def test_no_visible_device_means_no_nvml(visible: str) -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID_A)])
    sensor = GpuSensor(nvml=fake, visible_devices=visible)
    sensor.start()
    assert sensor.read().method == "none"
    assert sensor.read().capacity == 0
    assert fake.init_count == 0


def test_non_owner_never_touches_nvml() -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID_A)])
    sensor = GpuSensor(nvml=fake, measure=False)
    sensor.start()
    sensor.sample()
    reading = sensor.read()
    sensor.close()
    assert (reading.method, reading.energy_j, reading.capacity) == ("none", 0.0, 0.0)
    assert fake.calls == []


def test_close_shuts_nvml_down_once_and_stops_the_thread() -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID_A, energy_counter=False)])
    with pytest.warns(CarbonKfpWarning, match="counter unavailable"):
        sensor = GpuSensor(nvml=fake)
    sensor.start()
    time.sleep(0.25)
    last = sensor.read()
    sensor.close()
    sensor.close()
    assert fake.init_count == fake.shutdown_count == 1
    assert not any(t.name == "carbon-kfp-gpu-power" for t in threading.enumerate())
    calls = len(fake.calls)
    sensor.sample()
    sensor.start()
    assert sensor.read() == last
    assert len(fake.calls) == calls


def test_nvml_without_devices_is_shut_down() -> None:
    fake = FakeNvml([])
    sensor = GpuSensor(nvml=fake)
    assert sensor.read().method == "none"
    assert fake.init_count == fake.shutdown_count == 1


def test_bad_configuration_fails_at_construction() -> None:
    with pytest.raises(ConfigError, match="power_sample_hz=5"):
        GpuSensor(power_sample_hz=5)
    with pytest.raises(ConfigError, match="power_sample_hz=nan"):
        GpuSensor(power_sample_hz=float("nan"))
    with pytest.raises(ConfigError, match="method='rapl'"):
        GpuSensor(method="rapl")  # type: ignore[arg-type]


# -- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, None),
        ("", ()),
        ("0", ("0",)),
        (" 0, 2 ", ("0", "2")),
        ("0,-1,2", ("0",)),
        ("-1", ()),
        ("1,,2", ("1",)),
        (f"{UUID_A},{MIG_1}", (UUID_A, MIG_1)),
    ],
)
def test_parse_visible_devices(spec: str | None, expected: tuple[str, ...] | None) -> None:
    assert parse_visible_devices(spec) == expected


def test_weakest_method_and_model_label() -> None:
    assert set(METHODS) >= {"nvml-energy", "nvml-power", "none"}
    assert weakest_method(["nvml-energy", "nvml-power"]) == "nvml-power"
    assert weakest_method(["nvml-energy", "none"]) == "nvml-energy"
    assert weakest_method([]) == "none"
    assert model_label(["Tesla T4"]) == "Tesla T4"
    assert model_label(["Tesla T4", "Tesla T4"]) == "2 x Tesla T4"
    assert model_label(["NVIDIA L4", "Tesla T4", "NVIDIA L4"]) == "2 x NVIDIA L4 + Tesla T4"
    assert model_label([]) == ""


# -- real processes ---------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (NVML_MODULE_ENV, SCRIPT_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


NO_DRIVER_CHILD = """
import json, sys
import carbon_kfp.sensors.gpu as gpu, carbon_kfp.sensors.nvml_devices as devices
devices.DRIVER_MARKERS = ("/nonexistent/nvidia/version",)  # a machine without the driver
sensor = gpu.GpuSensor()
sensor.start(); sensor.sample(); reading = sensor.read(); sensor.close()
print(json.dumps({"pynvml": "pynvml" in sys.modules, "method": reading.method,
                  "energy_j": reading.energy_j, "capacity": reading.capacity,
                  "warnings": sensor.warnings()}))
"""


def test_no_driver_means_no_pynvml_import() -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_DRIVER_CHILD],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result == {
        "pynvml": False,
        "method": "none",
        "energy_j": 0.0,
        "capacity": 0.0,
        "warnings": [],
    }


@pytest.mark.slow
def test_gpu_check_without_a_gpu_says_so() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--seconds", "1"],
        env=child_env(CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "nothing to check" in out.stdout


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_a_fake_gpu(tmp_path: Path) -> None:
    """The benchmark's logic on CPU with the fake NVML, so it is exercised without a GPU."""
    script = script_json([FakeGpu(uuid=UUID_A, curve=PowerCurve.constant(100.0))], time.monotonic())
    result_path = tmp_path / "gpu_check.json"
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "gpu_check.py"),
            *("--device", "cpu", "--seconds", "2", "--blocks", "2", "--warmup-seconds", "0.3"),
            *("--json", str(result_path)),
        ],
        env=child_env(**{NVML_MODULE_ENV: "tests.fake_nvml", SCRIPT_ENV: script}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(result_path.read_text())
    assert result["counter_method"] == "nvml-energy"
    assert result["power_method"] == "nvml-power"
    assert result["counter_energy_j"] == pytest.approx(100.0 * result["measured_s"], rel=0.02)
    assert abs(result["difference_percent"]) < 1.0
    assert "difference" in out.stdout
