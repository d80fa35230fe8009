"""benchmarks/gpu_check.py's Fashion-MNIST epoch, without a GPU: CPU training and a fake NVML."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbon_kfp.sensors.gpu import NVML_MODULE_ENV
from tests.fake_nvml import SCRIPT_ENV, FakeGpu, PowerCurve, script_json
from tests.test_gpu_sensor import REPO, UUID_A, child_env

SCRIPT = str(REPO / "benchmarks" / "gpu_check.py")


@pytest.mark.slow  # a subprocess importing keras
def test_without_a_gpu_it_says_so_before_loading_any_data(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, SCRIPT, "--fashion-data", str(tmp_path / "missing")],
        env=child_env(CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "no CUDA GPU" in out.stdout and "nothing to check" in out.stdout
    assert "fashion-mnist epoch" not in out.stdout


@pytest.mark.slow
def test_fashion_epoch_on_a_fake_gpu(tmp_path: Path) -> None:
    script = script_json([FakeGpu(uuid=UUID_A, curve=PowerCurve.constant(70.0))], time.monotonic())
    result_path = tmp_path / "gpu_check.json"
    out = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            *("--device", "cpu", "--seconds", "1", "--blocks", "2", "--warmup-seconds", "0.1"),
            *("--fashion-images", "64", "--fashion-batch", "32"),  # random images
            *("--json", str(result_path)),
        ],
        env=child_env(**{NVML_MODULE_ENV: "tests.fake_nvml", SCRIPT_ENV: script}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    fashion = json.loads(result_path.read_text())["fashion"]
    assert fashion["images"] == 64 and fashion["images_per_s"] > 0
    assert fashion["gpu_method"] == "nvml-energy"  # the step's own tracker saw the (fake) GPU
    assert fashion["counter_method"] == "nvml-energy" and fashion["power_method"] == "nvml-power"
    # the fake draws 70 W: both sensors agree with it over the whole call
    assert fashion["counter_energy_j"] == pytest.approx(70.0 * fashion["call_s"], rel=0.05)
    assert abs(fashion["difference_percent"]) < 2.0
    assert 0 < fashion["record_gpu_energy_j"] <= fashion["counter_energy_j"]
    assert "images/s" in out.stdout and "gpu_method=nvml-energy" in out.stdout
