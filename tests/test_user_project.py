"""The kit used from a user's own project: its own ``components``/``pipelines`` packages beside
ours, and placeholders wired so that job, task and region reach the step on Vertex AI too.

(No ``from __future__ import annotations``: kfp reads the pipeline functions' annotations.)
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from carbon_kfp.kfp import tracking_args, untracked_tasks

USER_PIPELINE = """
from kfp import compiler, dsl
from kfp.dsl import Metrics, Output

from components import MINE  # the user's own package, not the kit's
from pipelines.helpers import NAME
from carbon_kfp.components import carbon_report, load_wine_data, train_wine_model
from carbon_kfp.kfp import tracking_args


@dsl.component(packages_to_install=[], install_kfp_package=False)
def my_step(
    kpi_co2: Output[Metrics],
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> None:
    from carbon_kfp.kfp import track

    with track(kpi_co2, pipeline_job=pipeline_job, pipeline_task=pipeline_task,
               cloud_location=cloud_location):
        sum(range(1000))


@dsl.pipeline(name=NAME)
def user_pipeline(cloud_location: str = "europe-west4", forget: bool = False):
    load = load_wine_data(**tracking_args(cloud_location=cloud_location))
    train = train_wine_model(train_data=load.outputs["train_data"], **tracking_args())
    mine = my_step(**tracking_args(cloud_location=cloud_location))
    forgotten = my_step()  # no tracking_args: the check below names it
    carbon_report(kpi_co2_1=train.outputs["kpi_co2"], kpi_co2_2=mine.outputs["kpi_co2"],
                  pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)


assert MINE == "user's own"
compiler.Compiler().compile(user_pipeline, "user.yaml")
print("compiled")
"""


def make_user_project(root: Path) -> Path:
    """A project with its own top-level ``components`` and ``pipelines`` packages."""
    (root / "components").mkdir(parents=True)
    (root / "components" / "__init__.py").write_text('MINE = "user\'s own"\n')
    (root / "pipelines").mkdir()
    (root / "pipelines" / "__init__.py").write_text("")
    (root / "pipelines" / "helpers.py").write_text('NAME = "user-pipeline"\n')
    (root / "user_pipeline.py").write_text(textwrap.dedent(USER_PIPELINE))
    return root


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_user_packages_named_components_and_pipelines_do_not_collide(tmp_path: Path) -> None:
    project = make_user_project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(project)  # the user's project only; the kit comes from the install
    done = subprocess.run(
        [sys.executable, "user_pipeline.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "compiled"

    spec = yaml.safe_load((project / "user.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    for name in ("load-wine-data", "train-wine-model", "my-step"):
        given = tasks[name]["inputs"]["parameters"]
        assert given["pipeline_job"]["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}"
        assert given["pipeline_task"]["runtimeValue"]["constant"] == "{{$.pipeline_task_name}}"
    # the region is a pipeline parameter passed as a task argument, so Vertex fills it too
    region = tasks["my-step"]["inputs"]["parameters"]["cloud_location"]
    assert region == {"componentInputParameter": "cloud_location"}
    assert untracked_tasks(spec) == ["my-step-2: pipeline_job", "my-step-2: pipeline_task"]


def test_tracking_args_are_the_placeholders_vertex_substitutes() -> None:
    assert tracking_args() == {
        "pipeline_job": "{{$.pipeline_job_name}}",
        "pipeline_task": "{{$.pipeline_task_name}}",
    }
    located = tracking_args(cloud_location="{{$.pipeline_google_cloud_location}}")
    assert located["cloud_location"] == "{{$.pipeline_google_cloud_location}}"
