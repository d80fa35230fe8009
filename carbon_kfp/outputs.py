"""Renderings of :class:`~carbon_kfp.record.EmissionsRecord` to files: ``emissions.csv`` and JSON.

``emissions.csv`` keeps CodeCarbon 3.3.2's 38 columns in CodeCarbon's order (so existing tools
read it) and appends this project's columns. Appends are whole rows written with one ``write`` on
an ``O_APPEND`` descriptor under an exclusive ``flock``, so concurrent processes never interleave
or tear rows; a thread that re-enters while holding the lock (a SIGTERM handler flushing during a
flush) reuses its descriptor instead of waiting for itself. A file whose header differs is never
rewritten or shifted: the row goes to a new file named after the schema, and a warning says
which.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

from carbon_kfp.errors import warn_once
from carbon_kfp.record import EmissionsRecord


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


_R = EmissionsRecord
# (column, value) in CodeCarbon's order; units follow CodeCarbon (kg, kWh, W, s, GB).
_CODECARBON_COLUMNS: tuple[tuple[str, Callable[[_R], object]], ...] = (
    ("timestamp", lambda r: r.timestamp),
    ("project_name", lambda r: r.project_name),
    ("run_id", lambda r: r.run_id),
    ("experiment_id", lambda r: r.experiment_id),
    ("duration", lambda r: r.duration_s),
    ("emissions", lambda r: r.emissions_kg),
    ("emissions_rate", lambda r: r.emissions_kg / r.duration_s if r.duration_s > 0 else 0.0),
    ("cpu_power", lambda r: r.cpu_power_w),
    ("gpu_power", lambda r: r.gpu_power_w),
    ("ram_power", lambda r: r.ram_power_w),
    ("cpu_energy", lambda r: r.cpu_energy_kwh),
    ("gpu_energy", lambda r: r.gpu_energy_kwh),
    ("ram_energy", lambda r: r.ram_energy_kwh),
    ("energy_consumed", lambda r: r.energy_kwh),
    ("water_consumed", lambda r: 0.0),  # not estimated; CodeCarbon writes 0 without a WUE
    ("country_name", lambda r: r.country_name),
    ("country_iso_code", lambda r: r.country_iso_code),
    ("region", lambda r: r.cloud_region),
    ("cloud_provider", lambda r: r.cloud_provider),
    ("cloud_region", lambda r: r.cloud_region),
    ("os", lambda r: r.os),
    ("python_version", lambda r: r.python_version),
    ("codecarbon_version", lambda r: ""),  # not CodeCarbon: see tracker_version
    ("cpu_count", lambda r: r.cpu_count),
    ("cpu_model", lambda r: r.cpu_model),
    ("gpu_count", lambda r: r.gpu_count),
    ("gpu_model", lambda r: r.gpu_model),
    ("longitude", lambda r: None),
    ("latitude", lambda r: None),
    ("ram_total_size", lambda r: r.ram_total_size_gib),
    ("tracking_mode", lambda r: r.scope),
    ("cpu_utilization_percent", lambda r: r.cpu_utilization_percent),
    ("gpu_utilization_percent", lambda r: r.gpu_utilization_percent),
    ("ram_utilization_percent", lambda r: r.ram_utilization_percent),
    ("ram_used_gib", lambda r: r.ram_used_gib),
    ("on_cloud", lambda r: "Y" if r.on_cloud else "N"),
    ("pue", lambda r: r.pue),
    ("wue", lambda r: 0.0),
)
_OWN_COLUMNS: tuple[tuple[str, Callable[[_R], object]], ...] = (
    ("cpu_method", lambda r: r.cpu_method),
    ("gpu_method", lambda r: r.gpu_method),
    ("ram_method", lambda r: r.ram_method),
    ("intensity_source", lambda r: r.intensity_source),
    ("intensity_year", lambda r: r.intensity_year),
    ("carbon_intensity_g_per_kwh", lambda r: r.carbon_intensity_g_per_kwh),
    ("pue_source", lambda r: r.pue_source),
    ("emissions_low", lambda r: r.emissions_low_kg),
    ("emissions_high", lambda r: r.emissions_high_kg),
    ("status", lambda r: r.status),
    ("tracker_version", lambda r: r.tracker_version),
    ("task_name", lambda r: r.task_name),
    ("pipeline_job", lambda r: r.pipeline_job),
    ("pipeline_task", lambda r: r.pipeline_task),
    ("node_rank", lambda r: r.node_rank),
    ("node_owner", lambda r: r.node_owner),
    ("epochs_completed", lambda r: r.epochs_completed),
    ("predicted_emissions", lambda r: r.predicted_emissions_kg),
    ("predicted_energy", lambda r: r.predicted_energy_kwh),
    ("warnings", lambda r: " | ".join(r.warnings)),
)
CODECARBON_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _CODECARBON_COLUMNS)
CSV_COLUMNS: tuple[str, ...] = CODECARBON_COLUMNS + tuple(name for name, _ in _OWN_COLUMNS)


def csv_row(record: EmissionsRecord) -> list[str]:
    """The record as CSV cells in :data:`CSV_COLUMNS` order (``None`` -> empty cell)."""
    return [_fmt(get(record)) for _, get in _CODECARBON_COLUMNS + _OWN_COLUMNS]


def _csv_line(cells: list[str] | tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


_HEADER = _csv_line(CSV_COLUMNS)
# Per thread: path -> descriptor whose flock this thread holds while appending.
_held_locks = threading.local()


def append_csv(record: EmissionsRecord, path: Path) -> Path:
    """Append one row to ``path`` (creating it with the header), safely across processes.

    Returns:
        The file actually written: ``path``, or ``<stem>.carbon_kfp_<N>cols.csv`` beside it when
        ``path`` exists with a different header (never rewritten or shifted; one warning).

    Raises:
        OSError: the directory cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    row = _csv_line(csv_row(record))
    held: dict[str, int] = _held_locks.__dict__.setdefault("fds", {})
    reentered = str(path) in held  # a signal handler writing while this thread holds the lock
    fd = (
        held[str(path)] if reentered else os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    )
    try:
        if not reentered:
            # flock on a second descriptor would wait for this very thread: remember ours
            fcntl.flock(fd, fcntl.LOCK_EX)
            held[str(path)] = fd
        size = os.fstat(fd).st_size
        if size == 0:
            os.write(fd, _HEADER + row)
            return path
        first_line = _read_first_line(fd)
        if first_line == _HEADER:
            os.write(fd, row)
            return path
    finally:
        if not reentered:
            del held[str(path)]
            os.close(fd)  # also releases the lock
    other = path.with_name(f"{path.stem}.carbon_kfp_{len(CSV_COLUMNS)}cols.csv")
    warn_once(
        f"{path} has a different header (another tool's or an older schema); "
        f"writing carbon-kfp rows to {other} instead"
    )
    return append_csv(record, other)


def _read_first_line(fd: int) -> bytes:
    """The file's first line, read by position (a re-entrant append may move the offset)."""
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, 4096, offset)
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[: newline + 1])
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and a rename.

    A reader sees the old file or the whole new one, never half of it.

    Raises:
        OSError: the directory cannot be written.
    """
    import tempfile  # with shutil, random, bz2 and lzma: ~2 ms off ``import carbon_kfp``

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
