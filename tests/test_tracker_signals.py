"""How a tracker's run ends: SIGTERM, sys.exit, Ctrl-C, threads and forks (issue 10).

Real signals to real subprocesses. The handler only raises (carbon_kfp.sigterm): the record is
written by ordinary unwinding, ``interrupted``, exit 143, with the energy up to the signal.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from kfp.dsl import Metrics

from carbon_kfp import EmissionsTracker
from carbon_kfp.errors import CarbonKfpWarning
from carbon_kfp.kfp import track
from carbon_kfp.sigterm import SIGTERM_EXIT_CODE

FAST: dict[str, Any] = {
    "measure_interval_s": 0.05,
    "carbon_intensity_g_per_kwh": 100.0,
    "scope": "process",
}
PREAMBLE = """
import os, signal, sys, threading, time
from carbon_kfp import EmissionsTracker
FAST = dict(measure_interval_s=0.05, carbon_intensity_g_per_kwh=100.0, scope="process")
"""


def spawn(code: str) -> subprocess.Popen[str]:
    """Run ``PREAMBLE + code`` in a fresh interpreter, stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def wait_ready(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        pytest.fail(f"child not ready: {line!r} {child.communicate()[1]}")


def finish(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = child.communicate(timeout=30)
    return child.returncode, out, err


def rows(directory: Path) -> list[dict[str, str]]:
    path = directory / "emissions.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


# -- item 18: SIGTERM only raises; the record is written by unwinding -----------------------------


def test_item18_sigterm_unwinds_the_with_block_and_records_interrupted(tmp_path: Path) -> None:
    child = spawn(
        f"""
        try:
            with EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST):
                print("ready", flush=True)
                time.sleep(30)
        finally:
            print("unwound", flush=True)
        """
    )
    wait_ready(child)
    threading.Event().wait(0.3)  # let the run use some energy before the signal
    child.send_signal(signal.SIGTERM)
    code, out, err = finish(child)
    assert code == SIGTERM_EXIT_CODE == 143, err
    assert out.strip() == "unwound"  # the block unwound: `finally` ran
    (row,) = rows(tmp_path)
    assert row["status"] == "interrupted"
    assert float(row["duration"]) >= 0.3 and float(row["cpu_energy"]) > 0


def test_item18_sigterm_without_with_records_at_exit(tmp_path: Path) -> None:
    child = spawn(
        f"""
        tracker = EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST).start()
        print("ready", flush=True)
        time.sleep(30)
        """
    )
    wait_ready(child)
    threading.Event().wait(0.3)
    child.send_signal(signal.SIGTERM)
    code, _, err = finish(child)
    assert code == 143, err
    (row,) = rows(tmp_path)
    assert row["status"] == "interrupted"
    assert float(row["duration"]) >= 0.3 and float(row["cpu_energy"]) > 0


def test_item18_sigterm_inside_a_sensor_read_waits_for_the_read(tmp_path: Path) -> None:
    """SIGTERM arriving while the main thread is inside a sensor (its lock held, mid-flush) is
    held until the flush is written, then unwinds: both rows are whole, nothing deadlocks."""
    child = spawn(
        f"""
        tracker = EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST).start()
        scope = tracker._sensors[0]._scope
        real = scope.cpu_time_s
        def cpu_time_then_sigterm():
            value = real()
            scope.cpu_time_s = real
            os.kill(os.getpid(), signal.SIGTERM)  # delivered while the sensor lock is held
            for _ in range(1000):
                pass
            print("read finished", flush=True)
            return value
        time.sleep(0.2)
        scope.cpu_time_s = cpu_time_then_sigterm
        tracker.flush()
        print("flush returned", flush=True)
        time.sleep(30)
        """
    )
    code, out, err = finish(child)
    assert code == 143, err
    assert out.split("\n")[0] == "read finished"
    assert "flush returned" not in out  # the held SIGTERM acted as the flush ended
    assert [row["status"] for row in rows(tmp_path)] == ["partial", "interrupted"]


# -- item 1: handlers restored from any thread, the user's handler chained -------------------------


def test_item1_stop_from_a_thread_restores_the_users_handler(tmp_path: Path) -> None:
    child = spawn(
        f"""
        def checkpoint(signum, frame):
            print("checkpoint", flush=True)
            sys.exit(7)
        signal.signal(signal.SIGTERM, checkpoint)
        tracker = EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST).start()
        stopper = threading.Thread(target=tracker.stop)
        stopper.start()
        stopper.join()
        print("ready", flush=True)
        time.sleep(30)
        """
    )
    wait_ready(child)
    child.send_signal(signal.SIGTERM)  # a later preemption: the user's handler must run
    code, out, err = finish(child)
    assert (code, out.strip()) == (7, "checkpoint"), err
    assert [row["status"] for row in rows(tmp_path)] == ["completed"]


def test_item1_sigterm_while_running_chains_to_the_users_handler(tmp_path: Path) -> None:
    child = spawn(
        f"""
        asked = []
        def checkpoint(signum, frame):
            asked.append(signum)
            print("checkpoint", flush=True)
        signal.signal(signal.SIGTERM, checkpoint)
        with EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST):
            print("ready", flush=True)
            while not asked:
                time.sleep(0.01)
        print("restored", signal.getsignal(signal.SIGTERM) is checkpoint, flush=True)
        """
    )
    wait_ready(child)
    child.send_signal(signal.SIGTERM)
    code, out, err = finish(child)
    assert code == 0, err
    assert out.split() == ["checkpoint", "restored", "True"]
    # The user's handler let the work finish early; the run was still cut short by SIGTERM.
    assert [row["status"] for row in rows(tmp_path)] == ["interrupted"]


def test_item1_stop_on_the_main_thread_puts_the_previous_handler_back() -> None:
    def users_handler(signum: int, frame: object) -> None:
        raise AssertionError("not called here")

    previous = signal.signal(signal.SIGTERM, users_handler)
    try:
        tracker = EmissionsTracker(**FAST).start()
        assert signal.getsignal(signal.SIGTERM) is not users_handler
        tracker.stop()
        assert signal.getsignal(signal.SIGTERM) is users_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- item 10: a tracker started on another thread ------------------------------------------------


def test_item10_worker_thread_tracker_warns_that_sigterm_would_lose_its_record(
    fresh_warn_once: None,
) -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    started: list[EmissionsTracker] = []
    with pytest.warns(CarbonKfpWarning, match="main thread"):
        worker = threading.Thread(target=lambda: started.append(EmissionsTracker(**FAST).start()))
        worker.start()
        worker.join()
    record = started[0].stop()
    assert any("SIGTERM would end the process without this record" in w for w in record.warnings)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # nothing installed


def test_item10_worker_thread_tracker_records_through_a_main_thread_handler(
    tmp_path: Path,
) -> None:
    """The documented remedy: a main-thread handler that exits; the record is written at exit."""
    child = spawn(
        f"""
        import warnings
        warnings.simplefilter("error")  # no warning here: a SIGTERM does not lose the record
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        def measure():
            EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST).start()
        worker = threading.Thread(target=measure)
        worker.start()
        worker.join()
        print("ready", flush=True)
        time.sleep(30)
        """
    )
    wait_ready(child)
    threading.Event().wait(0.2)
    child.send_signal(signal.SIGTERM)
    code, _, err = finish(child)
    assert code == 143, err
    assert "Warning" not in err
    assert [row["status"] for row in rows(tmp_path)] == ["interrupted"]


# -- item 11: a forked child never writes its parent's records ----------------------------------


def test_item11_forked_child_exiting_normally_writes_no_record_of_its_parent(
    tmp_path: Path,
) -> None:
    child = spawn(
        f"""
        tracker = EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST).start()
        pid = os.fork()
        if pid == 0:  # the forked child: flushes, then exits normally (atexit runs)
            tracker.flush()
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status), flush=True)
        tracker.stop()
        """
    )
    code, out, err = finish(child)
    assert code == 0, err
    assert out.split() == ["child", "exit", "0"]
    statuses = [row["status"] for row in rows(tmp_path)]
    assert statuses == ["completed"]  # not also the child's "partial" and "interrupted"


def test_item11_sigterm_to_a_forked_child_takes_the_default_action(tmp_path: Path) -> None:
    child = spawn(
        f"""
        tracker = EmissionsTracker(output_dir={str(tmp_path)!r}, **FAST).start()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(ready_w, b"x")  # a signal before this point would be lost by CPython
            time.sleep(30)
            os._exit(0)
        os.read(ready_r, 1)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
        tracker.stop()
        """
    )
    code, out, err = finish(child)
    assert code == 0, err
    assert out.strip() == str(-signal.SIGTERM)  # killed by the signal, not unwound as a tracker
    assert [row["status"] for row in rows(tmp_path)] == ["completed"]


# -- item 13: one rule for sys.exit / Ctrl-C, in `with` and in track() ----------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (SystemExit(0), "interrupted"),
        (KeyboardInterrupt(), "interrupted"),
        (ValueError("bad batch"), "failed"),
    ],
)
def test_item13_with_block_and_track_record_the_same_status(
    tmp_path: Path, raised: BaseException, expected: str
) -> None:
    with pytest.raises(type(raised)), EmissionsTracker(**FAST) as tracker:
        raise raised
    kpi = Metrics(name="kpi_co2", uri=str(tmp_path / "kpi_co2"))
    with pytest.raises(type(raised)), track(kpi, **FAST) as tracked:
        raise raised
    assert tracker.final_record is not None and tracked.final_record is not None
    assert tracker.final_record.status == tracked.final_record.status == expected


def test_item13_task_follows_the_same_rule(tmp_path: Path) -> None:
    tracker = EmissionsTracker(output_dir=tmp_path, **FAST).start()
    with pytest.raises(KeyboardInterrupt), tracker.task("fit"):
        raise KeyboardInterrupt
    tracker.stop()
    assert [(row["task_name"], row["status"]) for row in rows(tmp_path)] == [
        ("fit", "interrupted"),
        ("", "completed"),
    ]


def test_item1_nested_trackers_stopped_out_of_order_still_unwind_on_sigterm(
    tmp_path: Path,
) -> None:
    """The outer tracker stops first (its handler is not the installed one then); a SIGTERM in
    the inner one's run still unwinds it, and afterwards the default action is back."""
    child = spawn(
        f"""
        outer = EmissionsTracker(output_dir={str(tmp_path)!r}, project_name="outer", **FAST)
        inner = EmissionsTracker(output_dir={str(tmp_path)!r}, project_name="inner", **FAST)
        outer.start()
        inner.start()
        outer.stop()
        try:
            print("ready", flush=True)
            time.sleep(30)
        finally:
            inner.stop()
            print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
        """
    )
    wait_ready(child)
    child.send_signal(signal.SIGTERM)
    code, out, err = finish(child)
    assert (code, out.strip()) == (143, "True"), err
    assert [(row["project_name"], row["status"]) for row in rows(tmp_path)] == [
        ("outer", "completed"),
        ("inner", "interrupted"),
    ]
