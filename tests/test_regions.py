"""Greener-region advisor: ``carbon_kfp.regions`` and ``carbon-kfp regions``, checked against
the packaged tables read independently here."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_kfp import ConfigError, cli
from carbon_kfp.regions import offered_regions, rank_regions

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "carbon_kfp" / "data"
GOOGLE_PUE_2024 = 1.09  # data/compiled/cloud_pue_reference.csv, Google fleet 2024


def gcp_2024_intensity() -> dict[str, float]:
    with open(DATA / "google-region-carbon" / "2024.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    column = next(name for name in rows[0] if "intensity" in name)
    return {row["Google Cloud Region"]: float(row[column]) for row in rows if row[column]}


def offered(offering: str) -> set[str]:
    if offering == "vertex-pipelines":  # the list carbon-kfp submit checks regions against
        with open(DATA / "vertex-ai" / "pipelines_regions.csv", encoding="utf-8") as file:
            return {row["region"] for row in csv.DictReader(file)}
    with open(DATA / "compiled" / "accelerator_regions.csv", newline="", encoding="utf-8") as file:
        return {
            row["region"]
            for row in csv.DictReader(file)
            if row["provider"] == "gcp" and row["offering"] == offering
        }


def test_one_kwh_on_gcp_2024_matches_the_packaged_tables() -> None:
    intensity = gcp_2024_intensity()
    candidates = {r: g for r, g in intensity.items() if r in offered("vertex-pipelines")}
    best = min(candidates, key=lambda r: (candidates[r], r))
    ranking = rank_regions(1.0, provider="gcp", year=2024, run_region="us-central1")
    assert ranking.regions[0].region == best
    assert {r.region for r in ranking.regions} == set(candidates)
    assert ranking.baseline is not None and ranking.baseline.region == "us-central1"
    for entry in ranking.regions:
        assert entry.emissions_kg == pytest.approx(GOOGLE_PUE_2024 * intensity[entry.region] / 1000)
        assert entry.factor == pytest.approx(intensity[entry.region] / intensity["us-central1"])
        assert entry.intensity_year == 2024
    emissions = [entry.emissions_kg for entry in ranking.regions]
    assert emissions == sorted(emissions)


def test_cli_prints_the_same_ranking_with_year_and_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    intensity = gcp_2024_intensity()
    candidates = sorted((g, r) for r, g in intensity.items() if r in offered("vertex-pipelines"))
    argv = ["regions", "--energy-kwh", "1", "--year", "2024", "--top", "3", "--region"]
    assert cli.main([*argv, "us-central1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "vs us-central1" in lines[0]
    rows = [line.split() for line in lines[1:4]]
    for (g, region), row in zip(candidates[:3], rows, strict=True):
        assert row[1] == region
        assert float(row[-1].rstrip("x")) == pytest.approx(g / intensity["us-central1"], rel=2e-3)
    assert "data year 2024" in lines[-1] and "gcp-region" in lines[-1]
    assert len(lines) == 5


def test_unknown_year_lists_the_available_years(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["regions", "--energy-kwh", "1", "--year", "2031"]) == 2
    stderr = capsys.readouterr().err
    assert "year=2031" in stderr
    assert "available years: 2019, 2020, 2021, 2022, 2023, 2024" in stderr
    with pytest.raises(ConfigError, match="undated"):
        rank_regions(1.0, provider="aws", year=2024)


def test_accelerator_and_service_filters_use_the_packaged_list() -> None:
    ranking = rank_regions(1.0, accelerator="nvidia-tesla-t4")
    assert {r.region for r in ranking.regions} == offered("nvidia-tesla-t4") & offered(
        "vertex-pipelines"
    )
    with pytest.raises(ConfigError, match=r"nvidia-tesla-t5.*nvidia-tesla-t4"):
        offered_regions("gcp", "nvidia-tesla-t5")
    everywhere = rank_regions(1.0, service=None)
    assert len(everywhere.regions) == len(gcp_2024_intensity())
    assert everywhere.candidates == "every gcp region of the intensity table"


def test_the_run_region_is_ranked_even_outside_the_lists_and_greener_ones_are_below_it() -> None:
    ranking = rank_regions(2.0, run_region="asia-south1")  # high intensity, India
    assert ranking.baseline is not None and ranking.baseline.region == "asia-south1"
    below = ranking.regions[: ranking.regions.index(ranking.baseline)]
    assert len(below) >= 5
    assert all(r.emissions_kg < ranking.baseline.emissions_kg and r.factor < 1 for r in below)


def test_aws_ranks_every_legacy_region() -> None:
    ranking = rank_regions(1.0, provider="aws")
    assert len(ranking.regions) > 10
    assert all(r.intensity_year is None and r.pue > 1 for r in ranking.regions)
    assert "every aws region" in ranking.candidates


@pytest.mark.parametrize("energy", [-1.0, float("nan"), float("inf")])
def test_bad_energy_is_refused(energy: float) -> None:
    with pytest.raises(ConfigError, match="energy"):
        rank_regions(energy)


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_output_to_a_closed_pipe_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write is EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "carbon_kfp.cli", "regions", "--energy-kwh", "1"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0
    assert done.stderr == ""
