"""The ``carbon-kfp`` command line, run as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_kfp.errors import ConfigError
from carbon_kfp.kfp.params import parse_params
from tests.kfp_features import needs_full_kfp_local

REPO = Path(__file__).resolve().parents[1]


def carbon_kfp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbon_kfp.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_parse_params() -> None:
    assert parse_params(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in (["novalue"], ["=1"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError, match="--param"):
            parse_params(bad)


def test_regions_lists_gcp_regions_with_intensity() -> None:
    done = carbon_kfp("regions", "--year", "2024")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[1] == "europe-west4" for line in lines)
    assert all("gCO2/kWh" in line and "(2024)" in line for line in lines)


def test_bad_configuration_exits_2_with_the_value_named(tmp_path: Path) -> None:
    done = carbon_kfp(
        "exec",
        "--executor-output",
        str(tmp_path / "out.json"),
        "--metrics-path",
        str(tmp_path / "m"),
        "--country-iso-code",
        "XYZ",
        "--",
        "true",
    )
    assert done.returncode == 2
    assert "XYZ" in done.stderr


def test_unknown_pipeline_parameter_exits_2(tmp_path: Path) -> None:
    done = carbon_kfp("run", "wine", "--param", "n_estimatorz=3", "--output", str(tmp_path))
    assert done.returncode == 2
    assert "n_estimatorz" in done.stderr and "n_estimators" in done.stderr


@pytest.mark.slow
@needs_full_kfp_local
def test_run_wine_prints_co2_per_step(tmp_path: Path) -> None:
    done = carbon_kfp(
        "run", "wine", "--param", "n_estimators=50", "--output", str(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr + done.stdout
    table = done.stdout
    for step in ("load-wine-data", "train-wine-model", "evaluate-wine-model", "carbon-report"):
        assert step in table
    assert "carbon-report.html" in table
    assert list(tmp_path.glob("*/carbon-report.html"))
