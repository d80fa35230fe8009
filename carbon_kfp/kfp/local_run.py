"""Run a pipeline on ``kfp.local`` and summarise energy and CO2 per step.

The engine of ``carbon-kfp run``::

    from carbon_kfp.kfp.local_run import run_pipeline
    from carbon_kfp.kfp.run_summary import format_summary
    from carbon_kfp.pipelines import wine_pipeline

    summary = run_pipeline(wine_pipeline, {"n_estimators": 100}, Path("local_outputs"))
    print(format_summary(summary))

Steps run one after another in subprocesses of this interpreter
(``kfp.local.SubprocessRunner(use_venv=False)``), so the host environment must have carbon-kfp,
kfp and the pipeline's libraries; nothing is installed at run time (DESIGN §4). kfp's own
chatter (every step's streamed output) goes to ``<run dir>/kfp-local.log``; the caller sees one
progress line per step start and end. Caching is off unless asked for: by default a local run
measures every step.
"""

import contextlib
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from carbon_kfp.errors import ConfigError
from carbon_kfp.kfp.run_summary import (
    KPI_ARTIFACT,
    RunSummary,
    TaskEvents,
    collect_steps,
    find_report,
)
from carbon_kfp.outputs import load_record
from carbon_kfp.timeline import HEARTBEAT_ENV_VAR, HEARTBEAT_PREFIX
from carbon_kfp.units import format_co2, format_duration, format_energy

LOG_NAME = "kfp-local.log"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_HEARTBEAT = re.compile(re.escape(HEARTBEAT_PREFIX) + r" (.*)$")
#: Seconds between heartbeat lines of a running local step (:class:`carbon_kfp.timeline.Heartbeat`).
HEARTBEAT_S = 10.0
_FINISHED = re.compile(r"Task '([^']+)' finished with status (SUCCESS|FAILURE)")
_CACHE_HIT = re.compile(r"Task '?([\w.-]+)'? cache hit \(key=([0-9a-f]+)\)")
_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit|Interrupt)\b.*)$")


class PipelineRunError(RuntimeError):
    """A step failed; ``summary`` holds what ran, ``str()`` names the step and its error."""

    def __init__(self, message: str, summary: "RunSummary") -> None:
        super().__init__(message)
        self.summary = summary


def run_pipeline(
    pipeline: Any,
    arguments: Mapping[str, Any],
    output_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
    verbose: bool = False,
    enable_caching: bool = False,
) -> RunSummary:
    """Runs a pipeline locally and returns what each step used.

    Args:
        pipeline: A ``@dsl.pipeline`` object.
        arguments: Pipeline arguments of the declared types
            (:func:`carbon_kfp.kfp.params.convert_params` makes them from strings).
        output_dir: Pipeline root; the run gets its own ``<pipeline>-<timestamp>`` folder inside.
        progress: Called with one line when a step starts and when it ends. Default: print to
            the stdout this function was called with. It is called while ``sys.stdout`` is
            redirected to the kfp log, so it must write to a stream it already holds.
        verbose: Also copy kfp's full log (every step's output) to the terminal.
        enable_caching: Serve unchanged tasks from kfp.local's cache in ``<output_dir>/.kfp_cache``
            (tasks that opt out with ``set_caching_options(False)`` still run). Their steps are
            ``cached`` in the summary and out of its totals.

    Returns:
        The run summary; :func:`carbon_kfp.kfp.run_summary.format_summary` renders it.

    Raises:
        ConfigError: the installed kfp's local runner is too old (:func:`check_local_runner`).
        PipelineRunError: A step failed; the message names the step and its error, and
            ``.summary`` has the partial run.
    """
    import kfp
    import kfp.local
    from kfp.local import config as local_config

    check_local_runner(kfp.__version__)
    pipeline_name = pipeline.name
    root = Path(output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cache_root = root / ".kfp_cache"
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
            enable_caching=enable_caching,
            cache_root=str(cache_root),
        )
        try:
            with contextlib.redirect_stdout(tee), _root_log_to(tee):
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
        pipeline=pipeline_name,
        pipeline_name=pipeline_name,
        run_dir=run_dir,
        parameters=dict(arguments),
        steps=collect_steps(pipeline.pipeline_spec, run_dir, tee.events, cache_root),
        succeeded=failure is None,
        wall_s=wall_s,
        report_html=find_report(pipeline.pipeline_spec, run_dir),
        log_path=log_path,
    )
    if failure is not None:
        failed = [step for step in summary.steps if step.status == "failed"]
        detail = (
            f"step {failed[0].step!r} failed: {failed[0].error or 'see the log'}"
            if failed
            else str(failure)
        )
        raise PipelineRunError(f"{pipeline_name}: {detail} (log: {log_path})", summary) from failure
    return summary


#: kfp.local runs dsl.If / ParallelFor, optional artifact inputs and caching from this version on.
LOCAL_RUNNER_MIN_KFP = (2, 17)


def check_local_runner(version: str) -> None:
    """Refuse a kfp whose local runner cannot run the kit's pipelines.

    Args:
        version: ``kfp.__version__``, e.g. ``"2.14.6"``.

    Raises:
        ConfigError: ``version`` is older than :data:`LOCAL_RUNNER_MIN_KFP` (the kit's components,
            ``track`` and ``compile`` still work there; only local runs need the newer runner).
    """
    parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if parts < LOCAL_RUNNER_MIN_KFP:
        minimum = ".".join(map(str, LOCAL_RUNNER_MIN_KFP))
        raise ConfigError(
            f"kfp {version}: kfp.local runs dsl.If, ParallelFor, optional inputs and caching from "
            f"kfp {minimum}; install kfp>={minimum} for local runs (components, compile and "
            "submit work with kfp>=2.14)"
        )


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
        self.events = TaskEvents()

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
        events = self.events
        started = _STARTED.search(line)
        if started:
            task = started.group(1)
            self.started[task] = time.monotonic()
            events.order.append(task)
            self._recent = []
            self._emit(f"{self._prefix} {task} ...")
            return
        cached = _CACHE_HIT.search(line)
        if cached:
            task, key = cached.groups()
            events.order.append(task)
            events.cache_keys[task] = key
            self._emit(f"{self._prefix} {task} cached: not run, measured in an earlier run")
            return
        finished = _FINISHED.search(line)
        if finished:
            task, status = finished.groups()
            wall_s = time.monotonic() - self.started.get(task, time.monotonic())
            events.wall_s[task] = wall_s
            if status == "SUCCESS":
                record = _read_kpi(self._task_dir(task))
                measured = (
                    f": {format_co2(record.emissions_kg)} CO2, {format_energy(record.energy_kwh)}"
                    if record is not None
                    else ""
                )
                self._emit(f"{self._prefix} {task} done in {format_duration(wall_s)}{measured}")
            else:
                errors = [m.group(1) for m in map(_EXCEPTION.match, self._recent) if m]
                if errors:
                    events.errors[task] = errors[-1].strip()
                reason = f": {events.errors[task]}" if task in events.errors else ""
                self._emit(f"{self._prefix} {task} FAILED after {format_duration(wall_s)}{reason}")
            return
        heartbeat = _HEARTBEAT.search(line)
        if heartbeat and self.events.order:
            self._emit(f"{self._prefix} {self.events.order[-1]} ... {heartbeat.group(1)}")
            return
        self._recent = [*self._recent[-199:], line]

    def _task_dir(self, task: str) -> Path | None:
        if self.run_dir is None:
            self.run_dir = _new_run_dir(self._root, self._before, self._pipeline_name)
        return self.run_dir / task if self.run_dir is not None else None


@contextlib.contextmanager
def _child_pythonpath() -> Iterator[None]:
    """Lets step subprocesses import carbon_kfp from where this process imports it, and turns
    on their trackers' heartbeat (every :data:`HEARTBEAT_S`) unless the user set one."""
    import carbon_kfp

    package_parent = str(Path(carbon_kfp.__file__).resolve().parent.parent)
    old = {name: os.environ.get(name) for name in ("PYTHONPATH", HEARTBEAT_ENV_VAR)}
    parts = [part for part in (old["PYTHONPATH"] or "").split(os.pathsep) if part]
    if package_parent not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_parent, *parts])
    os.environ.setdefault(HEARTBEAT_ENV_VAR, f"{HEARTBEAT_S:g}")
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _root_log_to(stream: Any) -> Iterator[None]:
    """Sends INFO records of the root logger to ``stream`` (kfp.local logs cache hits there,
    outside the logging set-up it makes for each task)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level, logging.INFO) if old_level else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


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


def _read_kpi(task_dir: Path | None) -> Any:
    """The record in a task folder's ``kpi_co2`` file, for a progress line; None if unreadable."""
    try:
        return load_record(task_dir / KPI_ARTIFACT) if task_dir is not None else None
    except (OSError, ValueError):
        return None
