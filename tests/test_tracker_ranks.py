"""Trackers in several processes on one node, against a scripted fake NVML
(``CARBON_KFP_NVML_MODULE=tests.fake_nvml``): each process is a real :class:`EmissionsTracker`.

- Four torchrun ranks 0-3 of one job: the node's GPUs appear once in the records.
- Two unrelated trackers on disjoint GPUs: each measures its own GPU.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbon_kfp.sensors.nvml_devices import NVML_MODULE_ENV
from tests.fake_nvml import SCRIPT_ENV, FakeGpu, PowerCurve, from_script, script_json
from tests.test_distributed import NODE, RANK_VARS, REPO

RANK = """
import sys, time
from carbon_kfp import EmissionsTracker
tracker = EmissionsTracker(output_dir=sys.argv[1], carbon_intensity_g_per_kwh=100.0,
                           measure_interval_s=0.05).start()
end = time.process_time() + 0.2  # the same small CPU load on every rank
while time.process_time() < end:
    pass
time.sleep(0.4)
tracker.stop()
"""


@pytest.mark.slow
def test_node_gpu_energy_is_counted_once_across_ranks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    env |= {
        "PYTHONPATH": str(REPO),
        NVML_MODULE_ENV: "tests.fake_nvml",
        SCRIPT_ENV: script_json(NODE, time.monotonic()),
    }
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", RANK, str(tmp_path)],
            env=env | {"LOCAL_RANK": str(i), "RANK": str(i), "WORLD_SIZE": "4", "GROUP_RANK": "0"},
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for rank in ranks:
        _, stderr = rank.communicate(timeout=60)
        assert rank.returncode == 0, stderr

    rows = list(csv.DictReader((tmp_path / "emissions.csv").open()))
    assert len(rows) == 4
    owners = [row for row in rows if row["node_owner"] == "True"]
    assert len(owners) == 1
    (owner,) = owners
    assert owner["gpu_method"] == "nvml-energy" and float(owner["gpu_count"]) == 4
    # four fake GPUs at 50-300 W for ~0.6 s: tens of joules, all on the owner's row
    assert float(owner["gpu_energy"]) * 3.6e6 > 50.0
    total_gpu_kwh = sum(float(row["gpu_energy"]) for row in rows)
    assert total_gpu_kwh == pytest.approx(float(owner["gpu_energy"]))
    for row in rows:
        assert row["node_rank"] == "0"
        if row is not owner:
            assert row["gpu_method"] == "none" and float(row["gpu_count"]) == 0
            assert row["tracking_mode"] == "process"  # non-owners: their own process only
            # their own busy time only: the owner, doing the same work, also pays idle power
            assert 0 < float(row["cpu_energy"]) < float(owner["cpu_energy"])


UNRELATED = """
import json, sys, time
from carbon_kfp import EmissionsTracker
tracker = EmissionsTracker(carbon_intensity_g_per_kwh=100.0, measure_interval_s=0.05).start()
time.sleep(0.6)
record = tracker.stop()
from tests.fake_nvml import DEFAULT
calls = [[c.t_s, c.uuid] for c in DEFAULT.calls if c.name == "nvmlDeviceGetTotalEnergyConsumption"]
print(json.dumps({"record": record.to_dict(), "calls": calls}))
"""

TWO_GPUS = [
    FakeGpu(uuid="GPU-a0000000-0000-0000-0000-000000000000", curve=PowerCurve.constant(70.0)),
    FakeGpu(uuid="GPU-b0000000-0000-0000-0000-000000000000", curve=PowerCurve.constant(250.0)),
]


@pytest.mark.slow
def test_unrelated_trackers_on_disjoint_gpus_each_measure_their_own(tmp_path: Path) -> None:
    """Two jobs of one user on one host (no launcher variables, no group): neither defers to the
    other, and each records the energy of the GPU in its CUDA_VISIBLE_DEVICES."""
    script = script_json(TWO_GPUS, time.monotonic())
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    env |= {"PYTHONPATH": str(REPO), NVML_MODULE_ENV: "tests.fake_nvml", SCRIPT_ENV: script}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", UNRELATED],
            env=env | {"CUDA_VISIBLE_DEVICES": str(index)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    fake = from_script(script)
    for index, job in enumerate(jobs):
        stdout, stderr = job.communicate(timeout=60)
        assert job.returncode == 0, stderr
        result = json.loads(stdout)
        record = result["record"]
        gpu = TWO_GPUS[index]
        times = [t for t, uuid in result["calls"] if uuid == gpu.uuid]
        assert {uuid for _, uuid in result["calls"]} == {gpu.uuid}  # never the other job's GPU
        expected_j = fake.energy_j(gpu.uuid, times[1], times[-1])  # times[0] is the probe
        assert expected_j > 0.5 * gpu.curve.power_w(0.0)  # ran for over half a second
        assert record["node_owner"] is True
        assert not [w for w in record["warnings"] if "not the node owner" in w]
        assert (record["gpu_method"], record["gpu_count"]) == ("nvml-energy", 1.0)
        assert record["gpu_energy_kwh"] * 3.6e6 == pytest.approx(expected_j, rel=0.02)
