"""The container images the kit's components run in: one setting, read at compile time.

Every component of the kit names its ``base_image`` from here (DESIGN §4: the registry path is set
when a pipeline is compiled, never hard-coded to one project). The images are the ones built from
``images/cpu`` and ``images/gpu``, tagged with this package's version:

* ``CARBON_KFP_IMAGE_REGISTRY=europe-west4-docker.pkg.dev/my-proj/ml`` gives
  ``europe-west4-docker.pkg.dev/my-proj/ml/carbon-kfp-cpu:<version>`` (and ``-gpu``);
* ``CARBON_KFP_CPU_IMAGE`` / ``CARBON_KFP_GPU_IMAGE`` name one image outright (any tag or digest);
* with neither, the image has no registry (``carbon-kfp-cpu:<version>``): fine for ``kfp.local``'s
  subprocess runner, which ignores images, and for a local ``docker build``; ``carbon-kfp submit``
  refuses it (:func:`is_placeholder`).

The variables are read when a component module is first imported, so set them before importing
``carbon_kfp.components``; to change one component's image afterwards, use
:func:`carbon_kfp.components.with_base_image`. This module imports nothing heavy.
"""

from __future__ import annotations

import os

from carbon_kfp._version import __version__
from carbon_kfp.errors import ConfigError

REGISTRY_ENV = "CARBON_KFP_IMAGE_REGISTRY"
CPU_IMAGE_ENV = "CARBON_KFP_CPU_IMAGE"
GPU_IMAGE_ENV = "CARBON_KFP_GPU_IMAGE"

CPU_IMAGE_NAME = "carbon-kfp-cpu"
GPU_IMAGE_NAME = "carbon-kfp-gpu"

#: Google Cloud Pipeline Components' own image, which carries google-cloud-aiplatform and kfp (not
#: carbon-kfp): the GCPC ops in ``pipelines/gcpc/`` run in it, and so do kit components that call
#: the Vertex AI SDK (``undeploy_idle_models``). A test keeps it equal to the ops' image.
VERTEX_SDK_IMAGE = "gcr.io/ml-pipeline/google-cloud-pipeline-components:2.22.0"


def image_ref(name: str, registry: str = "", tag: str = __version__) -> str:
    """``<registry>/<name>:<tag>``, or ``<name>:<tag>`` without a registry.

    Raises:
        ConfigError: ``registry`` has a scheme, whitespace, or a tag/digest of its own.
    """
    registry = registry.strip().rstrip("/")
    if registry and ("://" in registry or any(c.isspace() for c in registry) or "@" in registry):
        raise ConfigError(
            f"{REGISTRY_ENV}={registry!r}: expected a registry path such as "
            "'europe-west4-docker.pkg.dev/my-project/my-repo' (no scheme, tag or spaces)"
        )
    return f"{registry}/{name}:{tag}" if registry else f"{name}:{tag}"


def _image(explicit_env: str, name: str) -> str:
    explicit = os.environ.get(explicit_env, "").strip()
    if explicit:
        return explicit
    return image_ref(name, os.environ.get(REGISTRY_ENV, ""))


def cpu_image() -> str:
    """The CPU runtime image: ``$CARBON_KFP_CPU_IMAGE``, else from ``$CARBON_KFP_IMAGE_REGISTRY``.

    Raises:
        ConfigError: the registry setting is malformed.
    """
    return _image(CPU_IMAGE_ENV, CPU_IMAGE_NAME)


def gpu_image() -> str:
    """The GPU runtime image: ``$CARBON_KFP_GPU_IMAGE``, else from ``$CARBON_KFP_IMAGE_REGISTRY``.

    Raises:
        ConfigError: the registry setting is malformed.
    """
    return _image(GPU_IMAGE_ENV, GPU_IMAGE_NAME)


def is_placeholder(image: str) -> bool:
    """True when ``image`` names no registry host, so a cloud backend cannot pull it.

    A registry host is the first path segment when it has a ``.`` or ``:`` or is ``localhost``
    (Docker's own rule); ``carbon-kfp-cpu:0.1.0`` has none, ``gcr.io/p/carbon-kfp-cpu:0.1.0`` has.
    Docker Hub short names (``python:3.11``) also count as placeholders: no Vertex AI user means
    the kit's images to come from there.
    """
    first, sep, _ = image.partition("/")
    return not sep or not ("." in first or ":" in first or first == "localhost")
