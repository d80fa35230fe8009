"""Where pipelines and components get their container images from.

One place for the ``base_image`` of every component (DESIGN §4: "the registry path is set at
compile time, never hard-coded to one project"). Images are read from the environment when this
module is first imported, so set the variables before compiling::

    CARBON_KFP_CPU_IMAGE=europe-west4-docker.pkg.dev/my-proj/ml/carbon-kfp-cpu:0.1.0 \\
        carbon-kfp compile wine

The defaults are placeholders that name the images built from ``images/cpu`` and ``images/gpu``
without a registry; they are fine for local runs (``kfp.local.SubprocessRunner`` runs components
in the host environment and ignores the image) and must be overridden for Vertex AI or Kubeflow.
"""

import os

CPU_IMAGE_ENV = "CARBON_KFP_CPU_IMAGE"
GPU_IMAGE_ENV = "CARBON_KFP_GPU_IMAGE"

DEFAULT_CPU_IMAGE = "carbon-kfp-cpu:latest"
DEFAULT_GPU_IMAGE = "carbon-kfp-gpu:latest"


def cpu_image() -> str:
    """The image built from ``images/cpu``: ``$CARBON_KFP_CPU_IMAGE`` or the placeholder."""
    return os.environ.get(CPU_IMAGE_ENV, "").strip() or DEFAULT_CPU_IMAGE


def gpu_image() -> str:
    """The image built from ``images/gpu``: ``$CARBON_KFP_GPU_IMAGE`` or the placeholder."""
    return os.environ.get(GPU_IMAGE_ENV, "").strip() or DEFAULT_GPU_IMAGE


#: Resolved once at import; components pass it as ``base_image`` when they are defined.
CPU_IMAGE = cpu_image()
#: Resolved once at import; GPU components pass it as ``base_image`` when they are defined.
GPU_IMAGE = gpu_image()
