"""Fixtures shared by every test suite (`tests/`, `components/*/tests`, `pipelines/tests`).

``hermetic_session`` (automatic, once per session) gives the session a fresh temporary directory:
``TMPDIR`` points there, so ``tempfile``, pytest's ``tmp_path`` and the node-owner locks of
:mod:`carbon_kfp.distributed` (in ``tempfile.gettempdir()``) are the session's own, in this
process and in every subprocess it starts. Variables that steer a tracker from outside (every
``CARBON_KFP_*``, launcher rank and job ids) are unset for the session; the harness's own
(:data:`HARNESS_VARIABLES`) stay. So a tracker elsewhere on the machine, or a shell that exported
``SLURM_JOB_ID``, cannot change what a test measures.

``kfp_local`` initialises ``kfp.local`` once per session with ``SubprocessRunner(use_venv=False)``:
components run in subprocesses of this interpreter and install nothing (DESIGN §4).
``wine_csv`` writes small, generated wine-quality files (:mod:`tests.wine_data`).
``tests/`` has its own ``kfp_local`` (re-initialised per test) in ``tests/conftest.py``.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.wine_data import REPO_ROOT, WineCsv, write_wine_csv


@dataclass(frozen=True)
class HermeticSession:
    """The session's own temporary directory, and the one it replaced."""

    tmpdir: Path
    outer_tmpdir: Path


# Settings of the test harness itself (.ci/run sets them), not of any tracker: kept.
HARNESS_VARIABLES = ("CARBON_KFP_CONTAINER_TESTS", "CARBON_KFP_LOCAL_IMAGE")


def _steering_variables() -> list[str]:
    from carbon_kfp import distributed

    launcher = (
        *distributed.LOCAL_RANK_VARS,
        *distributed.NODE_RANK_VARS,
        *distributed.WORLD_SIZE_VARS,
        *distributed.JOB_ID_VARS,
        "RANK",
        "LOCAL_WORLD_SIZE",
    )
    return [
        name
        for name in os.environ
        if (name.startswith("CARBON_KFP_") and name not in HARNESS_VARIABLES) or name in launcher
    ]


@pytest.fixture(scope="session", autouse=True)
def hermetic_session() -> Iterator[HermeticSession]:
    """A fresh ``TMPDIR`` (temp files, lock files) and no steering variables, for the session."""
    outer = Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="carbon-kfp-tests-", dir=outer))
    saved = {name: os.environ.get(name) for name in ["TMPDIR", *_steering_variables()]}
    for name in saved:
        os.environ.pop(name, None)
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    try:
        yield HermeticSession(root, outer)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        tempfile.tempdir = None
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def wine_csv(tmp_path: Path) -> WineCsv:
    """``wine_csv(name="wine.csv", **write_wine_csv_options) -> Path`` inside ``tmp_path``."""

    def make(name: str = "wine.csv", **options: object) -> Path:
        return write_wine_csv(tmp_path / name, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def kfp_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``kfp.local`` on ``SubprocessRunner(use_venv=False)``, set up once; yields the root."""
    import kfp.local

    root = tmp_path_factory.mktemp("kfp-local")
    old = os.environ.get("PYTHONPATH")
    # Step subprocesses import carbon_kfp from this checkout even when it is not pip-installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), old]))
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    yield root
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
