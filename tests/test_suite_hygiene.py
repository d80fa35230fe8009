"""The test suite itself (issue 10): hermetic sessions (item 19), a fast inner loop (item 21).

``hermetic_session`` is in the root ``conftest.py``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from carbon_kfp.distributed import elect_node_owner, lock_path
from conftest import HARNESS_VARIABLES, HermeticSession

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Imports that take seconds: a test module may use them only inside its (slow) tests.
HEAVY_AT_COLLECTION = ("keras", "tensorflow", "torch")

HOLD_LOCK = """
import sys
from carbon_kfp.distributed import elect_node_owner
role = elect_node_owner({}, group="shared-name")
print(role.is_owner, flush=True)
sys.stdin.read()  # hold the lock until the test closes stdin
"""


def test_item19_a_lock_held_outside_the_session_does_not_change_an_election(
    hermetic_session: HermeticSession,
) -> None:
    """A tracker elsewhere on the machine (another user's session, another test run) holding
    the node-owner lock of the same group in the machine's temp directory."""
    outside = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_LOCK)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "TMPDIR": str(hermetic_session.outer_tmpdir),
            "PYTHONPATH": os.pathsep.join(sys.path),
        },
    )
    try:
        assert outside.stdout is not None and outside.stdout.readline().strip() == "True"
        with elect_node_owner({}, group="shared-name") as role:
            assert role.is_owner, role.how
            assert lock_path("group-shared-name").parent == hermetic_session.tmpdir
    finally:
        outside.communicate(timeout=30)


def test_item19_temp_files_and_subprocesses_use_the_sessions_directory(
    hermetic_session: HermeticSession, tmp_path: Path
) -> None:
    assert Path(tempfile.gettempdir()) == hermetic_session.tmpdir
    assert hermetic_session.tmpdir in tmp_path.parents
    seen = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(seen.stdout.strip()) == hermetic_session.tmpdir
    steering = [n for n in os.environ if n.startswith("CARBON_KFP_") and n not in HARNESS_VARIABLES]
    assert steering == []


def _module_level_imports(path: Path) -> set[str]:
    """Top-level package names a module imports outside functions (``TYPE_CHECKING`` aside)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_item21_collection_imports_no_deep_learning_framework() -> None:
    """``pytest -m "not slow"`` still imports every test module; one that imports Keras at
    module level costs the inner loop seconds before any test runs."""
    modules = [
        path
        for pattern in ("tests/test_*.py", "components/*/tests/test_*.py", "pipelines/tests/*.py")
        for path in REPO_ROOT.glob(pattern)
    ]
    assert len(modules) > 20
    heavy = {
        str(path.relative_to(REPO_ROOT)): sorted(
            _module_level_imports(path) & set(HEAVY_AT_COLLECTION)
        )
        for path in modules
    }
    assert {path: names for path, names in heavy.items() if names} == {}
