"""benchmarks/fashion_choices.py on small synthetic files: every choice is fitted, the test split
is never read."""

import subprocess
import sys
from pathlib import Path

import pytest

from carbon_kfp.fashion.data import SPLITS
from tests.fashion_data import write_idx_folder
from tests.test_gpu_sensor import REPO, child_env

SCRIPT = str(REPO / "benchmarks" / "fashion_choices.py")


@pytest.mark.slow  # a subprocess importing keras, 4 small fits
def test_compares_the_four_choices_without_the_test_files(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path / "idx", train=120, test=10)
    for name in SPLITS["test"]:
        (folder / f"{name}.gz").unlink()  # the choice must not depend on the test split
    done = subprocess.run(
        [
            *(sys.executable, SCRIPT, "--fashion-data", str(folder), "--no-sha256"),
            *("--seeds", "3", "--train", "80", "--validate", "40"),
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert [row[:2] for row in rows] == [
        ["valid", "glorot_uniform"],
        ["same", "glorot_uniform"],
        ["valid", "he_normal"],
        ["same", "he_normal"],
    ]
    for row in rows:
        accuracy, mean = float(row[2]), float(row[3])
        assert accuracy == mean  # one seed
        assert accuracy * 40 == pytest.approx(round(accuracy * 40), abs=0.02)  # k of 40 images


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "1,x"], "--seeds '1,x': expected comma-separated integers"),
        (["--train", "50000", "--validate", "20000"], "the training split holds 60000"),
        (["--epochs", "0"], "need --train, --validate and --epochs of at least 1"),
    ],
)
def test_bad_arguments_are_named(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, SCRIPT, "--fashion-data", "unused", *argv],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and message in done.stderr
