"""Record files: :class:`~carbon_kfp.record.EmissionsRecord` to CSV and JSON, and JSON back.

``emissions.csv`` keeps CodeCarbon 3.3.2's 38 columns in CodeCarbon's order (so existing tools
read it) and appends this project's columns. Appends are whole rows written with one ``write`` on
an ``O_APPEND`` descriptor under an exclusive ``flock``, so concurrent processes never interleave
or tear rows (threads of one process too: each append opens its own descriptor). A file whose
header differs is never rewritten or shifted: the row goes to a new file named after the schema,
and a warning says which.

A row is written whole or not at all: a short write (a full disk, a file size limit) is truncated
back to where the row began and raised as :class:`OSError`. A file whose last row lacks its
newline (a hand edit, or a row torn by another writer) gets one before the new row, and a torn
quoted cell is closed first, so the new row never glues onto the old one. Cells holding ``,``,
``"``, ``\n`` or ``\r`` are quoted, so one record is always one row.

Strings that came from ``argv`` or ``os.environ`` may hold undecodable bytes as lone surrogates
(PEP 383), which UTF-8 cannot encode: every rendering here writes them as backslash escapes
(:func:`encodable`) instead of failing the step.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import functools
import os
import re
from collections.abc import Callable
from pathlib import Path

from carbon_kfp.errors import read_utf8, warn_once
from carbon_kfp.record import EmissionsRecord, parse_record

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode() carries it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def encodable(text: str) -> str:
    """``text`` with every lone surrogate written as a backslash escape, so UTF-8 can encode it.

    A byte that could not be decoded (``"caf\\udce9"`` from ``os.environ`` or ``argv``) becomes
    ``\\xe9``, the byte itself; any other lone surrogate becomes ``\\udNNN``. Never raises.
    """
    return text if text.isascii() else _LONE_SURROGATE.sub(_escape_surrogate, text)


def encodable_record(record: EmissionsRecord) -> EmissionsRecord:
    """``record`` with :func:`encodable` applied to every string (warnings and keys included)."""
    changes: dict[str, object] = {
        f.name: encodable(value)
        for f in dataclasses.fields(record)
        if isinstance(value := getattr(record, f.name), str)
    }
    changes["warnings"] = tuple(encodable(text) for text in record.warnings)
    changes["comparisons_kg"] = {
        encodable(name): value for name, value in record.comparisons_kg.items()
    }
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return encodable(str(value))


_R = EmissionsRecord
# (column, the record field it holds, how its cell is written). A column with a field is read
# back into that field by load_csv_records, parsed by the field's type; a column without one is
# derived or constant (written only). A writer of None writes the field's value as it is.
_Column = tuple[str, str | None, Callable[[_R], object] | None]
# In CodeCarbon's order; units follow CodeCarbon (kg, kWh, W, s, GB).
_CODECARBON_COLUMNS: tuple[_Column, ...] = (
    ("timestamp", "timestamp", None),
    ("project_name", "project_name", None),
    ("run_id", "run_id", None),
    ("experiment_id", "experiment_id", None),
    ("duration", "duration_s", None),
    ("emissions", "emissions_kg", None),
    ("emissions_rate", None, lambda r: r.emissions_kg / r.duration_s if r.duration_s > 0 else 0.0),
    ("cpu_power", "cpu_power_w", None),
    ("gpu_power", "gpu_power_w", None),
    ("ram_power", "ram_power_w", None),
    ("cpu_energy", "cpu_energy_kwh", None),
    ("gpu_energy", "gpu_energy_kwh", None),
    ("ram_energy", "ram_energy_kwh", None),
    ("energy_consumed", "energy_kwh", None),
    ("water_consumed", None, lambda r: 0.0),  # not estimated; CodeCarbon writes 0 without a WUE
    ("country_name", "country_name", None),
    ("country_iso_code", "country_iso_code", None),
    ("region", None, lambda r: r.cloud_region),  # CodeCarbon's copy; read from cloud_region
    ("cloud_provider", "cloud_provider", None),
    ("cloud_region", "cloud_region", None),
    ("os", "os", None),
    ("python_version", "python_version", None),
    ("codecarbon_version", None, lambda r: ""),  # not CodeCarbon: see tracker_version
    ("cpu_count", "cpu_count", None),
    ("cpu_model", "cpu_model", None),
    ("gpu_count", "gpu_count", None),
    ("gpu_model", "gpu_model", None),
    ("longitude", None, lambda r: None),
    ("latitude", None, lambda r: None),
    ("ram_total_size", "ram_total_size_gib", None),
    ("tracking_mode", "scope", None),
    ("cpu_utilization_percent", "cpu_utilization_percent", None),
    ("gpu_utilization_percent", "gpu_utilization_percent", None),
    ("ram_utilization_percent", "ram_utilization_percent", None),
    ("ram_used_gb", "ram_used_gib", None),  # GiB, as CodeCarbon writes it (bytes / 1024**3)
    ("on_cloud", "on_cloud", lambda r: "Y" if r.on_cloud else "N"),
    ("pue", "pue", None),
    ("wue", None, lambda r: 0.0),
)
_OWN_COLUMNS: tuple[_Column, ...] = (
    ("cpu_method", "cpu_method", None),
    ("gpu_method", "gpu_method", None),
    ("ram_method", "ram_method", None),
    ("intensity_source", "intensity_source", None),
    ("intensity_year", "intensity_year", None),
    ("carbon_intensity_g_per_kwh", "carbon_intensity_g_per_kwh", None),
    ("pue_source", "pue_source", None),
    ("emissions_low", "emissions_low_kg", None),
    ("emissions_high", "emissions_high_kg", None),
    ("status", "status", None),
    ("tracker_version", "tracker_version", None),
    ("task_name", "task_name", None),
    ("pipeline_job", "pipeline_job", None),
    ("pipeline_task", "pipeline_task", None),
    ("node_rank", "node_rank", None),
    ("node_owner", "node_owner", None),
    ("epochs_completed", "epochs_completed", None),
    ("predicted_emissions", "predicted_emissions_kg", None),
    ("predicted_energy", "predicted_energy_kwh", None),
    ("warnings", "warnings", lambda r: " | ".join(r.warnings)),
)
_COLUMNS = _CODECARBON_COLUMNS + _OWN_COLUMNS
CODECARBON_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _CODECARBON_COLUMNS)
CSV_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _COLUMNS)


def _cell(record: EmissionsRecord, field: str | None, write: Callable[[_R], object] | None) -> str:
    return _fmt(write(record) if write is not None else getattr(record, field or ""))


def csv_row(record: EmissionsRecord) -> list[str]:
    """The record as CSV cells in :data:`CSV_COLUMNS` order (``None`` -> empty cell)."""
    return [_cell(record, field, write) for _, field, write in _COLUMNS]


_NEEDS_QUOTES = re.compile('[,"\r\n]')


def _csv_cell(text: str) -> str:
    """One cell, quoted as ``csv.writer`` does, except that ``\\r`` is quoted too.

    ``csv.writer(lineterminator="\\n")`` quotes a cell with ``\\n`` but not one with ``\\r``,
    which readers take for a line break: the row would split and its columns shift.
    """
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_line(cells: list[str] | tuple[str, ...]) -> bytes:
    return (",".join(_csv_cell(cell) for cell in cells) + "\n").encode("utf-8")


_HEADER = _csv_line(CSV_COLUMNS)


def append_csv(record: EmissionsRecord, path: Path) -> Path:
    """Append one row to ``path`` (creating it with the header), safely across processes.

    Returns:
        The file actually written: ``path``, or ``<stem>.carbon_kfp_<N>cols.csv`` beside it when
        ``path`` exists with a different header (never rewritten or shifted; one warning).

    Raises:
        OSError: the directory cannot be created or written, or the row could not be written
            whole (a full disk: the part written is truncated away, the file is as before).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    row = _csv_line(csv_row(record))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size == 0:
            _write_whole(fd, _HEADER + row, path)
            return path
        if _read_first_line(fd) == _HEADER:
            _write_whole(fd, _row_start(fd) + row, path)
            return path
    finally:
        os.close(fd)  # also releases the lock
    other = path.with_name(f"{path.stem}.carbon_kfp_{len(CSV_COLUMNS)}cols.csv")
    warn_once(
        f"{path} has a different header (another tool's or an older schema); "
        f"writing carbon-kfp rows to {other} instead"
    )
    return append_csv(record, other)


def _write_whole(fd: int, data: bytes, path: Path) -> None:
    """Append ``data`` with one ``write``; on a short or failed write, truncate back and raise.

    Raises:
        OSError: ``data`` was not written whole; the file has its size from before the call.
    """
    size_before = os.fstat(fd).st_size
    try:
        written = os.write(fd, data)
    except OSError:
        _truncate_to(fd, size_before)
        raise
    if written != len(data):
        _truncate_to(fd, size_before)
        raise OSError(
            errno.ENOSPC,
            f"short write: {written} of {len(data)} bytes (disk full?); the partial row was "
            "removed",
            str(path),
        )


def _truncate_to(fd: int, size: int) -> None:
    """Cut the file back to ``size`` bytes if it grew; a failure leaves it as it is."""
    try:
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)
    except OSError:
        pass  # the caller raises the write error, which is what the user must see


def _row_start(fd: int) -> bytes:
    """What goes before a new row so that it starts a row of its own.

    ``b""`` when the file ends with a newline. Otherwise its last row lacks its newline or was
    torn: ``b"\\n"``, or ``b'"\\n'`` when the tear left a quoted cell open (an odd number of
    quote characters in the file), so that the new row is not read as part of that cell.
    """
    size = os.fstat(fd).st_size
    if os.pread(fd, 1, size - 1) == b"\n":
        return b""
    quotes = 0
    for offset in range(0, size, 1 << 16):
        quotes += os.pread(fd, 1 << 16, offset).count(b'"')
    return b'"\n' if quotes % 2 else b"\n"


def _read_first_line(fd: int) -> bytes:
    """The file's first line, read by position (the descriptor's offset is left alone)."""
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
        # backslashreplace: a lone surrogate from argv/environ must not fail the step
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record_json(path: Path, record: EmissionsRecord) -> None:
    """Write the full record as JSON (:meth:`~EmissionsRecord.to_json`) atomically to ``path``.

    Strings are made :func:`encodable` first, so the file is strict UTF-8 JSON that any reader
    accepts (no lone-surrogate escapes) and a project name with undecodable bytes cannot fail it.

    Raises:
        OSError: the directory cannot be written.
    """
    write_text_atomic(path, encodable_record(record).to_json())


def load_record(path: Path) -> EmissionsRecord:
    """Read a JSON record (a ``kpi_co2`` artifact's file, or ``EmissionsRecord.to_json()``).

    Raises:
        ValueError: the file is not UTF-8, not JSON, or not a valid record (see
            :func:`~carbon_kfp.record.parse_record`); the message names the file and the field.
        OSError: the file cannot be read.
    """
    import json

    text = read_utf8(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); expected a carbon-kfp record") from exc
    try:
        return parse_record(data)
    except ValueError as exc:
        raise ValueError(f"{path}: not a valid carbon-kfp record: {exc}") from exc


def _csv_bool(text: str) -> bool | str:
    return {"True": True, "False": False, "Y": True, "N": False}.get(text, text)


def _csv_optional_number(text: str) -> float | int | str | None:
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text  # parse_record names the field and the bad value
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def _csv_strings(text: str) -> list[str]:
    return [part for part in text.split(" | ") if part]


# Cell parser per record field annotation (as parse_record knows them); numbers otherwise.
_CSV_PARSERS: dict[str, Callable[[str], object]] = {
    "str": str,
    "Status": str,
    "bool": _csv_bool,
    "tuple[str, ...]": _csv_strings,
}


@functools.lru_cache(maxsize=1)
def _csv_fields() -> dict[str, tuple[str, Callable[[str], object]]]:
    """CSV column -> (record field, cell parser), for the columns that hold a field."""
    types = {f.name: str(f.type) for f in dataclasses.fields(EmissionsRecord)}
    return {
        column: (field, _CSV_PARSERS.get(types[field], _csv_optional_number))
        for column, field, _ in _COLUMNS
        if field is not None
    }


def load_csv_records(path: Path) -> list[EmissionsRecord]:
    """The records of an ``emissions.csv`` this package wrote: one per measured window.

    Fields without a CSV column take their defaults (``intensity_lifecycle`` False, no
    embodied figure, no timeline). Partial flushes are superseded: per ``run_id`` the last
    whole-run row (no ``task_name``) is kept; a run without one (still running, or killed
    before its first flush) gives the last row of each task instead. Tasks are windows inside
    their run, so a run's task rows and its whole-run row are never both kept (that would count
    the energy twice).

    Raises:
        ValueError: not UTF-8, a column this package writes is missing, or a row is not a valid
            record; the message names the file and the line (and the field).
        OSError: the file cannot be read.
    """
    import csv
    import io

    reader = csv.DictReader(io.StringIO(read_utf8(path), newline=""))
    csv_fields = _csv_fields()
    missing = [column for column in csv_fields if column not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(
            f"{path}: not a carbon-kfp emissions.csv: column(s) {', '.join(missing)} missing"
        )
    runs: dict[str, EmissionsRecord] = {}
    tasks: dict[tuple[str, str], EmissionsRecord] = {}
    for row in reader:
        data = {field: parse(row[column] or "") for column, (field, parse) in csv_fields.items()}
        data["intensity_lifecycle"] = False  # not a CSV column; only labels the intensity
        try:
            record = parse_record(data)
        except ValueError as exc:
            raise ValueError(f"{path} line {reader.line_num}: not a valid record: {exc}") from exc
        if record.task_name:
            tasks[(record.run_id, record.task_name)] = record
        else:
            runs[record.run_id] = record
    task_records = [record for (run_id, _), record in tasks.items() if run_id not in runs]
    return [*runs.values(), *task_records]
