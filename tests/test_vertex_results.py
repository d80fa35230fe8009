"""``carbon-kfp results``: CO2 read back from constructed ``PipelineTaskDetail`` protos."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from google.cloud.aiplatform_v1.types import (
    Artifact,
    Execution,
    PipelineJob,
    PipelineState,
    PipelineTaskDetail,
)

from carbon_kfp import cli
from carbon_kfp.results import job_co2, render
from tests.vertex_fakes import JOB_NAME, PROJECT, REGION, FakeVertex, vertex

__all__ = ["vertex"]  # the fixture

LOAD = {"energy_kwh": 2e-6, "emissions_kg": 4e-7, "emissions_low_kg": 3e-7,
        "emissions_high_kg": 5e-7, "duration_s": 1.5}  # fmt: skip
TRAIN = {"energy_kwh": 3e-5, "emissions_kg": 6e-6, "emissions_low_kg": 5e-6,
         "emissions_high_kg": 8e-6, "duration_s": 20.0}  # fmt: skip
CACHED = {"energy_kwh": 1e-5, "emissions_kg": 2e-6, "emissions_low_kg": 1e-6,
          "emissions_high_kg": 3e-6, "duration_s": 9.0}  # fmt: skip
REPORT = {"emissions_kg": 6.4e-6, "energy_kwh": 3.2e-5, "steps": 2.0, "cached_steps": 1.0,
          "avoided_emissions_kg": 2e-6}  # fmt: skip


def task(
    name: str,
    outputs: dict[str, dict[str, float]],
    *,
    state: str = "SUCCEEDED",
    execution: str = "COMPLETE",
    kind: str = "system.ContainerExecution",
) -> PipelineTaskDetail:
    artifacts = {
        output: PipelineTaskDetail.ArtifactList(
            artifacts=[
                Artifact(
                    schema_title="system.Metrics",
                    display_name=output,
                    uri=f"gs://bucket/root/{name}/{output}",
                    metadata=metadata,
                )
            ]
        )
        for output, metadata in outputs.items()
    }
    return PipelineTaskDetail(
        task_name=name,
        state=PipelineTaskDetail.State[state],
        execution=Execution(state=Execution.State[execution], schema_title=kind),
        outputs=artifacts,
    )


def details() -> list[PipelineTaskDetail]:
    return [
        task("wine-quality", {}, execution="RUNNING", kind="system.DAGExecution"),  # root
        task("load-wine-data", {"kpi_co2": LOAD}),
        task("evaluate-wine-model", {"kpi_co2": CACHED}, state="SKIPPED", execution="CACHED"),
        task("train-wine-model", {"kpi_co2": TRAIN, "metrics": {"accuracy": 0.9}}),
        # a condition DAG re-exposing a step's artifact must not count twice
        task("condition-1", {"kpi_co2": TRAIN}, kind="system.DAGExecution"),
        task("carbon-report", {"pipeline_kpi_co2": REPORT}),
    ]


def as_dicts(protos: list[PipelineTaskDetail]) -> list[dict[str, Any]]:
    return [PipelineTaskDetail.to_dict(p, use_integers_for_enums=False) for p in protos]


def test_steps_totals_and_cached_step() -> None:
    result = job_co2(JOB_NAME, as_dicts(details()))
    assert [(s.step, s.state, s.cached) for s in result.steps] == [
        ("load-wine-data", "SUCCEEDED", False),
        ("evaluate-wine-model", "CACHED", True),
        ("train-wine-model", "SUCCEEDED", False),
    ]
    assert result.steps[2].emissions_kg == TRAIN["emissions_kg"]
    assert result.energy_kwh == pytest.approx(LOAD["energy_kwh"] + TRAIN["energy_kwh"])
    assert result.emissions_kg == pytest.approx(LOAD["emissions_kg"] + TRAIN["emissions_kg"])
    assert result.avoided_emissions_kg == pytest.approx(CACHED["emissions_kg"])
    assert result.report == REPORT


def test_table() -> None:
    table = render(job_co2(JOB_NAME, as_dicts(details())), "table")
    lines = table.splitlines()
    assert lines[0] == f"job {JOB_NAME}"
    rows = {line.split()[0]: line.split() for line in lines[3:6]}
    assert rows["load-wine-data"][1:4] == ["SUCCEEDED", "2e-06", "0.0004"]
    assert rows["evaluate-wine-model"][1:3] == ["(cached)", "CACHED"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:] == ["3.2e-05", "0.0064"]  # kWh, g: cached step left out
    assert "cached: 1 step measured in earlier jobs, not in the total; 0.002 g CO2 avoided" in lines
    assert "carbon_report: 0.0064 g CO2, 3.2e-05 kWh over 2 steps (1 cached)" in lines


def test_json_and_csv() -> None:
    result = job_co2(JOB_NAME, as_dicts(details()))
    document = json.loads(render(result, "json"))
    assert document["total"]["emissions_kg"] == pytest.approx(6.4e-6)
    assert document["total"]["avoided_emissions_kg"] == pytest.approx(2e-6)
    assert [s["cached"] for s in document["steps"]] == [False, True, False]
    assert document["carbon_report"]["cached_steps"] == 1.0

    rows = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    assert [row["step"] for row in rows] == [
        "load-wine-data",
        "evaluate-wine-model",
        "train-wine-model",
        "total",
    ]
    assert float(rows[-1]["emissions_high_kg"]) == pytest.approx(5e-7 + 8e-6)
    assert float(rows[-1]["duration_s"]) == pytest.approx(21.5)


def test_a_job_without_records_says_so() -> None:
    table = render(job_co2(JOB_NAME, as_dicts(details()[:1])), "table")
    assert "no kpi_co2 outputs" in table
    with pytest.raises(ValueError, match="format 'xml'"):
        render(job_co2(JOB_NAME, []), "xml")


def _finished_job() -> PipelineJob:
    job = PipelineJob(
        name=JOB_NAME, display_name="wine-co2", state=PipelineState.PIPELINE_STATE_SUCCEEDED
    )
    job.job_detail.task_details.extend(details())
    return job


@pytest.mark.parametrize(
    "job_argv",
    [[JOB_NAME], [JOB_NAME.rsplit("/", 1)[1], "--project", PROJECT, "--region", REGION]],
)
def test_cli_reads_the_job(
    vertex: FakeVertex, capsys: pytest.CaptureFixture[str], job_argv: list[str]
) -> None:
    vertex.job_states = [_finished_job()]
    assert cli.main(["results", *job_argv, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["emissions_kg"] == pytest.approx(6.4e-6)
    assert {request["name"] for request in vertex.named("get_pipeline_job")} == {JOB_NAME}
    assert {call for call, _ in vertex.calls} == {"get_pipeline_job"}


def test_cli_needs_project_and_region_for_an_id(
    vertex: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["results", "wine-quality-20261204120000"]) == 2
    assert "--project and --region" in capsys.readouterr().err
    assert vertex.calls == []


def test_cli_finds_a_job_by_display_name(
    vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

    vertex.job_states = [_finished_job()]
    get = PipelineServiceClient.get_pipeline_job

    def get_by_name(self: Any, *args: Any, **kwargs: Any) -> PipelineJob:
        if not kwargs.get("name", "").endswith("/wine-quality-20261204120000"):
            raise exceptions.NotFound(kwargs.get("name", ""))
        return get(self, *args, **kwargs)

    monkeypatch.setattr(PipelineServiceClient, "get_pipeline_job", get_by_name)
    argv = ["results", "wine-co2", "--project", PROJECT, "--region", REGION, "--format", "csv"]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("total,")
    (listed,) = vertex.named("list_pipeline_jobs")
    assert listed["filter"] == 'display_name="wine-co2"'

    assert cli.main(["results", "no-such-job", *argv[2:]]) == 2
    assert "'no-such-job': no pipeline job with that id or display name" in capsys.readouterr().err
