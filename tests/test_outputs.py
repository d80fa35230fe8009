"""emissions.csv: CodeCarbon's columns first, atomic appends across processes, no silent shifts."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import multiprocessing
import os
import random
import resource
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.errors import CarbonKfpWarning
from carbon_kfp.outputs import (
    CODECARBON_COLUMNS,
    CSV_COLUMNS,
    _csv_line,
    append_csv,
    csv_row,
    encodable,
    encodable_record,
    load_csv_records,
    write_record_json,
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
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
)


def test_the_column_list_is_codecarbons_own() -> None:
    """The list above is CodeCarbon 3.3.2's ``EmissionsData`` (the ``compare`` extra pins it)."""
    import dataclasses

    emissions_data = pytest.importorskip("codecarbon.output_methods.emissions_data")
    fields = tuple(f.name for f in dataclasses.fields(emissions_data.EmissionsData))
    assert fields == CODECARBON_3_3_2


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


# -- issue 10: a row whole or not at all, one record one row, never fail on a string ------------


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _append_under_file_size_limit(path: str, limit_bytes: int, task_name: str) -> str:
    """In a forked child: append with RLIMIT_FSIZE set, so the kernel cuts the write short."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def child() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG and short writes, not death
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
        try:
            append_csv(make_record(task_name=task_name), Path(path))
            sender.send("written")
        except OSError as exc:
            sender.send(str(exc))

    process = ctx.Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    return str(receiver.recv())


def test_item7_short_write_truncates_back(tmp_path: Path) -> None:
    path = tmp_path / "emissions.csv"
    assert _append_under_file_size_limit(str(path), 10, "x").startswith("[Errno 28] short write")
    assert path.read_bytes() == b""  # no half header either

    append_csv(make_record(task_name="first"), path)
    before = path.read_bytes()
    message = _append_under_file_size_limit(str(path), len(before) + 25, "cut")
    assert "short write: 25 of" in message and "partial row was removed" in message
    assert str(path) in message
    assert path.read_bytes() == before
    assert "File too large" in _append_under_file_size_limit(str(path), len(before), "cut")
    assert path.read_bytes() == before

    append_csv(make_record(task_name="after"), path)
    rows = _rows(path)
    assert [row[CSV_COLUMNS.index("task_name")] for row in rows[1:]] == ["first", "after"]
    assert {len(row) for row in rows} == {len(CSV_COLUMNS)}


def test_item7_tracker_warns_and_keeps_running_on_a_short_write(
    tmp_path: Path, fresh_warn_once: None
) -> None:
    from carbon_kfp.tracker import EmissionsTracker

    ctx = multiprocessing.get_context("fork")

    def child() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.RLIM_INFINITY))
        tracker = EmissionsTracker(output_dir=str(tmp_path), carbon_intensity_g_per_kwh=300.0)
        tracker.start()
        with pytest.warns(CarbonKfpWarning, match="could not write .*short write"):
            record = tracker.stop()
        assert record.status == "completed"

    process = ctx.Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert (tmp_path / "emissions.csv").read_bytes() == b""


def _tear(path: Path, keep: Callable[[bytes], int]) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: keep(data)])


@pytest.mark.parametrize(
    ("case", "keep"),
    [
        ("no final newline", lambda data: len(data) - 1),
        ("torn in an unquoted cell", lambda data: data.rindex(b",run-1,") + 4),
        ("torn in a quoted cell", lambda data: data.rindex(b'"a ""quoted"", ') + 9),
    ],
)
def test_item8_row_after_a_torn_last_line_starts_a_new_row(
    tmp_path: Path, case: str, keep: Callable[[bytes], int]
) -> None:
    import pandas as pd

    path = tmp_path / "emissions.csv"
    append_csv(make_record(task_name='a "quoted", cell'), path)
    _tear(path, keep)
    append_csv(make_record(task_name="after"), path)
    rows = _rows(path)
    assert len(rows) == 3, case
    assert rows[2] == csv_row(make_record(task_name="after"))
    assert all(len(row) <= len(CSV_COLUMNS) for row in rows)
    frame = pd.read_csv(path, keep_default_na=False)  # CodeCarbon reads its file with pandas
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert list(frame["task_name"])[-1] == "after" and len(frame) == 2
    if case == "no final newline":
        assert list(frame["task_name"]) == ['a "quoted", cell', "after"]


@pytest.mark.parametrize("tricky", ["cr\ronly", "ends in cr\r", 'cr\rand, crlf\r\nand "q"'])
def test_item9_carriage_return_in_a_string_stays_in_one_row(tmp_path: Path, tricky: str) -> None:
    import pandas as pd

    path = tmp_path / "emissions.csv"
    append_csv(make_record(task_name=tricky), path)
    append_csv(make_record(task_name="next"), path)
    rows = _rows(path)
    assert len(rows) == 3 and {len(row) for row in rows} == {len(CSV_COLUMNS)}
    assert [row[CSV_COLUMNS.index("task_name")] for row in rows[1:]] == [tricky, "next"]
    frame = pd.read_csv(path, keep_default_na=False)
    assert list(frame["task_name"]) == [tricky, "next"]
    assert list(frame["run_id"]) == ["run-1", "run-1"]


CELLS = st.text(st.characters(blacklist_characters="\r", blacklist_categories=["Cs"]))


@given(st.lists(CELLS, min_size=1))
def test_rows_are_quoted_as_csv_writer_quotes_them(cells: list[str]) -> None:
    # Same bytes as csv.writer, so existing files keep matching; only "\r" is quoted in addition.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    if cells != [""]:  # csv.writer writes '""' for one empty cell, a row of its own
        assert _csv_line(cells) == buffer.getvalue().encode("utf-8")


def test_item4_undecodable_bytes_are_escaped_never_raised(tmp_path: Path) -> None:
    assert encodable("caf\udce9") == "caf\\xe9"  # os.fsdecode(b"caf\xe9")
    assert encodable("lone \ud800 high") == "lone \\ud800 high"
    assert encodable("café ☃ 😀") == "café ☃ 😀"
    record = dataclasses.replace(
        make_record(task_name="t\udcff", warnings=("w\udc80",), comparisons_kg={"c\udce9": 1.0}),
        project_name=os.fsdecode(b"proj\xe9\xff"),
    )
    path = append_csv(record, tmp_path / "emissions.csv")
    row = dict(zip(CSV_COLUMNS, _rows(path)[1], strict=True))
    assert (row["project_name"], row["task_name"], row["warnings"]) == (
        "proj\\xe9\\xff",
        "t\\xff",
        "w\\x80",
    )
    write_record_json(tmp_path / "record.json", record)
    data = json.loads((tmp_path / "record.json").read_bytes().decode("utf-8", errors="strict"))
    assert data["project_name"] == "proj\\xe9\\xff"
    assert data["comparisons_kg"] == {"c\\xe9": 1.0}
    assert encodable_record(record).to_json() == (tmp_path / "record.json").read_text()


def _soak_writer(path: str, writer: int, flushes: int, results: Any) -> None:
    """Appends ``flushes`` rows; every third one under a file size limit just past the end."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    rng = random.Random(writer)
    record = make_record(task_name=f'w{writer} "q",\r\nend')
    written = short = 0
    for flush in range(flushes):
        limit = resource.RLIM_INFINITY
        if (writer + flush) % 3 == 0:
            size = os.stat(path).st_size if os.path.exists(path) else 0
            limit = size + rng.randrange(1, 700)  # a row is about 600 bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        try:
            append_csv(record, Path(path))
            written += 1
        except OSError as exc:
            short += "short write" in str(exc)
    results.put((written, short))


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_soak_eight_writers_with_short_writes_leave_only_whole_rows(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "emissions.csv"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    writers = [
        ctx.Process(target=_soak_writer, args=(str(path), writer, 50, results))
        for writer in range(8)
    ]
    for process in writers:
        process.start()
    counts = [results.get(timeout=50) for _ in writers]
    for process in writers:
        process.join(10)
        assert process.exitcode == 0
    written = sum(count for count, _ in counts)
    assert sum(short for _, short in counts) > 0, "no short write was injected"
    assert written < 400
    rows = _rows(path)
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 1 + written
    assert {len(row) for row in rows} == {len(CSV_COLUMNS)}
    assert len(pd.read_csv(path)) == written


def test_every_column_with_a_field_reads_back_into_it(tmp_path: Path) -> None:
    """One column table drives the writer and the reader: what a row holds, it gives back."""
    record = dataclasses.replace(
        make_record(task_name="fit"),
        pipeline_job="job-1",
        node_rank=2,
        epochs_completed=3,
        intensity_year=2024,
        predicted_emissions_kg=0.5,
        warnings=("a, b", 'quoted "c"'),
    )
    path = append_csv(record, tmp_path / "emissions.csv")
    (loaded,) = load_csv_records(path)
    not_in_csv = {
        "intensity_lifecycle",
        "epochs_planned",
        "comparisons_kg",
        "machine_type",
        "embodied_kg",
        "embodied_low_kg",
        "embodied_high_kg",
        "embodied_method",
        "power_timeline",
    }
    for field in dataclasses.fields(record):
        if field.name not in not_in_csv:
            want, got = getattr(record, field.name), getattr(loaded, field.name)
            assert got == (pytest.approx(want) if isinstance(want, float) else want), field.name
    assert loaded.on_cloud is record.on_cloud and loaded.node_owner is record.node_owner


def test_a_csv_without_a_column_this_package_writes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "emissions.csv"
    columns = [column for column in CSV_COLUMNS if column != "cpu_method"]
    path.write_text(",".join(columns) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"emissions.csv: .*column\(s\) cpu_method missing"):
        load_csv_records(path)
