"""Padding and initialisation of the Fashion-MNIST CNN, compared on held-out training images.

The article named the layers of its CNN but not their padding or initialisation. This script
trains the network of :mod:`carbon_kfp.fashion.model` with each combination of ``padding``
(``valid``, Keras's default / ``same``) and ReLU initialisation (``glorot_uniform``, Keras's
default / ``he_normal``) for ``--epochs`` on ``--train`` images, and scores it on ``--validate``
*other training images*: the test files are never read, so the choice it supports is not fitted
to the test set. One line per combination: accuracy per seed, and the mean.

Usage:
    python benchmarks/fashion_choices.py --fashion-data DIR [--seeds 11,12,13,14,15,16]
        [--train 10000] [--validate 10000] [--epochs 1] [--no-sha256]

Runtime: 6-9 s per fit on the 2-core reference machine (CPU PyTorch); 24 fits, 3 minutes by default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

try:
    from carbon_kfp.fashion import data
    from carbon_kfp.fashion import model as cnn
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from carbon_kfp.fashion import data
    from carbon_kfp.fashion import model as cnn

#: (padding, ReLU initialiser) in the order printed; the last is the kit's default.
CHOICES: tuple[tuple[str, str], ...] = (
    ("valid", "glorot_uniform"),
    ("same", "glorot_uniform"),
    ("valid", "he_normal"),
    ("same", "he_normal"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fashion-data", required=True, help="data_uri of the four files")
    parser.add_argument("--seeds", default="11,12,13,14,15,16", help="comma-separated seeds")
    parser.add_argument("--train", type=int, default=10000, help="training images per fit")
    parser.add_argument("--validate", type=int, default=10000, help="held-out training images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--no-sha256", action="store_true", help="other IDX data under the canonical names"
    )
    args = parser.parse_args(argv)
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers")
    if args.train < 1 or args.validate < 1 or args.epochs < 1:
        parser.error("need --train, --validate and --epochs of at least 1")
    if args.train + args.validate > 60000:
        parser.error(
            f"--train {args.train} + --validate {args.validate}: the training split holds 60000"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keras = cnn.import_keras()
    check = not args.no_sha256
    folder, shown = data.resolve_data_dir(args.fashion_data, check_sha256=check)
    images, labels = data.load_split(folder, "train", shown=shown, check_sha256=check)
    print(
        f"{args.epochs} epoch(s) on {args.train} training images, accuracy on {args.validate} "
        f"other training images; Keras {keras.__version__} ({keras.backend.backend()})"
    )
    seeds = " ".join(f"{seed:>6}" for seed in args.seeds)
    print(f"{'padding':<8} {'ReLU init':<15} {seeds}   mean")
    for padding, initializer in CHOICES:
        scores = []
        started = time.perf_counter()
        for seed in args.seeds:
            order = cnn.select_training(labels, seed=seed)
            fit, held = order[: args.train], order[args.train : args.train + args.validate]
            keras.utils.set_random_seed(seed)
            network = cnn.build_model(keras, padding=padding, relu_initializer=initializer)
            network.fit(
                cnn.to_inputs(images[fit]),
                labels[fit],
                epochs=args.epochs,
                batch_size=64,
                verbose=0,
            )
            probabilities = network.predict(cnn.to_inputs(images[held]), batch_size=1000, verbose=0)
            scores.append(cnn.score(probabilities, labels[held])[0])
        per_seed = " ".join(f"{score:6.3f}" for score in scores)
        print(
            f"{padding:<8} {initializer:<15} {per_seed}  {statistics.fmean(scores):.3f}"
            f"   ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
