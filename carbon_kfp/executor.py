"""``carbon-kfp exec``: run any command as a KFP container step; its energy becomes ``kpi_co2``.

::

    carbon-kfp exec [tracker options] --executor-input '{{$}}' --metrics kpi_co2 \\
        --metrics-path "{{$.outputs.artifacts['kpi_co2'].path}}" -- CMD ARGS...

The wrapper measures the command's whole process tree (in a pod: the container's cgroup), and
when the command ends writes

* the full JSON record to the Metrics artifact's file (so the artifact is a real file on GCS and
  local caching can hit), and
* the KFP executor output (``executor_output.json``) with the DESIGN §3 keys as the artifact's
  metadata, in the format kfp's Python executor writes and the KFP launcher, Vertex AI and
  ``kfp.local`` read: ``{"artifacts": {NAME: {"artifacts": [{"name", "uri", "metadata"}]}}}``.
  An executor output the command wrote itself is kept and merged into; a part of it in another
  shape (or a file that is not JSON) is replaced, with a warning that names it.

How the wrapper learns where to write: ``--executor-input`` takes the executor input JSON (the
``{{$}}`` placeholder, ``dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER``), which holds the executor
output path (``outputs.outputFile``) and the artifact's name and URI
(``outputs.artifacts.NAME.artifacts[0]``). ``--metrics-path`` (the artifact's ``.path``
placeholder) lets the backend map the URI to a local path (``gs://b/x`` -> ``/gcs/b/x``); without
it the wrapper maps ``gs://``, ``minio://`` and ``s3://`` itself as kfp does. Without an executor
input, ``--executor-output`` and ``--metrics-path`` are both required and the artifact is named
after ``--metrics``.

Signals and exit code: the command runs in a new session, hence its own process group (so it has
no controlling terminal: this wraps pipeline steps, not interactive programs). SIGTERM, SIGINT,
SIGHUP and SIGQUIT sent to the wrapper are forwarded to that group and make the record
``interrupted``; a group still alive ``--grace-period-s`` seconds after the first signal is killed
with SIGKILL, so the record is written before Kubernetes' own grace period (30 s by default) ends.
The wrapper exits with the command's exit code, or ``128 + N`` when the command died from signal N
(143 for SIGTERM, 137 for SIGKILL), as a shell or an init such as tini reports it and a container
runtime expects. A command that cannot be started exits 127 (not found) or 126 (not executable),
as in a shell. The command's exit code always wins: once the command has run, a record that
cannot be written is reported on stderr and does not change the exit code. Output is not
captured: the command writes straight to the wrapper's stdout and stderr, so nothing is buffered
here.

This module imports no kfp: containers in any language carry only the carbon-kfp core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from carbon_kfp.errors import ConfigError, close_matches, json_type, warn_once
from carbon_kfp.outputs import write_record_json, write_text_atomic
from carbon_kfp.record import EmissionsRecord, Status
from carbon_kfp.tracker_options import add_tracker_options, resolved_or_empty, tracker_kwargs

if TYPE_CHECKING:
    from carbon_kfp.tracker import EmissionsTracker

DEFAULT_METRICS_NAME = "kpi_co2"
#: Seconds between forwarding the first SIGTERM/SIGINT and SIGKILL of the command's group.
DEFAULT_GRACE_PERIOD_S = 20.0
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
#: Signals forwarded to the command's process group (each one makes the record ``interrupted``).
FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
)

# Remote URI prefixes and their local mounts in KFP backends (as kfp.dsl.types.artifact_types).
_URI_MOUNTS: tuple[tuple[str, str], ...] = (
    ("gs://", "/gcs/"),
    ("minio://", "/minio/"),
    ("s3://", "/s3/"),
)


# -- where the outputs go -------------------------------------------------------------------------


def uri_to_path(uri: str) -> str:
    """The local path of an artifact URI, mapped as kfp does (``gs://b/k`` -> ``/gcs/b/k``)."""
    for prefix, mount in _URI_MOUNTS:
        if uri.startswith(prefix):
            return mount + uri[len(prefix) :]
    return uri


def path_to_uri(path: str) -> str:
    """Inverse of :func:`uri_to_path` (``/gcs/b/k`` -> ``gs://b/k``); other paths unchanged."""
    for prefix, mount in _URI_MOUNTS:
        if path.startswith(mount):
            return prefix + path[len(mount) :]
    return path


@dataclass(frozen=True)
class MetricsTarget:
    """Where ``carbon-kfp exec`` writes: the executor output and the Metrics artifact.

    Attributes:
        executor_output: path of ``executor_output.json``.
        output_name: the component's output name (``kpi_co2``).
        artifact_name: the runtime artifact's name, copied into the executor output.
        artifact_uri: the artifact's URI (``gs://...`` on Vertex AI, a path in ``kfp.local``).
        artifact_path: the local file the JSON record is written to.
    """

    executor_output: Path
    output_name: str
    artifact_name: str
    artifact_uri: str
    artifact_path: Path


#: The part of KFP's executor input that ``resolve_target`` reads, for error messages.
EXECUTOR_INPUT_SHAPE = (
    '{"outputs": {"outputFile": PATH, "artifacts": {NAME: {"artifacts": [{"name": ..., '
    '"uri": ...}]}}}}'
)


def _shape_problem(value: object, kind: type, where: str) -> str | None:
    """``"<where> is a JSON array, expected a JSON object"``, or None when ``value`` is a kind."""
    if isinstance(value, kind):
        return None
    return f"{where} is a JSON {json_type(value)}, expected a JSON {json_type(kind())}"


def _input_value(value: Any, kind: type, where: str) -> Any:
    """``value`` when it is a ``kind``; else a ConfigError naming ``where`` and the shape."""
    problem = _shape_problem(value, kind, where or "the document")
    if problem:
        raise ConfigError(
            f"--executor-input: {problem}; the executor input's shape is "
            f"{EXECUTOR_INPUT_SHAPE} (pass '{{{{$}}}}')"
        )
    return value


def _input_member(parent: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """``parent[key]`` (an empty ``kind`` when absent), checked as :func:`_input_value` does."""
    return _input_value(parent.get(key, kind()), kind, f"{where}.{key}" if where else key)


def resolve_target(
    *,
    executor_input: str | None,
    executor_output: str | None,
    metrics_name: str = DEFAULT_METRICS_NAME,
    metrics_path: str | None = None,
) -> MetricsTarget:
    """Work out the output locations from an executor input JSON and/or explicit paths.

    Explicit ``executor_output`` and ``metrics_path`` win over what the executor input says.

    Raises:
        ConfigError: the executor input is not JSON, not in the executor input's shape (the
            message names the key and the shape expected), lacks the named output (valid names
            are listed) or an output file, or without an executor input a path is missing.
    """
    artifact: Mapping[str, Any] = {}
    output_file = ""
    if executor_input:
        try:
            document = _input_value(json.loads(executor_input), dict, "")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--executor-input is not JSON ({exc}); pass '{{{{$}}}}'") from exc
        outputs = _input_member(document, "outputs", dict, "")
        output_file = _input_member(outputs, "outputFile", str, "outputs")
        artifacts = _input_member(outputs, "artifacts", dict, "outputs")
        where = f"outputs.artifacts.{metrics_name}"
        output = _input_member(artifacts, metrics_name, dict, "outputs.artifacts")
        entries = _input_member(output, "artifacts", list, where)
        if not entries:
            names = sorted(artifacts)
            raise ConfigError(
                f"--metrics {metrics_name!r}: no such output artifact in --executor-input "
                f"(outputs: {', '.join(names) or 'none'}){close_matches(metrics_name, names)}"
            )
        artifact = _input_value(entries[0], dict, f"{where}.artifacts[0]")
    output_file = executor_output or output_file
    if not output_file:
        raise ConfigError(
            "no executor output path: pass --executor-input '{{$}}' or --executor-output"
        )
    uri = str(artifact.get("uri", "")) or (path_to_uri(metrics_path) if metrics_path else "")
    path = metrics_path or uri_to_path(uri)
    if not path:
        raise ConfigError(
            f"no path for the {metrics_name!r} artifact: pass --executor-input '{{{{$}}}}' "
            "or --metrics-path"
        )
    return MetricsTarget(
        executor_output=Path(output_file),
        output_name=metrics_name,
        artifact_name=str(artifact.get("name", "")) or metrics_name,
        artifact_uri=uri,
        artifact_path=Path(path),
    )


def merge_executor_output(
    document: object, target: MetricsTarget, metrics: Mapping[str, float]
) -> tuple[dict[str, Any], list[str]]:
    """An executor output with ``metrics`` merged into the target artifact's metadata (pure).

    ``document`` is what the command wrote (parsed JSON; ``{}`` for no file). Everything
    in it that has the executor output's shape is kept: parameters, other artifacts, further
    entries and metadata keys of the same artifact. A part in another shape is replaced by what
    the wrapper writes, and named in the returned problems.

    Returns:
        The merged document (a new object; ``document`` is not changed) and the problems found,
        each naming a key and what it was (empty when the document was usable as it was).
    """
    problems: list[str] = []

    def part(value: Any, kind: type, where: str) -> Any:
        """``value``, or an empty ``kind`` in its place (and a problem) when it is another type."""
        problem = _shape_problem(value, kind, where)
        if problem is None:
            return value
        problems.append(problem)
        return kind()

    merged = dict(part(document, dict, "the document"))
    artifacts = dict(part(merged.get("artifacts", {}), dict, "artifacts"))
    where = f"artifacts.{target.output_name}"
    output = part(artifacts.get(target.output_name, {}), dict, where)
    entries = list(part(output.get("artifacts", []), list, f"{where}.artifacts"))
    entry = dict(part(entries[0], dict, f"{where}.artifacts[0]") if entries else {})
    for key, value in (("name", target.artifact_name), ("uri", target.artifact_uri)):
        if part(entry.setdefault(key, value), str, f"{where}.artifacts[0].{key}") == "":
            entry[key] = value
    metadata = part(entry.get("metadata", {}), dict, f"{where}.artifacts[0].metadata")
    entry["metadata"] = {**metadata, **metrics}
    artifacts[target.output_name] = {**output, "artifacts": [entry, *entries[1:]]}
    merged["artifacts"] = artifacts
    return merged, problems


def write_outputs(target: MetricsTarget, record: EmissionsRecord) -> None:
    """Write the JSON record to the artifact's file and merge the metrics into the executor output.

    An existing executor output (written by the command) keeps its parameters and other
    artifacts; metadata of the same artifact is updated with the metrics (see
    :func:`merge_executor_output`). A file that is not JSON, or parts of it in another shape,
    are replaced, with a warning that names the file and the part.

    Raises:
        OSError: a file cannot be written.
    """
    write_record_json(target.artifact_path, record)
    loaded: object = {}
    if target.executor_output.is_file():
        try:
            loaded = json.loads(target.executor_output.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            warn_once(f"carbon-kfp exec: replacing unreadable {target.executor_output} ({exc})")
    document, problems = merge_executor_output(loaded, target, record.to_metrics())
    for problem in problems:
        warn_once(
            f"carbon-kfp exec: {target.executor_output}: {problem}; replaced it (expected "
            '{"artifacts": {NAME: {"artifacts": [{"name", "uri", "metadata": {...}}]}}})'
        )
    write_text_atomic(target.executor_output, json.dumps(document))


# -- running the command -------------------------------------------------------------------------


def exit_code(returncode: int) -> int:
    """A ``Popen.returncode`` as an exit status: ``-N`` (killed by signal N) -> ``128 + N``."""
    return 128 - returncode if returncode < 0 else returncode


class _Forwarder:
    """Forwards SIGTERM/SIGINT to the command's process group; SIGKILLs it after a grace period.

    A signal that arrives before the command has started is delivered once it has.
    """

    def __init__(self, grace_period_s: float) -> None:
        self.grace_period_s = grace_period_s
        self.received: int | None = None
        self._pgid: int | None = None
        self._timer: threading.Timer | None = None

    def attach(self, pgid: int) -> None:
        self._pgid = pgid
        if self.received is not None:
            self._forward(self.received)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._pgid is not None:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        self._kill(signum)
        if self._timer is None:
            self._timer = threading.Timer(self.grace_period_s, self._kill, (signal.SIGKILL,))
            self._timer.daemon = True
            self._timer.start()

    def _kill(self, signum: int) -> None:
        if self._pgid is None:  # never killpg(0, ...): that is our own group
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pgid, signum)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


@contextlib.contextmanager
def _forwarding(grace_period_s: float) -> Iterator[_Forwarder]:
    forwarder = _Forwarder(grace_period_s)
    previous = {sig: signal.signal(sig, forwarder.handle) for sig in FORWARDED_SIGNALS}
    try:
        yield forwarder
    finally:
        forwarder.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_command(command: Sequence[str], grace_period_s: float) -> tuple[int, bool]:
    """Run ``command`` in its own process group, forwarding signals; wait for it to end.

    Must be called from the main thread (it installs signal handlers).

    Returns:
        The exit code (see :func:`exit_code`; 127/126 when it could not be started) and whether
        a forwarded signal interrupted it.
    """
    with _forwarding(grace_period_s) as forwarder:
        try:
            # A new session is a new process group (pgid = pid) on Python 3.10 too.
            child = subprocess.Popen(list(command), start_new_session=True)
        except (FileNotFoundError, PermissionError) as exc:
            print(f"carbon-kfp exec: cannot run {command[0]!r}: {exc}", file=sys.stderr)
            code = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE
            return code, forwarder.received is not None
        forwarder.attach(child.pid)
        returncode = child.wait()
        return exit_code(returncode), forwarder.received is not None


# -- the CLI ---------------------------------------------------------------------------------------


def configure_exec_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``carbon-kfp exec`` (register :func:`exec_command` as its handler)."""

    parser.description = (
        "Run CMD, measure its process tree, and write the kpi_co2 Metrics artifact and the KFP "
        "executor output. Exits with CMD's exit code (128+N if killed by signal N)."
    )
    add_tracker_options(parser)
    group = parser.add_argument_group("KFP outputs")
    group.add_argument(
        "--executor-input",
        default=None,
        metavar="JSON",
        help="the executor input, i.e. the '{{$}}' placeholder",
    )
    group.add_argument(
        "--executor-output",
        default=None,
        metavar="PATH",
        help="executor output file (default: outputs.outputFile of --executor-input)",
    )
    group.add_argument(
        "--metrics",
        default=DEFAULT_METRICS_NAME,
        metavar="NAME",
        help=f"name of the Metrics output artifact (default: {DEFAULT_METRICS_NAME})",
    )
    group.add_argument(
        "--metrics-path",
        default=None,
        metavar="PATH",
        help="local file of the Metrics artifact (default: mapped from its URI)",
    )
    group.add_argument(
        "--cloud-location",
        default="",
        help="Vertex AI location (LOCATION_PLACEHOLDER): sets --cloud-provider gcp and "
        "--cloud-region unless --cloud-region is given",
    )
    group.add_argument(
        "--grace-period-s",
        type=float,
        default=DEFAULT_GRACE_PERIOD_S,
        help="seconds from a forwarded SIGTERM/SIGINT to SIGKILL (default: %(default)s)",
    )
    # Not dest="command": the top-level parser keeps the subcommand's name there.
    parser.add_argument(
        "child_argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the command to run"
    )


def exec_command(args: argparse.Namespace) -> int:
    """Handler of ``carbon-kfp exec``: run the command measured; return its exit code.

    Configuration is checked before the command starts. A failing or killed command still gets
    its record written (status ``failed`` or ``interrupted``). Outputs that cannot be written
    are reported on stderr; the command's exit code is returned all the same.

    Raises:
        ConfigError: no command, a bad grace period, output locations that cannot be worked out,
            or a bad tracker option (the command is not run).
    """
    from carbon_kfp.tracker import EmissionsTracker

    command = list(args.child_argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ConfigError("no command to run: put it after '--'")
    if not math.isfinite(args.grace_period_s) or args.grace_period_s < 0:
        raise ConfigError(f"--grace-period-s={args.grace_period_s}; expected a finite number >= 0")
    target = resolve_target(
        executor_input=args.executor_input,
        executor_output=args.executor_output,
        metrics_name=args.metrics,
        metrics_path=args.metrics_path,
    )
    kwargs = tracker_kwargs(args)
    kwargs["cloud_location"] = args.cloud_location
    for tag in ("pipeline_job", "pipeline_task", "cloud_location"):
        kwargs[tag] = resolved_or_empty(tag, kwargs.get(tag) or "")
    tracker = EmissionsTracker(**kwargs, handle_signals=False)

    tracker.start()
    status: Status = "failed"
    try:
        code, interrupted = run_command(command, args.grace_period_s)
        status = "interrupted" if interrupted else "completed" if code == 0 else "failed"
    finally:
        _write_record(target, tracker, status)
    return code


def _write_record(target: MetricsTarget, tracker: EmissionsTracker, status: Status) -> None:
    """Stop ``tracker`` and write its outputs; a failure goes to stderr and is not raised.

    The command has run: its exit code, not a write error, is the step's outcome (a measurement
    fault never changes what the user's work did).
    """
    try:
        write_outputs(target, tracker.stop(status))
    except Exception as exc:
        print(
            f"carbon-kfp exec: could not write the emissions record ({type(exc).__name__}: "
            f"{exc}); exiting with the command's exit code",
            file=sys.stderr,
        )
