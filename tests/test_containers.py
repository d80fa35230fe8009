"""carbon-kfp in a real container: the CPU image built by ``make images-local``, under Docker.

Marker ``container`` (and ``slow``). Skipped, with the reason, when there is no ``docker`` CLI, no
daemon answers, or the image is missing; with ``CARBON_KFP_CONTAINER_TESTS=require`` (as
``.ci/run`` sets it) each of those is a failure instead, so CI cannot pass by skipping. The image is
``$CARBON_KFP_LOCAL_IMAGE`` (default ``carbon-kfp-cpu:local``) and carries the carbon-kfp it was
built from: rebuild it after changing the code.

What a tracker that ignored the container would get wrong here, on a 2-vCPU / 24 GiB machine:
2 CPUs, ~24 GiB, and a utilisation divided by 2 (``--cpus=1``) or 4 (``--cpus=0.5``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from carbon_kfp.outputs import CSV_COLUMNS, load_record
from carbon_kfp.record import EmissionsRecord
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.container, pytest.mark.slow]

IMAGE = os.environ.get("CARBON_KFP_LOCAL_IMAGE", "carbon-kfp-cpu:local")
REQUIRE_ENV = "CARBON_KFP_CONTAINER_TESTS"

#: A child that keeps one CPU busy for argv[1] seconds, then prints its own CPU seconds.
BUSY = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
    "print(time.process_time())\n"
)


def docker(
    *argv: str, timeout_s: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"docker {' '.join(argv[:3])} ... exited {done.returncode}:\n{done.stderr}")
    return done


def unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "require":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=require)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> str:
    """The local image's name, once Docker and the image are known to be there."""
    if shutil.which("docker") is None:
        unavailable("no docker CLI (apt-get install docker.io)")
    if docker("info", check=False, timeout_s=60).returncode != 0:
        unavailable("no Docker daemon answers (images/local/dockerd.sh starts one, as root)")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        unavailable(f"image {IMAGE} is not built (make images-local)")
    return IMAGE


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A host folder the image's non-root user can write to, mounted at ``/out``."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    return out


def exec_argv(*command: str, scope: str = "auto") -> list[str]:
    """``carbon-kfp exec`` writing its record, executor output and CSV row to ``/out``."""
    return [
        "carbon-kfp", "exec",
        "--executor-output", "/out/executor_output.json",
        "--metrics-path", "/out/kpi_co2.json",
        "--output-dir", "/out",
        "--country-iso-code", "DEU",
        "--measure-interval-s", "0.5",
        "--scope", scope,
        "--", *command,
    ]  # fmt: skip


def expected_utilization_percent(record: EmissionsRecord, child_cpu_s: float) -> float:
    """What the child's own CPU time says the scope's utilisation was."""
    return 100.0 * child_cpu_s / (record.cpu_count * record.duration_s)


@pytest.mark.parametrize("cpus, memory_gib", [(1.0, 2), (0.5, 1)])
def test_exec_charges_the_containers_cpu_and_memory_limits(
    image: str, shared: Path, cpus: float, memory_gib: int
) -> None:
    done = docker(
        "run", "--rm", f"--cpus={cpus}", f"--memory={memory_gib}g", "-v", f"{shared}:/out",
        image, *exec_argv("python", "-c", BUSY, "4"),
    )  # fmt: skip
    child_cpu_s = float(done.stdout.split()[-1])
    record = load_record(shared / "kpi_co2.json")

    assert (record.scope, record.cpu_method, record.status) == (
        "container",
        "cgroup-model",
        "completed",
    )
    assert record.cpu_count == pytest.approx(cpus)
    assert record.ram_total_size_gib == pytest.approx(memory_gib)
    assert record.cpu_utilization_percent is not None
    # The busy child alone fills its allocation; the wrapper adds a little of its own.
    assert record.cpu_utilization_percent == pytest.approx(
        expected_utilization_percent(record, child_cpu_s), abs=15
    )
    assert record.cpu_utilization_percent <= 105
    assert record.warnings == ()


def test_docker_stop_interrupts_a_tracked_step_and_keeps_its_csv_row(
    image: str, shared: Path
) -> None:
    name = f"carbon-kfp-stop-{uuid.uuid4().hex[:12]}"
    sleeper = "import pathlib, time; pathlib.Path('/out/started').touch(); time.sleep(600)"
    docker("run", "-d", "--name", name, "-v", f"{shared}:/out", image,
           *exec_argv("python", "-c", sleeper))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (shared / "started").exists():
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr
            time.sleep(0.1)
        docker("stop", "-t", "5", name, timeout_s=60)
        exit_code = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
    finally:
        docker("rm", "-f", name, check=False)

    assert exit_code == "143"  # SIGTERM handled as PID 1, not the SIGKILL (137) after 5 s
    record = load_record(shared / "kpi_co2.json")
    assert record.status == "interrupted"
    with (shared / "emissions.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 2 and len(rows[1]) == len(CSV_COLUMNS)
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["status"] == "interrupted"
    assert float(row["duration"]) == pytest.approx(record.duration_s)
    assert float(row["emissions"]) == pytest.approx(record.emissions_kg)
    outputs = json.loads((shared / "executor_output.json").read_text(encoding="utf-8"))
    (artifact,) = outputs["artifacts"]["kpi_co2"]["artifacts"]
    assert artifact["metadata"]["emissions_kg"] == pytest.approx(record.emissions_kg)


def test_image_runs_as_its_non_root_user_and_the_tracker_reads_proc_and_cgroup(
    image: str, shared: Path
) -> None:
    user = docker("image", "inspect", "-f", "{{.Config.User}}", image).stdout.strip()
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"
    probe = (
        "id -u; touch /opt/venv/probe 2>/dev/null && echo venv-writable || echo venv-read-only; "
        'exec "$@"'
    )
    done = docker(
        "run", "--rm", "--cpus=1", "--memory=2g", "-v", f"{shared}:/out", image,
        "sh", "-c", probe, "sh", *exec_argv("python", "-c", BUSY, "2", scope="process"),
    )  # fmt: skip
    uid, venv, *_, child_cpu_s = done.stdout.split()
    assert uid == user.split(":")[0]
    assert venv == "venv-read-only"
    record = load_record(shared / "kpi_co2.json")
    # The process tree comes from /proc, the limits from the cgroup: both readable as uid 1000.
    assert (record.scope, record.cpu_method) == ("process", "process-model")
    assert 0 < record.ram_total_size_gib < 2.0  # the tree's RSS, under the 2 GiB limit
    assert record.cpu_utilization_percent == pytest.approx(
        expected_utilization_percent(record, float(child_cpu_s)), abs=15
    )
    assert record.warnings == ()


WINE_TASKS = ("load-wine-data", "train-wine-model", "evaluate-wine-model")
RUN_WINE = """
import sys
from kfp import local
from carbon_kfp.pipelines import wine_pipeline

# Each step in a 1-vCPU / 2 GiB container, like a small Vertex AI machine.
runner = local.DockerRunner(nano_cpus=1_000_000_000, mem_limit="2g")
local.init(runner=runner, pipeline_root=sys.argv[1], raise_on_error=True)
wine_pipeline(n_estimators=20, n_jobs=1, cloud_location="europe-west4")
"""


def test_wine_pipeline_runs_every_step_in_the_image_on_the_docker_runner(
    image: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    root.chmod(0o777)  # the steps write their outputs as the image's non-root user
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_KFP_")}
    env["CARBON_KFP_CPU_IMAGE"] = image
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [sys.executable, "-c", RUN_WINE, str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"Found image '{image}'" in done.stdout  # ran in the local image, pulled nothing
    (run_dir,) = root.glob("wine-quality-*")
    step_kg = []
    for task in WINE_TASKS:
        record = load_record(run_dir / task / "kpi_co2")
        # measured inside the step's container, charged for its limits
        assert (record.scope, record.cpu_method, record.status) == (
            "container",
            "cgroup-model",
            "completed",
        ), task
        assert (record.cpu_count, record.ram_total_size_gib) == (1.0, 2.0), task
        metrics = record.to_metrics()
        assert all(math.isfinite(value) for value in metrics.values()), (task, metrics)
        assert metrics["emissions_kg"] > 0, task
        assert record.intensity_source.startswith("gcp"), task
        step_kg.append(record.emissions_kg)
    report = run_dir / "carbon-report"
    totals = json.loads((report / "pipeline_kpi_co2").read_text(encoding="utf-8"))
    numbers = [value for value in totals.values() if isinstance(value, float)]
    assert numbers and all(math.isfinite(value) for value in numbers)
    assert totals["emissions_kg"] == pytest.approx(sum(step_kg))
    html = (report / "report_html").read_text(encoding="utf-8")
    assert all(task in html for task in WINE_TASKS)
