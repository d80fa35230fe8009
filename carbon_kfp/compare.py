"""Optional comparison backends: CodeCarbon and CarbonTracker measuring the same block.

``carbon_kfp.kfp.track(kpi_co2, compare=("codecarbon", "carbontracker"))`` runs them inside the
tracker's window; each estimate lands on the record as ``comparisons_kg[<backend>]`` and in the
Metrics as ``<backend>_emissions_kg`` (kg CO2eq). They are optional extras
(``pip install codecarbon carbontracker``).

Failure behaviour: an unknown backend name, or a backend whose package is not installed, is a
:class:`~carbon_kfp.errors.ConfigError` when the backends are built, before anything runs. Once
running, a backend can never stop the step: any exception (and CarbonTracker's ``sys.exit``) in
its start or stop is caught, warned about once, and that backend reports nothing.

How each is configured, so the comparison is about measurement more than about settings:

* ``codecarbon``: ``OfflineEmissionsTracker`` (no network) with the tracker's country (ISO-3) and,
  when the tracker resolved a cloud region, the same provider and region; ``tracking_mode`` is
  ``"process"`` when the tracker's scope is the process tree, else ``"machine"``. No files are
  written and several instances may run at once.
* ``carbontracker``: ``CarbonTracker`` for one epoch spanning the block, ``ignore_errors=True``
  (so it never calls ``sys.exit``), logs in a temporary directory that is parsed for its
  "actual consumption" and then deleted. CarbonTracker has no location option: it geolocates by
  IP (a network call when it starts; offline it uses its world average), so its intensity can
  differ from the tracker's.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from carbon_kfp.errors import ConfigError, close_matches, warn_once
from carbon_kfp.record import RunContext

if TYPE_CHECKING:
    from carbon_kfp.tracker import EmissionsTracker

T = TypeVar("T")

#: Backend names accepted by :func:`build_backends`, and the package each needs.
BACKEND_PACKAGES: dict[str, str] = {"codecarbon": "codecarbon", "carbontracker": "carbontracker"}


class ComparisonBackend(Protocol):
    """Another tool measuring the same block: ``start()`` before it, ``stop()`` after it."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> float | None:
        """The tool's emissions estimate for the block. Units: kg CO2eq. ``None``: no estimate."""
        ...


class CodeCarbonBackend:
    """CodeCarbon's ``OfflineEmissionsTracker`` configured like the tracker (see module doc)."""

    name = "codecarbon"

    def __init__(self, context: RunContext, measure_interval_s: float) -> None:
        from codecarbon import OfflineEmissionsTracker

        intensity = context.intensity
        options: dict[str, Any] = {
            "project_name": context.project_name,
            "measure_power_secs": measure_interval_s,
            "tracking_mode": "process" if context.scope == "process" else "machine",
            "output_methods": [],  # CodeCarbon >= 3.3: no CSV, API, logger...
            "log_level": "error",
            "allow_multiple_runs": True,
        }
        if intensity.country_iso_code:
            options["country_iso_code"] = intensity.country_iso_code
        else:
            warn_once("carbon-kfp: no country for CodeCarbon; it falls back to its own default")
        if intensity.cloud_provider and intensity.cloud_region:
            options["cloud_provider"] = intensity.cloud_provider
            options["cloud_region"] = intensity.cloud_region
        self._tracker_class = OfflineEmissionsTracker
        self._options = options
        self._tracker: Any = None

    def start(self) -> None:
        self._tracker = self._tracker_class(**self._options)
        self._tracker.start()

    def stop(self) -> float | None:
        if self._tracker is None:
            return None
        emissions_kg = self._tracker.stop()
        return float(emissions_kg) if emissions_kg is not None else None


class CarbonTrackerBackend:
    """CarbonTracker over one epoch spanning the block (see module doc)."""

    name = "carbontracker"

    def __init__(self, measure_interval_s: float) -> None:
        from carbontracker import parser
        from carbontracker.tracker import CarbonTracker

        self._tracker_class = CarbonTracker
        self._parser = parser
        self._interval_s = measure_interval_s
        self._tracker: Any = None
        self._log_dir: str | None = None

    def start(self) -> None:
        self._log_dir = tempfile.mkdtemp(prefix="carbon-kfp-carbontracker-")
        self._tracker = self._tracker_class(
            epochs=1,
            epochs_before_pred=0,
            monitor_epochs=1,
            update_interval=self._interval_s,
            ignore_errors=True,
            verbose=0,
            log_dir=self._log_dir,
        )
        self._tracker.epoch_start()

    def stop(self) -> float | None:
        if self._tracker is None or self._log_dir is None:
            return None
        try:
            self._tracker.epoch_end()  # the one monitored epoch: logs the actual consumption
            logs = self._parser.parse_all_logs(self._log_dir)
        finally:
            shutil.rmtree(self._log_dir, ignore_errors=True)
        actual = logs[-1].get("actual") if logs else None
        if not actual:
            return None
        return float(actual["co2eq (g)"]) / 1000.0


def build_backends(
    names: Iterable[str], context: RunContext, *, measure_interval_s: float = 1.0
) -> list[ComparisonBackend]:
    """Backends for ``names`` (duplicates dropped), configured from the tracker's context.

    Args:
        names: backend names, see :data:`BACKEND_PACKAGES`.
        context: the tracker's run context (country, region, scope, project name).
        measure_interval_s: sampling period passed to the backends. Units: s.

    Raises:
        ConfigError: an unknown name (close valid ones are listed) or a package not installed.
    """
    if isinstance(names, str):  # compare="codecarbon" would otherwise iterate letters
        names = (names,)
    backends: list[ComparisonBackend] = []
    for name in dict.fromkeys(names):
        if name not in BACKEND_PACKAGES:
            valid = sorted(BACKEND_PACKAGES)
            raise ConfigError(
                f"compare={name!r}: unknown backend; expected one of {', '.join(valid)}"
                f"{close_matches(name, valid)}"
            )
        try:
            backend: ComparisonBackend = (
                CodeCarbonBackend(context, measure_interval_s)
                if name == "codecarbon"
                else CarbonTrackerBackend(measure_interval_s)
            )
        except ImportError as exc:
            raise ConfigError(
                f"compare={name!r} needs the {BACKEND_PACKAGES[name]!r} package "
                f"(pip install {BACKEND_PACKAGES[name]}): {exc}"
            ) from exc
        backends.append(backend)
    return backends


def _guarded(
    backend: ComparisonBackend, action: str, call: Callable[[], T]
) -> tuple[bool, T | None]:
    """``(True, call())``, or ``(False, None)`` with one warning when it raised."""
    try:
        return True, call()
    except (Exception, SystemExit) as exc:  # a comparison must never stop the user's step
        warn_once(f"carbon-kfp: comparison backend {backend.name} failed to {action} ({exc!r})")
        return False, None


@contextlib.contextmanager
def alongside(tracker: EmissionsTracker, backends: Iterable[ComparisonBackend]) -> Iterator[None]:
    """Run ``backends`` inside the block; on exit add their estimates to ``tracker``.

    Use inside a started tracker and before ``tracker.stop()``, so the final record carries the
    comparisons. A backend that fails to start or stop adds nothing (one warning); the block's own
    exception propagates unchanged.
    """
    started = [backend for backend in backends if _guarded(backend, "start", backend.start)[0]]
    try:
        yield
    finally:
        for backend in reversed(started):
            _, emissions_kg = _guarded(backend, "stop", backend.stop)
            if emissions_kg is not None:
                tracker.add_comparison(backend.name, emissions_kg)
