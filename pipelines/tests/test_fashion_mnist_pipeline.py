"""The Fashion-MNIST pipeline: golden YAML per target, T4 placement, and a local run.

(No ``from __future__ import annotations``: kfp reads the pipeline functions' annotations.)
"""

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from carbon_kfp.images import cpu_image, gpu_image
from carbon_kfp.kfp.local_run import run_pipeline
from carbon_kfp.kfp.params import convert_params
from carbon_kfp.pipelines import compile_pipeline, load_pipeline
from pipelines.tests.test_wine_pipeline import load_yaml, normalise
from tests.fashion_data import write_idx_folder

COMPILED = Path(__file__).resolve().parent.parent / "compiled"
SOURCE = COMPILED.parent / "fashion_mnist.py"
TARGETS = ("fashion-mnist", "fashion-mnist-custom-job", "fashion-mnist-kubeflow")
TRAIN = "exec-train-fashion-cnn"


def without_images(document: Any) -> Any:
    """:func:`normalise`, and the custom job's ``image_uri`` (inside a worker pool spec) too."""
    if isinstance(document, dict):
        return {
            key: "<image>" if key == "image_uri" else without_images(value)
            for key, value in normalise(document).items()
        }
    if isinstance(document, list):
        return [without_images(item) for item in document]
    return document


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("compiled")
    compiled = {name: compile_pipeline(name, out / f"{name}.yaml") for name in TARGETS}
    return {name: (path, load_yaml(path)[0]) for name, path in compiled.items()}


@pytest.mark.parametrize("name", TARGETS)
def test_matches_golden_yaml(specs: dict[str, tuple[Path, dict[str, Any]]], name: str) -> None:
    """Regenerate with ``UPDATE_GOLDEN=1 pytest pipelines/tests/test_fashion_mnist_pipeline.py``."""
    path, _ = specs[name]
    golden = COMPILED / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(path.read_bytes())
    assert without_images(load_yaml(path)) == without_images(load_yaml(golden)), (
        f"pipelines/compiled/{name}.yaml is stale: rerun with UPDATE_GOLDEN=1 and review the diff"
    )


def test_vertex_t4_and_limits_on_the_train_executor_only(
    specs: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    executors = specs["fashion-mnist"][1]["deploymentSpec"]["executors"]
    resources = executors[TRAIN]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_TESLA_T4"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert (resources["resourceCpuLimit"], resources["resourceMemoryLimit"]) == ("8", "30G")
    assert [name for name, e in executors.items() if "resources" in e["container"]] == [TRAIN]


def test_images_install_nothing(specs: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    executors = specs["fashion-mnist"][1]["deploymentSpec"]["executors"]
    images = {name: e["container"]["image"] for name, e in executors.items()}
    assert images == {
        "exec-load-fashion-mnist": cpu_image(),
        TRAIN: gpu_image(),
        "exec-evaluate-fashion-cnn": gpu_image(),
        "exec-carbon-report": cpu_image(),
    }
    assert not [
        n for n, e in executors.items() if "pip install" in " ".join(e["container"]["command"])
    ]


def test_custom_job_worker_pool_is_n1_standard_8_with_a_t4(
    specs: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    spec = specs["fashion-mnist-custom-job"][1]
    (component,) = [c for n, c in spec["components"].items() if "train" in n]
    pools = component["inputDefinitions"]["parameters"]["worker_pool_specs"]["defaultValue"]
    (pool,) = pools
    assert pool["machine_spec"] == {
        "machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 1.0,
    }
    assert pool["container_spec"]["image_uri"] == gpu_image()
    train_executor = spec["deploymentSpec"]["executors"][TRAIN]["container"]
    assert "resources" not in train_executor  # the custom job names the machine
    # the job still learns its pipeline job and task names, as task arguments
    train_task = spec["root"]["dag"]["tasks"]["train-fashion-cnn"]["inputs"]["parameters"]
    assert {"pipeline_job", "pipeline_task"} <= train_task.keys()


def test_kubeflow_gpu_node_selector_and_toleration(
    specs: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    spec = specs["fashion-mnist-kubeflow"][1]
    platform = load_yaml(specs["fashion-mnist-kubeflow"][0])[1]["platforms"]["kubernetes"]
    executors = platform["deploymentSpec"]["executors"]
    assert list(executors) == [TRAIN]
    assert executors[TRAIN]["nodeSelector"] == {
        "labels": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    }
    assert executors[TRAIN]["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    resources = spec["deploymentSpec"]["executors"][TRAIN]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"


def test_the_target_shapes_fashion_mnist_but_not_a_fixed_variant() -> None:
    """``fashion-mnist`` follows ``--target``; ``fashion-mnist-kubeflow`` is Kubeflow's always."""

    def kubernetes_platform(pipeline: Any) -> bool:
        return "kubernetes" in (pipeline.platform_spec.platforms or {})

    assert not kubernetes_platform(load_pipeline("fashion-mnist", "vertex")[0])
    assert kubernetes_platform(load_pipeline("fashion-mnist", "kubeflow")[0])
    assert kubernetes_platform(load_pipeline("fashion-mnist-kubeflow", "vertex")[0])
    assert not kubernetes_platform(load_pipeline("fashion-mnist-custom-job", "kubeflow")[0])


def test_no_deprecated_gpu_calls() -> None:
    source = SOURCE.read_text(encoding="utf-8")
    assert "set_gpu_limit" not in source and "add_node_selector_constraint" not in source


def test_unknown_target_is_named() -> None:
    from carbon_kfp.pipelines.fashion_mnist import build_pipeline

    with pytest.raises(ValueError, match="target='gke'; expected 'vertex' or 'kubeflow'"):
        build_pipeline("gke")
    with pytest.raises(ValueError, match="custom_job=True is a Vertex AI custom job"):
        build_pipeline("kubeflow", custom_job=True)


@pytest.mark.slow
def test_local_run_on_synthetic_idx(tmp_path: Path) -> None:
    """What ``carbon-kfp run fashion-mnist --param data_uri=DIR ...`` does, with a small model."""
    folder = write_idx_folder(tmp_path / "idx", train=120, test=40)
    pipeline, _ = load_pipeline("fashion-mnist")
    params = {
        "data_uri": str(folder),
        "check_sha256": "false",
        "epochs": "1",
        "max_train_samples": "100",
        "conv1_filters": "4",
        "conv2_filters": "8",
        "dense_units": "16",
    }
    summary = run_pipeline(pipeline, convert_params(pipeline, params), tmp_path / "runs")

    assert summary.succeeded
    assert [s.status for s in summary.steps] == ["succeeded"] * 4
    assert summary.run_dir is not None
    train_kpi = json.loads((summary.run_dir / "train-fashion-cnn" / "kpi_co2").read_text())
    assert math.isfinite(train_kpi["emissions_kg"]) and train_kpi["emissions_kg"] > 0
    # the default comparison ran beside carbon-kfp (both packages are in the dev extra)
    assert set(train_kpi["comparisons_kg"]) == {"codecarbon", "carbontracker"}
    assert train_kpi["epochs_completed"] == 1
    matrix = json.loads(
        (summary.run_dir / "evaluate-fashion-cnn" / "classification_metrics").read_text()
    )["confusionMatrix"]
    assert sum(sum(row["row"]) for row in matrix["rows"]) == 40
