"""The ``carbon-kfp`` command line, run as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_kfp import cli
from carbon_kfp.cli.options import parse_pairs
from carbon_kfp.errors import ConfigError
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


def test_parse_pairs() -> None:
    assert parse_pairs(["a=1", "b=x=y", "c="], "--param") == {"a": "1", "b": "x=y", "c": ""}
    for bad in (["novalue"], ["=1"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError, match="--param"):
            parse_pairs(bad, "--param")
    with pytest.raises(ConfigError, match="--label 'team' given twice"):
        parse_pairs(["team=a", "team=b"], "--label", "KEY")


@pytest.mark.slow  # a fresh interpreter in a subprocess
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


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_unknown_pipeline_parameter_exits_2(tmp_path: Path) -> None:
    done = carbon_kfp("run", "wine", "--param", "n_estimatorz=3", "--output", str(tmp_path))
    assert done.returncode == 2
    assert "n_estimatorz" in done.stderr and "n_estimators" in done.stderr


def test_run_checks_the_pipeline_modules_parameter_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "wine", "--param", "deploy_target=gke", "--output", str(tmp_path / "runs")]
    assert cli.main(argv) == 2
    assert "deploy_target='gke': expected one of 'none', 'vertex'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


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


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_no_command_prints_help_with_exit_codes() -> None:
    done = carbon_kfp()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: carbon-kfp")
    assert "exit codes:" in done.stdout and "2  bad usage" in done.stdout


def test_every_subcommand_has_a_description_option_help_and_an_example() -> None:
    import argparse

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {
        "run",
        "compile",
        "submit",
        "results",
        "exec",
        "report",
        "regions",
    }
    for name, sub in subparsers.choices.items():
        assert sub.description, name
        examples, exit_codes = (sub.epilog or "").split("\n\n")  # cli/help.py's layout
        assert examples.startswith(f"examples:\n  carbon-kfp {name} "), name
        assert exit_codes.startswith("exit codes:"), name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"


def test_descriptions_wrap_to_the_terminal_and_epilogs_stay_as_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    monkeypatch.setenv("COLUMNS", "80")
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("carbon-kfp", parser), *subparsers.choices.items()]:
        text = sub.format_help()
        before, _, after = text.partition("\nexamples:\n")
        assert after, name
        assert max(len(line) for line in before.splitlines()) <= 80, name
        assert (sub.epilog or "") in text, name


@pytest.mark.slow
def test_report_reads_a_run_directory_and_an_emissions_csv(tmp_path: Path) -> None:
    from carbon_kfp import EmissionsTracker

    run_dir = tmp_path / "wine-quality-1"
    for task in ("train", "evaluate"):
        tracker = EmissionsTracker(
            output_dir=tmp_path,
            carbon_intensity_g_per_kwh=300.0,
            scope="process",
            pipeline_job="wine-quality-1",
            pipeline_task=task,
        )
        with tracker:
            sum(range(100_000))
        (run_dir / task).mkdir(parents=True)
        assert tracker.final_record is not None
        (run_dir / task / "kpi_co2").write_text(tracker.final_record.to_json())

    from_dir = carbon_kfp("report", str(run_dir), "--html", str(tmp_path / "r.html"))
    assert from_dir.returncode == 0, from_dir.stderr
    assert "Total (2 steps)" in from_dir.stdout
    assert (tmp_path / "r.html").read_text().count("<svg") >= 4  # CO2, energy, 2 timelines

    from_csv = carbon_kfp("report", str(tmp_path / "emissions.csv"))
    assert from_csv.returncode == 0, from_csv.stderr
    rows = [line.split()[0] for line in from_csv.stdout.splitlines()[2:4]]
    assert rows == ["train", "evaluate"] and "Total (2 steps)" in from_csv.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    done = carbon_kfp("report", str(empty))
    assert done.returncode == 2 and "no records found" in done.stderr
