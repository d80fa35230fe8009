"""The kit as a user installs it: the wheel in a fresh virtual environment outside the checkout.

Slow (it installs kfp, google-cloud and scikit-learn from the package index into a new
environment); pip's cache makes a second run quicker. No sys.path tricks: the child processes
run with no PYTHONPATH, in a directory outside this checkout.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, outside_env

pytestmark = pytest.mark.slow


def test_wheel_holds_the_kit_but_no_tests_or_data_for_benchmarks(built_wheel: Path) -> None:
    names = zipfile.ZipFile(built_wheel).namelist()
    assert "carbon_kfp/components/carbon_report/component.py" in names
    assert "carbon_kfp/components/load_wine_data/component.yaml" in names
    assert "carbon_kfp/pipelines/wine.py" in names
    assert "carbon_kfp/cli/submit.py" in names
    assert "carbon_kfp/data/vertex-ai/pipelines_regions.csv" in names
    for op in ("model_upload", "endpoint_create", "model_deploy"):
        assert f"carbon_kfp/pipelines/gcpc/{op}.yaml" in names
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
    assert "carbon_kfp/components/train_fashion_cnn/component.yaml" in names
    assert "carbon_kfp/fashion/idx.py" in names
    # the Fashion-MNIST files are downloaded or read from data_uri, never shipped
    assert not [n for n in names if "ubyte" in n or n.endswith((".gz", ".npz"))]


@pytest.fixture(scope="module")
def user_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its ``kfp,ml`` extras installed."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # outside_env(): without PYTHONPATH pip cannot take the checkout's egg-info for an installed
    # carbon-kfp and skip the wheel.
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"{built_wheel}[kfp,ml]"],
        env=outside_env(),
        check=True,
        capture_output=True,
        timeout=900,
    )
    return venv


def run_in(venv: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = outside_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory outside this checkout (``tmp_path`` may be inside it when TMPDIR is)."""
    if REPO_ROOT not in tmp_path.parents:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="carbon-kfp-user-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_installed_kit_runs_compiles_and_loads_yaml(user_venv: Path, outside: Path) -> None:
    tmp_path = outside
    assert REPO_ROOT not in tmp_path.parents
    python = str(user_venv / "bin" / "python")

    done = run_in(user_venv, tmp_path, "carbon-kfp", "run", "wine", "--param", "n_estimators=20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "train-wine-model" in done.stdout and "succeeded" in done.stdout

    done = run_in(user_venv, tmp_path, "carbon-kfp", "compile", "wine", "--output", "w.yaml")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w.yaml").is_file()

    from tests.test_user_project import make_user_project

    project = make_user_project(tmp_path / "project")
    done = run_in(user_venv, project, python, "user_pipeline.py")
    assert done.returncode == 0, done.stderr
    assert (project / "user.yaml").is_file()

    yaml_run = """
import json, pathlib
from importlib import resources
from kfp import components, dsl, local

path = resources.files("carbon_kfp.components") / "load_wine_data" / "component.yaml"
load = components.load_component_from_file(str(path))

@dsl.pipeline(name="from-yaml")
def from_yaml():
    load(pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
         pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER)

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root="root")
from_yaml()
(run,) = pathlib.Path("root").glob("from-yaml-*")
print(json.loads((run / "load-wine-data" / "kpi_co2").read_text())["pipeline_task"])
"""
    done = run_in(user_venv, tmp_path, python, "-c", yaml_run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "load-wine-data"
