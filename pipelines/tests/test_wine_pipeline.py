"""The compiled wine pipeline: golden YAML, determinism, images, conditions, caching."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbon_kfp.images import cpu_image
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
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


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
GCPC_EXECUTORS = ("exec-model-upload", "exec-endpoint-create", "exec-model-deploy")


def _images(spec: dict[str, Any]) -> set[str]:
    executors = spec["deploymentSpec"]["executors"]
    return {e["container"]["image"] for e in executors.values() if "container" in e}


def test_components_install_nothing_and_use_the_configured_image(spec: dict[str, Any]) -> None:
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 9
    assert "importer" in executors["exec-importer"]
    for name, executor in executors.items():
        if name == "exec-importer":
            continue
        container = executor["container"]
        command = " ".join(container["command"])
        assert "pip install" not in command, name
        if name in GCPC_EXECUTORS:
            assert container["image"].startswith(
                "gcr.io/ml-pipeline/google-cloud-pipeline-components:"
            )
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


DEPLOY_TASKS = (
    "check-serving-image",
    "importer",
    "model-upload",
    "endpoint-create",
    "model-deploy",
)


def test_deploy_runs_only_for_vertex_and_a_passing_model(spec: dict[str, Any]) -> None:
    tasks = _tasks(spec)
    for name in DEPLOY_TASKS:
        _, conditions = tasks[name]
        assert conditions == [
            "inputs.parameter_values['pipelinechannel--deploy_target'] == 'vertex'",
            "inputs.parameter_values['pipelinechannel--evaluate-wine-model-deploy'] == 'true'",
        ], name
    assert all(not conds for name, (_, conds) in tasks.items() if name not in DEPLOY_TASKS)


def test_deploy_links_model_and_endpoint_in_vertex_lineage(spec: dict[str, Any]) -> None:
    """GCPC ops: google.VertexModel and google.VertexEndpoint flow from upload/create to deploy,
    in the job's own region; the model files come through the checked URI."""
    tasks = {name: task for name, (task, _) in _tasks(spec).items()}
    importer = tasks["importer"]["inputs"]["parameters"]
    assert importer["uri"]["taskOutputParameter"] == {
        "outputParameterKey": "artifact_uri",
        "producerTask": "check-serving-image",
    }
    components = spec["components"]
    importer_out = components["comp-importer"]["outputDefinitions"]["artifacts"]["artifact"]
    assert importer_out["artifactType"]["schemaTitle"] == "google.UnmanagedContainerModel"
    upload = tasks["model-upload"]["inputs"]
    assert upload["artifacts"]["unmanaged_container_model"]["taskOutputArtifact"] == {
        "outputArtifactKey": "artifact",
        "producerTask": "importer",
    }
    location = "{{$.pipeline_google_cloud_location}}"
    assert upload["parameters"]["location"]["runtimeValue"]["constant"] == location
    deploy = tasks["model-deploy"]["inputs"]["artifacts"]
    assert deploy["model"]["taskOutputArtifact"]["producerTask"] == "model-upload"
    assert deploy["endpoint"]["taskOutputArtifact"]["producerTask"] == "endpoint-create"
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
        "endpoint-create": ("Create endpoint", False),
        "model-deploy": ("Deploy to endpoint", False),
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
