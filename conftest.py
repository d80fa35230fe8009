"""Fixtures shared by the component and pipeline tests (`components/*/tests`, `pipelines/tests`).

``kfp_local`` initialises ``kfp.local`` once per session with ``SubprocessRunner(use_venv=False)``:
components run in subprocesses of this interpreter and install nothing (DESIGN §4).
``wine_csv`` writes small, generated wine-quality files (:mod:`tests.wine_data`).
``tests/`` has its own ``kfp_local`` (re-initialised per test) in ``tests/conftest.py``.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wine_data import REPO_ROOT, WineCsv, write_wine_csv


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
