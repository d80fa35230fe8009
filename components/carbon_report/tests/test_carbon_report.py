"""carbon_report: the function on real files, and a local run with ParallelFor + dsl.Collected."""

import dataclasses
import json
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics, Output

from carbon_kfp.components.carbon_report.component import carbon_report
from carbon_kfp.images import cpu_image
from tests.kfp_features import needs_full_kfp_local
from tests.records import make_record


def kpi_artifact(path: Path, pipeline_task: str = "", **kwargs: object) -> Metrics:
    """A step's kpi_co2 as the step leaves it: metrics in metadata, the record in the file."""
    record = dataclasses.replace(make_record(**kwargs), pipeline_task=pipeline_task)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.to_json())
    return Metrics(name="kpi_co2", uri=str(path), metadata=record.to_metrics())


def run_report(tmp_path: Path, **inputs: object) -> tuple[Metrics, str, str]:
    out = tmp_path / "report"
    metrics = Metrics(uri=str(out / "pipeline_kpi_co2"))
    markdown = Markdown(uri=str(out / "report_markdown"))
    html = HTML(uri=str(out / "report_html"))
    carbon_report.python_func(
        pipeline_kpi_co2=metrics, report_markdown=markdown, report_html=html, **inputs
    )
    return metrics, Path(markdown.path).read_text(), Path(html.path).read_text()


def test_collected_and_explicit_inputs_are_summed_in_order(tmp_path: Path) -> None:
    loop = [
        kpi_artifact(tmp_path / f"it-{i}" / "shard" / "kpi_co2", "shard", cpu_j=3.6e6 * (i + 1))
        for i in range(2)
    ]
    evaluate = kpi_artifact(tmp_path / "evaluate" / "kpi_co2", cpu_j=3.6e5)  # no task name
    metrics, markdown, html = run_report(tmp_path, step_metrics=loop, kpi_co2_3=evaluate)

    steps = [*loop, evaluate]
    assert metrics.metadata["steps"] == 3.0
    for key in ("emissions_kg", "energy_kwh", "cpu_energy_kwh", "duration_s"):
        assert metrics.metadata[key] == pytest.approx(sum(a.metadata[key] for a in steps))
    assert [k for k in metrics.metadata if k.startswith("emissions_share_")] == [
        "emissions_share_shard",
        "emissions_share_shard_2",
        "emissions_share_evaluate",  # named after its task directory
    ]
    assert json.loads((tmp_path / "report" / "pipeline_kpi_co2").read_text()) == metrics.metadata
    rows = [line.split(" | ")[0] for line in markdown.splitlines() if line.startswith("| ")]
    assert rows[1:4] == ["| shard", "| shard #2", "| evaluate"]
    assert "<svg" in html and "shard #2" in html


def test_step_names_are_escaped_in_html(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    _, markdown, html = run_report(tmp_path, kpi_co2_1=kpi_artifact(tmp_path / "s" / "k", evil))
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in markdown


def test_a_file_that_is_not_a_record_fails_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "train" / "kpi_co2"
    bad.parent.mkdir()
    bad.write_text("{}")
    with pytest.raises(ValueError, match=str(bad)):
        run_report(tmp_path, kpi_co2_1=Metrics(uri=str(bad)))


@dsl.component(base_image=cpu_image(), packages_to_install=[], install_kfp_package=False)
def shard(kpi_co2: Output[Metrics], cpu_s: float, pipeline_task: str = "") -> None:
    """Burns ``cpu_s`` of CPU inside ``track``."""
    import time

    from carbon_kfp.kfp import track

    with track(kpi_co2, pipeline_task=pipeline_task, carbon_intensity_g_per_kwh=200.0):
        end = time.process_time() + cpu_s
        while time.process_time() < end:
            pass


@dsl.pipeline(name="carbon-report-fan-out")
def fan_out() -> None:
    prepare = shard(cpu_s=0.05, pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER)
    with dsl.ParallelFor([0.05, 0.1]) as cpu_s:
        work = shard(cpu_s=cpu_s, pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER).after(prepare)
    carbon_report(
        step_metrics=dsl.Collected(work.outputs["kpi_co2"]), kpi_co2_1=prepare.outputs["kpi_co2"]
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
@needs_full_kfp_local
def test_local_run_with_parallel_for(kfp_local: Path) -> None:
    before = set(kfp_local.glob("carbon-report-fan-out-*"))
    fan_out()
    (run_dir,) = set(kfp_local.glob("carbon-report-fan-out-*")) - before

    output = json.loads((run_dir / "carbon-report" / "executor_output.json").read_text())
    metrics = output["artifacts"]["pipeline_kpi_co2"]["artifacts"][0]["metadata"]
    assert metrics["steps"] == 3.0
    step_kg = [
        json.loads(path.read_text())["emissions_kg"] for path in run_dir.glob("**/shard*/kpi_co2")
    ]
    assert len(step_kg) == 3
    assert metrics["emissions_kg"] == pytest.approx(sum(step_kg))
    markdown = (run_dir / "carbon-report" / "report_markdown").read_text()
    assert "| shard-2 #2 |" in markdown and "| shard |" in markdown
