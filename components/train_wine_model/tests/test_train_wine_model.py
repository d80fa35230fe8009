"""train_wine_model: the saved model, its metadata and the kpi_co2 record."""

import json
from pathlib import Path

import joblib
import pandas as pd
import pytest
from kfp import dsl

from carbon_kfp.components.load_wine_data.component import load_wine_data
from carbon_kfp.components.train_wine_model.component import train_wine_model
from tests.component_calls import call_component
from tests.wine_data import WineCsv


@pytest.fixture
def train_data(tmp_path: Path, wine_csv: WineCsv) -> dsl.Dataset:
    _, out = call_component(load_wine_data, tmp_path / "load", source=str(wine_csv(rows=150)))
    return out["train_data"]


def run_train(
    tmp_path: Path, train: dsl.Dataset, **kwargs: object
) -> tuple[dsl.Model, dsl.Metrics]:
    _, out = call_component(train_wine_model, tmp_path / "train", train_data=train, **kwargs)
    return out["model"], out["kpi_co2"]


def test_writes_model_joblib_for_vertex_serving(tmp_path: Path, train_data: dsl.Dataset) -> None:
    model, _ = run_train(tmp_path, train_data, n_estimators=20, max_depth=4, seed=1, n_jobs=1)

    forest = joblib.load(Path(model.path) / "model.joblib")
    assert forest.n_estimators == 20 and forest.max_depth == 4
    assert sorted(Path(model.path).iterdir()) == [Path(model.path) / "model.joblib"]
    features = model.metadata["features"]
    assert len(features) == 11 and "quality" not in features and "label" not in features
    assert model.metadata["framework"] == "scikit-learn"
    assert model.metadata["framework_version"].count(".") >= 1
    assert model.metadata["train_rows"] == train_data.metadata["rows"]
    # Vertex's sklearn server calls predict() on lists of feature lists
    frame = pd.read_csv(train_data.path)
    assert set(forest.predict(frame[features].to_numpy()[:5].tolist())) <= {0, 1}


def test_kpi_co2_is_measured(tmp_path: Path, train_data: dsl.Dataset) -> None:
    _, kpi = run_train(tmp_path, train_data, n_estimators=10)
    for key in ("emissions_kg", "energy_kwh", "duration_s", "pue"):
        assert key in kpi.metadata
    record = json.loads(Path(kpi.path).read_text())
    assert isinstance(record, dict) and record


def test_same_seed_same_model(tmp_path: Path, train_data: dsl.Dataset) -> None:
    first, _ = run_train(tmp_path / "a", train_data, n_estimators=10, seed=5)
    second, _ = run_train(tmp_path / "b", train_data, n_estimators=10, seed=5)
    frame = pd.read_csv(train_data.path)
    features = first.metadata["features"]
    a = joblib.load(Path(first.path) / "model.joblib").predict_proba(frame[features].to_numpy())
    b = joblib.load(Path(second.path) / "model.joblib").predict_proba(frame[features].to_numpy())
    assert (a == b).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_estimators": 0}, "n_estimators=0"), ({"max_depth": -1}, "max_depth=-1")],
)
def test_bad_hyperparameters(
    tmp_path: Path, train_data: dsl.Dataset, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_train(tmp_path, train_data, **kwargs)


def test_rejects_data_without_label(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: no 'label' column"):
        run_train(tmp_path, dsl.Dataset(uri=str(bad)))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You may be attemping:RuntimeWarning")
def test_local_run(kfp_local: Path, wine_csv: WineCsv) -> None:
    """Load -> train on kfp.local (input artifacts need a pipeline around the tasks)."""

    @dsl.pipeline(name="train-wine-model-test")
    def train_only(source: str) -> dsl.Model:
        load = load_wine_data(source=source)
        return train_wine_model(train_data=load.outputs["train_data"], n_estimators=10).outputs[
            "model"
        ]

    model = train_only(source=str(wine_csv(rows=80))).output
    assert (Path(model.path) / "model.joblib").is_file()
    assert model.metadata["n_estimators"] == 10
