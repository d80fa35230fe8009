"""Call a kit component's Python function in-process, with its output artifacts in a folder.

The unit tests of ``components/*/tests`` call ``component.python_func`` as the KFP executor
would: every ``Output[...]`` parameter gets an artifact of its declared class at
``<folder>/<name>``; inputs and parameters are the caller's.
"""

import inspect
from pathlib import Path
from typing import Any

from kfp.dsl import Artifact
from kfp.dsl.types import type_annotations


def call_component(component: Any, folder: Path, **inputs: Any) -> tuple[Any, dict[str, Any]]:
    """Runs ``component.python_func(**inputs, **outputs)``.

    Args:
        component: A lightweight Python component (``@dsl.component``).
        folder: Where the output artifacts live, one path per output name.
        **inputs: Input artifacts and parameters; an output given here is used as is.

    Returns:
        ``(returned, outputs)``: what the function returned, and its output artifacts by name.
    """
    outputs: dict[str, Artifact] = {}
    for name, parameter in inspect.signature(component.python_func).parameters.items():
        if name not in inputs and type_annotations.is_artifact_wrapped_in_Output(
            parameter.annotation
        ):
            artifact_class = type_annotations.get_io_artifact_class(parameter.annotation)
            outputs[name] = artifact_class(uri=str(folder / name))
    returned = component.python_func(**inputs, **outputs)
    return returned, outputs
