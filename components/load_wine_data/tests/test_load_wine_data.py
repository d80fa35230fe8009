"""load_wine_data: sources, validation messages, de-duplication and the stratified split."""

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from kfp import dsl

from carbon_kfp.components.load_wine_data.component import load_wine_data
from tests.component_calls import call_component
from tests.wine_data import WINE_COLUMNS, WineCsv

BUNDLED_ROWS = 4898
BUNDLED_DUPLICATES = 937


def run_load(tmp_path: Path, **kwargs: Any) -> tuple[dsl.Dataset, dsl.Dataset, dsl.Metrics]:
    _, out = call_component(load_wine_data, tmp_path / "out", **kwargs)
    return out["train_data"], out["test_data"], out["kpi_co2"]


def test_bundled_default_drops_duplicates_and_stratifies(tmp_path: Path) -> None:
    train, test, kpi = run_load(tmp_path)

    train_frame = pd.read_csv(train.path)
    test_frame = pd.read_csv(test.path)
    assert len(train_frame) + len(test_frame) == BUNDLED_ROWS - BUNDLED_DUPLICATES
    assert len(test_frame) == pytest.approx(0.2 * (BUNDLED_ROWS - BUNDLED_DUPLICATES), abs=1)
    assert list(train_frame.columns[-2:]) == ["quality", "label"]
    assert ((train_frame["quality"] >= 7) == (train_frame["label"] == 1)).all()
    # stratified: both parts keep the class balance
    assert train_frame["label"].mean() == pytest.approx(test_frame["label"].mean(), abs=0.005)
    assert train.metadata["rows"] == len(train_frame)
    assert train.metadata["features"][0] == "fixed acidity"
    assert train.metadata["source"].startswith("bundled ")
    assert Path(kpi.path).is_file()  # the tracker's JSON record
    assert "energy_kwh" in kpi.metadata


def test_split_is_seeded(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = str(wine_csv())
    first, _, _ = run_load(tmp_path / "a", source=source, seed=3)
    again, _, _ = run_load(tmp_path / "b", source=source, seed=3)
    other, _, _ = run_load(tmp_path / "c", source=source, seed=4)
    assert Path(first.path).read_bytes() == Path(again.path).read_bytes()
    assert Path(first.path).read_bytes() != Path(other.path).read_bytes()


def test_local_source_is_honoured(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(rows=100, duplicates=7)
    train, test, _ = run_load(tmp_path, source=str(source), quality_threshold=6, test_fraction=0.25)
    assert train.metadata["rows"] + test.metadata["rows"] == 100
    assert test.metadata["rows"] == 25
    assert train.metadata["source"] == str(source)
    assert train.metadata["label"] == "quality >= 6"


def test_file_url_source(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(rows=40)
    train, test, _ = run_load(tmp_path, source=source.as_uri())
    assert train.metadata["rows"] + test.metadata["rows"] == 40


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over ``tmp_path/www`` (no network beyond localhost)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", www
    finally:
        server.shutdown()
        server.server_close()


def test_url_source(tmp_path: Path, wine_csv: WineCsv, http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    wine_csv(name="www/served.csv", rows=50)
    train, test, _ = run_load(tmp_path, source=f"{base}/served.csv")
    assert train.metadata["rows"] + test.metadata["rows"] == 50
    assert train.metadata["source"] == f"{base}/served.csv"

    with pytest.raises(ValueError, match=r"missing\.csv: download failed"):
        run_load(tmp_path / "404", source=f"{base}/missing.csv")


def test_gs_source_without_mount_uses_cloud_storage(
    tmp_path: Path, wine_csv: WineCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = wine_csv(rows=30)
    asked: list[tuple[str, str]] = []

    class FakeBlob:
        def __init__(self, bucket: str, name: str) -> None:
            self.bucket, self.name = bucket, name

        def exists(self) -> bool:
            return self.name == "data/wine.csv"

        def download_to_filename(self, filename: str) -> None:
            asked.append((self.bucket, self.name))
            Path(filename).write_bytes(source.read_bytes())

    class FakeClient:
        def bucket(self, name: str) -> SimpleNamespace:
            return SimpleNamespace(blob=lambda blob: FakeBlob(name, blob))

    from google.cloud import storage  # type: ignore[attr-defined]

    monkeypatch.setattr(storage, "Client", FakeClient)
    train, test, _ = run_load(tmp_path, source="gs://no-such-bucket-xyz/data/wine.csv")
    assert asked == [("no-such-bucket-xyz", "data/wine.csv")]
    assert train.metadata["rows"] + test.metadata["rows"] == 30
    assert train.metadata["source"] == "gs://no-such-bucket-xyz/data/wine.csv"

    with pytest.raises(FileNotFoundError, match=r"gs://no-such-bucket-xyz/other\.csv"):
        run_load(tmp_path / "x", source="gs://no-such-bucket-xyz/other.csv")


# ---------------------------------------------------------------- bad inputs


def test_missing_column_names_file_and_column(tmp_path: Path, wine_csv: WineCsv) -> None:
    columns = [name for name in WINE_COLUMNS if name != "alcohol"]
    source = wine_csv(name="no-alcohol.csv", columns=columns, quality=lambda _: 6)
    with pytest.raises(ValueError, match=r"no-alcohol\.csv: missing column\(s\) \['alcohol'\]"):
        run_load(tmp_path, source=str(source))


def test_comma_separator(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(name="commas.csv", sep=",")
    with pytest.raises(ValueError, match=r"commas\.csv: line 1 is separated by ','.*uses ';'"):
        run_load(tmp_path, source=str(source))


def test_empty_file(tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: empty file"):
        run_load(tmp_path, source=str(source))


@pytest.mark.parametrize(
    ("encode", "problem"),
    [
        (lambda text: text.encode("utf-16"), r"byte 0xff at offset 0 .*looks like UTF-16"),
        (lambda text: text.encode("utf-16-le"), r"holds NUL bytes .*looks like UTF-16"),
        (lambda text: b"\x89PNG\r\n\x1a\n" + text.encode(), r"byte 0x89 at offset 0"),
    ],
)
def test_item16_binary_or_utf16_source_names_file_and_encoding(
    tmp_path: Path, wine_csv: WineCsv, encode: Any, problem: str
) -> None:
    good = wine_csv(rows=20)
    source = tmp_path / "encoded.csv"
    source.write_bytes(encode(good.read_text(encoding="utf-8")))
    with pytest.raises(ValueError, match=re.escape(str(source)) + ": .*" + problem):
        run_load(tmp_path, source=str(source))


def test_header_only(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(name="header.csv", rows=0)
    with pytest.raises(ValueError, match=r"header\.csv: empty file; the header has no data rows"):
        run_load(tmp_path, source=str(source))


def test_non_numeric_value_names_line_and_column(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(name="text.csv", rows=20)
    lines = source.read_text().splitlines()
    fields = lines[5].split(";")
    fields[3] = "sweet"  # residual sugar, data row 5 on line 6
    lines[5] = ";".join(fields)
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError,
        match=r"text\.csv: line 6 \(data row 5\), column 'residual sugar': "
        r"non-numeric value 'sweet'",
    ):
        run_load(tmp_path, source=str(source))


def test_empty_value_is_non_numeric(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(name="hole.csv", rows=20)
    lines = source.read_text().splitlines()
    fields = lines[2].split(";")
    fields[-1] = ""
    lines[2] = ";".join(fields)
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 3 \(data row 2\), column 'quality': non-numeric"):
        run_load(tmp_path, source=str(source))


def test_wrong_field_count(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(name="short.csv", rows=20)
    lines = source.read_text().splitlines()
    lines[4] = ";".join(lines[4].split(";")[:-2])
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"short\.csv: line 5 has 10 fields, expected 12"):
        run_load(tmp_path, source=str(source))


@pytest.mark.parametrize(
    ("threshold", "only"), [(10, "negative"), (3, "positive")], ids=["none-good", "all-good"]
)
def test_one_class_after_threshold(
    tmp_path: Path, wine_csv: WineCsv, threshold: int, only: str
) -> None:
    source = wine_csv(name="oneclass.csv", rows=30)
    with pytest.raises(
        ValueError,
        match=rf"oneclass\.csv: quality_threshold={threshold} leaves one class: all 30 rows are "
        rf"{only}",
    ):
        run_load(tmp_path, source=str(source), quality_threshold=threshold)


def test_missing_file_and_bad_scheme(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv: no such file"):
        run_load(tmp_path, source=str(tmp_path / "nowhere.csv"))
    with pytest.raises(ValueError, match=r"unsupported source scheme 's3'"):
        run_load(tmp_path, source="s3://bucket/wine.csv")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_test_fraction(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(ValueError, match=rf"test_fraction={fraction}"):
        run_load(tmp_path, test_fraction=fraction)


def test_nothing_half_written_on_failure(tmp_path: Path, wine_csv: WineCsv) -> None:
    source = wine_csv(name="oneclass.csv", rows=30)
    with pytest.raises(ValueError):
        run_load(tmp_path, source=str(source), quality_threshold=10)
    out = tmp_path / "out"
    assert not (out / "train_data").exists()
    assert not (out / "test_data").exists()
    assert not list(out.glob("*.tmp"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You may be attemping:RuntimeWarning")
def test_local_run(kfp_local: Path, wine_csv: WineCsv) -> None:
    """The component runs on kfp.local's SubprocessRunner with nothing installed at run time."""
    source = wine_csv(rows=60)
    task = load_wine_data(source=str(source), test_fraction=0.5)
    train = task.outputs["train_data"]
    test = task.outputs["test_data"]
    assert train.metadata["rows"] == 30 and test.metadata["rows"] == 30
    assert Path(train.path).is_file()
    assert "energy_kwh" in task.outputs["kpi_co2"].metadata
