"""Four trackers as torchrun ranks 0-3 of one node: the node's GPUs appear once in the records.

Each rank is a real process running :class:`EmissionsTracker` against a scripted fake NVML
(``CARBON_KFP_NVML_MODULE=tests.fake_nvml``) and appending to one shared ``emissions.csv``.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbon_kfp.sensors.gpu import NVML_MODULE_ENV
from tests.fake_nvml import SCRIPT_ENV, script_json
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
