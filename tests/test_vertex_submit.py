"""``carbon-kfp submit``: the exact request Vertex AI would get, and every refusal before it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud.aiplatform_v1.types import PipelineJob, PipelineState, PipelineTaskDetail
from google.protobuf import json_format

from carbon_kfp import __version__, cli
from carbon_kfp.kfp.source import compile_source, load_source
from pipelines.tests.test_wine_pipeline import load_yaml
from tests.vertex_fakes import JOB_NAME, PARENT, PROJECT, REGION, RUN_CONTEXT, FakeVertex, vertex

__all__ = ["vertex"]  # the fixture

REGISTRY = "europe-west4-docker.pkg.dev/carbon-test-project/ml"
BASE = [
    "submit",
    "wine",
    "--project",
    PROJECT,
    "--region",
    REGION,
    "--pipeline-root",
    "gs://carbon-test-bucket/root",
    "--image-registry",
    REGISTRY,
]


def submit(*extra: str) -> int:
    return cli.main([*BASE, *extra])


def sent_job(fake: FakeVertex) -> PipelineJob:
    (request,) = fake.named("create_pipeline_job")
    assert request["parent"] == PARENT
    return PipelineJob(request["pipeline_job"])


def caching(spec: dict[str, Any]) -> dict[str, bool]:
    """Task -> enableCache over the whole DAG tree."""
    found: dict[str, bool] = {}

    def walk(dag: dict[str, Any]) -> None:
        for name, task in dag.get("tasks", {}).items():
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"])
            else:
                found[name] = task.get("cachingOptions", {}).get("enableCache", False)

    walk(spec["root"]["dag"])
    return found


def test_submit_sends_exactly_the_settings(
    vertex: FakeVertex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = submit(
        "--service-account",
        "runner@carbon-test-project.iam.gserviceaccount.com",
        "--param",
        "n_estimators=50",
        "--param",
        "test_fraction=0.25",
        "--param",
        "deploy_target=vertex",
        "--label",
        "team=ml",
        "--label",
        "cost-centre=42",
        "--network",
        "projects/123456789/global/networks/ml-vpc",
        "--encryption-key",
        f"projects/{PROJECT}/locations/{REGION}/keyRings/ml/cryptoKeys/pipelines",
        "--display-name",
        "wine-co2",
    )
    assert code == 0
    assert JOB_NAME in capsys.readouterr().out
    job = sent_job(vertex)
    assert job.display_name == "wine-co2"
    assert job.service_account == "runner@carbon-test-project.iam.gserviceaccount.com"
    assert job.network == "projects/123456789/global/networks/ml-vpc"
    assert job.encryption_spec.kms_key_name == (
        f"projects/{PROJECT}/locations/{REGION}/keyRings/ml/cryptoKeys/pipelines"
    )
    assert dict(job.labels) == {
        "team": "ml",
        "cost-centre": "42",
        "carbon-kfp": __version__.replace(".", "-"),
    }
    runtime = job._pb.runtime_config
    assert runtime.gcs_output_directory == "gs://carbon-test-bucket/root"
    values = {k: json_format.MessageToDict(v) for k, v in runtime.parameter_values.items()}
    # types as sent: numbers are number_value, strings string_value; the region fills
    # cloud_location so the steps' grid intensity follows it
    assert values == {
        "n_estimators": 50,
        "test_fraction": 0.25,
        "deploy_target": "vertex",
        "cloud_location": REGION,
    }
    kinds = {k: v.WhichOneof("kind") for k, v in runtime.parameter_values.items()}
    assert kinds == {
        "n_estimators": "number_value",
        "test_fraction": "number_value",
        "deploy_target": "string_value",
        "cloud_location": "string_value",
    }

    # the template is the compiled pipeline, with the registry's images and the pipeline's own
    # caching choices (the report is never cached)
    expected = compile_source(
        load_source("wine"),
        tmp_path / "wine.yaml",
        cpu_image=f"{REGISTRY}/carbon-kfp-cpu:{__version__}",
    ).spec
    template = json_format.MessageToDict(job._pb.pipeline_spec)
    assert template["deploymentSpec"] == expected["deploymentSpec"]
    assert template["root"]["inputDefinitions"] == expected["root"]["inputDefinitions"]
    assert caching(template) == caching(expected)
    assert caching(template)["carbon-report"] is False
    assert caching(template)["train-wine-model"] is True
    assert [call for call, _ in vertex.calls] == ["check_bucket", "create_pipeline_job"]
    (bucket,) = vertex.named("check_bucket")
    assert bucket["output_artifacts_gcs_dir"] == "gs://carbon-test-bucket/root"


def test_endpoint_and_parent_model_are_sent_as_given(vertex: FakeVertex) -> None:
    endpoint, model = f"{PARENT}/endpoints/1234567890", f"{PARENT}/models/wine-quality"
    assert submit("--param", f"endpoint={endpoint}", "--param", f"parent_model={model}") == 0
    parameters = sent_job(vertex)._pb.runtime_config.parameter_values
    assert parameters["endpoint"].string_value == endpoint
    assert parameters["parent_model"].string_value == model


def test_no_cache_turns_caching_off_for_every_task(vertex: FakeVertex) -> None:
    assert submit("--no-cache") == 0
    assert sent_job(vertex).display_name == "wine-quality"  # the pipeline's name by default
    template = json_format.MessageToDict(sent_job(vertex)._pb.pipeline_spec)
    assert set(caching(template).values()) == {False}
    assert len(caching(template)) == 13


def test_experiment_gets_the_run(vertex: FakeVertex) -> None:
    assert submit("--experiment", "wine-co2") == 0
    names = [call for call, _ in vertex.calls]
    # the experiment is checked (and created) before the job, and the run added after it
    assert names.index("create_context") < names.index("create_pipeline_job")
    (created,) = vertex.named("create_context")
    assert created["parent"] == f"{PARENT}/metadataStores/default"
    assert created["context_id"] == "wine-co2"
    assert created["context"].schema_title == "system.Experiment"
    (children,) = vertex.named("add_context_children")
    assert children["context"] == f"{PARENT}/metadataStores/default/contexts/wine-co2"
    assert list(children["child_contexts"]) == [RUN_CONTEXT]


def _detail(name: str, state: str, execution: str = "") -> PipelineTaskDetail:
    detail = PipelineTaskDetail(task_name=name, state=PipelineTaskDetail.State[state])
    if execution:
        detail.execution.state = execution
    return detail


def _job_state(state: str, *details: PipelineTaskDetail) -> PipelineJob:
    job = PipelineJob(name=JOB_NAME, state=PipelineState[state])
    job.job_detail.pipeline_run_context.name = RUN_CONTEXT
    job.job_detail.task_details.extend(details)
    return job


def test_wait_shows_each_task_state_change(
    vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    vertex.job_states = [
        _job_state("PIPELINE_STATE_RUNNING", _detail("load-wine-data", "RUNNING")),
        _job_state("PIPELINE_STATE_RUNNING", _detail("load-wine-data", "RUNNING")),
        _job_state(
            "PIPELINE_STATE_FAILED",
            _detail("load-wine-data", "SKIPPED", "CACHED"),
            _detail("train-wine-model", "FAILED"),
        ),
    ]
    assert submit("--wait") == 1
    lines = capsys.readouterr().out.splitlines()
    changes = [line.split()[1:] for line in lines if not line.startswith("submitted")]
    assert changes == [
        ["load-wine-data", "RUNNING"],
        ["load-wine-data", "CACHED"],
        ["train-wine-model", "FAILED"],
        ["job", f"{JOB_NAME}:", "PIPELINE_STATE_FAILED"],
    ]


UNTRACKED = """
from kfp import dsl
from kfp.dsl import Metrics, Output

@dsl.component(base_image="gcr.io/p/img:1")
def step(kpi_co2: Output[Metrics], pipeline_job: str = "", pipeline_task: str = ""):
    pass

@dsl.pipeline(name="untracked")
def untracked():
    step()
"""


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--project", "My_Project"], "'My_Project'"),
        (["--project", "abc"], "'abc'"),
        (["--region", "europe-west4-a"], "'europe-west4-a'"),
        (["--region", "global"], "'global'"),
        (["--pipeline-root", "/tmp/root"], "'/tmp/root'"),
        (["--pipeline-root", "s3://bucket/root"], "'s3://bucket/root'"),
        (["--param", "n_estimatorz=3"], "'n_estimatorz'"),
        (["--param", "n_estimators=many"], "n_estimators='many'"),
        (["--param", "test_fraction=nan"], "test_fraction='nan'"),
        (["--param", "deploy_target=gke"], "deploy_target='gke'"),
        (["--param", "endpoint=1234567890"], "endpoint='1234567890'"),
        (
            ["--param", f"endpoint=projects/{PROJECT}/locations/us-central1/endpoints/123"],
            "it is in 'us-central1'",
        ),
        (["--param", f"parent_model={PARENT}/models/123@2"], "parent_model="),
        (["--param", f"parent_model={PARENT}/endpoints/123"], f"{REGION}/models/ID"),
        (["--label", "Team=ml"], "Team=ml"),
        (["--label", "team=ML"], "team=ML"),
        (["--label", "9team=ml"], "9team=ml"),
        (["--label", f"team={'x' * 64}"], "team=xxx"),
        (["--label", "carbon-kfp=mine"], "'carbon-kfp'"),
        (["--label", "noequals"], "'noequals'"),
        (["--network", "ml-vpc"], "'ml-vpc'"),
        (["--network", "projects/my-proj/global/networks/ml"], "projects/my-proj"),
        (["--encryption-key", "my-key"], "'my-key'"),
        (
            [
                "--encryption-key",
                f"projects/{PROJECT}/locations/us-central1/keyRings/r/cryptoKeys/k",
            ],
            "'us-central1'",
        ),
        (["--service-account", "runner"], "'runner'"),
        (["--experiment", "Wine CO2"], "'Wine CO2'"),
        (["--image-registry", "https://gcr.io/p"], "https://gcr.io/p"),
    ],
)
def test_each_bad_setting_is_refused_before_any_call(
    vertex: FakeVertex, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert submit(*argv) == 2
    err = capsys.readouterr().err
    assert named in err, err
    assert err.count("error:") == 1
    assert vertex.calls == []


def test_placeholder_image_is_refused(
    vertex: FakeVertex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [arg for arg in BASE if arg not in ("--image-registry", REGISTRY)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"image 'carbon-kfp-cpu:{__version__}'" in err and "names no registry" in err
    assert "exec-train-wine-model" in err
    assert vertex.calls == []


def test_untracked_task_is_refused(
    vertex: FakeVertex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "untracked_pipeline.py"
    source.write_text(textwrap.dedent(UNTRACKED))
    argv = [f"{source}:untracked", *BASE[2:]]
    assert cli.main(["submit", *argv]) == 2
    err = capsys.readouterr().err
    assert "step: pipeline_job" in err and "step: pipeline_task" in err
    assert "tracking_args" in err
    assert vertex.calls == []


def test_kubernetes_settings_are_refused(
    vertex: FakeVertex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled = tmp_path / "wine.yaml"
    compile_source(load_source("wine"), compiled, cpu_image=f"{REGISTRY}/carbon-kfp-cpu:1")
    documents = load_yaml(compiled)
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}
    compiled.write_text(yaml.safe_dump_all([documents[0], platform]))
    assert cli.main(["submit", str(compiled), *BASE[2:]]) == 2
    assert "platforms.kubernetes" in capsys.readouterr().err
    assert vertex.calls == []


def test_submit_a_compiled_yaml(vertex: FakeVertex, tmp_path: Path) -> None:
    compiled = tmp_path / "wine.yaml"
    compile_source(load_source("wine"), compiled)  # no registry: rebased at submission
    assert cli.main(["submit", str(compiled), *BASE[2:], "--param", "seed=7"]) == 0
    job = sent_job(vertex)
    assert job._pb.runtime_config.parameter_values["seed"].number_value == 7
    images = {
        e["container"]["image"]
        for e in json_format.MessageToDict(job._pb.pipeline_spec)["deploymentSpec"][
            "executors"
        ].values()
        if "container" in e
    }
    assert f"{REGISTRY}/carbon-kfp-cpu:{__version__}" in images


def test_a_refusal_by_vertex_ai_exits_1(
    vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise exceptions.PermissionDenied("aiplatform.pipelineJobs.create denied")

    monkeypatch.setattr(PipelineServiceClient, "create_pipeline_job", refuse)
    assert submit() == 1
    assert "Vertex AI refused the job: 403 aiplatform.pipelineJobs.create denied" in (
        capsys.readouterr().err
    )


def test_without_the_vertex_extra_says_which_to_install(
    vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    import google.cloud

    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", None)  # import fails
    monkeypatch.delattr(google.cloud, "aiplatform", raising=False)
    assert submit() == 2
    assert "pip install 'carbon-kfp[vertex]'" in capsys.readouterr().err
    assert cli.main(["results", JOB_NAME]) == 2
    assert "pip install 'carbon-kfp[vertex]'" in capsys.readouterr().err
    assert vertex.calls == []
