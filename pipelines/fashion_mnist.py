"""Fashion-MNIST pipeline: load → train (NVIDIA T4) → evaluate → carbon report.

A Keras CNN (:mod:`carbon_kfp.fashion.model`) classifies Zalando Research's Fashion-MNIST. The
train step logs ``kpi_co2`` with CodeCarbon's and CarbonTracker's estimates beside carbon-kfp's
(``compare``), predicts the emissions of all epochs after the first and can stop at a
``budget_kg``. Three compile targets, one registered name each (``carbon-kfp compile NAME``):

* ``fashion-mnist`` (:data:`fashion_mnist_pipeline`): Vertex AI Pipelines; the train task asks
  for one ``NVIDIA_TESLA_T4`` and :data:`TRAIN_CPU_LIMIT` / :data:`TRAIN_MEMORY_LIMIT`. Also the
  one ``carbon-kfp run fashion-mnist`` runs on ``kfp.local`` (CPU; the runner ignores resources).
* ``fashion-mnist-custom-job`` (``fashion_mnist_custom_job_pipeline``): Vertex AI, with training
  as a Vertex AI custom job on ``n1-standard-8`` + T4 (google-cloud-pipeline-components'
  ``create_custom_training_job_from_component``; the ``vertex`` extra).
* ``fashion-mnist-kubeflow`` (``fashion_mnist_kubeflow_pipeline``): Kubeflow Pipelines on GKE;
  ``nvidia.com/gpu: 1``, node selector ``cloud.google.com/gke-accelerator: nvidia-tesla-t4`` and
  the toleration of GKE's GPU taint, through kfp-kubernetes (the ``kubeflow`` extra).

The two variants are built on first access, so ``fashion-mnist`` needs neither extra. (No
``from __future__ import annotations``: kfp reads the pipeline function's annotations.)
"""

import functools
from typing import Any

from kfp import dsl

from carbon_kfp.components import evaluate_fashion_cnn, load_fashion_mnist, train_fashion_cnn
from carbon_kfp.pipelines._steps import report_steps, tracking_inputs

PIPELINE_NAME = "fashion-mnist"
T4_VERTEX = "NVIDIA_TESLA_T4"
T4_GKE = "nvidia-tesla-t4"
GPU_RESOURCE = "nvidia.com/gpu"
#: The train step's machine: what n1-standard-8 offers (8 vCPU, 30 GB), the custom job's type.
CUSTOM_JOB_MACHINE = "n1-standard-8"
TRAIN_CPU_LIMIT = "8"
TRAIN_MEMORY_LIMIT = "30G"


def build_pipeline(target: str = "vertex", *, custom_job: bool = False) -> Any:
    """The Fashion-MNIST pipeline for ``target``.

    Args:
        target: ``"vertex"`` (accelerator names such as ``NVIDIA_TESLA_T4``) or ``"kubeflow"``
            (``nvidia.com/gpu``, node selector and toleration via kfp-kubernetes).
        custom_job: Train as a Vertex AI custom job (``n1-standard-8`` + T4); vertex only.

    Raises:
        ValueError: an unknown target, or ``custom_job`` with ``"kubeflow"``.
        ImportError: the variant's package is missing (google-cloud-pipeline-components for
            ``custom_job``, kfp-kubernetes for ``"kubeflow"``).
    """
    if target not in ("vertex", "kubeflow"):
        raise ValueError(f"target={target!r}; expected 'vertex' or 'kubeflow'")
    if custom_job and target != "vertex":
        raise ValueError("custom_job=True is a Vertex AI custom job; expected target='vertex'")
    train_op = train_fashion_cnn
    if custom_job:
        from google_cloud_pipeline_components.v1.custom_job import (
            create_custom_training_job_from_component,
        )

        train_op = create_custom_training_job_from_component(
            train_fashion_cnn,
            display_name="train-fashion-cnn",
            machine_type=CUSTOM_JOB_MACHINE,
            accelerator_type=T4_VERTEX,
            accelerator_count=1,
        )
    place_train = {"vertex": _on_vertex_t4, "kubeflow": _on_gke_t4}[target]
    suffix = {"vertex": " (custom job)" if custom_job else "", "kubeflow": " (Kubeflow)"}[target]

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=(
            "Keras CNN on Fashion-MNIST, trained on an NVIDIA T4, with per-step energy/CO2 "
            f"(kpi_co2) compared with CodeCarbon and CarbonTracker{suffix}."
        ),
    )
    def fashion_mnist(
        data_uri: str = "",
        check_sha256: bool = True,
        epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float = 0.001,
        validation_split: float = 0.1,
        seed: int = 42,
        max_train_samples: int = 0,
        conv1_filters: int = 32,
        conv2_filters: int = 64,
        dense_units: int = 128,
        budget_kg: float = 0.0,
        compare: str = "codecarbon,carbontracker",
        project_name: str = "fashion-mnist",
        cloud_location: str = "",
    ) -> None:
        """Loads, trains, evaluates and reports the energy and CO2 of each step.

        Args:
            data_uri: Folder with the four IDX files (``.gz`` or raw): ``https://``,
                ``gs://BUCKET/PREFIX``, a local folder, or ``""`` for Zalando Research's copy.
            check_sha256: Check canonical file names against the published SHA-256.
            epochs: Training epochs (the article: 10).
            batch_size: Images per step (the article: 64).
            learning_rate: Adam's learning rate (the article: 0.001).
            validation_split: Share of training images held out for validation.
            seed: Seed of the shuffle, the sample and the initialisation.
            max_train_samples: Train on this many images; ``0`` uses all 60,000.
            conv1_filters: Filters of the first convolution.
            conv2_filters: Filters of the second convolution.
            dense_units: Units of the hidden Dense layer.
            budget_kg: Stop training when the predicted kg CO2eq of all epochs exceed it; ``0``
                is no budget.
            compare: Comparison backends for the train step (comma-separated); ``""`` is none.
            project_name: Project name in every step's emissions record.
            cloud_location: Region the steps run in, for the grid intensity of every record;
                ``""`` uses the tracker's default (world average, flagged).
        """
        tracking = tracking_inputs(project_name, cloud_location)

        load = load_fashion_mnist(data_uri=data_uri, check_sha256=check_sha256, **tracking)
        load.set_display_name("Load Fashion-MNIST").set_caching_options(True)

        train = train_op(
            train_data=load.outputs["train_data"],
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_split=validation_split,
            seed=seed,
            max_train_samples=max_train_samples,
            conv1_filters=conv1_filters,
            conv2_filters=conv2_filters,
            dense_units=dense_units,
            budget_kg=budget_kg,
            compare=compare,
            **tracking,
        )
        train.set_display_name("Train CNN on T4").set_caching_options(True)
        if not custom_job:  # a custom job names its machine itself
            place_train(train)

        evaluate = evaluate_fashion_cnn(
            model=train.outputs["model"], test_data=load.outputs["test_data"], **tracking
        )
        evaluate.set_display_name("Evaluate on test set").set_caching_options(True)

        report_steps("Fashion-MNIST: energy and CO2 per step", load, train, evaluate)

    return fashion_mnist


def _on_vertex_t4(task: Any) -> None:
    """One T4 and an n1-standard-8's CPU and memory, in Vertex AI's accelerator names."""
    task.set_accelerator_type(T4_VERTEX).set_accelerator_limit(1)
    task.set_cpu_limit(TRAIN_CPU_LIMIT).set_memory_limit(TRAIN_MEMORY_LIMIT)


def _on_gke_t4(task: Any) -> None:
    """One ``nvidia.com/gpu`` on a GKE T4 node pool, tolerating its ``nvidia.com/gpu`` taint."""
    from kfp import kubernetes

    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(1)
    task.set_cpu_limit(TRAIN_CPU_LIMIT).set_memory_limit(TRAIN_MEMORY_LIMIT)
    kubernetes.add_node_selector(task, "cloud.google.com/gke-accelerator", T4_GKE)
    kubernetes.add_toleration(task, key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")


fashion_mnist_pipeline = build_pipeline("vertex")

#: ``fashion-mnist`` is built for the compile target (``carbon-kfp compile --target``).
TARGET_BUILDERS = {"fashion_mnist_pipeline": build_pipeline}

_VARIANTS = {
    "fashion_mnist_custom_job_pipeline": lambda: build_pipeline("vertex", custom_job=True),
    "fashion_mnist_kubeflow_pipeline": lambda: build_pipeline("kubeflow"),
}


@functools.cache
def __getattr__(name: str) -> Any:
    if name in _VARIANTS:
        return _VARIANTS[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
