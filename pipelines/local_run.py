"""Run a registered pipeline on ``kfp.local`` and summarise energy and CO2 per step.

This is the engine of ``carbon-kfp run NAME [--param k=v ...] [--output DIR]``::

    from pipelines.local_run import format_summary, run_pipeline

    summary = run_pipeline("wine", {"n_estimators": "100"}, Path("local_outputs"))
    print(format_summary(summary))

Steps run one after another in subprocesses of this interpreter
(``kfp.local.SubprocessRunner(use_venv=False)``), so the host environment must have carbon-kfp,
kfp and the pipeline's libraries; nothing is installed at run time (DESIGN §4). kfp's own
chatter (every step's streamed output) goes to ``<run dir>/kfp-local.log``; the caller sees one
progress line per step start and end. Local caching is off: a local run measures every step.
"""

import contextlib
import json
import math
import os
import re
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from carbon_kfp.errors import ConfigError, close_matches
from carbon_kfp.record import EmissionsRecord
from carbon_kfp.report import load_record
from pipelines import load_pipeline

#: ``kpi_co2`` is the artifact name every carbon-kfp step uses for its energy/CO2 Metrics.
KPI_ARTIFACT = "kpi_co2"
LOG_NAME = "kfp-local.log"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (SUCCESS|FAILURE)")
_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit|Interrupt)\b.*)$")


class PipelineRunError(RuntimeError):
    """A step failed; ``summary`` holds what ran, ``str()`` names the step and its error."""

    def __init__(self, message: str, summary: "RunSummary") -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class StepSummary:
    """One pipeline step as it ended.

    Attributes:
        step: Task name on disk (the component name without ``comp-``), e.g. ``train-wine-model``.
        display_name: The name the UI shows (``set_display_name``), else ``step``.
        status: ``succeeded``, ``failed`` or ``skipped`` (a condition was false or an upstream
            step failed).
        wall_s: Seconds from kfp starting the step to its end, as seen by this process
            (includes interpreter start-up); ``None`` when it did not run.
        duration_s: Seconds measured by the step's tracker (``kpi_co2`` ``duration_s``).
        energy_kwh: Energy of the step, kWh (``kpi_co2`` ``energy_kwh``).
        emissions_g: CO2-equivalent of the step, grams (``kpi_co2`` ``emissions_kg`` × 1000).
        methods: Measurement method per component, e.g. ``{"cpu": "rapl", "ram": "..."}``.
        intensity: Grid intensity and where it came from, e.g. ``"458 g/kWh world-default"``.
        metrics: Values of the step's other Metrics artifacts (e.g. accuracy), by key.
        outputs: The step's output parameters (e.g. ``deploy``).
        kpi_co2_path: The JSON record written by the tracker, when present.
        error: Last exception line of a failed step's log.
    """

    step: str
    display_name: str
    status: str
    wall_s: float | None = None
    duration_s: float | None = None
    energy_kwh: float | None = None
    emissions_g: float | None = None
    methods: dict[str, str] = field(default_factory=dict)
    intensity: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    kpi_co2_path: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """A finished (or failed) local pipeline run.

    Attributes:
        pipeline: Registered name (``wine``).
        pipeline_name: Name in the pipeline spec (``wine-quality``).
        run_dir: ``<output_dir>/<pipeline_name>-<timestamp>``, one folder per step inside.
        parameters: Arguments after type conversion.
        steps: Every executor task of the pipeline, in the order they ran, skipped ones last.
        succeeded: Whether the pipeline finished with status SUCCESS.
        wall_s: Seconds for the whole run, measured here.
        report_html: The carbon report's HTML page (``<run_dir>/carbon-report.html``, a copy of
            the step's ``report_html`` artifact), when a report step ran.
        log_path: kfp's full local log.
    """

    pipeline: str
    pipeline_name: str
    run_dir: Path | None
    parameters: dict[str, Any]
    steps: tuple[StepSummary, ...]
    succeeded: bool
    wall_s: float
    report_html: Path | None
    log_path: Path | None

    @property
    def total_energy_kwh(self) -> float:
        """Sum of the steps' energy, kWh (steps without a record count 0)."""
        return sum(step.energy_kwh or 0.0 for step in self.steps)

    @property
    def total_emissions_g(self) -> float:
        """Sum of the steps' CO2-equivalent, grams."""
        return sum(step.emissions_g or 0.0 for step in self.steps)


# ---------------------------------------------------------------- parameters


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


# ---------------------------------------------------------------- running


def run_pipeline(
    name: str,
    params: Mapping[str, Any],
    output_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
    verbose: bool = False,
) -> RunSummary:
    """Runs a registered pipeline locally and returns what each step used.

    Args:
        name: Registered pipeline name (see :data:`pipelines.PIPELINES`), e.g. ``"wine"``.
        params: Pipeline parameters; strings from the command line are converted to the declared
            types (:func:`convert_params`).
        output_dir: Pipeline root; the run gets its own ``<pipeline>-<timestamp>`` folder inside.
        progress: Called with one line when a step starts and when it ends. Default: print to
            the stdout this function was called with. It is called while ``sys.stdout`` is
            redirected to the kfp log, so it must write to a stream it already holds.
        verbose: Also copy kfp's full log (every step's output) to the terminal.

    Returns:
        The run summary; ``format_summary`` renders it as a table.

    Raises:
        ConfigError: Unknown pipeline or bad parameters (before anything runs).
        PipelineRunError: A step failed; the message names the step and its error, and
            ``.summary`` has the partial run.
    """
    import kfp.local
    from kfp.local import config as local_config

    pipeline, module = load_pipeline(name)
    arguments = convert_params(pipeline, params, getattr(module, "PARAMETER_CHOICES", None))
    pipeline_name = pipeline.name
    root = Path(output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = {entry.name for entry in root.iterdir()}
    log_path = root / f".{pipeline_name}-{os.getpid()}-{time.time_ns()}.log"
    emit = progress or _printer(sys.stdout)
    terminal = sys.stdout if verbose else None

    previous_config = local_config.LocalExecutionConfig.instance
    started = time.monotonic()
    failure: BaseException | None = None
    with (
        open(log_path, "w", encoding="utf-8") as log_file,
        _child_pythonpath(),
        _quiet_local_warnings(),
    ):
        tee = _ProgressTee(log_file, terminal, emit, pipeline_name, root, before)
        kfp.local.init(
            runner=kfp.local.SubprocessRunner(use_venv=False),
            pipeline_root=str(root),
            raise_on_error=True,
        )
        try:
            with contextlib.redirect_stdout(tee):
                pipeline(**arguments)
        except RuntimeError as exc:  # kfp.local: "Pipeline ... finished with status FAILURE"
            failure = exc
        finally:
            tee.flush()
            local_config.LocalExecutionConfig.instance = previous_config
    wall_s = time.monotonic() - started

    run_dir = _new_run_dir(root, before, pipeline_name)
    if run_dir is not None:
        log_path = log_path.replace(run_dir / LOG_NAME)
    summary = RunSummary(
        pipeline=name,
        pipeline_name=pipeline_name,
        run_dir=run_dir,
        parameters=arguments,
        steps=_collect_steps(pipeline.pipeline_spec, run_dir, tee),
        succeeded=failure is None,
        wall_s=wall_s,
        report_html=_find_report(pipeline.pipeline_spec, run_dir),
        log_path=log_path,
    )
    if failure is not None:
        failed = [step for step in summary.steps if step.status == "failed"]
        detail = (
            f"step {failed[0].step!r} failed: {failed[0].error or 'see the log'}"
            if failed
            else str(failure)
        )
        raise PipelineRunError(f"{name}: {detail} (log: {log_path})", summary) from failure
    return summary


def _printer(stream: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


class _ProgressTee:
    """A text stream for kfp.local's stdout: keeps the log and turns task lines into progress."""

    def __init__(
        self,
        log: TextIO,
        terminal: TextIO | None,
        emit: Callable[[str], None],
        pipeline_name: str,
        root: Path,
        before: set[str],
    ) -> None:
        self._log = log
        self._root = root
        self._before = before
        self._pipeline_name = pipeline_name
        self._terminal = terminal
        self._emit = emit
        self._prefix = f"[{pipeline_name}]"
        self._pending = ""
        self._lock = threading.Lock()
        self._recent: list[str] = []
        self.run_dir: Path | None = None
        self.started: dict[str, float] = {}
        self.wall_s: dict[str, float] = {}
        self.order: list[str] = []
        self.errors: dict[str, str] = {}

    def write(self, text: str) -> int:
        with self._lock:
            self._log.write(text)
            if self._terminal is not None:
                self._terminal.write(text)
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        if self._terminal is not None:
            self._terminal.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return self._log.encoding

    def _line(self, line: str) -> None:
        started = _STARTED.search(line)
        if started:
            task = started.group(1)
            self.started[task] = time.monotonic()
            self.order.append(task)
            self._recent = []
            self._emit(f"{self._prefix} {task} ...")
            return
        finished = _FINISHED.search(line)
        if finished:
            task, status = finished.groups()
            wall_s = time.monotonic() - self.started.get(task, time.monotonic())
            self.wall_s[task] = wall_s
            if status == "SUCCESS":
                record = _read_kpi(self._task_dir(task))
                measured = (
                    f": {record.emissions_kg * 1000:.3g} g CO2, {record.energy_kwh:.3g} kWh"
                    if record is not None
                    else ""
                )
                self._emit(f"{self._prefix} {task} done in {wall_s:.1f} s{measured}")
            else:
                errors = [m.group(1) for m in map(_EXCEPTION.match, self._recent) if m]
                if errors:
                    self.errors[task] = errors[-1].strip()
                reason = f": {self.errors[task]}" if task in self.errors else ""
                self._emit(f"{self._prefix} {task} FAILED after {wall_s:.1f} s{reason}")
            return
        self._recent = [*self._recent[-199:], line]

    def _task_dir(self, task: str) -> Path | None:
        if self.run_dir is None:
            self.run_dir = _new_run_dir(self._root, self._before, self._pipeline_name)
        return self.run_dir / task if self.run_dir is not None else None


@contextlib.contextmanager
def _child_pythonpath() -> Iterator[None]:
    """Lets step subprocesses import carbon_kfp from where this process imports it."""
    import carbon_kfp

    package_parent = str(Path(carbon_kfp.__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH")
    parts = [part for part in (old or "").split(os.pathsep) if part]
    if package_parent not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_parent, *parts])
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@contextlib.contextmanager
def _quiet_local_warnings() -> Iterator[None]:
    """kfp.local warns on every step that the image is ignored and display names are no-ops."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*custom or non-Python base image.*")
        warnings.filterwarnings("ignore", message=r".*no effect in the current local runner.*")
        yield


def _new_run_dir(root: Path, before: set[str], pipeline_name: str) -> Path | None:
    """The ``<pipeline_name>-<timestamp>`` folder this run created under ``root``."""
    created = [
        entry
        for entry in root.iterdir()
        if entry.is_dir() and entry.name not in before and entry.name.startswith(pipeline_name)
    ]
    return max(created, key=lambda entry: entry.name) if created else None


# ---------------------------------------------------------------- reading results


def _executor_tasks(spec: Any) -> list[tuple[str, str, Any]]:
    """``(task dir name, display name, component spec)`` of every container task, nested DAGs
    (conditions) included, in spec order."""
    components = spec.components
    found: list[tuple[str, str, Any]] = []

    def walk(dag: Any) -> None:
        for task_name, task in dag.tasks.items():
            component_name = task.component_ref.name
            component = components[component_name]
            if component.WhichOneof("implementation") == "dag":
                walk(component.dag)
            else:
                display = task.task_info.name or task_name
                found.append((component_name.removeprefix("comp-"), display, component))

    walk(spec.root.dag)
    return found


def _collect_steps(spec: Any, run_dir: Path | None, tee: _ProgressTee) -> tuple[StepSummary, ...]:
    steps = []
    for step, display, component in _executor_tasks(spec):
        task_dir = run_dir / step if run_dir is not None else None
        executor_output = _read_json(task_dir / "executor_output.json") if task_dir else {}
        if executor_output:
            status = "succeeded"
        elif step in tee.started:
            status = "failed"
        else:
            status = "skipped"
        record = _read_kpi(task_dir)
        metrics: dict[str, float] = {}
        artifacts = executor_output.get("artifacts", {})
        for name, artifact_spec in component.output_definitions.artifacts.items():
            if (
                name.endswith(KPI_ARTIFACT)  # energy is in the columns; report totals too
                or artifact_spec.artifact_type.schema_title != "system.Metrics"
            ):
                continue
            for artifact in artifacts.get(name, {}).get("artifacts", []):
                metrics.update(
                    (key, float(value))
                    for key, value in artifact.get("metadata", {}).items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                )
        steps.append(
            StepSummary(
                step=step,
                display_name=display,
                status=status,
                wall_s=tee.wall_s.get(step),
                duration_s=record.duration_s if record else None,
                energy_kwh=record.energy_kwh if record else None,
                emissions_g=record.emissions_kg * 1000 if record else None,
                methods=_methods(record) if record else {},
                intensity=_intensity(record) if record else "",
                metrics=metrics,
                outputs=dict(executor_output.get("parameterValues", {})),
                kpi_co2_path=task_dir / KPI_ARTIFACT if record and task_dir else None,
                error=tee.errors.get(step),
            )
        )
    ran = {step: index for index, step in enumerate(tee.order)}
    return tuple(sorted(steps, key=lambda s: ran.get(s.step, len(ran))))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_kpi(task_dir: Path | None) -> EmissionsRecord | None:
    """The record ``track`` wrote to the step's ``kpi_co2`` file; None when there is none."""
    if task_dir is None or not (task_dir / KPI_ARTIFACT).is_file():
        return None
    try:
        return load_record(task_dir / KPI_ARTIFACT)
    except (OSError, ValueError):
        return None


def _methods(record: EmissionsRecord) -> dict[str, str]:
    return {"cpu": record.cpu_method, "gpu": record.gpu_method, "ram": record.ram_method}


def _intensity(record: EmissionsRecord) -> str:
    region = record.cloud_region or record.country_iso_code
    text = f"{record.carbon_intensity_g_per_kwh:.0f} g/kWh {record.intensity_source}"
    return text + (f" ({region})" if region else "")


def _find_report(spec: Any, run_dir: Path | None) -> Path | None:
    """The first ``system.HTML`` output of any step, copied to ``<run_dir>/<step>.html`` (KFP
    names artifact files without an extension; a browser wants one)."""
    if run_dir is None:
        return None
    for step, _, component in _executor_tasks(spec):
        for name, artifact_spec in component.output_definitions.artifacts.items():
            if artifact_spec.artifact_type.schema_title == "system.HTML":
                path = run_dir / step / name
                if path.is_file():
                    page = run_dir / f"{step}.html"
                    shutil.copyfile(path, page)
                    return page
    return None


# ---------------------------------------------------------------- rendering


def format_summary(summary: RunSummary) -> str:
    """Renders a run as a plain-text table: one row per step, then totals and outputs.

    Args:
        summary: What :func:`run_pipeline` returned (or ``PipelineRunError.summary``).

    Returns:
        Text ending without a newline.
    """
    header = (
        "step",
        "status",
        "wall s",
        "measured s",
        "energy kWh",
        "CO2 g",
        "methods",
        "intensity",
    )
    rows = [header]
    for step in summary.steps:
        rows.append(
            (
                step.step,
                step.status,
                _cell(step.wall_s, ".1f"),
                _cell(step.duration_s, ".2f"),
                _cell(step.energy_kwh, ".3g"),
                _cell(step.emissions_g, ".3g"),
                " ".join(f"{part}={method}" for part, method in step.methods.items()) or "-",
                step.intensity or "-",
            )
        )
    rows.append(
        (
            "total",
            "succeeded" if summary.succeeded else "failed",
            _cell(summary.wall_s, ".1f"),
            "",
            _cell(summary.total_energy_kwh, ".3g"),
            _cell(summary.total_emissions_g, ".3g"),
            "",
            "",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 4, 5}

    def render(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    lines = [render(rows[0]), "  ".join("-" * width for width in widths)]
    lines += [render(row) for row in rows[1:-1]]
    lines += ["  ".join("-" * width for width in widths), render(rows[-1])]
    for step in summary.steps:
        values = {**step.metrics}
        shown = ", ".join(f"{key}={value:.4g}" for key, value in sorted(values.items()))
        if shown:
            lines.append(f"{step.step}: {shown}")
        if step.error:
            lines.append(f"{step.step}: {step.error}")
    if summary.report_html is not None:
        lines.append(f"report: {summary.report_html}")
    if summary.run_dir is not None:
        lines.append(f"outputs: {summary.run_dir}")
    return "\n".join(lines)


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
