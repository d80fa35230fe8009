"""``carbon-kfp compile SOURCE``: registered names, user files, YAML; targets and images."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from carbon_kfp import __version__, cli
from carbon_kfp.pipeline_spec import image_problems, rebase_kit_images, target_problems
from pipelines.tests.test_wine_pipeline import load_yaml

USER_PIPELINE = """
from kfp import dsl
from kfp.dsl import Metrics, Output

from carbon_kfp.images import cpu_image
from carbon_kfp.kfp import tracking_args

PARAMETER_CHOICES = {"mode": ("fast", "slow")}

@dsl.component(base_image=cpu_image(), packages_to_install=[], install_kfp_package=False)
def step(kpi_co2: Output[Metrics], pipeline_job: str = "", pipeline_task: str = ""):
    pass

@dsl.pipeline(name="user-pipeline")
def user_pipeline(mode: str = "fast", epochs: int = 1):
    step(**tracking_args()).set_accelerator_type("NVIDIA_TESLA_T4").set_accelerator_limit(1)
"""


def spec_of(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = load_yaml(path)[0]
    return spec


def images(spec: dict[str, Any]) -> set[str]:
    executors = spec["deploymentSpec"]["executors"].values()
    return {e["container"]["image"] for e in executors if "container" in e}


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "user_pipeline_mod.py"
    path.write_text(textwrap.dedent(USER_PIPELINE))
    return path


def test_user_file_function_with_registry(
    user_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.yaml"
    argv = ["compile", f"{user_file}:user_pipeline", "--output", str(out)]
    assert cli.main([*argv, "--image-registry", "gcr.io/my-project"]) == 0
    assert images(spec_of(out)) == {f"gcr.io/my-project/carbon-kfp-cpu:{__version__}"}
    assert spec_of(out)["pipelineInfo"]["name"] == "user-pipeline"
    assert "warning" not in capsys.readouterr().err  # vertex: T4 is a Vertex accelerator name


def test_kubeflow_target_warns_about_vertex_only_parts(
    user_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.yaml"
    assert cli.main(["compile", str(user_file), "--output", str(out), "--target", "kubeflow"]) == 0
    err = capsys.readouterr().err
    assert "accelerator 'NVIDIA_TESLA_T4' is a Vertex AI name" in err
    assert f"image 'carbon-kfp-cpu:{__version__}'" in err


def test_wine_for_kubeflow_names_the_vertex_components(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wine.yaml"
    argv = [
        "compile",
        "wine",
        "--output",
        str(out),
        "--target",
        "kubeflow",
        "--cpu-image",
        "x.io/c:1",
    ]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    for executor in ("exec-model-upload", "exec-endpoint-create", "exec-model-deploy"):
        assert f"{executor}: a Vertex AI component" in err
    assert "google.VertexModel" in err
    assert "exec-train-wine-model" not in err


def test_yaml_source_keeps_the_file_and_rebases_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert cli.main(["compile", "wine", "--output", str(first)]) == 0
    assert cli.main(["compile", str(first), "--output", str(second)]) == 0
    assert second.read_bytes() == first.read_bytes()
    assert (
        cli.main(["compile", str(first), "--output", str(second), "--cpu-image", "x.io/c:2"]) == 0
    )
    rebased = spec_of(second)
    assert "x.io/c:2" in images(rebased)
    assert "gcr.io/ml-pipeline/google-cloud-pipeline-components:2.22.0" in images(rebased)
    assert rebased["root"] == spec_of(first)["root"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.yaml", "'missing.yaml': no such file"),
        ("missing.py:pipe", "'missing.py:pipe': no such file"),
        ("wnie", "unknown pipeline 'wnie'"),
    ],
)
def test_bad_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, message: str
) -> None:
    assert cli.main(["compile", source, "--output", str(tmp_path / "o.yaml")]) == 2
    assert message in capsys.readouterr().err


def test_missing_function(
    user_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compile", f"{user_file}:nope", "--output", str(tmp_path / "o.yaml")]
    assert cli.main(argv) == 2
    assert '"nope" not found' in capsys.readouterr().err


def _executor(image: str, accelerator: str = "", artifact: str = "") -> dict[str, Any]:
    container: dict[str, Any] = {"image": image}
    if accelerator:
        container["resources"] = {"accelerator": {"type": accelerator, "resourceCount": "1"}}
    return {"container": container}


def test_target_problems_and_rebase_are_pure() -> None:
    spec = {
        "components": {
            "comp-up": {
                "executorLabel": "exec-up",
                "outputDefinitions": {
                    "artifacts": {"model": {"artifactType": {"schemaTitle": "google.VertexModel"}}}
                },
            }
        },
        "deploymentSpec": {
            "executors": {
                "exec-up": _executor("registry.io/gcpc:1"),
                "exec-gpu": _executor("carbon-kfp-gpu:1", "nvidia.com/gpu"),
                "exec-cpu": _executor("reg.io/p/carbon-kfp-cpu:0.9"),
                "exec-import": {"importer": {}},
            }
        },
    }
    assert target_problems(spec, "kubeflow") == [
        "exec-up: a Vertex AI component (google.VertexModel); it runs only on Vertex AI Pipelines"
    ]
    assert target_problems(spec, "vertex") == [
        "exec-gpu: accelerator 'nvidia.com/gpu' is a Kubernetes resource name; Vertex AI "
        "expects a machine accelerator type such as 'NVIDIA_TESLA_T4'"
    ]
    with pytest.raises(ValueError, match="target 'gke'"):
        target_problems(spec, "gke")
    assert image_problems(spec, "vertex") == [
        "image 'carbon-kfp-gpu:1' (exec-gpu) names no registry, so vertex cannot pull it; build "
        "and push the images and pass --image-registry REGISTRY (or --cpu-image / --gpu-image)"
    ]
    rebased = rebase_kit_images(spec, "new.io/cpu:1", None)
    executors = rebased["deploymentSpec"]["executors"]
    assert executors["exec-cpu"]["container"]["image"] == "new.io/cpu:1"
    assert executors["exec-gpu"]["container"]["image"] == "carbon-kfp-gpu:1"
    assert spec["deploymentSpec"]["executors"]["exec-cpu"]["container"]["image"] == (
        "reg.io/p/carbon-kfp-cpu:0.9"
    )
