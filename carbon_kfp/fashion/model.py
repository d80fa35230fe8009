"""The Fashion-MNIST CNN in Keras 3, backend-agnostic (PyTorch, JAX or TensorFlow).

The article's network: Conv 32 → MaxPool → Conv 64 → MaxPool → Flatten → Dense 128 → Dense 10
softmax, Adam at learning rate 0.001. The article applied the Dense 128 *before* Flatten, which
makes it a per-pixel 1×1 projection of the 64 channels to 128 (on a 5 × 5 grid) and leaves the
classifier a single Dense 10 over 3,200 inputs. Here Flatten comes first, the usual order: the
Dense 128 sees the whole image, and the head is two layers as the article meant.

The article named the layers, not their padding or initialisation. Two choices are made here:
``"same"`` padding (28 → 14 → 7, so Flatten gives 7 × 7 × 64 = 3,136 inputs instead of the 1,600
that unpadded 3 × 3 convolutions leave, and the edges of the garments stay in the picture) and He
initialisation for the ReLU layers (He et al., 2015: Glorot's, Keras's default, is derived for
symmetric activations and starts ReLU layers with too small a signal). Chosen on held-out
*training* images, never the test set: 1 epoch on 10,000 images, validated on 10,000 others,
seeds 11–16, mean accuracy 0.792 (neither), 0.823 (padding), 0.826 (He), 0.849 (both);
``benchmarks/fashion_choices.py`` repeats the comparison.

Keras reads its backend once, at import: :func:`import_keras` sets ``KERAS_BACKEND`` first when
it is unset (see there). numpy is imported here; Keras only by :func:`import_keras`.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from carbon_kfp.fashion.idx import IMAGE_SIDE, NUM_CLASSES

#: Class names in label order (Zalando Research's README).
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Backends tried, in order, when ``KERAS_BACKEND`` is unset.
BACKENDS: tuple[str, ...] = ("torch", "jax", "tensorflow")


def import_keras() -> Any:
    """Imports Keras with a backend that is installed.

    ``KERAS_BACKEND`` wins when set. Unset, the first of :data:`BACKENDS` whose package is
    installed is chosen (Keras's own default, TensorFlow, is often absent: the kit's GPU image
    carries PyTorch).

    Raises:
        ImportError: Keras is not installed, or no backend is (the message says what to install).
    """
    if not os.environ.get("KERAS_BACKEND"):
        installed = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
        if not installed:
            raise ImportError(
                "no Keras backend is installed; expected one of torch, jax, tensorflow "
                "(e.g. pip install torch), or set KERAS_BACKEND"
            )
        os.environ["KERAS_BACKEND"] = installed[0]
    import keras

    return keras


def build_model(
    keras: Any,
    *,
    conv1_filters: int = 32,
    conv2_filters: int = 64,
    dense_units: int = 128,
    learning_rate: float = 0.001,
    padding: str = "same",
    relu_initializer: str = "he_normal",
) -> Any:
    """The compiled CNN (sparse categorical cross-entropy, accuracy).

    The defaults are the kit's network (the module docstring says why); ``padding="valid"`` and
    ``relu_initializer="glorot_uniform"`` give Keras's defaults, which
    ``benchmarks/fashion_choices.py`` compares. The softmax layer keeps Glorot's initialisation.

    Args:
        keras: The module from :func:`import_keras`.
        conv1_filters: Filters of the first 3×3 convolution.
        conv2_filters: Filters of the second 3×3 convolution.
        dense_units: Units of the hidden Dense layer.
        learning_rate: Adam's learning rate.
        padding: Padding of both convolutions, ``"same"`` or ``"valid"``.
        relu_initializer: Keras initialiser name of the three ReLU layers' kernels.

    Raises:
        ValueError: a size below 1, a learning rate that is not a positive finite number, or a
            padding other than ``"same"`` / ``"valid"``.
    """
    for name, value in (
        ("conv1_filters", conv1_filters),
        ("conv2_filters", conv2_filters),
        ("dense_units", dense_units),
    ):
        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate={learning_rate}: expected a positive number")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding={padding!r}: expected 'same' or 'valid'")
    layers = keras.layers
    conv = {"activation": "relu", "padding": padding, "kernel_initializer": relu_initializer}
    model = keras.Sequential(
        [
            keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1)),
            layers.Conv2D(conv1_filters, 3, **conv),
            layers.MaxPooling2D(2),
            layers.Conv2D(conv2_filters, 3, **conv),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(dense_units, activation="relu", kernel_initializer=relu_initializer),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="fashion_cnn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def to_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 N × 28 × 28 images as float32 N × 28 × 28 × 1 in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def select_training(labels: np.ndarray, *, max_samples: int = 0, seed: int = 42) -> np.ndarray:
    """Indices of the training images, shuffled by ``seed``; the first ``max_samples`` when > 0.

    Shuffled so that Keras's ``validation_split`` (which takes the *last* share of the arrays)
    holds a random sample of every class.

    Raises:
        ValueError: ``max_samples`` below 0.
    """
    if max_samples < 0:
        raise ValueError(f"max_train_samples={max_samples}: expected 0 (all) or a positive count")
    order = np.random.default_rng(seed).permutation(labels.shape[0])
    return order[:max_samples] if max_samples else order


def score(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Accuracy, mean cross-entropy and the 10 × 10 confusion matrix of softmax outputs.

    Args:
        probabilities: N × 10 class probabilities.
        labels: N true labels, 0 to 9.

    Returns:
        ``(accuracy, loss, matrix)``: accuracy in [0, 1]; loss in nats, probabilities clipped
        at 1e-7 as Keras does; ``matrix[true, predicted]`` counts.

    Raises:
        ValueError: shapes that do not match, or no samples.
    """
    if probabilities.ndim != 2 or probabilities.shape != (labels.shape[0], NUM_CLASSES):
        raise ValueError(
            f"probabilities of shape {probabilities.shape}, expected ({labels.shape[0]}, "
            f"{NUM_CLASSES}) for {labels.shape[0]} labels"
        )
    if labels.shape[0] == 0:
        raise ValueError("no samples to score")
    truth = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    picked = np.clip(probabilities[np.arange(truth.shape[0]), truth], 1e-7, 1.0)
    accuracy = float(np.mean(predicted == truth))
    loss = float(-np.mean(np.log(picked)))
    return accuracy, loss, matrix
