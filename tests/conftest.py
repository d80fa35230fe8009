"""Shared fixtures for ``tests/``: ``kfp.local`` on ``SubprocessRunner(use_venv=False)``.

The pipeline root is one temporary directory for the session. ``kfp_local`` re-initialises
``kfp.local`` (a cheap global setting) for every test that uses it, so a test can turn caching on
without leaking it, and other suites' ``kfp.local.init`` calls cannot change what a test here runs
with. Step subprocesses import carbon_kfp from this checkout even when it is not pip-installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: ``kfp_local(enable_caching=False, cache_root=None) -> pipeline_root``
KfpLocal = Callable[..., Path]


@pytest.fixture
def fresh_warn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``warn_once`` de-duplicates per process; give the test an empty slate."""
    from carbon_kfp import errors

    monkeypatch.setattr(errors, "_seen", set())


@pytest.fixture(scope="session")
def kfp_pipeline_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's pipeline root; ``PYTHONPATH`` names this checkout while the session runs."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), old]))
    yield tmp_path_factory.mktemp("kfp-root")
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture
def kfp_local(kfp_pipeline_root: Path) -> KfpLocal:
    """Initialise ``kfp.local`` (caching off); call it again to change caching. Returns the root."""
    from kfp import local

    def init(*, enable_caching: bool = False, cache_root: Path | None = None) -> Path:
        caching = {"enable_caching": True, "cache_root": str(cache_root)} if enable_caching else {}
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(kfp_pipeline_root),
            **caching,  # kfp.local has caching from kfp 2.17 (tests.kfp_features)
        )
        return kfp_pipeline_root

    init()
    return init


def outside_env() -> dict[str, str]:
    """This process's environment without what points into the checkout or its venv.

    The session's ``PYTHONPATH`` (see ``kfp_pipeline_root``) names the checkout, whose
    ``carbon_kfp.egg-info`` would make a fresh venv's pip think carbon-kfp is already installed.
    """
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """carbon-kfp's wheel, built once per session from this checkout (as ``pip wheel`` does)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("carbon_kfp-*.whl")
    return wheel
