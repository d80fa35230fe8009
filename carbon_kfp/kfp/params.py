"""Pipeline parameters from the command line: ``NAME=VALUE`` strings to the declared KFP types.

Shared by ``carbon-kfp run`` (local) and ``carbon-kfp submit`` (Vertex AI), so a bad value fails
the same way, before anything runs or is sent. Pure: no kfp import, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, cast

from carbon_kfp.errors import ConfigError, close_matches

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def convert_params(
    pipeline: Any,
    params: Mapping[str, Any],
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """Converts ``--param k=v`` strings to the pipeline's declared parameter types.

    Args:
        pipeline: A ``@dsl.pipeline`` object (its ``component_spec.inputs`` declare the types).
        params: Names to values; strings are parsed, values of the right type pass through.
        choices: Allowed values for some string parameters (``{"deploy_target": ("none", ...)}``).

    Returns:
        Arguments ready for ``pipeline(**arguments)``.

    Raises:
        ConfigError: An unknown name (with the close valid ones), a value that does not parse
            as the declared type, a value outside ``choices``, or a missing required parameter.
    """
    inputs = dict(pipeline.component_spec.inputs or {})
    choices = choices or {}
    name = pipeline.name
    arguments: dict[str, Any] = {}
    for key, raw in params.items():
        if key not in inputs:
            raise ConfigError(
                f"pipeline {name!r} has no parameter {key!r}{close_matches(key, inputs)}; "
                f"parameters: {', '.join(inputs)}"
            )
        value = _convert(key, raw, str(inputs[key].type))
        allowed = choices.get(key)
        if allowed is not None and value not in allowed:
            raise ConfigError(
                f"parameter {key}={value!r}: expected one of {', '.join(map(repr, allowed))}"
            )
        arguments[key] = value
    missing = [key for key, spec in inputs.items() if key not in arguments and not spec.optional]
    if missing:
        raise ConfigError(f"pipeline {name!r} needs parameter(s) {', '.join(missing)}")
    return arguments


def _convert(key: str, raw: Any, kind: str) -> Any:
    """One value to the KFP parameter type ``kind`` (``String``, ``Integer``, ...)."""
    expected = {
        "Integer": "an integer",
        "Float": "a finite number",
        "Boolean": "true or false",
        "List": "a JSON list",
        "Dict": "a JSON object",
    }.get(kind, "a string")
    bad = ConfigError(f"parameter {key}={raw!r}: expected {expected}")
    if not isinstance(raw, str):
        python_types: dict[str, tuple[type, ...]] = {
            "Integer": (int,),
            "Float": (int, float),
            "Boolean": (bool,),
            "List": (list,),
            "Dict": (dict,),
        }
        wanted = python_types.get(kind, (str,))
        if (isinstance(raw, bool) and kind != "Boolean") or not isinstance(raw, wanted):
            raise bad
        return float(cast(float, raw)) if kind == "Float" else raw
    text = raw.strip()
    try:
        if kind == "Integer":
            return int(text, 10)
        if kind == "Float":
            number = float(text)
            if not math.isfinite(number):
                raise bad
            return number
        if kind == "Boolean":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise bad
        if kind in ("List", "Dict"):
            value = json.loads(text)
            if not isinstance(value, list if kind == "List" else dict):
                raise bad
            return value
    except ValueError as exc:  # also json.JSONDecodeError
        if exc is bad:
            raise
        raise bad from exc
    return raw
