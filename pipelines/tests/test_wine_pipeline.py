"""The compiled wine pipeline: golden YAML, determinism, images, conditions, caching."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbon_kfp.images import VERTEX_SDK_IMAGE, cpu_image
from carbon_kfp.pipelines import compile_pipeline, load_pipeline

GOLDEN = Path(__file__).resolve().parent.parent / "compiled" / "wine.yaml"
REPO_ROOT = GOLDEN.parent.parent.parent


def normalise(document: Any) -> Any:
    """Drops what may differ between machines and kfp patch releases: ``sdkVersion``, the kfp
    pin in ``command`` and image names."""
    if isinstance(document, dict):
        out: dict[str, Any] = {}
        for key, value in document.items():
            if key == "sdkVersion":
                continue
            if key == "image":
                out[key] = "<image>"
            elif key == "command" and isinstance(value, list):
                out[key] = [re.sub(r"kfp==[\w.+-]+", "kfp==<pin>", str(part)) for part in value]
            else:
                out[key] = normalise(value)
        return out
    if isinstance(document, list):
        return [normalise(item) for item in document]
    return document


def load_yaml(path: Path) -> list[Any]:
    """Every document of a YAML file (libyaml's safe loader when PyYAML has it: ~10x faster)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_pipeline("wine", tmp_path_factory.mktemp("compiled") / "wine.yaml")


@pytest.fixture(scope="module")
def spec(compiled: Path) -> dict[str, Any]:
    return load_yaml(compiled)[0]


def test_matches_golden_yaml(compiled: Path) -> None:
    """Regenerate with ``UPDATE_GOLDEN=1 pytest pipelines/tests/test_wine_pipeline.py``."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(compiled.read_bytes())
    assert normalise(load_yaml(compiled)) == normalise(load_yaml(GOLDEN)), (
        "pipelines/compiled/wine.yaml is stale: rerun with UPDATE_GOLDEN=1 and review the diff"
    )


def test_compiling_twice_gives_identical_bytes(compiled: Path, tmp_path: Path) -> None:
    again = compile_pipeline("wine", tmp_path / "again.yaml")
    assert again.read_bytes() == compiled.read_bytes()


#: GCPC's ops run in GCPC's image; the kit's components in the kit's.
GCPC_EXECUTORS = (
    "exec-model-upload",
    "exec-model-upload-2",
    "exec-endpoint-create",
    "exec-model-deploy",
    "exec-undeploy-idle-models",
)


def _images(spec: dict[str, Any]) -> set[str]:
    executors = spec["deploymentSpec"]["executors"]
    return {e["container"]["image"] for e in executors.values() if "container" in e}


def test_components_install_nothing_and_use_the_configured_image(spec: dict[str, Any]) -> None:
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 13
    for name, executor in executors.items():
        if name.startswith("exec-importer"):
            assert "importer" in executor, name
            continue
        container = executor["container"]
        command = " ".join(container["command"])
        assert "pip install" not in command, name
        if name in GCPC_EXECUTORS:  # GCPC's ops and the kit's Vertex AI SDK step
            assert container["image"] == VERTEX_SDK_IMAGE, name
        else:
            assert container["image"] == cpu_image(), name


def test_images_are_set_from_the_environment(tmp_path: Path) -> None:
    image = "europe-west4-docker.pkg.dev/some-project/ml/carbon-kfp-cpu:9.9.9"
    out = tmp_path / "wine.yaml"
    code = (
        f"from carbon_kfp.pipelines import compile_pipeline; compile_pipeline('wine', {str(out)!r})"
    )
    env = {**os.environ, "CARBON_KFP_CPU_IMAGE": image, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO_ROOT)
    images = _images(load_yaml(out)[0])
    assert image in images
    assert all(i == image or "google-cloud-pipeline-components" in i for i in images)


def _tasks(spec: dict[str, Any]) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Every executor task -> (task spec, the trigger conditions of the DAGs around it)."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def walk(dag: dict[str, Any], conditions: list[str]) -> None:
        for name, task in dag["tasks"].items():
            condition = task.get("triggerPolicy", {}).get("condition")
            inner = [*conditions, condition] if condition else conditions
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"], inner)
            else:
                found[name] = (task, inner)

    walk(spec["root"]["dag"], [])
    return found


NEW_MODEL = "inputs.parameter_values['pipelinechannel--parent_model'] == ''"
NEW_ENDPOINT = "inputs.parameter_values['pipelinechannel--endpoint'] == ''"

#: The deploy branch's tasks -> the conditions inside it (``endpoint`` / ``parent_model`` set).
DEPLOY_TASKS = {
    "check-serving-image": [],
    "importer": [],  # the serving model
    "model-upload": [NEW_MODEL],
    "importer-2": [f"!({NEW_MODEL})"],  # the parent model
    "model-upload-2": [f"!({NEW_MODEL})"],
    "endpoint-create": [NEW_ENDPOINT],
    "importer-3": [f"!({NEW_ENDPOINT})"],  # the existing endpoint
    "model-deploy": [],
    "undeploy-idle-models": [
        "inputs.parameter_values['pipelinechannel--endpoint'] != ''",
        "inputs.parameter_values['pipelinechannel--undeploy_previous'] == true",
    ],
}


def test_deploy_runs_only_for_vertex_and_a_passing_model(spec: dict[str, Any]) -> None:
    tasks = _tasks(spec)
    for name, inner in DEPLOY_TASKS.items():
        _, conditions = tasks[name]
        assert conditions == [
            "inputs.parameter_values['pipelinechannel--deploy_target'] == 'vertex'",
            "inputs.parameter_values['pipelinechannel--evaluate-wine-model-deploy'] == 'true'",
            *inner,
        ], name
    assert all(not conds for name, (_, conds) in tasks.items() if name not in DEPLOY_TASKS)


def _dag_of(spec: dict[str, Any], task_name: str) -> dict[str, Any]:
    """The DAG (root's or a component's) that holds ``task_name``."""
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    (dag,) = [dag for dag in dags if task_name in dag["tasks"]]
    return dag


def _sources(
    spec: dict[str, Any], dag: dict[str, Any], producer: str, key: str
) -> dict[str, list[str]]:
    """Executor tasks whose output artifact reaches ``producer``'s output ``key`` in ``dag``
    (through condition groups and dsl.OneOf), each with the conditions on its way."""
    task = dag["tasks"][producer]
    component = spec["components"][task["componentRef"]["name"]]
    if "dag" not in component:
        return {producer: []}
    condition = task.get("triggerPolicy", {}).get("condition")
    found = {}
    for selector in component["dag"]["outputs"]["artifacts"][key]["artifactSelectors"]:
        inner = _sources(
            spec, component["dag"], selector["producerSubtask"], selector["outputArtifactKey"]
        )
        found.update(
            {name: [condition, *conds] if condition else conds for name, conds in inner.items()}
        )
    return found


def _input_sources(spec: dict[str, Any], task_name: str, name: str) -> dict[str, list[str]]:
    dag = _dag_of(spec, task_name)
    given = dag["tasks"][task_name]["inputs"]["artifacts"][name]["taskOutputArtifact"]
    return _sources(spec, dag, given["producerTask"], given["outputArtifactKey"])


def _imports(spec: dict[str, Any], task_name: str) -> tuple[str, dict[str, Any]]:
    """An importer's artifact type and its inputs."""
    task = _tasks(spec)[task_name][0]
    component = spec["components"][task["componentRef"]["name"]]
    artifact_type = component["outputDefinitions"]["artifacts"]["artifact"]["artifactType"]
    return artifact_type["schemaTitle"], task["inputs"]["parameters"]


def test_deploy_reuses_the_endpoint_parameter_or_creates_one(spec: dict[str, Any]) -> None:
    """``endpoint`` set: the endpoint is imported by name; ``""``: EndpointCreateOp makes one."""
    assert _input_sources(spec, "model-deploy", "endpoint") == {
        "importer-3": [f"!({NEW_ENDPOINT})"],
        "endpoint-create": [NEW_ENDPOINT],
    }
    schema, given = _imports(spec, "importer-3")
    assert schema == "google.VertexEndpoint"
    assert given["uri"]["componentInputParameter"] == "pipelinechannel--endpoint"
    assert given["metadata"]["componentInputParameter"] == "pipelinechannel--endpoint"
    executor = spec["deploymentSpec"]["executors"]["exec-importer-3"]["importer"]
    assert executor["metadata"] == {"resourceName": "{{$.inputs.parameters['metadata']}}"}
    assert executor["artifactUri"] == {"runtimeParameter": "uri"}
    # the endpoint step (either) waits for the upload (either)
    deploy_dag = _dag_of(spec, "model-deploy")
    endpoint_group = deploy_dag["tasks"]["model-deploy"]["inputs"]["artifacts"]["endpoint"]
    model_group = deploy_dag["tasks"]["model-deploy"]["inputs"]["artifacts"]["model"]
    group = deploy_dag["tasks"][endpoint_group["taskOutputArtifact"]["producerTask"]]
    assert group["dependentTasks"] == [model_group["taskOutputArtifact"]["producerTask"]]


def test_idle_models_are_undeployed_after_the_deploy_to_a_reused_endpoint(
    spec: dict[str, Any],
) -> None:
    """The endpoint parameter (a resource name) goes to undeploy_idle_models, in GCPC's image,
    and only once the deploy moved the traffic to the new model."""
    task = _tasks(spec)["undeploy-idle-models"][0]
    assert task["inputs"]["parameters"] == {
        "endpoint": {"componentInputParameter": "pipelinechannel--endpoint"},
        "deployed_model_display_name": {
            "componentInputParameter": "pipelinechannel--model_display_name"
        },
    }
    deploy = _tasks(spec)["model-deploy"][0]["inputs"]["parameters"]
    assert deploy["deployed_model_display_name"] == {
        "componentInputParameter": "pipelinechannel--model_display_name"
    }  # the name undeploy_idle_models looks for
    deploy_dag = _dag_of(spec, "model-deploy")["tasks"].values()
    (group,) = [t for t in deploy_dag if t["taskInfo"]["name"] == "reused-endpoint"]
    assert group["dependentTasks"] == ["model-deploy"]
    executor = spec["deploymentSpec"]["executors"]["exec-undeploy-idle-models"]["container"]
    assert executor["image"] == VERTEX_SDK_IMAGE
    parameter = spec["root"]["inputDefinitions"]["parameters"]["undeploy_previous"]
    assert (parameter["parameterType"], parameter["defaultValue"]) == ("BOOLEAN", True)


def test_parent_model_gets_a_new_version_or_a_new_model(spec: dict[str, Any]) -> None:
    """``parent_model`` set: ModelUploadOp uploads a version of it (imported by name)."""
    assert _input_sources(spec, "model-deploy", "model") == {
        "model-upload": [NEW_MODEL],
        "model-upload-2": [f"!({NEW_MODEL})"],
    }
    tasks = {name: task for name, (task, _) in _tasks(spec).items()}
    assert "parent_model" not in tasks["model-upload"]["inputs"]["artifacts"]
    parent = tasks["model-upload-2"]["inputs"]["artifacts"]["parent_model"]
    assert parent["taskOutputArtifact"] == {
        "outputArtifactKey": "artifact",
        "producerTask": "importer-2",
    }
    schema, given = _imports(spec, "importer-2")
    assert schema == "google.VertexModel"
    assert given["uri"]["componentInputParameter"] == "pipelinechannel--parent_model"
    assert given["metadata"]["componentInputParameter"] == "pipelinechannel--parent_model"
    for upload in ("model-upload", "model-upload-2"):  # the same model files and settings
        inputs = tasks[upload]["inputs"]
        assert inputs["artifacts"]["unmanaged_container_model"] == {
            "componentInputArtifact": "pipelinechannel--importer-artifact"  # the serving model
        }
        assert inputs["parameters"] == tasks["model-upload"]["inputs"]["parameters"]


def test_deploy_links_model_and_endpoint_in_vertex_lineage(spec: dict[str, Any]) -> None:
    """GCPC ops: google.VertexModel and google.VertexEndpoint flow from upload/create to deploy,
    in the job's own region; the model files come through the checked URI."""
    tasks = {name: task for name, (task, _) in _tasks(spec).items()}
    importer = tasks["importer"]["inputs"]["parameters"]
    assert importer["uri"]["taskOutputParameter"] == {
        "outputParameterKey": "artifact_uri",
        "producerTask": "check-serving-image",
    }
    assert _imports(spec, "importer")[0] == "google.UnmanagedContainerModel"
    location = "{{$.pipeline_google_cloud_location}}"
    for task in ("model-upload", "endpoint-create"):
        assert (
            tasks[task]["inputs"]["parameters"]["location"]["runtimeValue"]["constant"] == location
        )
    components = spec["components"]
    outputs = {
        name: components[f"comp-{name}"]["outputDefinitions"]["artifacts"]
        for name in ("model-upload", "endpoint-create")
    }
    assert outputs["model-upload"]["model"]["artifactType"]["schemaTitle"] == "google.VertexModel"
    endpoint_type = outputs["endpoint-create"]["endpoint"]["artifactType"]["schemaTitle"]
    assert endpoint_type == "google.VertexEndpoint"
    split = tasks["model-deploy"]["inputs"]["parameters"]["traffic_split"]
    assert split["runtimeValue"]["constant"] == {"0": "100"}


def test_display_names_and_caching(spec: dict[str, Any]) -> None:
    tasks = {name: task for name, (task, _) in _tasks(spec).items()}
    expected = {
        "load-wine-data": ("Load wine data", True),
        "train-wine-model": ("Train random forest", True),
        "evaluate-wine-model": ("Evaluate on test set", True),
        "carbon-report": ("Carbon report", False),
        "check-serving-image": ("Check serving image", False),
        "model-upload": ("Upload to Model Registry", False),
        "importer-2": ("Parent model", True),
        "model-upload-2": ("Upload new version", False),
        "endpoint-create": ("Create endpoint", False),
        "importer-3": ("Existing endpoint", True),
        "model-deploy": ("Deploy to endpoint", False),
        "undeploy-idle-models": ("Undeploy idle models", False),
    }
    for name, (display, cached) in expected.items():
        assert tasks[name]["taskInfo"]["name"] == display
        assert tasks[name].get("cachingOptions", {}).get("enableCache", False) is cached, name


def test_report_sums_every_unconditional_step(spec: dict[str, Any]) -> None:
    report = _tasks(spec)["carbon-report"][0]
    sources = {
        value["taskOutputArtifact"]["producerTask"]
        for value in report["inputs"]["artifacts"].values()
    }
    assert sources == {"load-wine-data", "train-wine-model", "evaluate-wine-model"}


def test_parameters_are_typed_with_defaults() -> None:
    pipeline, module = load_pipeline("wine")
    inputs = pipeline.component_spec.inputs
    assert inputs["quality_threshold"].type == "Integer"
    assert inputs["test_fraction"].type == "Float"
    assert inputs["deploy_target"].default == "none"
    assert set(module.PARAMETER_CHOICES["deploy_target"]) == {"none", "vertex"}
    assert all(spec.optional for spec in inputs.values())  # `carbon-kfp run wine` needs no flags


def test_registry_setting_names_versioned_images(tmp_path: Path) -> None:
    from carbon_kfp import __version__

    out = tmp_path / "wine.yaml"
    code = f"from carbon_kfp.pipelines import compile_pipeline as c; c('wine', {str(out)!r})"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_KFP_")}
    env["CARBON_KFP_IMAGE_REGISTRY"] = "europe-west4-docker.pkg.dev/p/ml/"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    images = _images(load_yaml(out)[0])
    assert f"europe-west4-docker.pkg.dev/p/ml/carbon-kfp-cpu:{__version__}" in images
    assert not any(i.startswith("carbon-kfp-cpu") for i in images)


def test_every_tracked_task_gets_its_job_and_task_names(spec: dict[str, Any]) -> None:
    from carbon_kfp.kfp import untracked_tasks

    assert untracked_tasks(spec) == []
    for name, (task, _) in _tasks(spec).items():
        if name in DEPLOY_TASKS:  # not measured: see components/check_serving_image/README.md
            continue
        given = task["inputs"]["parameters"]
        if "pipeline_task" in given:
            assert given["pipeline_task"]["runtimeValue"]["constant"] == "{{$.pipeline_task_name}}"
        assert given["pipeline_job"]["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}", name
