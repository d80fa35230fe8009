"""The kit's example pipelines, imported as ``carbon_kfp.pipelines`` (this folder in the wheel).

::

    from carbon_kfp.pipelines import wine_pipeline

Also the registry the ``carbon-kfp`` CLI resolves pipeline names with. Importing this package is
cheap; a pipeline module (and kfp) is imported only when asked for.
"""

import importlib
from pathlib import Path
from typing import Any

from carbon_kfp.errors import ConfigError, close_matches

#: CLI name -> ``module:attribute`` of the ``@dsl.pipeline`` function.
PIPELINES: dict[str, str] = {
    "wine": "carbon_kfp.pipelines.wine:wine_pipeline",
    "fashion-mnist": "carbon_kfp.pipelines.fashion_mnist:fashion_mnist_pipeline",
    "fashion-mnist-custom-job": (
        "carbon_kfp.pipelines.fashion_mnist:fashion_mnist_custom_job_pipeline"
    ),
    "fashion-mnist-kubeflow": "carbon_kfp.pipelines.fashion_mnist:fashion_mnist_kubeflow_pipeline",
}

#: Attribute -> registered name, for ``from carbon_kfp.pipelines import wine_pipeline``.
_EXPORTS = {
    "wine_pipeline": "wine",
    "fashion_mnist_pipeline": "fashion-mnist",
    "fashion_mnist_custom_job_pipeline": "fashion-mnist-custom-job",
    "fashion_mnist_kubeflow_pipeline": "fashion-mnist-kubeflow",
}

__all__ = ["PIPELINES", "compile_pipeline", "load_pipeline", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return load_pipeline(_EXPORTS[name])[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_pipeline(name: str, target: str = "vertex") -> tuple[Any, Any]:
    """Imports a registered pipeline.

    A pipeline whose shape depends on where it runs (accelerator names, node selectors) is
    listed in its module's ``TARGET_BUILDERS`` (attribute -> ``build(target)``), and built for
    ``target``. Any other registered attribute, such as a variant fixed to one target
    (``fashion-mnist-kubeflow``), is that pipeline whatever ``target`` says.

    Args:
        name: A key of :data:`PIPELINES`, e.g. ``"wine"``.
        target: ``"vertex"`` (Vertex AI Pipelines) or ``"kubeflow"`` (Kubeflow Pipelines).

    Returns:
        ``(pipeline, module)``: the ``@dsl.pipeline`` object and the module defining it (which may
        declare ``PARAMETER_CHOICES``).

    Raises:
        ConfigError: ``name`` is not registered (the message lists the registered names).
    """
    if name not in PIPELINES:
        raise ConfigError(
            f"unknown pipeline {name!r}; available: {', '.join(sorted(PIPELINES))}"
            + close_matches(name, PIPELINES)
        )
    module_name, _, attribute = PIPELINES[name].partition(":")
    module = importlib.import_module(module_name)
    build = getattr(module, "TARGET_BUILDERS", {}).get(attribute)
    return (build(target) if build is not None else getattr(module, attribute)), module


def compile_pipeline(name: str, package_path: str | Path, target: str = "vertex") -> Path:
    """Compiles a registered pipeline to YAML (images from :mod:`carbon_kfp.images`).

    Args:
        name: A key of :data:`PIPELINES`.
        package_path: Destination ``.yaml`` file; parent directories are created.
        target: ``"vertex"`` or ``"kubeflow"`` (see :func:`load_pipeline`).

    Returns:
        The path written.
    """
    from kfp import compiler

    pipeline, _ = load_pipeline(name, target)
    path = Path(package_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(path))
    return path
