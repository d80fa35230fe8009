"""How the kit makes its lightweight Python components, and how a user re-bases one.

Every kit component runs in the kit's runtime image (:mod:`carbon_kfp.images`) and installs
nothing at run time (DESIGN §4): the image carries carbon-kfp, kfp and the step's libraries. The
one exception to the image, not to the rule: components that call the Vertex AI SDK run in GCPC's
image (:func:`vertex_sdk_component`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kfp import dsl

from carbon_kfp.errors import ConfigError
from carbon_kfp.images import VERTEX_SDK_IMAGE, cpu_image, gpu_image


def kit_component(func: Callable[..., Any], *, base_image: str | None = None) -> Any:
    """``@dsl.component`` with the kit's settings: image from :mod:`carbon_kfp.images`, no installs.

    Args:
        func: The component function (self-contained: KFP ships only its source).
        base_image: Image to run in; default :func:`carbon_kfp.images.cpu_image` at import time.

    Returns:
        The ``PythonComponent``.
    """
    return dsl.component(
        func=func,
        base_image=base_image or cpu_image(),
        packages_to_install=[],
        install_kfp_package=False,
    )


def gpu_kit_component(func: Callable[..., Any]) -> Any:
    """:func:`kit_component` in the GPU image (:func:`carbon_kfp.images.gpu_image`), which
    carries Keras and PyTorch. The accelerator itself is requested by the pipeline task."""
    return kit_component(func, base_image=gpu_image())


def vertex_sdk_component(func: Callable[..., Any]) -> Any:
    """:func:`kit_component` in GCPC's image (:data:`carbon_kfp.images.VERTEX_SDK_IMAGE`), which
    carries google-cloud-aiplatform and kfp but not carbon-kfp: ``func`` must not import it."""
    return kit_component(func, base_image=VERTEX_SDK_IMAGE)


def with_base_image(component: Any, image: str) -> Any:
    """The same component running in ``image``, without editing the kit.

    ::

        from carbon_kfp.components import train_wine_model, with_base_image

        train = with_base_image(train_wine_model, "europe-docker.pkg.dev/p/r/my-train:1.2")

    The image must carry carbon-kfp, kfp and the component's libraries (build it ``FROM`` the
    kit's image); nothing is installed at run time.

    Raises:
        ConfigError: ``component`` is not a lightweight Python component, or ``image`` is empty.
    """
    func = getattr(component, "python_func", None)
    if func is None:
        raise ConfigError(
            f"with_base_image: {component!r} is not a lightweight Python component "
            "(expected one of carbon_kfp.components' components)"
        )
    if not image.strip():
        raise ConfigError("with_base_image: image=''; expected an image reference")
    return kit_component(func, base_image=image.strip())
