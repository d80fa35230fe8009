"""Container components whose command runs under ``carbon-kfp exec`` (any language).

:func:`carbon_container_component` builds a ``@dsl.container_component`` from an image and a
command; :func:`carbon_exec_command` gives the ``carbon-kfp exec ... --`` prefix for a container
component written by hand. The image must carry carbon-kfp (the ``carbon-kfp`` script); nothing is
installed at run time. Locally such components run on ``kfp.local.DockerRunner``
(``SubprocessRunner`` runs only lightweight Python components).

The wrapper learns where to write from the executor input (``{{$}}``) and the artifact's
``.path`` placeholder, which the backend resolves (``/gcs/...`` on Vertex AI, a local path in
``kfp.local``). Pipeline job and task names and the Vertex AI location are component inputs,
because KFP resolves ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` and friends as argument values::

    train = carbon_container_component(
        "train-java", image=IMAGE, command=["java", "-jar", "/app/train.jar"],
        args=["--epochs", "{epochs}"], inputs={"epochs": int},
    )
    train(epochs=3, pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
          pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER)
"""

from __future__ import annotations

import inspect
import string
from collections.abc import Mapping, Sequence
from typing import Any

from kfp import dsl
from kfp.dsl import Metrics, Output

from carbon_kfp.errors import ConfigError, close_matches
from carbon_kfp.executor import DEFAULT_METRICS_NAME

#: Inputs every carbon container component has (all ``str``, default ``""``).
TAG_INPUTS: tuple[str, ...] = ("pipeline_job", "pipeline_task", "cloud_location")
_PARAMETER_TYPES = (str, int, float, bool)


def carbon_exec_command(
    kpi_co2: Any,
    *,
    pipeline_job: Any = "",
    pipeline_task: Any = "",
    cloud_location: Any = "",
    exec_options: Sequence[str] = (),
) -> list[Any]:
    """``carbon-kfp exec ... --`` for the ``command`` of a ``dsl.ContainerSpec``.

    Args:
        kpi_co2: the container component's ``Output[Metrics]`` parameter.
        pipeline_job, pipeline_task, cloud_location: strings or input placeholders (the
            component's inputs) for the record's tags, see :func:`carbon_kfp.kfp.track`.
        exec_options: more ``carbon-kfp exec`` options, e.g. ``["--country-iso-code", "FRA"]``
            or ``["--grace-period-s", "25"]``.

    Returns:
        The prefix; append the command to run (in ``command`` or ``args``).
    """
    path = kpi_co2.path
    return [
        "carbon-kfp",
        "exec",
        "--executor-input",
        dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
        "--metrics",
        path.output_name,
        "--metrics-path",
        path,
        "--pipeline-job",
        pipeline_job,
        "--pipeline-task",
        pipeline_task,
        "--cloud-location",
        cloud_location,
        *exec_options,
        "--",
    ]


def _fill(template: str, values: Mapping[str, Any], where: str) -> Any:
    """``template`` with ``{name}`` fields replaced by input placeholders.

    A template that is exactly one field becomes the placeholder itself (typed in the spec);
    otherwise an f-string-like string, which KFP resolves in place.

    Raises:
        ConfigError: a field names no input (close names are listed).
    """
    fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    for field in fields:
        if field not in values:
            raise ConfigError(
                f"{where} {template!r}: {{{field}}} is not an input "
                f"(inputs: {', '.join(values) or 'none'}){close_matches(field, values)}"
            )
    if len(fields) == 1 and template == f"{{{fields[0]}}}":
        return values[fields[0]]
    return template.format_map(values)


def _signature(inputs: Mapping[str, type], defaults: Mapping[str, Any]) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    required = [
        inspect.Parameter(n, kind, annotation=t) for n, t in inputs.items() if n not in defaults
    ]
    optional = [
        inspect.Parameter(n, kind, annotation=t, default=defaults[n])
        for n, t in inputs.items()
        if n in defaults
    ]
    tags = [inspect.Parameter(n, kind, annotation=str, default="") for n in TAG_INPUTS]
    output = inspect.Parameter(DEFAULT_METRICS_NAME, kind, annotation=Output[Metrics])
    return inspect.Signature([*required, output, *tags, *optional])


def carbon_container_component(
    name: str,
    image: str,
    command: Sequence[str],
    args: Sequence[str] = (),
    *,
    inputs: Mapping[str, type] | None = None,
    defaults: Mapping[str, Any] | None = None,
    exec_options: Sequence[str] = (),
    description: str | None = None,
) -> Any:
    """A container component running ``command + args`` under ``carbon-kfp exec``.

    The component has the parameter ``inputs``, the string inputs ``pipeline_job``,
    ``pipeline_task`` and ``cloud_location`` (default ``""``), and one output, ``kpi_co2``
    (``Metrics``). Its exit code is the command's (128+N when killed by signal N).

    Args:
        name: component name (``"train-java"``).
        image: the container image; it must provide the ``carbon-kfp`` script.
        command: the program and its fixed arguments. ``{name}`` in an element is replaced by
            the input of that name (``"--epochs={epochs}"``); write literal braces as ``{{``/``}}``.
        args: more arguments, with the same ``{name}`` substitution.
        inputs: parameter inputs by name: ``str``, ``int``, ``float`` or ``bool``.
        defaults: default values for some of ``inputs`` (those become optional).
        exec_options: extra ``carbon-kfp exec`` options (tracker options, ``--grace-period-s``).
        description: component description shown in the UI.

    Returns:
        A ``kfp.dsl`` container component, compiled and loaded like any other.

    Raises:
        ConfigError: an input with another type or a reserved name, a default for no input, or a
            ``{field}`` that names no input.
    """
    inputs = dict(inputs or {})
    defaults = dict(defaults or {})
    for input_name, annotation in inputs.items():
        if annotation not in _PARAMETER_TYPES:
            raise ConfigError(
                f"input {input_name!r}: type {annotation!r}; expected str/int/float/bool"
            )
        if input_name in (*TAG_INPUTS, DEFAULT_METRICS_NAME):
            raise ConfigError(f"input {input_name!r} is reserved by carbon_container_component")
    unknown = sorted(set(defaults) - set(inputs))
    if unknown:
        raise ConfigError(f"defaults for unknown inputs: {', '.join(unknown)}")
    signature = _signature(inputs, defaults)
    names = list(signature.parameters)

    def spec(*placeholders: Any) -> dsl.ContainerSpec:
        values = dict(zip(names, placeholders, strict=True))
        substitutable = {n: values[n] for n in inputs}
        prefix = carbon_exec_command(
            values[DEFAULT_METRICS_NAME],
            pipeline_job=values["pipeline_job"],
            pipeline_task=values["pipeline_task"],
            cloud_location=values["cloud_location"],
            exec_options=exec_options,
        )
        return dsl.ContainerSpec(
            image=image,
            command=[*prefix, *(_fill(c, substitutable, "command") for c in command)],
            args=[_fill(a, substitutable, "args") for a in args],
        )

    spec.__name__ = spec.__qualname__ = name
    spec.__doc__ = description or f"Runs {' '.join(command)} under carbon-kfp exec (kpi_co2)."
    spec.__signature__ = signature  # type: ignore[attr-defined]
    spec.__annotations__ = {n: p.annotation for n, p in signature.parameters.items()}
    return dsl.container_component(spec)
