"""Import boundaries (DESIGN §1): the core and the exec wrapper load no kfp; carbon_kfp.kfp does.

Each check runs in a fresh interpreter, so modules imported by other tests do not hide a leak.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("kfp", "google", "pandas", "numpy", "requests", "codecarbon", "carbontracker")


def loaded_after(statement: str) -> set[str]:
    """Top-level packages that ``statement`` adds to ``sys.modules`` in a new interpreter.

    Interpreter start-up already imports some (a ``*-nspkg.pth`` file imports ``google``), so
    what a bare interpreter holds is subtracted.
    """
    listing = "import sys\nprint(' '.join({m.split('.')[0] for m in sys.modules}))"
    return _modules(f"{statement}\n{listing}") - _modules(listing)


def _modules(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import carbon_kfp",
        "import carbon_kfp.executor, carbon_kfp.report, carbon_kfp.compare",
        "import argparse, carbon_kfp.executor as exe\n"
        "exe.configure_exec_parser(argparse.ArgumentParser())",
    ],
)
def test_core_imports_no_kfp_or_heavy_packages(statement: str) -> None:
    assert not loaded_after(statement) & set(HEAVY)


def test_carbon_kfp_kfp_imports_kfp_and_backs_the_lazy_alias() -> None:
    assert "kfp" in loaded_after(
        "import carbon_kfp, carbon_kfp.kfp\nassert carbon_kfp.track is carbon_kfp.kfp.track"
    )
