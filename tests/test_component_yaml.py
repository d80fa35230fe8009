"""Each component's checked-in ``component.yaml``: current, loadable and runnable on kfp.local.

(No ``from __future__ import annotations``: kfp reads the pipeline functions' annotations.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from carbon_kfp.components import COMPONENTS
from tests.conftest import REPO_ROOT, KfpLocal
from tests.wine_data import write_wine_csv

COMPONENTS_DIR = REPO_ROOT / "components"


def _without_sdk_version(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("sdkVersion:")]


def test_every_component_folder_is_registered_and_packaged() -> None:
    folders = {p.parent.name for p in COMPONENTS_DIR.glob("*/component.py")}
    assert folders == set(COMPONENTS)
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for name in folders:
        assert f'"carbon_kfp.components.{name}"' in pyproject, name
    core = REPO_ROOT / "carbon_kfp"
    for init in core.rglob("__init__.py"):
        package = ".".join(init.parent.relative_to(REPO_ROOT).parts)
        assert f'"{package}"' in pyproject, f"{package} is missing from pyproject's packages"


def test_checked_in_yaml_is_current(tmp_path: Path) -> None:
    """What ``make compile`` would write now (default images) equals what is checked in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_KFP_")}
    subprocess.run(
        [sys.executable, "-m", "carbon_kfp.components", "--output", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
    )
    for name in COMPONENTS:
        fresh = (tmp_path / name / "component.yaml").read_text(encoding="utf-8")
        checked_in = (COMPONENTS_DIR / name / "component.yaml").read_text(encoding="utf-8")
        assert _without_sdk_version(fresh) == _without_sdk_version(checked_in), (
            f"components/{name}/component.yaml is stale: run `make compile`"
        )


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_yaml_names_the_compile_time_image(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_KFP_")}
    env["CARBON_KFP_CPU_IMAGE"] = "registry.example/team/train@sha256:" + "a" * 64
    subprocess.run(
        [sys.executable, "-m", "carbon_kfp.components", "--output", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
    )
    spec = yaml.safe_load((tmp_path / "train_wine_model" / "component.yaml").read_text())
    (executor,) = spec["deploymentSpec"]["executors"].values()
    assert executor["container"]["image"] == env["CARBON_KFP_CPU_IMAGE"]


def test_with_base_image_rebases_one_component_only() -> None:
    from carbon_kfp.components import train_wine_model, with_base_image
    from carbon_kfp.errors import ConfigError

    rebased = with_base_image(train_wine_model, "registry.example/mine:1")
    assert rebased.component_spec.implementation.container.image == "registry.example/mine:1"
    assert train_wine_model.component_spec.implementation.container.image != (
        "registry.example/mine:1"
    )
    assert rebased.component_spec.inputs.keys() == train_wine_model.component_spec.inputs.keys()
    with pytest.raises(ConfigError, match="not a lightweight Python component"):
        with_base_image("train", "registry.example/mine:1")
    with pytest.raises(ConfigError, match="image=''"):
        with_base_image(train_wine_model, " ")


@pytest.mark.slow
def test_loaded_yaml_runs_on_kfp_local(kfp_local: KfpLocal, tmp_path: Path) -> None:
    """``load_component_from_file`` on the shipped YAML, run as a task: kpi_co2 is written."""
    from kfp import components, dsl

    root = kfp_local()
    load = components.load_component_from_file(
        str(COMPONENTS_DIR / "load_wine_data" / "component.yaml")
    )
    source = write_wine_csv(tmp_path / "wine.csv", rows=60)

    @dsl.pipeline(name="yaml-user")
    def user_pipeline() -> None:
        load(
            source=str(source),
            pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
        )

    user_pipeline()
    (run_dir,) = root.glob("yaml-user-*")
    record = json.loads((run_dir / "load-wine-data" / "kpi_co2").read_text())
    assert record["pipeline_job"] == run_dir.name
    assert record["pipeline_task"] == "load-wine-data"
    assert record["energy_kwh"] > 0
