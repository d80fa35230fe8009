"""load_fashion_mnist: the split artifacts, their metadata, and errors that keep kpi_co2."""

import json
from pathlib import Path

import numpy as np
import pytest
from kfp import dsl

from carbon_kfp.components.load_fashion_mnist.component import load_fashion_mnist
from carbon_kfp.fashion.data import read_split
from tests.component_calls import call_component
from tests.fashion_data import REAL_DATA, synthetic_split, write_idx_folder


def run_load(tmp_path: Path, **kwargs: object) -> tuple[dsl.Dataset, dsl.Dataset, dsl.Metrics]:
    _, out = call_component(load_fashion_mnist, tmp_path / "load", **kwargs)
    return out["train_data"], out["test_data"], out["kpi_co2"]


def test_writes_both_splits_and_measures(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path / "idx", train=50, test=20, gz=False)
    train, test, kpi = run_load(tmp_path, data_uri=str(folder), check_sha256=False)
    images, labels = read_split(Path(train.path))
    assert np.array_equal(labels, synthetic_split(50)[1]) and images.shape == (50, 28, 28)
    assert read_split(Path(test.path))[0].shape == (20, 28, 28)
    assert train.metadata["images"] == 50 and test.metadata["images"] == 20
    assert train.metadata["classes"] == list(range(10)) and train.metadata["source"] == str(folder)
    record = json.loads(Path(kpi.path).read_text())
    assert record["status"] == "completed" and kpi.metadata["energy_kwh"] > 0


def test_checksum_failure_fails_the_step_but_keeps_its_record(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path / "idx", train=20, test=10)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: SHA-256"):
        run_load(tmp_path, data_uri=str(folder))
    assert json.loads((tmp_path / "load" / "kpi_co2").read_text())["status"] == "failed"
    assert not (tmp_path / "load" / "train_data").exists()


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"the canonical files are not in {REAL_DATA}")
def test_published_files(tmp_path: Path) -> None:
    train, test, _ = run_load(tmp_path, data_uri=str(REAL_DATA))
    assert (train.metadata["images"], test.metadata["images"]) == (60000, 10000)
