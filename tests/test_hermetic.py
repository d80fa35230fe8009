"""The test session is hermetic (issue 10, item 19): see ``hermetic_session`` in conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from carbon_kfp.distributed import elect_node_owner, lock_path
from conftest import HermeticSession

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
    assert not any(name.startswith("CARBON_KFP_") for name in os.environ)
