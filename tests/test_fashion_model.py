"""The Fashion-MNIST CNN: architecture, scoring (pure), sampling, and the backend choice."""

import os
import subprocess
import sys

import numpy as np
import pytest

from carbon_kfp.fashion import model as cnn
from tests.conftest import REPO_ROOT

os.environ.setdefault("KERAS_BACKEND", "torch")


def test_score_counts_a_known_confusion() -> None:
    labels = np.array([0, 0, 1, 9], dtype=np.uint8)
    probabilities = np.full((4, 10), 0.01, dtype=np.float32)
    for row, predicted in enumerate([0, 1, 1, 9]):
        probabilities[row, predicted] = 0.91
    accuracy, loss, matrix = cnn.score(probabilities, labels)
    assert accuracy == 0.75
    expected = np.zeros((10, 10), np.int64)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[9, 9] = 1
    assert np.array_equal(matrix, expected)
    assert loss == pytest.approx(-(3 * np.log(0.91) + np.log(0.01)) / 4, rel=1e-6)


def test_score_clips_zero_probabilities_like_keras() -> None:
    probabilities = np.zeros((1, 10), np.float32)
    probabilities[0, 3] = 1.0
    _, loss, _ = cnn.score(probabilities, np.array([5], np.uint8))
    assert loss == pytest.approx(-np.log(1e-7))


def test_score_rejects_shapes_that_do_not_match() -> None:
    with pytest.raises(ValueError, match=r"shape \(3, 10\), expected \(2, 10\)"):
        cnn.score(np.zeros((3, 10)), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="no samples"):
        cnn.score(np.zeros((0, 10)), np.zeros(0, np.uint8))


def test_training_selection_is_a_seeded_shuffle() -> None:
    labels = np.arange(100) % 10
    everything = cnn.select_training(labels, seed=1)
    assert sorted(everything.tolist()) == list(range(100))
    assert everything.tolist() != list(range(100))
    assert np.array_equal(cnn.select_training(labels, max_samples=10, seed=1), everything[:10])
    with pytest.raises(ValueError, match="max_train_samples=-1"):
        cnn.select_training(labels, max_samples=-1)


def test_inputs_are_scaled_to_unit_range() -> None:
    images = np.array([[[0, 255] * 14] * 28], dtype=np.uint8)
    inputs = cnn.to_inputs(images)
    assert inputs.shape == (1, 28, 28, 1) and inputs.dtype == np.float32
    assert inputs.min() == 0.0 and inputs.max() == 1.0


@pytest.mark.slow  # imports Keras and torch (seconds)
def test_architecture_is_the_articles_with_flatten_first_padding_and_he_init() -> None:
    keras = cnn.import_keras()
    network = cnn.build_model(keras)
    kinds = [type(layer).__name__ for layer in network.layers]
    assert kinds == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert [network.layers[i].filters for i in (0, 2)] == [32, 64]
    assert network.layers[5].units == 128 and network.layers[6].units == 10
    assert network.layers[4].output.shape[-1] == 7 * 7 * 64  # "same" padding: 28 -> 14 -> 7
    assert [network.layers[i].padding for i in (0, 2)] == ["same", "same"]
    initialisers = [type(network.layers[i].kernel_initializer).__name__ for i in (0, 2, 5, 6)]
    assert initialisers == ["HeNormal", "HeNormal", "HeNormal", "GlorotUniform"]
    assert network.optimizer.learning_rate.numpy() == pytest.approx(0.001)
    assert network.count_params() == 320 + 18_496 + 401_536 + 1_290
    keras_defaults = cnn.build_model(keras, padding="valid", relu_initializer="glorot_uniform")
    assert keras_defaults.layers[4].output.shape[-1] == 5 * 5 * 64  # 28 -> 26 -> 13 -> 11 -> 5
    assert keras_defaults.count_params() == 225_034


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"conv1_filters": 0}, "conv1_filters=0: expected at least 1"),
        ({"dense_units": -3}, "dense_units=-3"),
        ({"learning_rate": 0.0}, "learning_rate=0.0: expected a positive number"),
        ({"learning_rate": float("nan")}, "learning_rate=nan"),
        ({"padding": "full"}, "padding='full': expected 'same' or 'valid'"),
    ],
)
def test_bad_sizes_are_named(option: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cnn.build_model(None, **option)  # type: ignore[arg-type]  # checked before Keras is used


@pytest.mark.slow  # imports Keras and torch in a subprocess
def test_backend_is_chosen_from_what_is_installed_when_unset() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    code = (
        "from carbon_kfp.fashion.model import import_keras; print(import_keras().backend.backend())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "torch"  # torch is what this environment carries
