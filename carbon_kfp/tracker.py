"""``EmissionsTracker``: start/stop/flush, context manager, decorator, named tasks and epochs.

One daemon thread calls every sensor's ``sample()`` each ``measure_interval_s``; records are built
by the pure :func:`carbon_kfp.record.build_record` from snapshots of cumulative readings, so a
task, an epoch, a flush and the whole run are the same arithmetic over different windows. Where
the tracker runs and which sensors it uses is worked out by :mod:`carbon_kfp.tracker_context`;
epoch predictions are :mod:`carbon_kfp.epochs`.

Failure behaviour (DESIGN §5): bad configuration raises :class:`~carbon_kfp.errors.ConfigError`
(a ``ValueError``) in ``__init__``; nothing that happens while measuring raises to the caller —
a sensor that cannot be built or started measures nothing (method ``none``), a sensor fault
downgrades its method, both are listed in ``record.warnings``; a failed CSV write is warned about
and the record is still returned. ``stop()`` is idempotent and ``flush()`` after it writes
nothing.

How a run ends, one rule for ``with``, the decorator, tasks and :func:`carbon_kfp.kfp.track`
(:func:`exit_status`): ``completed`` when the block returns, ``failed`` when it raises an
``Exception``, ``interrupted`` for any other ``BaseException`` (``SystemExit`` from
``sys.exit(0)`` or from SIGTERM, ``KeyboardInterrupt`` from Ctrl-C). A SIGTERM received while
running (see ``handle_signals``) also makes a run that then returns ``interrupted``, and at
interpreter exit a tracker still running records ``interrupted``. A forked child writes none of
its parent's records.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from carbon_kfp.epochs import CarbonBudgetExceeded, Epochs
from carbon_kfp.errors import ConfigError, warn_once
from carbon_kfp.outputs import append_csv
from carbon_kfp.record import EmissionsRecord, RunContext, Snapshot, Status, build_record
from carbon_kfp.sensors.base import NullSensor, Sensor
from carbon_kfp.sigterm import SigtermGuard, StepTerminated
from carbon_kfp.timeline import Heartbeat, PowerTimeline
from carbon_kfp.tracker_context import (
    LocationMode,
    assemble_sensors,
    cpu_request_vcpus,
    resolve_host,
    resolve_site,
    start_failed,
)

__all__ = [
    "MIN_MEASURE_INTERVAL_S",
    "CarbonBudgetExceeded",
    "EmissionsTracker",
    "TaskWindow",
    "exit_status",
    "track_emissions",
]

F = TypeVar("F", bound=Callable[..., Any])

MIN_MEASURE_INTERVAL_S = 0.05
"""Shortest sampling period accepted. Units: s. Each tick walks the process tree (or reads the
cgroup) and the RAPL counters; below this the sampler's own CPU use grows past what it measures,
and counters that wrap need no faster sampling than about once a minute."""


@dataclass
class TaskWindow:
    """Handle yielded by :meth:`EmissionsTracker.task`; ``record`` is set when the block exits."""

    name: str
    record: EmissionsRecord | None = None


def exit_status(exc_type: type[BaseException] | None) -> Status:
    """How a measured block ended: ``completed`` (no exception), ``failed`` (an ``Exception``)
    or ``interrupted`` (``SystemExit``, ``KeyboardInterrupt`` and other ``BaseException``)."""
    if exc_type is None:
        return "completed"
    return "failed" if issubclass(exc_type, Exception) else "interrupted"


def _finite_positive(name: str, value: float | None, *, minimum: float = 0.0) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= minimum:
        raise ConfigError(f"{name}={value!r}; expected a finite number > {minimum}")


def _check_interval(interval_s: object) -> float:
    """``measure_interval_s`` as a float.

    Raises:
        ConfigError: not a finite number of at least :data:`MIN_MEASURE_INTERVAL_S` seconds.
    """
    if (
        isinstance(interval_s, bool)
        or not isinstance(interval_s, (int, float))
        or not math.isfinite(interval_s)
        or interval_s < MIN_MEASURE_INTERVAL_S
    ):
        raise ConfigError(
            f"measure_interval_s={interval_s!r}; expected a finite number of seconds >= "
            f"{MIN_MEASURE_INTERVAL_S:g} (shorter sampling costs more CPU than it measures)"
        )
    return float(interval_s)


def _new_run_id() -> str:
    """A random UUID (version 4) as text, like ``str(uuid.uuid4())``, which it equals in
    distribution: the uuid module imports platform (~1.5 ms) for its time-based kinds."""
    value = bytearray(os.urandom(16))
    value[6] = value[6] & 0x0F | 0x40  # version 4
    value[8] = value[8] & 0x3F | 0x80  # RFC 4122 variant
    digits = value.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _utc_now() -> str:
    """Now as ISO-8601 UTC with milliseconds, ``2024-05-01T12:34:56.789+00:00`` (the form of
    ``datetime.now(timezone.utc).isoformat(timespec="milliseconds")``, without datetime)."""
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    day_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{day_time}.{nanoseconds // 1_000_000:03d}+00:00"


NON_MAIN_THREAD_NOTE = (
    "the tracker was started on a thread other than the main thread while SIGTERM has its "
    "default action there: a SIGTERM would end the process without this record. Start it on "
    "the main thread, or install a SIGTERM handler on the main thread that exits "
    "(signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))): the record is then written at "
    "exit"
)


class EmissionsTracker:
    """Measure the energy and CO2 of a block of work.

    Args:
        project_name: label for the records (CSV ``project_name``).
        output_dir: directory for ``emissions.csv``; ``None`` writes no file.
        output_file: CSV file name inside ``output_dir``.
        measure_interval_s: sampling period of the background thread. Units: s. At least
            :data:`MIN_MEASURE_INTERVAL_S` (each tick walks the process tree or reads the
            cgroup; shorter periods cost more CPU than they measure).
        pue: power usage effectiveness override (>= 1.0); default from the provider and year.
        carbon_intensity_g_per_kwh: explicit grid intensity (> 0). Units: gCO2eq/kWh.
        country_iso_code: ISO-3 or ISO-2 country code of the site.
        cloud_provider: "gcp", "aws" or "azure".
        cloud_region: provider region, e.g. "europe-west4".
        cloud_location: the Google Cloud region the platform says the step runs in (what
            Vertex AI's ``LOCATION_PLACEHOLDER`` resolves to). Unlike ``cloud_region`` it comes
            from the environment, not from configuration: a region missing from the packaged
            tables falls back (country, else world average) with a warning in the record.
            An explicit ``cloud_region`` wins.
        intensity_year: data year for intensity and PUE; default the newest available.
        location: "off" (default: no network) or "auto" (env, then the GCP metadata server with a
            total timeout of 1 s) to find provider and region when not given; a detected region
            missing from the tables falls back like ``cloud_location``.
        scope: what is charged: "auto", "container" (the cgroup), "process" (the process tree)
            or "machine".
        cpu_request_millicores: the container's CPU request, stated (e.g. 2000 for two vCPUs);
            default ``$CARBON_KFP_CPU_REQUEST_MILLICORES``, which a pod can set from the downward
            API (``resourceFieldRef: {resource: requests.cpu, divisor: 1m}``). It replaces the
            request read from ``cpu.weight``, which runtimes before and after runc 1.3.2 /
            crun 1.23 encode differently; a CPU quota (limit) still wins.
        sysfs_root: root of sysfs for powercap and cgroup reads (default ``$CARBON_KFP_SYSFS_ROOT``
            or ``/sys``), e.g. the host's ``/sys`` mounted elsewhere in a container.
        proc_root: root of procfs for the process's cgroup membership, CPU model and process
            tree (default ``$CARBON_KFP_PROC_ROOT`` or ``/proc``).
        rapl_dram: also sum RAPL ``dram`` domains (off by default: RAM is modelled per GB).
        gpu: measure NVIDIA GPUs when a driver is present (those in ``CUDA_VISIBLE_DEVICES``).
        node_group: name shared by the processes of one job on a host that should measure the
            node once between them (one owner; see :mod:`carbon_kfp.distributed`). Default
            ``$CARBON_KFP_NODE_GROUP``; without it, launcher rank variables (world size above 1)
            or a job id group processes, and any other tracker measures for itself. A tracker
            that is not the owner says so in ``record.warnings``.
        experiment_id, pipeline_job, pipeline_task: tags copied into every record.
        epochs: planned number of epochs, for predictions.
        monitor_epochs: epochs measured before predicting the total (1 to ``epochs``).
        budget_kg: emissions budget in kg CO2eq for all ``epochs`` (requires ``epochs``); a
            prediction above it fires once.
        on_budget_exceeded: called with the :class:`CarbonBudgetExceeded` instead of raising it.
        handle_signals: turn SIGTERM into :class:`~carbon_kfp.sigterm.StepTerminated` (exit
            143) while running, so ``with`` blocks unwind and the record is ``interrupted``; a
            SIGTERM handler installed before is chained to instead (:mod:`carbon_kfp.sigterm`).
            Only on the main thread: started elsewhere, the tracker warns when a SIGTERM would
            end the process without its record.
        machine_type: the host's machine type for embodied emissions (:mod:`carbon_kfp.embodied`):
            a GCP machine type ("n1-standard-8") or an Azure VM size ("Standard_D4s_v3") of the
            ``cloud_provider``; with ``location="auto"`` the GCP metadata server is asked when
            not given.

    Raises:
        ConfigError: any argument out of range, or an unknown country, region or scope.
    """

    def __init__(
        self,
        project_name: str = "carbon-kfp",
        *,
        output_dir: str | os.PathLike[str] | None = None,
        output_file: str = "emissions.csv",
        measure_interval_s: float = 1.0,
        pue: float | None = None,
        carbon_intensity_g_per_kwh: float | None = None,
        country_iso_code: str | None = None,
        cloud_provider: str | None = None,
        cloud_region: str | None = None,
        cloud_location: str = "",
        intensity_year: int | None = None,
        location: LocationMode = "off",
        scope: str = "auto",
        cpu_request_millicores: int | None = None,
        sysfs_root: str | os.PathLike[str] | None = None,
        proc_root: str | os.PathLike[str] | None = None,
        rapl_dram: bool = False,
        gpu: bool = True,
        node_group: str | None = None,
        experiment_id: str = "",
        pipeline_job: str = "",
        pipeline_task: str = "",
        epochs: int | None = None,
        monitor_epochs: int = 1,
        budget_kg: float | None = None,
        on_budget_exceeded: Callable[[CarbonBudgetExceeded], None] | None = None,
        handle_signals: bool = True,
        machine_type: str = "",
    ) -> None:
        from carbon_kfp.distributed import elect_node_owner

        interval_s = _check_interval(measure_interval_s)
        _finite_positive("budget_kg", budget_kg)
        self._epochs = Epochs(epochs, monitor_epochs, budget_kg, on_budget_exceeded)
        site = resolve_site(
            carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh,
            country_iso_code=country_iso_code,
            cloud_provider=cloud_provider,
            cloud_region=cloud_region,
            cloud_location=cloud_location,
            intensity_year=intensity_year,
            location=location,
            pue=pue,
        )
        self._role = elect_node_owner(group=node_group)
        # The node-owner lock must not outlive a tracker that failed here or is never started.
        self._release_role = weakref.finalize(self, self._role.release)
        try:
            assembled = assemble_sensors(
                self._role,
                scope=scope,
                cpu_request_vcpus=cpu_request_vcpus(cpu_request_millicores),
                sysfs_root=Path(sysfs_root or os.environ.get("CARBON_KFP_SYSFS_ROOT") or "/sys"),
                proc_root=Path(proc_root or os.environ.get("CARBON_KFP_PROC_ROOT") or "/proc"),
                rapl_dram=rapl_dram,
                cloud_provider=site.intensity.cloud_provider,
                gpu=gpu,
            )
        except BaseException:
            self._release_role()
            raise
        self._sensors: list[Sensor] = list(assembled.sensors)
        self._notes = [*site.notes, *assembled.notes]  # tracker-level facts for record.warnings
        self._context = RunContext(
            project_name=project_name,
            run_id=_new_run_id(),
            intensity=site.intensity,
            pue=site.pue,
            scope=assembled.scope_kind,
            experiment_id=experiment_id,
            pipeline_job=pipeline_job,
            pipeline_task=pipeline_task,
            node_rank=self._role.node_rank,
            node_owner=self._role.is_owner,
            **resolve_host(site, machine_type, location),
        )
        self._csv_path = Path(output_dir) / output_file if output_dir is not None else None
        self._interval_s = interval_s
        self._handle_signals = handle_signals
        self._sigterm = SigtermGuard()
        # Guards the sensors between the sampler thread and the caller. Never taken in a signal
        # handler (SIGTERM only raises, see carbon_kfp.sigterm), so it need not be re-entrant.
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._t0_s = 0.0
        self._begin: Snapshot | None = None
        self._final: EmissionsRecord | None = None
        self._comparisons_kg: dict[str, float] = {}
        self.task_records: list[EmissionsRecord] = []
        self._timeline = PowerTimeline()
        self._heartbeat = Heartbeat.from_env()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._begin is not None and self._final is None

    def start(self) -> EmissionsTracker:
        """Take the baseline and start sampling. Calling it twice is an error.

        A sensor whose ``start()`` raises is replaced by one that measures nothing (method
        ``none``), with a warning in the record.

        Raises:
            RuntimeError: already started.
        """
        if self._begin is not None:
            raise RuntimeError("this tracker was already started; create a new one per run")
        self._pid = os.getpid()
        with self._lock:
            self._t0_s = time.monotonic()
            for index, sensor in enumerate(self._sensors):
                try:
                    sensor.start()
                except Exception as exc:  # a measurement fault must never stop the work
                    self._notes.append(start_failed(sensor.name, exc))
                    self._quietly(sensor.close, sensor.name)
                    self._sensors[index] = NullSensor(sensor.name)
            self._begin = self._read_sensors()
            self._timeline.add(self._begin)
        self._thread = threading.Thread(target=self._run, name="carbon-kfp-sampler", daemon=True)
        self._thread.start()
        atexit.register(self._on_exit)
        if self._handle_signals and not self._sigterm.install():
            self._notes.append(NON_MAIN_THREAD_NOTE)
            warn_once(NON_MAIN_THREAD_NOTE)
        return self

    def flush(self) -> EmissionsRecord:
        """Record everything since ``start()`` with ``status="partial"`` and keep measuring.

        After ``stop()`` it writes nothing and returns the final record: the run is over.

        Raises:
            RuntimeError: never started.
        """
        return self._since_start(write=True)

    def flush_preview(self) -> EmissionsRecord:
        """Like :meth:`flush` but writes nothing: the record so far, for progress displays."""
        return self._since_start(write=False)

    def stop(self, status: Status = "completed") -> EmissionsRecord:
        """Stop sampling, write the final record and return it. Idempotent.

        ``status`` ``"completed"`` is recorded as ``"interrupted"`` when a SIGTERM arrived while
        running. The SIGTERM handler is removed (see :mod:`carbon_kfp.sigterm` for stopping
        from another thread); a SIGTERM that arrives while the record is written is acted on
        once it is written.

        Raises:
            RuntimeError: never started.
        """
        if self._begin is None:
            raise RuntimeError("stop() before start()")
        try:
            with self._sigterm.held():
                return self._finish(status)
        finally:
            self._sigterm.remove()

    def __enter__(self) -> EmissionsTracker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.stop(exit_status(exc_type))

    # -- windows ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[TaskWindow]:
        """Measure a named block inside a running tracker; one record (and CSV row) per task.

        Its status follows :func:`exit_status`.

        Raises:
            RuntimeError: the tracker is not running.
        """
        if not self.running:
            raise RuntimeError(f"task {name!r}: start the tracker first")
        window = TaskWindow(name)
        begin = self._snapshot()
        status: Status = "completed"
        try:
            yield window
        except BaseException as exc:
            status = exit_status(type(exc))
            raise
        finally:
            window.record = self._record(begin, self._snapshot(), status, task_name=name)
            self.task_records.append(window.record)
            self._write(window.record)

    def epoch_start(self) -> None:
        """Mark the start of an epoch (for ``epochs=`` predictions and budgets)."""
        self._epochs.begin = self._snapshot()

    def epoch_end(self) -> None:
        """Close the epoch opened by :meth:`epoch_start`; predict once ``monitor_epochs`` are done.

        Raises:
            RuntimeError: no epoch was started.
            CarbonBudgetExceeded: the prediction exceeds ``budget_kg`` (once; not raised when an
                ``on_budget_exceeded`` callback is given).
        """
        begin = self._epochs.begin
        if begin is None:
            raise RuntimeError("epoch_end() without epoch_start()")
        window = self._record(begin, self._snapshot(), "completed")
        self._epochs.close(window.energy_kwh, self._context.intensity.g_per_kwh)

    def add_comparison(self, backend: str, emissions_kg: float) -> None:
        """Attach another tool's estimate (e.g. ``"codecarbon"``) to the final record."""
        self._comparisons_kg[backend] = emissions_kg

    @property
    def final_record(self) -> EmissionsRecord | None:
        """The record returned by ``stop()``, or ``None`` while running."""
        return self._final

    @property
    def context(self) -> RunContext:
        """Run-wide facts: location, intensity, PUE, scope, pipeline tags."""
        return self._context

    # -- internals -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop_event.wait(self._interval_s):
            with self._lock:
                if self._final is not None:
                    return
                snapshot = self._read_sensors(sample=True)  # one read of each device per tick
                self._timeline.add(snapshot)
                power_w = self._timeline.latest_power_w() if self._heartbeat.enabled else {}
            self._heartbeat.beat(snapshot.elapsed_s, power_w)

    def _finish(self, status: Status) -> EmissionsRecord:
        with self._lock:
            if self._final is not None:
                return self._final
            assert self._begin is not None
            if status == "completed" and self._sigterm.received:
                status = "interrupted"
            self._stop_event.set()
            for sensor in self._sensors:
                self._quietly(sensor.sample, sensor.name)
            end = self._read_sensors()
            self._timeline.add(end)
            for sensor in self._sensors:
                self._quietly(sensor.close, sensor.name)
            self._final = final = self._record(
                self._begin, end, status, power_timeline=self._timeline.points()
            )
            self._release_role()
        self._write(final)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self._interval_s + 1)
        atexit.unregister(self._on_exit)
        return final

    def _quietly(self, call: Callable[[], object], name: str) -> None:
        """Run a sensor call; a sensor that breaks its never-raise contract is only warned about."""
        try:
            call()
        except Exception as exc:  # a measurement fault must never stop the user's training
            warn_once(f"carbon-kfp {name} sensor failed ({exc!r}); its energy may be incomplete")

    def _snapshot(self) -> Snapshot:
        """Read every sensor, with SIGTERM held so that none is left half-updated."""
        with self._sigterm.held(), self._lock:
            return self._read_sensors()

    def _read_sensors(self, *, sample: bool = False) -> Snapshot:
        """Cumulative readings now, by ``sample()`` on a sampling tick, else ``read()`` (the
        caller holds ``_lock``)."""
        readings = {}
        for sensor in self._sensors:
            try:
                readings[sensor.name] = sensor.sample() if sample else sensor.read()
            except Exception as exc:
                warn_once(f"carbon-kfp {sensor.name} sensor failed ({exc!r})")
        return Snapshot(time.monotonic() - self._t0_s, readings)

    def _warnings(self) -> tuple[str, ...]:
        sensor_notes = (message for sensor in self._sensors for message in sensor.warnings())
        return (*self._notes, *sensor_notes)

    def _record(
        self,
        begin: Snapshot,
        end: Snapshot,
        status: Status,
        *,
        task_name: str = "",
        power_timeline: dict[str, tuple[float, ...]] | None = None,
    ) -> EmissionsRecord:
        epochs = self._epochs
        return build_record(
            self._context,
            begin,
            end,
            timestamp=_utc_now(),
            status=status,
            task_name=task_name,
            warnings=self._warnings(),
            epochs_completed=len(epochs.energies_kwh),
            epochs_planned=epochs.planned,
            predicted_energy_kwh=epochs.predicted_energy_kwh,
            comparisons_kg=self._comparisons_kg,
            power_timeline=power_timeline,
        )

    def _since_start(self, *, write: bool) -> EmissionsRecord:
        """A ``partial`` record of the run so far, or the final one once stopped."""
        if self._begin is None:
            raise RuntimeError("the tracker was never started")
        with self._sigterm.held():
            with self._lock:
                if self._final is not None:
                    return self._final
                end = self._read_sensors()
                self._timeline.add(end)
                timeline = self._timeline.points()
            record = self._record(self._begin, end, "partial", power_timeline=timeline)
            if write:
                self._write(record)
            return record

    def _write(self, record: EmissionsRecord) -> None:
        if self._csv_path is None:
            return
        if os.getpid() != self._pid:
            warn_once(
                f"carbon-kfp: a forked child does not write its parent's records "
                f"(run {self._context.run_id}) to {self._csv_path}; start a tracker in the child"
            )
            return
        try:
            append_csv(record, self._csv_path)
        except OSError as exc:
            warn_once(f"carbon-kfp could not write {self._csv_path}: {exc}")

    def _on_exit(self) -> None:
        """atexit: a tracker still running records ``interrupted``; not in a forked child."""
        if self.running and os.getpid() == self._pid:
            with contextlib.suppress(StepTerminated):  # a SIGTERM while exiting: we are exiting
                self.stop("interrupted")


@overload
def track_emissions(fn: F) -> F: ...


@overload
def track_emissions(fn: None = None, **tracker_kwargs: Any) -> Callable[[F], F]: ...


def track_emissions(fn: Callable[..., Any] | None = None, **tracker_kwargs: Any) -> Any:
    """Decorator: run the function inside an :class:`EmissionsTracker`.

    Use as ``@track_emissions`` or ``@track_emissions(project_name="x", output_dir=".")``. The
    function's return value is unchanged; the record is on ``wrapper.last_record``. An exception
    in the function is re-raised after the record is written (status by :func:`exit_status`).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = EmissionsTracker(**tracker_kwargs)
            try:
                with tracker:
                    return func(*args, **kwargs)
            finally:
                wrapper.last_record = tracker.final_record  # type: ignore[attr-defined]

        return wrapper

    return decorate(fn) if fn is not None else decorate
