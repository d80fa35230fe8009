"""emissions.csv: CodeCarbon's columns first, atomic appends across processes, no silent shifts."""

from __future__ import annotations

import csv
import multiprocessing
from pathlib import Path

import pytest

from carbon_kfp.errors import CarbonKfpWarning
from carbon_kfp.outputs import (
    CODECARBON_COLUMNS,
    CSV_COLUMNS,
    append_csv,
    csv_row,
    write_text_atomic,
)
from tests.records import make_record

CODECARBON_3_3_2 = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gib",
    "on_cloud",
    "pue",
    "wue",
)


def test_codecarbon_columns_come_first_in_codecarbon_order() -> None:
    assert len(CODECARBON_3_3_2) == 38
    assert tuple(CODECARBON_3_3_2) == CODECARBON_COLUMNS
    assert CSV_COLUMNS[:38] == tuple(CODECARBON_3_3_2)
    for ours in (
        "cpu_method",
        "gpu_method",
        "ram_method",
        "intensity_source",
        "intensity_year",
        "emissions_low",
        "emissions_high",
        "tracker_version",
        "task_name",
        "pipeline_job",
        "pipeline_task",
        "node_rank",
    ):
        assert ours in CSV_COLUMNS[38:]


def test_row_values_are_the_record_in_codecarbon_units(tmp_path: Path) -> None:
    record = make_record(cpu_j=3.6e6, duration_s=100.0, task_name="fit")
    path = append_csv(record, tmp_path / "emissions.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 1
    row = rows[0]
    assert float(row["emissions"]) == pytest.approx(record.emissions_kg)
    assert float(row["cpu_energy"]) == pytest.approx(1.0)
    assert float(row["duration"]) == 100.0
    assert float(row["emissions_rate"]) == pytest.approx(record.emissions_kg / 100.0)
    assert row["cpu_method"] == "rapl" and row["task_name"] == "fit"
    assert float(row["cpu_count"]) == 2 and float(row["ram_total_size"]) == 4.0


def _writer(path: str, flushes: int) -> None:
    record = make_record(task_name='line,with "quotes"\nand newline')
    for _ in range(flushes):
        append_csv(record, Path(path))


def test_eight_processes_fifty_flushes_give_400_whole_rows(tmp_path: Path) -> None:
    path = tmp_path / "emissions.csv"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_writer, args=(str(path), 50)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 401
    expected = csv_row(make_record(task_name='line,with "quotes"\nand newline'))
    for row in rows[1:]:
        assert len(row) == len(CSV_COLUMNS)
        assert row[CSV_COLUMNS.index("task_name")] == expected[CSV_COLUMNS.index("task_name")]


def test_file_with_another_header_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "emissions.csv"
    original = "timestamp,project_name,emissions\n2024-01-01,x,1.0\n"
    path.write_text(original)
    with pytest.warns(CarbonKfpWarning, match="different header"):
        written = append_csv(make_record(), path)
    assert path.read_text() == original
    assert written != path and written.parent == tmp_path
    assert next(csv.reader(written.open())) == list(CSV_COLUMNS)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "record.json"
    write_text_atomic(target, "{}")
    write_text_atomic(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]


def test_reentrant_append_from_a_signal_handler_does_not_wait_for_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from carbon_kfp import outputs

    path = tmp_path / "emissions.csv"
    append_csv(make_record(task_name="first"), path)
    real_read_first_line = outputs._read_first_line
    reentered: list[bool] = []

    def read_then_reenter(fd: int) -> bytes:
        if not reentered:  # as if SIGTERM arrived here and the handler flushed
            reentered.append(True)
            append_csv(make_record(task_name="from-handler"), path)
        return real_read_first_line(fd)

    monkeypatch.setattr(outputs, "_read_first_line", read_then_reenter)
    writer = threading.Thread(target=append_csv, args=(make_record(task_name="outer"), path))
    writer.start()
    writer.join(10)
    assert not writer.is_alive(), "append_csv deadlocked on its own flock"
    tasks = [row["task_name"] for row in csv.DictReader(path.open())]
    assert tasks == ["first", "from-handler", "outer"]
