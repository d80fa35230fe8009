"""``EmissionsTracker``: start/stop/flush, context manager, decorator, named tasks and epochs.

One daemon thread calls every sensor's ``sample()`` each ``measure_interval_s``; records are built
by the pure :func:`carbon_kfp.record.build_record` from snapshots of cumulative readings, so a
task, an epoch, a flush and the whole run are the same arithmetic over different windows.

Failure behaviour (DESIGN §5): bad configuration raises :class:`~carbon_kfp.errors.ConfigError`
(a ``ValueError``) in ``__init__``; nothing that happens while measuring raises to the caller —
a sensor fault downgrades its method and is listed in ``record.warnings``; a failed CSV write is
warned about and the record is still returned. ``stop()`` is idempotent. SIGTERM (Vertex AI
preemption) and interpreter exit write a record with ``status="interrupted"``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from carbon_kfp.errors import ConfigError, warn_once
from carbon_kfp.outputs import append_csv
from carbon_kfp.record import EmissionsRecord, RunContext, Snapshot, Status, build_record
from carbon_kfp.sensors.base import Sensor
from carbon_kfp.timeline import Heartbeat, PowerTimeline

if TYPE_CHECKING:
    from carbon_kfp.intensity import GridIntensity
    from carbon_kfp.location import CloudLocation

F = TypeVar("F", bound=Callable[..., Any])
LocationMode = Literal["off", "auto"]


class CarbonBudgetExceeded(Exception):
    """The epoch prediction exceeds ``budget_kg``; raised from ``epoch_end()`` once per tracker.

    Attributes:
        predicted_emissions_kg: emissions predicted for all planned epochs. Units: kg CO2eq.
        budget_kg: the budget given to the tracker. Units: kg CO2eq.
    """

    def __init__(self, predicted_emissions_kg: float, budget_kg: float) -> None:
        super().__init__(
            f"predicted emissions {predicted_emissions_kg:.6g} kg exceed the budget "
            f"{budget_kg:.6g} kg"
        )
        self.predicted_emissions_kg = predicted_emissions_kg
        self.budget_kg = budget_kg


@dataclass
class TaskWindow:
    """Handle yielded by :meth:`EmissionsTracker.task`; ``record`` is set when the block exits."""

    name: str
    record: EmissionsRecord | None = None


@dataclass
class _Epochs:
    planned: int | None
    monitor: int
    budget_kg: float | None
    on_budget_exceeded: Callable[[CarbonBudgetExceeded], None] | None
    energies_kwh: list[float] = field(default_factory=list)
    begin: Snapshot | None = None
    predicted_energy_kwh: float | None = None


def _finite_positive(name: str, value: float | None, *, minimum: float = 0.0) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= minimum:
        raise ConfigError(f"{name}={value!r}; expected a finite number > {minimum}")


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


class EmissionsTracker:
    """Measure the energy and CO2 of a block of work.

    Args:
        project_name: label for the records (CSV ``project_name``).
        output_dir: directory for ``emissions.csv``; ``None`` writes no file.
        output_file: CSV file name inside ``output_dir``.
        measure_interval_s: sampling period of the background thread. Units: s. Must be > 0.
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
        sysfs_root: root of sysfs for powercap and cgroup reads (default ``$CARBON_KFP_SYSFS_ROOT``
            or ``/sys``), e.g. the host's ``/sys`` mounted elsewhere in a container.
        proc_root: root of procfs for the process's cgroup membership, CPU model and process
            tree (default ``$CARBON_KFP_PROC_ROOT`` or ``/proc``).
        rapl_dram: also sum RAPL ``dram`` domains (off by default: RAM is modelled per GB).
        gpu: measure NVIDIA GPUs when a driver is present.
        experiment_id, pipeline_job, pipeline_task: tags copied into every record.
        epochs: planned number of epochs, for predictions.
        monitor_epochs: epochs measured before predicting the total (1 to ``epochs``).
        budget_kg: emissions budget in kg CO2eq for all ``epochs`` (requires ``epochs``); a
            prediction above it fires once.
        on_budget_exceeded: called with the :class:`CarbonBudgetExceeded` instead of raising it.
        handle_signals: on SIGTERM, write an interrupted record before the previous handler runs.
        machine_type: the host's machine type (e.g. "n1-standard-8") for embodied emissions
            (:mod:`carbon_kfp.embodied`); with ``location="auto"`` the GCP metadata server is
            asked when not given.

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
        sysfs_root: str | os.PathLike[str] | None = None,
        proc_root: str | os.PathLike[str] | None = None,
        rapl_dram: bool = False,
        gpu: bool = True,
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
        from carbon_kfp.pue import resolve_pue

        _finite_positive("measure_interval_s", measure_interval_s)
        _finite_positive("budget_kg", budget_kg)
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ConfigError(f"epochs={epochs!r}; expected a whole number >= 1")
        if not isinstance(monitor_epochs, int) or monitor_epochs < 1:
            raise ConfigError(f"monitor_epochs={monitor_epochs!r}; expected a whole number >= 1")
        if budget_kg is not None and epochs is None:
            raise ConfigError(
                f"budget_kg={budget_kg!r} needs epochs=N: the budget is checked against the "
                "prediction for all N epochs"
            )
        if epochs is not None and monitor_epochs > epochs:
            raise ConfigError(
                f"monitor_epochs={monitor_epochs} > epochs={epochs}; expected at most epochs"
            )
        if location not in ("off", "auto"):
            raise ConfigError(f"location={location!r}; expected 'off' or 'auto'")

        self._notes: list[str] = []  # tracker-level facts for record.warnings
        intensity = self._resolve_intensity(
            carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh,
            cloud_provider=cloud_provider,
            cloud_region=cloud_region,
            country_iso_code=country_iso_code,
            year=intensity_year,
            platform=self._platform_location(cloud_location, location, cloud_region),
        )
        resolved_pue = resolve_pue(
            pue=pue, cloud_provider=intensity.cloud_provider or cloud_provider, year=intensity_year
        )
        self._role = elect_node_owner()
        # The node-owner lock must not outlive a tracker that failed here or is never started.
        self._release_role = weakref.finalize(self, self._role.release)
        try:
            self._sensors = self._build_sensors(
                scope=scope,
                sysfs_root=Path(sysfs_root or os.environ.get("CARBON_KFP_SYSFS_ROOT") or "/sys"),
                proc_root=Path(proc_root or os.environ.get("CARBON_KFP_PROC_ROOT") or "/proc"),
                rapl_dram=rapl_dram,
                cloud_provider=intensity.cloud_provider,
                gpu=gpu,
            )
        except BaseException:
            self._release_role()
            raise
        self._context = RunContext(
            project_name=project_name,
            run_id=_new_run_id(),
            intensity=intensity,
            pue=resolved_pue,
            scope=self._scope_kind,
            experiment_id=experiment_id,
            pipeline_job=pipeline_job,
            pipeline_task=pipeline_task,
            node_rank=self._role.node_rank,
            node_owner=self._role.is_owner,
            **self._host(intensity.cloud_provider, machine_type, location),
        )
        self._csv_path = Path(output_dir) / output_file if output_dir is not None else None
        self._interval_s = float(measure_interval_s)
        self._epochs = _Epochs(epochs, monitor_epochs, budget_kg, on_budget_exceeded)
        self._handle_signals = handle_signals
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0_s = 0.0
        self._begin: Snapshot | None = None
        self._final: EmissionsRecord | None = None
        self._previous_sigterm: Any = None
        self._comparisons_kg: dict[str, float] = {}
        self.task_records: list[EmissionsRecord] = []
        self._timeline = PowerTimeline()
        self._heartbeat = Heartbeat.from_env()

    def _host(self, provider: str, machine_type: str, location: LocationMode) -> dict[str, Any]:
        """RunContext fields for embodied emissions; an unknown platform type is only noted.

        Raises:
            ConfigError: an explicit ``machine_type`` CCF's tables do not list.
        """
        from carbon_kfp.embodied import lookup_host
        from carbon_kfp.location import detect_machine_type

        if machine_type.strip():
            return {
                "machine_type": machine_type.strip(),
                "host": lookup_host(provider, machine_type),
            }
        detected = detect_machine_type(timeout_s=1.0) if location == "auto" else None
        if detected is None:
            return {}
        try:
            return {"machine_type": detected, "host": lookup_host(provider or "gcp", detected)}
        except ConfigError as exc:
            return {"machine_type": detected, "embodied_unknown": f"unknown: {exc}"}

    @staticmethod
    def _platform_location(
        cloud_location: str, location: LocationMode, cloud_region: str | None
    ) -> CloudLocation | None:
        """Where the platform says we run, unless the caller named a region."""
        from carbon_kfp.location import CloudLocation, detect_location

        if cloud_region:
            return None
        if cloud_location.strip():
            return CloudLocation("gcp", cloud_location.strip(), "cloud_location")
        return detect_location(timeout_s=1.0) if location == "auto" else None

    def _resolve_intensity(
        self, *, platform: CloudLocation | None, **explicit: Any
    ) -> GridIntensity:
        """Intensity from the explicit arguments, preferring the platform's region if known.

        Raises:
            ConfigError: a bad explicit argument (a platform region is never an error).
        """
        from carbon_kfp.intensity import resolve_intensity

        if platform is not None:
            located = explicit | {
                "cloud_provider": platform.cloud_provider,
                "cloud_region": platform.cloud_region,
            }
            try:
                return resolve_intensity(**located)
            except ConfigError as exc:
                note = (
                    f"the platform's region {platform.cloud_region!r} ({platform.source}) is not "
                    f"in carbon-kfp's tables ({exc}); using the configured location instead"
                )
                self._notes.append(note)
                warn_once(note)
        return resolve_intensity(**explicit)

    def _build_sensors(
        self,
        *,
        scope: str,
        sysfs_root: Path,
        proc_root: Path,
        rapl_dram: bool,
        cloud_provider: str,
        gpu: bool,
    ) -> list[Sensor]:
        """CPU, GPU and RAM sensors for this process's role on the node.

        The node owner measures its scope and the node's GPUs. Another rank measures nothing
        when the owner's scope already contains it (a container's cgroup, the machine), else
        only its own process's busy CPU time and memory: the owner charges the idle power.
        """
        from carbon_kfp.sensors.base import NullSensor
        from carbon_kfp.sensors.cpu import CpuSensor
        from carbon_kfp.sensors.gpu import GpuSensor
        from carbon_kfp.sensors.ram import RamSensor
        from carbon_kfp.sensors.scope import resolve_scope

        owner = self._role.is_owner
        resolved = resolve_scope(scope, sysfs_root=sysfs_root, proc_root=proc_root)
        self._scope_kind = resolved.kind
        if not owner and resolved.kind != "process":
            note = (
                f"not the node owner ({self._role.how}): this process's CPU and RAM are in the "
                f"owner's {resolved.kind} scope, so they are not counted here"
            )
            return [NullSensor("cpu", note), GpuSensor(measure=False), NullSensor("ram", note)]
        return [
            CpuSensor(
                resolved,
                sysfs_root=sysfs_root,
                proc_root=proc_root,
                rapl_dram=rapl_dram,
                cloud_provider=cloud_provider,
                charge_idle=owner,
            ),
            GpuSensor(measure=gpu and owner),
            RamSensor(resolved),
        ]

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._begin is not None and self._final is None

    def start(self) -> EmissionsTracker:
        """Take the baseline and start sampling. Calling it twice is an error.

        Raises:
            RuntimeError: already started.
        """
        if self._begin is not None:
            raise RuntimeError("this tracker was already started; create a new one per run")
        with self._lock:
            self._t0_s = time.monotonic()
            for sensor in self._sensors:
                self._guard(sensor.start, sensor.name)
            self._begin = self._snapshot()
            self._timeline.add(self._begin)
        self._thread = threading.Thread(target=self._run, name="carbon-kfp-sampler", daemon=True)
        self._thread.start()
        atexit.register(self._on_exit)
        if self._handle_signals and threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def flush(self) -> EmissionsRecord:
        """Record everything since ``start()`` with ``status="partial"`` and keep measuring."""
        return self._record_since_start("partial", write=True)

    def flush_preview(self) -> EmissionsRecord:
        """Like :meth:`flush` but writes nothing: the record so far, for progress displays."""
        return self._record_since_start("partial", write=False)

    def stop(self, status: Status = "completed") -> EmissionsRecord:
        """Stop sampling, write the final record and return it. Idempotent.

        Raises:
            RuntimeError: never started.
        """
        if self._begin is None:
            raise RuntimeError("stop() before start()")
        with self._lock:
            if self._final is not None:
                return self._final
            self._stop_event.set()
            for sensor in self._sensors:
                self._guard(sensor.sample, sensor.name)
            self._final = self._record_since_start(status, write=True)
            for sensor in self._sensors:
                self._guard(sensor.close, sensor.name)
            self._release_role()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self._interval_s + 1)
        atexit.unregister(self._on_exit)
        self._restore_signal_handler()
        return self._final

    def __enter__(self) -> EmissionsTracker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.stop("failed" if exc_type is not None else "completed")

    # -- windows ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[TaskWindow]:
        """Measure a named block inside a running tracker; one record (and CSV row) per task.

        Raises:
            RuntimeError: the tracker is not running.
        """
        if not self.running:
            raise RuntimeError(f"task {name!r}: start the tracker first")
        window = TaskWindow(name)
        begin = self._snapshot()
        status: Status = "failed"
        try:
            yield window
            status = "completed"
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
        epochs = self._epochs
        if epochs.begin is None:
            raise RuntimeError("epoch_end() without epoch_start()")
        window = self._record(epochs.begin, self._snapshot(), "completed")
        epochs.begin = None
        epochs.energies_kwh.append(window.energy_kwh)
        if epochs.planned is None or len(epochs.energies_kwh) != epochs.monitor:
            return
        mean_kwh = sum(epochs.energies_kwh) / len(epochs.energies_kwh)
        epochs.predicted_energy_kwh = mean_kwh * epochs.planned
        predicted_kg = epochs.predicted_energy_kwh * self._context.intensity.g_per_kwh / 1000.0
        if epochs.budget_kg is not None and predicted_kg > epochs.budget_kg:
            exceeded = CarbonBudgetExceeded(predicted_kg, epochs.budget_kg)
            if epochs.on_budget_exceeded is None:
                raise exceeded
            epochs.on_budget_exceeded(exceeded)

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
                for sensor in self._sensors:
                    self._guard(sensor.sample, sensor.name)
                snapshot = self._snapshot()
                self._timeline.add(snapshot)
                power_w = self._timeline.latest_power_w() if self._heartbeat.enabled else {}
            self._heartbeat.beat(snapshot.elapsed_s, power_w)

    def _guard(self, call: Callable[[], object], name: str) -> None:
        """Run a sensor call; a sensor that breaks its never-raise contract is only warned about."""
        try:
            call()
        except Exception as exc:  # a measurement fault must never stop the user's training
            warn_once(f"carbon-kfp {name} sensor failed ({exc!r}); its energy may be incomplete")

    def _snapshot(self) -> Snapshot:
        with self._lock:
            readings = {}
            for sensor in self._sensors:
                try:
                    readings[sensor.name] = sensor.read()
                except Exception as exc:
                    warn_once(f"carbon-kfp {sensor.name} sensor read failed ({exc!r})")
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

    def _record_since_start(self, status: Status, *, write: bool) -> EmissionsRecord:
        if self._begin is None:
            raise RuntimeError("the tracker was never started")
        with self._lock:
            end = self._snapshot()
            self._timeline.add(end)
            timeline = self._timeline.points()
        record = self._record(self._begin, end, status, power_timeline=timeline)
        if write:
            self._write(record)
        return record

    def _write(self, record: EmissionsRecord) -> None:
        if self._csv_path is None:
            return
        try:
            append_csv(record, self._csv_path)
        except OSError as exc:
            warn_once(f"carbon-kfp could not write {self._csv_path}: {exc}")

    def _on_exit(self) -> None:
        if self.running:
            self.stop("interrupted")

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_sigterm
        if self.running:
            self.stop("interrupted")  # also restores the previous handler
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    def _restore_signal_handler(self) -> None:
        if self._previous_sigterm is None:
            return
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, TypeError):
                if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                    signal.signal(signal.SIGTERM, self._previous_sigterm)
        self._previous_sigterm = None


@overload
def track_emissions(fn: F) -> F: ...


@overload
def track_emissions(fn: None = None, **tracker_kwargs: Any) -> Callable[[F], F]: ...


def track_emissions(fn: Callable[..., Any] | None = None, **tracker_kwargs: Any) -> Any:
    """Decorator: run the function inside an :class:`EmissionsTracker`.

    Use as ``@track_emissions`` or ``@track_emissions(project_name="x", output_dir=".")``. The
    function's return value is unchanged; the record is on ``wrapper.last_record``. An exception
    in the function is re-raised after a ``status="failed"`` record is written.
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
