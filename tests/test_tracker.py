"""EmissionsTracker end to end with real sensors, real subprocesses, real files and signals."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from carbon_kfp import ConfigError, EmissionsTracker, track_emissions
from carbon_kfp import tracker as tracker_module
from carbon_kfp.errors import CarbonKfpWarning

FAST = {"measure_interval_s": 0.05, "carbon_intensity_g_per_kwh": 400.0, "scope": "process"}
FAST_NO_LOCATION = {"measure_interval_s": 0.05}
FAST_NO_LOCATION_INTENSITY = {"carbon_intensity_g_per_kwh": 400.0, "scope": "process"}


def run_python(code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"country_iso_code": "XYZ"}, "XYZ"),
        ({"cloud_provider": "gcp", "cloud_region": "europe-west99"}, "europe-west99"),
        ({"pue": 0.5}, "0.5"),
        ({"pue": -1.0}, "-1"),
        ({"pue": math.nan}, "nan"),
        ({"measure_interval_s": 0}, "measure_interval_s=0"),
        ({"measure_interval_s": math.inf}, "measure_interval_s=inf"),
        ({"scope": "galaxy"}, "galaxy"),
        ({"epochs": 0}, "epochs=0"),
        ({"location": "gps"}, "gps"),
    ],
)
def test_bad_configuration_fails_at_construction_naming_the_value(kwargs, named: str) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        EmissionsTracker(**kwargs)
    assert isinstance(caught.value, ConfigError)


def test_region_error_lists_close_valid_regions() -> None:
    with pytest.raises(ValueError, match="europe-west") as caught:
        EmissionsTracker(cloud_provider="gcp", cloud_region="europe-west99")
    assert "europe-west4" in str(caught.value) or "europe-west9" in str(caught.value)


def test_context_manager_writes_one_completed_row(tmp_path: Path) -> None:
    with EmissionsTracker(output_dir=tmp_path, **FAST) as tracker:
        sum(i * i for i in range(200_000))
    record = tracker.stop()  # idempotent: the same record again
    assert record is tracker.final_record and record.status == "completed"
    assert record.duration_s > 0 and record.cpu_energy_kwh > 0 and record.ram_energy_kwh > 0
    assert record.emissions_kg == pytest.approx(record.energy_kwh * 0.4)
    assert record.cpu_method in {"rapl", "process-model", "tdp-model"}
    rows = list(csv.DictReader((tmp_path / "emissions.csv").open()))
    assert [row["status"] for row in rows] == ["completed"]
    assert float(rows[0]["emissions"]) == pytest.approx(record.emissions_kg)


def test_tasks_flush_and_failed_block(tmp_path: Path) -> None:
    tracker = EmissionsTracker(output_dir=tmp_path, **FAST).start()
    with tracker.task("prepare") as prepare:
        time.sleep(0.1)
    with pytest.raises(ZeroDivisionError), tracker.task("fit"):
        time.sleep(0.1)
        _ = 1 / 0
    partial = tracker.flush()
    final = tracker.stop()
    assert prepare.record is not None and prepare.record.task_name == "prepare"
    assert [r.status for r in tracker.task_records] == ["completed", "failed"]
    assert partial.status == "partial" and final.status == "completed"
    assert final.duration_s >= partial.duration_s >= 0.2
    task_energy = sum(r.energy_kwh for r in tracker.task_records)
    assert task_energy <= final.energy_kwh * 1.0001
    rows = list(csv.DictReader((tmp_path / "emissions.csv").open()))
    assert [(r["task_name"], r["status"]) for r in rows] == [
        ("prepare", "completed"),
        ("fit", "failed"),
        ("", "partial"),
        ("", "completed"),
    ]


def test_task_before_start_and_double_start_are_errors() -> None:
    tracker = EmissionsTracker(**FAST)
    with pytest.raises(RuntimeError, match="start the tracker first"), tracker.task("x"):
        pass
    tracker.start()
    with pytest.raises(RuntimeError, match="already started"):
        tracker.start()
    tracker.stop()


def test_decorator_keeps_return_value_and_records_failures(tmp_path: Path) -> None:
    @track_emissions(output_dir=tmp_path, **FAST)
    def train(n: int) -> int:
        return sum(range(n))

    @track_emissions(output_dir=tmp_path, **FAST)
    def broken() -> None:
        raise KeyError("boom")

    assert train(1000) == sum(range(1000))
    assert train.last_record.status == "completed"  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        broken()
    assert broken.last_record.status == "failed"  # type: ignore[attr-defined]


BUSY_CHILD = (
    "import time\nend = time.process_time() + {seconds}\n"
    "while time.process_time() < end:\n    pass\n"
)


def _busy_cpu_energy_of_child_j(busy_s: float) -> float:
    """CPU energy above idle of a run whose child is busy ``busy_s`` CPU-seconds. Units: J.

    The idle part (vCPUs × idle watts × wall time) grows with the wall time, which a loaded
    machine stretches; the part above it follows CPU time only."""
    with EmissionsTracker(**FAST) as tracker:
        subprocess.run([sys.executable, "-c", BUSY_CHILD.format(seconds=busy_s)], check=True)
    record = tracker.final_record
    assert record is not None
    if record.cpu_method.startswith("rapl"):
        pytest.skip("RAPL measures the host's energy; this checks the CPU-time model")
    idle_w = record.cpu_count * tracker._sensors[0].power_model.min_w_per_vcpu  # type: ignore[attr-defined]
    return record.cpu_energy_kwh * 3.6e6 - idle_w * record.duration_s


@pytest.mark.slow
def test_twice_the_busy_time_of_a_real_subprocess_is_twice_the_cpu_energy() -> None:
    one = _busy_cpu_energy_of_child_j(0.6)
    two = _busy_cpu_energy_of_child_j(1.2)
    assert two / one == pytest.approx(2.0, rel=0.15)


def test_interpreter_exit_without_stop_flushes(tmp_path: Path) -> None:
    done = run_python(
        f"""
        from carbon_kfp import EmissionsTracker
        EmissionsTracker(output_dir={str(tmp_path)!r}, measure_interval_s=0.05,
                         carbon_intensity_g_per_kwh=100.0, scope="process").start()
        """
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "emissions.csv").open()))
    assert [row["status"] for row in rows] == ["interrupted"]


HEAVY = ("kfp", "pandas", "numpy", "requests", "google", "pynvml", "keras", "torch")
LIST_HEAVY = (
    "import json, sys; print(json.dumps(sorted(m for m in sys.modules "
    f"if m.split('.')[0] in {HEAVY!r})))"
)


def test_import_carbon_kfp_loads_no_heavy_packages() -> None:
    # Some environments pre-import packages from .pth files (google-cloud namespace packages):
    # compare against a bare interpreter of the same environment.
    bare = run_python(LIST_HEAVY)
    done = run_python(
        """
        from carbon_kfp import EmissionsTracker
        t = EmissionsTracker(carbon_intensity_g_per_kwh=100.0, scope="process").start()
        t.stop()
        """
        + LIST_HEAVY
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) - set(json.loads(bare.stdout)) == set()


ON_USE = ("logging", "difflib", "tempfile", "platform", "datetime", "uuid", "json", "psutil")
LIST_ON_USE = f"import sys; print(' '.join(m for m in {ON_USE!r} if m in sys.modules))"


def test_modules_that_load_on_use_stay_unloaded_until_used() -> None:
    """``import carbon_kfp`` leaves out what only warnings, error hints, JSON or temp files need;
    a quiet run on Linux needs neither logging nor psutil."""
    bare = set(run_python(LIST_ON_USE).stdout.split())
    imported = run_python("import carbon_kfp\n" + LIST_ON_USE)
    assert imported.returncode == 0, imported.stderr
    assert set(imported.stdout.split()) - bare == set()
    ran = run_python(
        """
        import warnings
        warnings.simplefilter("error")
        from carbon_kfp import EmissionsTracker
        t = EmissionsTracker(country_iso_code="USA", scope="process").start()
        t.stop()
        """
        + LIST_ON_USE
    )
    assert ran.returncode == 0, ran.stderr
    if sys.platform == "linux":
        assert set(ran.stdout.split()) - bare <= {"tempfile"}  # the node-owner lock's directory


def test_run_ids_are_random_uuid4s() -> None:
    ids = {tracker_module._new_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    for run_id in ids:
        parsed = uuid.UUID(run_id)
        assert (str(parsed), parsed.version, parsed.variant) == (run_id, 4, uuid.RFC_4122)


def test_timestamps_are_iso8601_utc_with_milliseconds() -> None:
    before = datetime.now(timezone.utc)
    stamp = tracker_module._utc_now()
    after = datetime.now(timezone.utc)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)
    assert (
        before.replace(microsecond=before.microsecond // 1000 * 1000)
        <= (datetime.fromisoformat(stamp))
        <= after
    )


def test_cloud_location_sets_the_region_unless_a_region_is_configured() -> None:
    located = EmissionsTracker(cloud_location="europe-west4", scope="process").context.intensity
    assert (located.source, located.cloud_provider, located.cloud_region) == (
        "gcp-region",
        "gcp",
        "europe-west4",
    )
    explicit = EmissionsTracker(
        cloud_location="europe-west4", cloud_provider="gcp", cloud_region="us-east1"
    ).context.intensity
    assert explicit.cloud_region == "us-east1"


def test_unknown_platform_region_falls_back_with_a_recorded_warning() -> None:
    tracker = EmissionsTracker(
        cloud_location="mars-north1", country_iso_code="FRA", scope="process", **FAST_NO_LOCATION
    )
    assert tracker.context.intensity.source == "country"
    record = tracker.start().stop()
    assert any("mars-north1" in warning for warning in record.warnings)


def test_unknown_detected_region_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_ML_REGION", "mars-north1")
    tracker = EmissionsTracker(location="auto", carbon_intensity_g_per_kwh=123.0, scope="process")
    assert tracker.context.intensity.g_per_kwh == 123.0


def test_configured_unknown_region_is_still_an_error() -> None:
    with pytest.raises(ConfigError, match="mars-north1"):
        EmissionsTracker(cloud_provider="gcp", cloud_region="mars-north1")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"budget_kg": 1.0}, "needs epochs"),
        ({"epochs": 3, "monitor_epochs": 5}, "monitor_epochs=5 > epochs=3"),
    ],
)
def test_budget_that_could_never_fire_is_rejected(kwargs, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        EmissionsTracker(carbon_intensity_g_per_kwh=100.0, **kwargs)


def test_failed_construction_releases_the_node_owner_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carbon_kfp.distributed import elect_node_owner

    monkeypatch.setenv("CARBON_KFP_NODE_GROUP", f"release-test-{os.getpid()}")
    with pytest.raises(ConfigError):
        EmissionsTracker(carbon_intensity_g_per_kwh=100.0, scope="contianer")
    code = "from carbon_kfp.distributed import elect_node_owner; print(elect_node_owner().is_owner)"
    other = run_python(code)
    assert other.stdout.strip() == "True", other.stderr
    elect_node_owner().release()


def test_non_owner_says_so_in_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbon_kfp.distributed import elect_node_owner

    monkeypatch.setenv("CARBON_KFP_NODE_GROUP", f"non-owner-test-{os.getpid()}")
    code = """
        from carbon_kfp import EmissionsTracker
        t = EmissionsTracker(carbon_intensity_g_per_kwh=100.0, scope="process").start()
        record = t.stop()
        print(record.node_owner, record.gpu_method, *record.warnings, sep="\\n")
        """
    with elect_node_owner() as owner:  # this process, say, is the first of the group
        assert owner.is_owner
        other = run_python(code)
    lines = other.stdout.splitlines()
    assert lines[:2] == ["False", "none"], other.stderr
    assert any(line.startswith("not the node owner (lock ") for line in lines[2:])


def test_warnings_as_errors_never_break_stop(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = run_python(
        f"""
        import warnings
        warnings.simplefilter("error")
        from carbon_kfp import EmissionsTracker
        t = EmissionsTracker(output_dir={str(blocker / "sub")!r}, carbon_intensity_g_per_kwh=1.0,
                             scope="process", measure_interval_s=0.05).start()
        record = t.stop()
        print(record.status, t.running)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["completed", "False"]


def test_intensity_and_pue_warnings_reach_the_record(fresh_warn_once: None) -> None:
    """A legacy AWS figure, and a year neither table has, are in record.warnings (and so in the
    kpi_co2 JSON), not only in the log."""
    with pytest.warns(CarbonKfpWarning):
        tracker = EmissionsTracker(cloud_provider="aws", cloud_region="us-east-1", scope="process")
    record = tracker.start().stop()
    assert any("CodeCarbon's legacy table" in w for w in record.warnings)
    assert "CodeCarbon's legacy table" in record.to_json()

    with pytest.warns(CarbonKfpWarning):
        tracker = EmissionsTracker(
            cloud_provider="gcp", cloud_region="us-central1", intensity_year=2100, scope="process"
        )
    record = tracker.start().stop()
    assert record.intensity_year is not None and record.intensity_year < 2100
    year_notes = [w for w in record.warnings if "no figure for 2100" in w]
    assert len(year_notes) == 2  # grid intensity and PUE, by the one year rule
    assert any("grid intensity" in w for w in year_notes) and any("PUE" in w for w in year_notes)


# -- issue 10 ----------------------------------------------------------------------------------


def foreign_procfs(root: Path) -> Path:
    """A procfs without this process in it (another pid namespace's /proc, as a container that
    mounts the host's sees it): host-wide files, but no ``<our pid>`` directory."""
    root.mkdir()
    for name in ("stat", "meminfo", "cpuinfo"):
        (root / name).write_bytes(Path("/proc", name).read_bytes())
    return root


def test_item2_sensors_that_cannot_start_degrade_to_none(
    tmp_path: Path, fresh_warn_once: None
) -> None:
    with pytest.warns(CarbonKfpWarning, match="cannot start"):
        tracker = EmissionsTracker(proc_root=foreign_procfs(tmp_path / "proc"), **FAST)
    record = tracker.start().stop()
    assert (record.cpu_method, record.ram_method) == ("none", "none")
    assert record.cpu_energy_kwh == record.ram_energy_kwh == 0.0
    assert any("cpu and ram sensors cannot start" in w for w in record.warnings)


def test_item2_a_sensor_whose_start_raises_is_replaced_by_none(
    monkeypatch: pytest.MonkeyPatch, fresh_warn_once: None
) -> None:
    from carbon_kfp.sensors.ram import RamSensor

    def broken_start(self: RamSensor) -> None:
        raise PermissionError(13, "Permission denied", "/proc/self/statm")

    monkeypatch.setattr(RamSensor, "start", broken_start)
    tracker = EmissionsTracker(**FAST)
    with pytest.warns(CarbonKfpWarning, match="ram sensor cannot start"):
        tracker.start()
    record = tracker.stop()
    assert record.ram_method == "none" and record.cpu_energy_kwh > 0
    assert any("Permission denied" in w for w in record.warnings)


def test_item12_flush_after_stop_writes_nothing(tmp_path: Path) -> None:
    tracker = EmissionsTracker(output_dir=tmp_path, **FAST).start()
    final = tracker.stop()
    time.sleep(0.1)
    assert tracker.flush() is final
    assert tracker.flush_preview() is final
    rows = list(csv.DictReader((tmp_path / "emissions.csv").open()))
    assert [row["status"] for row in rows] == ["completed"]


@pytest.mark.parametrize("interval_s", [1e-9, 0.01, tracker_module.MIN_MEASURE_INTERVAL_S / 2])
def test_item14_measure_interval_below_the_floor_is_an_error_naming_it(interval_s: float) -> None:
    with pytest.raises(ConfigError) as caught:
        EmissionsTracker(measure_interval_s=interval_s, carbon_intensity_g_per_kwh=1.0)
    message = str(caught.value)
    assert f"measure_interval_s={interval_s!r}" in message
    assert f">= {tracker_module.MIN_MEASURE_INTERVAL_S:g}" in message


def test_item14_the_floor_itself_is_accepted() -> None:
    floor_s = tracker_module.MIN_MEASURE_INTERVAL_S
    tracker = EmissionsTracker(measure_interval_s=floor_s, **FAST_NO_LOCATION_INTENSITY)
    assert tracker.start().stop().status == "completed"


def test_machine_type_is_not_asked_where_no_gcp_platform_was_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Off GCP, ``location="auto"`` waits for the metadata server once, not a second time for
    the machine type; where the platform is known, the machine type is asked."""
    import socket

    from carbon_kfp import location

    with socket.socket() as sock:  # a loopback port where nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv(location.METADATA_HOST_ENV_VAR, f"127.0.0.1:{closed}")
    for name in location.REGION_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    asked: list[float] = []
    detect = location.detect_machine_type

    def counted(*, timeout_s: float = 1.0) -> str | None:
        asked.append(timeout_s)
        return detect(timeout_s=timeout_s)

    monkeypatch.setattr(location, "detect_machine_type", counted)
    EmissionsTracker(location="auto", carbon_intensity_g_per_kwh=100.0, scope="process")
    assert asked == []
    monkeypatch.setenv("CLOUD_ML_REGION", "europe-west4")
    tracker = EmissionsTracker(location="auto", scope="process")
    assert asked == [1.0]
    assert tracker.context.machine_type == ""  # the (closed) metadata server did not answer
