"""The warn-once channel and the logging helpers that import logging only when it is listened to."""

from __future__ import annotations

import logging

import pytest

from carbon_kfp import errors
from carbon_kfp.errors import CarbonKfpWarning, close_matches, log_debug, warn_once


def test_debug_lines_reach_a_configured_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="carbon_kfp.test"):
        log_debug("carbon_kfp.test", "%s sensor: %d", "gpu", 2)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("carbon_kfp.test", logging.DEBUG, "gpu sensor: 2")
    ]


def test_a_warning_is_warned_and_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(errors, "_seen", set())
    with pytest.warns(CarbonKfpWarning, match="disk on fire"):
        warn_once("disk on fire")
    warn_once("disk on fire")
    assert [r.getMessage() for r in caplog.records if r.name == "carbon_kfp"] == ["disk on fire"]


def test_close_matches_cutoff() -> None:
    assert close_matches("contianer", ["container", "process"]) == "; closest valid: container"
    assert close_matches("DXX", ["DEU", "FRA"]) == ""
    assert close_matches("DXX", ["DEU", "FRA"], cutoff=0.3) == "; closest valid: DEU"
