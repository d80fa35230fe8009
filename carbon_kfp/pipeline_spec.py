"""Questions about a compiled pipeline (the KFP IR YAML as a dict): its images and its target.

Pure functions over the document ``kfp.compiler`` writes; no kfp import, no I/O. ``carbon-kfp
compile`` and ``carbon-kfp submit`` ask them of every source (a registered name, a user's
``file.py:function``, a ``.yaml``), so a pipeline that cannot run where it is sent is caught before
it is sent.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from carbon_kfp.images import CPU_IMAGE_NAME, GPU_IMAGE_NAME, is_placeholder

TARGETS = ("vertex", "kubeflow")

#: Google Cloud Pipeline Components' launcher image: its components call Vertex AI APIs.
_GCPC_IMAGE = "gcr.io/ml-pipeline/google-cloud-pipeline-components"
_VERTEX_ACCELERATOR = re.compile(r"[A-Z][A-Z0-9_]+")


def executor_images(spec: Mapping[str, Any]) -> dict[str, str]:
    """``{executor label: container image}`` for every container executor (importers have none)."""
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    return {
        label: executor["container"]["image"]
        for label, executor in executors.items()
        if "container" in executor
    }


def image_problems(spec: Mapping[str, Any], target: str) -> list[str]:
    """One line per image that names no registry (:func:`carbon_kfp.images.is_placeholder`),
    with the executors that run it: ``target`` cannot pull it."""
    executors: dict[str, list[str]] = {}
    for label, image in sorted(executor_images(spec).items()):
        if is_placeholder(image):
            executors.setdefault(image, []).append(label)
    return [
        f"image {image!r} ({', '.join(labels)}) names no registry, so {target} cannot pull it; "
        "build and push the images and pass --image-registry REGISTRY (or --cpu-image / "
        "--gpu-image)"
        for image, labels in sorted(executors.items())
    ]


def image_repository(image: str) -> str:
    """``"reg.io/p/carbon-kfp-cpu:1.0"`` -> ``"carbon-kfp-cpu"`` (last path segment, no tag)."""
    last = image.rsplit("/", 1)[-1]
    return re.split(r"[:@]", last, maxsplit=1)[0]


def rebase_kit_images(
    spec: Mapping[str, Any], cpu_image: str | None, gpu_image: str | None
) -> dict[str, Any]:
    """A copy of ``spec`` whose kit images (``carbon-kfp-cpu``/``-gpu``, any registry or tag)
    are replaced by ``cpu_image`` / ``gpu_image``; ``None`` leaves that kind as it is."""
    replacements = {CPU_IMAGE_NAME: cpu_image, GPU_IMAGE_NAME: gpu_image}
    rebased = copy.deepcopy(dict(spec))
    for executor in rebased.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if container is None:
            continue
        replacement = replacements.get(image_repository(container["image"]))
        if replacement:
            container["image"] = replacement
    return rebased


def _artifact_types(component: Mapping[str, Any]) -> Iterator[str]:
    for side in ("inputDefinitions", "outputDefinitions"):
        for artifact in component.get(side, {}).get("artifacts", {}).values():
            yield str(artifact.get("artifactType", {}).get("schemaTitle", ""))


def _executor_components(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{executor label: component}`` for the components that run an executor."""
    return {
        component["executorLabel"]: component
        for component in spec.get("components", {}).values()
        if "executorLabel" in component
    }


def target_problems(
    spec: Mapping[str, Any], target: str, platform_spec: Mapping[str, Any] | None = None
) -> list[str]:
    """What in ``spec`` will not run on ``target`` (``"vertex"`` or ``"kubeflow"``), one line each.

    ``platform_spec`` is the compiled file's second YAML document (kfp-kubernetes settings), if any.

    * kubeflow: executors of Vertex AI's own components (the GCPC launcher image, or
      ``google.*`` artifact types such as ``google.VertexModel``), and accelerator types written
      the Vertex AI way (``NVIDIA_TESLA_T4`` rather than a resource name such as
      ``nvidia.com/gpu``);
    * vertex: Kubernetes platform settings (kfp-kubernetes node selectors, tolerations, volumes),
      which Vertex AI ignores, and accelerator types that are Kubernetes resource names.

    Raises:
        ValueError: an unknown ``target``.
    """
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: expected one of {', '.join(TARGETS)}")
    problems: list[str] = []
    components = _executor_components(spec)
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for label, executor in executors.items():
        container = executor.get("container", {})
        accelerator = str(container.get("resources", {}).get("accelerator", {}).get("type", ""))
        vertex_style = bool(_VERTEX_ACCELERATOR.fullmatch(accelerator))
        if target == "kubeflow":
            google_types = sorted(
                {t for t in _artifact_types(components.get(label, {})) if t.startswith("google.")}
            )
            if str(container.get("image", "")).startswith(_GCPC_IMAGE) or google_types:
                what = f" ({', '.join(google_types)})" if google_types else ""
                problems.append(
                    f"{label}: a Vertex AI component{what}; it runs only on Vertex AI Pipelines"
                )
            if accelerator and vertex_style:
                problems.append(
                    f"{label}: accelerator {accelerator!r} is a Vertex AI name; Kubeflow expects a "
                    "resource name such as 'nvidia.com/gpu' (and a node selector)"
                )
        elif accelerator and not vertex_style:
            problems.append(
                f"{label}: accelerator {accelerator!r} is a Kubernetes resource name; Vertex AI "
                "expects a machine accelerator type such as 'NVIDIA_TESLA_T4'"
            )
    if target == "vertex" and (platform_spec or {}).get("platforms", {}).get("kubernetes"):
        problems.append(
            "platforms.kubernetes: Kubernetes settings (node selectors, tolerations, volumes) "
            "are ignored by Vertex AI Pipelines"
        )
    return problems
