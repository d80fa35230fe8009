"""The kit's KFP components, imported as ``carbon_kfp.components`` (this folder in the wheel).

::

    from carbon_kfp.components import carbon_report, load_wine_data, train_wine_model

Each component has its folder here with ``component.py``, ``README.md``, the compiled
``component.yaml`` (load it with ``kfp.components.load_component_from_file`` where carbon-kfp is not
installed) and ``tests/``. Importing this package imports kfp.
"""

from ._kit import kit_component, with_base_image
from .carbon_report.component import carbon_report
from .check_serving_image.component import check_serving_image
from .evaluate_fashion_cnn.component import evaluate_fashion_cnn
from .evaluate_wine_model.component import evaluate_wine_model
from .load_fashion_mnist.component import load_fashion_mnist
from .load_wine_data.component import load_wine_data
from .train_fashion_cnn.component import train_fashion_cnn
from .train_wine_model.component import train_wine_model
from .undeploy_idle_models.component import undeploy_idle_models

#: Every component of the kit, by name (``make compile`` writes each one's ``component.yaml``).
COMPONENTS = {
    "carbon_report": carbon_report,
    "check_serving_image": check_serving_image,
    "evaluate_fashion_cnn": evaluate_fashion_cnn,
    "evaluate_wine_model": evaluate_wine_model,
    "load_fashion_mnist": load_fashion_mnist,
    "load_wine_data": load_wine_data,
    "train_fashion_cnn": train_fashion_cnn,
    "train_wine_model": train_wine_model,
    "undeploy_idle_models": undeploy_idle_models,
}

__all__ = [
    "COMPONENTS",
    "carbon_report",
    "check_serving_image",
    "evaluate_fashion_cnn",
    "evaluate_wine_model",
    "kit_component",
    "load_fashion_mnist",
    "load_wine_data",
    "train_fashion_cnn",
    "train_wine_model",
    "undeploy_idle_models",
    "with_base_image",
]
