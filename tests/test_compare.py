"""``carbon_kfp.compare``: configuration errors up front, failures contained, real backends."""

import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import pytest
from kfp.dsl import Metrics

from carbon_kfp import EmissionsTracker
from carbon_kfp.compare import alongside, build_backends
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.kfp import track

pytestmark = pytest.mark.usefixtures("fresh_warn_once")


@pytest.fixture
def tracker() -> EmissionsTracker:
    return EmissionsTracker(carbon_intensity_g_per_kwh=100.0, measure_interval_s=0.1)


def test_unknown_backend_lists_close_names(tracker: EmissionsTracker) -> None:
    with pytest.raises(ConfigError, match="closest valid: carbontracker"):
        build_backends(["carbon_tracker"], tracker.context)


@pytest.mark.parametrize(
    ("name", "module"), [("codecarbon", "codecarbon"), ("carbontracker", "carbontracker")]
)
def test_missing_package_is_a_config_error(
    tracker: EmissionsTracker, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes "import <module>" raise ImportError
    with pytest.raises(ConfigError, match=f"pip install {module}"):
        build_backends([name], tracker.context)


class Fake:
    def __init__(self, name: str, result: float | None = None, fail: str = "") -> None:
        self.name, self.result, self.fail, self.stopped = name, result, fail, False

    def start(self) -> None:
        if self.fail == "start":
            raise RuntimeError("no hardware")

    def stop(self) -> float | None:
        self.stopped = True
        if self.fail == "stop":
            raise SystemExit(70)  # what CarbonTracker does on errors it does not ignore
        return self.result


def test_failing_backends_never_stop_the_block(tracker: EmissionsTracker) -> None:
    good = Fake("good", 1e-6)
    backends = [good, Fake("nostart", 1.0, "start"), Fake("nostop", 1.0, "stop"), Fake("none")]
    tracker.start()
    with pytest.warns(CarbonKfpWarning) as caught, alongside(tracker, backends):
        pass
    record = tracker.stop()
    assert dict(record.comparisons_kg) == {"good": 1e-6}
    assert record.to_metrics()["good_emissions_kg"] == 1e-6
    assert not backends[1].stopped  # a backend that did not start is not stopped
    messages = " ".join(str(w.message) for w in caught)
    assert "nostart failed to start" in messages and "nostop failed to stop" in messages


def test_block_exception_propagates_after_backends_stop(tracker: EmissionsTracker) -> None:
    backend = Fake("good", 2e-6)
    tracker.start()
    with pytest.raises(KeyError), alongside(tracker, [backend]):
        raise KeyError("x")
    assert backend.stopped and dict(tracker.stop().comparisons_kg) == {"good": 2e-6}


@pytest.mark.slow
@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("codecarbon", "carbontracker")),
    reason="codecarbon and carbontracker are optional extras",
)
def test_real_backends_measure_the_same_block(tmp_path: Path) -> None:
    kpi = Metrics(name="kpi_co2", uri=str(tmp_path / "kpi_co2"))
    with track(
        kpi,
        compare=["codecarbon", "carbontracker"],
        country_iso_code="FRA",
        measure_interval_s=0.5,
    ):
        end = time.process_time() + 0.5
        while time.process_time() < end:
            pass
    for backend in ("codecarbon", "carbontracker"):
        value = kpi.metadata[f"{backend}_emissions_kg"]
        assert math.isfinite(value) and value >= 0
    assert json.loads(Path(kpi.path).read_text())["comparisons_kg"].keys() == {
        "codecarbon",
        "carbontracker",
    }
