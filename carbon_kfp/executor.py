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
  An executor output the command wrote itself is kept and merged into.

How the wrapper learns where to write: ``--executor-input`` takes the executor input JSON (the
``{{$}}`` placeholder, ``dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER``), which holds the executor
output path (``outputs.outputFile``) and the artifact's name and URI
(``outputs.artifacts.NAME.artifacts[0]``). ``--metrics-path`` (the artifact's ``.path``
placeholder) lets the backend map the URI to a local path (``gs://b/x`` -> ``/gcs/b/x``); without
it the wrapper maps ``gs://``, ``minio://`` and ``s3://`` itself as kfp does. Without an executor
input, ``--executor-output`` and ``--metrics-path`` are both required and the artifact is named
after ``--metrics``.

Signals and exit code: the command runs in a new session, hence its own process group (so it has
no controlling terminal: this wraps pipeline steps, not interactive programs). SIGTERM and SIGINT
sent to the wrapper are forwarded to that group; a group still alive ``--grace-period-s`` seconds
after the first signal is killed with SIGKILL, so the record is written before Kubernetes' own
grace period (30 s by default) ends. The wrapper exits with the command's exit code, or
``128 + N`` when the command died from signal N (143 for SIGTERM, 137 for SIGKILL), as a shell or
an init such as tini reports it and a container runtime expects. A command that cannot be started
exits 127 (not found) or 126 (not executable), as in a shell. Output is not captured: the command
writes straight to the wrapper's stdout and stderr, so nothing is buffered here.

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
from typing import Any

from carbon_kfp.errors import ConfigError, close_matches, warn_once
from carbon_kfp.outputs import write_text_atomic
from carbon_kfp.record import EmissionsRecord, Status
from carbon_kfp.tracker_options import add_tracker_options, resolved_or_empty, tracker_kwargs

DEFAULT_METRICS_NAME = "kpi_co2"
#: Seconds between forwarding the first SIGTERM/SIGINT and SIGKILL of the command's group.
DEFAULT_GRACE_PERIOD_S = 20.0
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)

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
        ConfigError: the executor input is not JSON, lacks the named output (valid names are
            listed) or an output file, or without an executor input a path is missing.
    """
    artifact: Mapping[str, Any] = {}
    output_file = ""
    if executor_input:
        try:
            document = json.loads(executor_input)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--executor-input is not JSON ({exc}); pass '{{{{$}}}}'") from exc
        outputs = document.get("outputs", {}) if isinstance(document, dict) else {}
        output_file = str(outputs.get("outputFile", ""))
        artifacts = outputs.get("artifacts", {})
        entries = artifacts.get(metrics_name, {}).get("artifacts", [])
        if not entries:
            names = sorted(artifacts)
            raise ConfigError(
                f"--metrics {metrics_name!r}: no such output artifact in --executor-input "
                f"(outputs: {', '.join(names) or 'none'}){close_matches(metrics_name, names)}"
            )
        artifact = entries[0]
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


def write_outputs(target: MetricsTarget, record: EmissionsRecord) -> None:
    """Write the JSON record to the artifact's file and merge the metrics into the executor output.

    An existing executor output (written by the command) keeps its parameters and other
    artifacts; metadata of the same artifact is updated with the metrics. A file that is not a
    JSON object is replaced, with a warning.

    Raises:
        OSError: a file cannot be written.
    """
    write_text_atomic(target.artifact_path, record.to_json())
    document: dict[str, Any] = {}
    if target.executor_output.is_file():
        try:
            loaded = json.loads(target.executor_output.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            loaded = None
            warn_once(f"carbon-kfp exec: replacing unreadable {target.executor_output} ({exc})")
        if isinstance(loaded, dict):
            document = loaded
    artifacts = document.setdefault("artifacts", {})
    entries = artifacts.get(target.output_name, {}).get("artifacts") or [{}]
    entry = entries[0]
    entry.setdefault("name", target.artifact_name)
    entry.setdefault("uri", target.artifact_uri)
    entry["metadata"] = {**entry.get("metadata", {}), **record.to_metrics()}
    artifacts[target.output_name] = {"artifacts": [entry, *entries[1:]]}
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
    its record written (status ``failed`` or ``interrupted``).

    Raises:
        ConfigError: no command, a bad grace period, output locations that cannot be worked out,
            or a bad tracker option (the command is not run).
        OSError: the outputs cannot be written (after the command ran).
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
        write_outputs(target, tracker.stop(status))
    return code
