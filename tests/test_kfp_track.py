"""``carbon_kfp.kfp.track`` in real ``kfp.local`` pipelines, and in-process.

The pipeline runs on ``SubprocessRunner(use_venv=False)``: components install nothing and import
carbon_kfp from this checkout. Outputs are read from the files kfp writes (``executor_output.json``
and the artifact files), as the Vertex AI launcher reads them.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl
from kfp.dsl import Metrics, Output

from carbon_kfp.components.carbon_report.component import carbon_report
from carbon_kfp.errors import ConfigError
from carbon_kfp.images import cpu_image
from carbon_kfp.kfp import SIGTERM_EXIT_CODE, track
from tests.conftest import REPO_ROOT, KfpLocal
from tests.kfp_features import needs_full_kfp_local
from tests.test_executor import METRIC_KEYS

pytestmark = [
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
    pytest.mark.usefixtures("fresh_warn_once"),
]


@dsl.component(base_image=cpu_image(), packages_to_install=[], install_kfp_package=False)
def busy_step(
    kpi_co2: Output[Metrics],
    cpu_s: float = 0.2,
    fail: bool = False,
    pipeline_job: str = "",
    pipeline_task: str = "",
) -> None:
    """Burns ``cpu_s`` of CPU inside ``track``; raises ``ValueError`` at the end when ``fail``."""
    import time

    from carbon_kfp.kfp import track

    with track(
        kpi_co2,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        carbon_intensity_g_per_kwh=300.0,
        measure_interval_s=0.1,
    ):
        end = time.process_time() + cpu_s
        while time.process_time() < end:
            pass
        if fail:
            raise ValueError("boom: training diverged")


@dsl.pipeline(name="carbon-track-test")
def two_steps(cpu_s: float = 0.2) -> None:
    tags = {
        "pipeline_job": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        "pipeline_task": dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
    }
    train = busy_step(cpu_s=cpu_s, **tags)
    evaluate = busy_step(cpu_s=cpu_s, **tags).after(train)
    carbon_report(kpi_co2_1=train.outputs["kpi_co2"], kpi_co2_2=evaluate.outputs["kpi_co2"])


@dsl.pipeline(name="carbon-track-failing")
def failing() -> None:
    busy_step(cpu_s=0.1, fail=True, pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER)


def run(pipeline: Any, root: Path, name: str, **arguments: Any) -> Path:
    """Run a pipeline locally; return the run's directory under the pipeline root."""
    before = set(root.glob(f"{name}-*"))
    try:
        pipeline(**arguments)
    finally:
        (run_dir,) = set(root.glob(f"{name}-*")) - before
    return run_dir


def artifact(task_dir: Path, name: str) -> dict[str, Any]:
    output = json.loads((task_dir / "executor_output.json").read_text())
    (entry,) = output["artifacts"][name]["artifacts"]
    return dict(entry)


def test_components_install_nothing() -> None:
    for component in (busy_step, carbon_report):
        container = component.component_spec.implementation.container
        command = " ".join([*container.command, *(container.args or [])])
        assert "pip install" not in command
        assert container.image == cpu_image()


@pytest.mark.slow
@needs_full_kfp_local
def test_pipeline_writes_kpi_co2_and_a_report_that_sums_the_steps(kfp_local: KfpLocal) -> None:
    run_dir = run(two_steps, kfp_local(), "carbon-track-test")

    steps = {}
    for task in ("busy-step", "busy-step-2"):
        entry = artifact(run_dir / task, "kpi_co2")
        metrics = entry["metadata"]
        assert set(metrics) >= METRIC_KEYS
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
        record = json.loads(Path(entry["uri"]).read_text())  # kpi_co2.path holds the record
        assert record["emissions_kg"] == metrics["emissions_kg"]
        assert record["status"] == "completed"
        assert record["pipeline_task"] == task
        assert record["pipeline_job"] == run_dir.name
        assert record["carbon_intensity_g_per_kwh"] == 300.0
        assert record["cpu_energy_kwh"] > 0
        steps[task] = metrics

    report = artifact(run_dir / "carbon-report", "pipeline_kpi_co2")["metadata"]
    for key in ("emissions_kg", "energy_kwh", "cpu_energy_kwh", "duration_s", "emissions_high_kg"):
        assert report[key] == pytest.approx(sum(m[key] for m in steps.values()), rel=1e-12)
    assert report["steps"] == 2.0
    share = report["emissions_share_busy_step"] + report["emissions_share_busy_step_2"]
    assert share == pytest.approx(1.0)
    markdown = (run_dir / "carbon-report" / "report_markdown").read_text()
    assert "| busy-step |" in markdown and "| busy-step-2 |" in markdown
    html = (run_dir / "carbon-report" / "report_html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html


@pytest.mark.slow
@needs_full_kfp_local
def test_second_run_hits_the_cache_for_the_tracked_step(
    kfp_local: KfpLocal, tmp_path: Path
) -> None:
    root = kfp_local(enable_caching=True, cache_root=tmp_path / "cache")
    first = run(two_steps, root, "carbon-track-test", cpu_s=0.05)
    assert (first / "busy-step" / "executor_output.json").is_file()
    before = set(root.glob("carbon-track-test-*"))

    two_steps(cpu_s=0.05)

    # Served from the cache: no task ran, so no task directory was made for the second run.
    assert not [p for p in set(root.glob("carbon-track-test-*")) - before if any(p.iterdir())]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3


@pytest.mark.slow
def test_failing_step_fails_with_its_exception_and_keeps_kpi_co2(
    kfp_local: KfpLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    root = kfp_local()
    with pytest.raises(RuntimeError, match="FAILURE"):
        run(failing, root, "carbon-track-failing")
    (run_dir,) = root.glob("carbon-track-failing-*")

    assert "ValueError: boom: training diverged" in capsys.readouterr().out
    record = json.loads((run_dir / "busy-step" / "kpi_co2").read_text())
    assert record["status"] == "failed"
    assert record["duration_s"] >= 0.1
    assert record["cpu_energy_kwh"] > 0 and math.isfinite(record["emissions_kg"])
    assert record["pipeline_task"] == "busy-step"


# -- in-process ----------------------------------------------------------------------------------


def metrics_artifact(tmp_path: Path) -> Metrics:
    return Metrics(name="kpi_co2", uri=str(tmp_path / "task" / "kpi_co2"))


def test_track_logs_finite_metrics_and_writes_the_record(tmp_path: Path) -> None:
    kpi = metrics_artifact(tmp_path)
    with track(kpi, pipeline_job="job-1", pipeline_task="train", country_iso_code="FRA") as t:
        sum(range(100_000))
    assert t.final_record is not None
    assert kpi.metadata == t.final_record.to_metrics()
    assert set(kpi.metadata) >= METRIC_KEYS
    record = json.loads(Path(kpi.path).read_text())
    assert (record["pipeline_job"], record["pipeline_task"]) == ("job-1", "train")
    assert record["country_iso_code"] == "FRA"


def test_item4_undecodable_bytes_in_strings_never_fail_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(os.environb, b"CARBON_KFP_TEST_PROJECT", b"caf\xe9")
    project = os.environ["CARBON_KFP_TEST_PROJECT"]  # "caf\udce9": os.fsdecode of the bytes
    kpi = metrics_artifact(tmp_path)
    with track(
        kpi, project_name=project, pipeline_task="t\udcff", output_dir=str(tmp_path)
    ) as tracker:
        sum(range(1000))
    assert tracker.final_record is not None and tracker.final_record.project_name == project
    record = json.loads(Path(kpi.path).read_bytes().decode("utf-8", errors="strict"))
    assert (record["project_name"], record["pipeline_task"]) == ("caf\\xe9", "t\\xff")
    assert kpi.metadata == tracker.final_record.to_metrics()
    csv_text = (tmp_path / "emissions.csv").read_bytes().decode("utf-8", errors="strict")
    assert ",caf\\xe9," in csv_text


def test_body_exception_is_reraised_after_recording(tmp_path: Path) -> None:
    kpi = metrics_artifact(tmp_path)
    with pytest.raises(ZeroDivisionError), track(kpi, carbon_intensity_g_per_kwh=100.0):
        time.sleep(0.05)
        _ = 1 / 0
    record = json.loads(Path(kpi.path).read_text())
    assert record["status"] == "failed" and record["duration_s"] >= 0.05
    assert kpi.metadata["duration_s"] == record["duration_s"]


def test_cloud_location_picks_the_region_intensity(tmp_path: Path) -> None:
    kpi = metrics_artifact(tmp_path)
    with track(kpi, cloud_location="europe-west4") as t:
        pass
    record = t.final_record
    assert record is not None
    assert (record.cloud_provider, record.cloud_region) == ("gcp", "europe-west4")
    assert record.intensity_source == "gcp-region"


def test_unresolved_placeholders_are_ignored(tmp_path: Path) -> None:
    kpi = metrics_artifact(tmp_path)
    with (
        pytest.warns(UserWarning, match="not resolved"),
        track(
            kpi,
            cloud_location="{{$.pipeline_google_cloud_location}}",
            pipeline_task="{{$.pipeline_task_name}}",
            carbon_intensity_g_per_kwh=100.0,
        ) as t,
    ):
        pass
    assert t.final_record is not None
    assert (t.final_record.cloud_region, t.final_record.pipeline_task) == ("", "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compare": ("codecarbn",)}, "closest valid: codecarbon"),
        ({"measure_interval_s": 0}, "measure_interval_s"),
    ],
)
def test_bad_configuration_fails_before_the_body(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    kpi = metrics_artifact(tmp_path)
    with (
        pytest.raises(ConfigError, match=message),
        track(kpi, carbon_intensity_g_per_kwh=100.0, **kwargs),
    ):
        pytest.fail("the body must not run")
    assert not Path(kpi.path).exists()


def test_artifact_without_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no path"), track(Metrics(name="kpi_co2")):
        pytest.fail("the body must not run")


SIGTERM_SCRIPT = """
import sys, time
from kfp.dsl import Metrics
from carbon_kfp.kfp import track

kpi = Metrics(name="kpi_co2", uri=sys.argv[1])
try:
    with track(kpi, carbon_intensity_g_per_kwh=100.0):
        print("ready", flush=True)
        time.sleep(60)
finally:
    print("unwound", flush=True)
"""


def test_sigterm_unwinds_the_block_writes_kpi_co2_and_exits_143(tmp_path: Path) -> None:
    path = tmp_path / "kpi_co2"
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == SIGTERM_EXIT_CODE == 143
    assert child.stdout.read().strip() == "unwound"
    assert json.loads(path.read_text())["status"] == "interrupted"
