"""Location detection: environment first, then a real HTTP metadata server on 127.0.0.1.

No test leaves the machine: every test points ``GCE_METADATA_HOST`` at loopback.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

import carbon_kfp.errors
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.location import (
    CLOUD_PROVIDERS,
    DEFAULT_METADATA_HOST,
    METADATA_HOST_ENV_VAR,
    METADATA_ZONE_PATH,
    REGION_ENV_VARS,
    CloudLocation,
    detect_location,
    normalize_cloud_provider,
    region_from_zone,
)

ZONE_ANSWER = "projects/123456789/zones/us-central1-a"


class _MetadataServer:
    """A loopback stand-in for the GCP metadata server, configurable per test."""

    def __init__(self) -> None:
        self.status = 200
        self.body = ZONE_ANSWER
        self.flavor_header: str | None = "Google"
        self.delay_s = 0.0
        self.requests: list[tuple[str, str | None, str | None]] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(
                    (self.path, self.headers.get("Metadata-Flavor"), self.headers.get("Host"))
                )
                if outer.delay_s:
                    outer.release.wait(outer.delay_s)
                payload = outer.body.encode()
                try:
                    self.send_response(outer.status)
                    if outer.flavor_header is not None:
                        self.send_header("Metadata-Flavor", outer.flavor_header)
                    self.send_header("Content-Type", "application/text")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up first (the timeout tests)
                    pass

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def host(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No region variables, and a metadata host on loopback where nothing listens."""
    for name in REGION_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(METADATA_HOST_ENV_VAR, f"127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(carbon_kfp.errors, "_seen", set())


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_MetadataServer]:
    fake = _MetadataServer()
    monkeypatch.setenv(METADATA_HOST_ENV_VAR, fake.host)
    yield fake
    fake.close()


# ---------------------------------------------------------------------------------------------
# Environment


def test_documented_names() -> None:
    assert REGION_ENV_VARS == ("CLOUD_ML_REGION", "GOOGLE_CLOUD_REGION")
    assert METADATA_HOST_ENV_VAR == "GCE_METADATA_HOST"
    assert DEFAULT_METADATA_HOST == "metadata.google.internal"
    assert METADATA_ZONE_PATH == "/computeMetadata/v1/instance/zone"


@pytest.mark.parametrize("name", REGION_ENV_VARS)
def test_region_from_env(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "europe-west4")
    assert detect_location() == CloudLocation("gcp", "europe-west4", f"env:{name}")


def test_cloud_ml_region_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_ML_REGION", "us-east1")
    monkeypatch.setenv("GOOGLE_CLOUD_REGION", "asia-east1")
    assert detect_location() == CloudLocation("gcp", "us-east1", "env:CLOUD_ML_REGION")


def test_env_wins_over_metadata_server(
    monkeypatch: pytest.MonkeyPatch, server: _MetadataServer
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_REGION", "asia-east1")
    assert detect_location() == CloudLocation("gcp", "asia-east1", "env:GOOGLE_CLOUD_REGION")
    assert server.requests == []


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        (" US-Central1 ", "us-central1"),
        ("us-central1-a", "us-central1"),
        ("europe-west12", "europe-west12"),
        ("northamerica-northeast2-c", "northamerica-northeast2"),
    ],
)
def test_env_value_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, region: str) -> None:
    monkeypatch.setenv("CLOUD_ML_REGION", raw)
    found = detect_location()
    assert found is not None
    assert found.cloud_region == region


def test_blank_env_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_ML_REGION", "  ")
    monkeypatch.setenv("GOOGLE_CLOUD_REGION", "me-west1")
    assert detect_location() == CloudLocation("gcp", "me-west1", "env:GOOGLE_CLOUD_REGION")


def test_non_region_env_value_is_ignored_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_ML_REGION", "global")
    monkeypatch.setenv("GOOGLE_CLOUD_REGION", "us-west1")
    with pytest.warns(CarbonKfpWarning, match=r"CLOUD_ML_REGION='global' is not a Google Cloud"):
        found = detect_location()
    assert found == CloudLocation("gcp", "us-west1", "env:GOOGLE_CLOUD_REGION")


def test_nothing_anywhere_is_none_and_fast() -> None:
    started = time.monotonic()
    assert detect_location(timeout_s=1.0) is None
    assert time.monotonic() - started < 1.2


# ---------------------------------------------------------------------------------------------
# Metadata server


def test_metadata_zone_gives_region(server: _MetadataServer) -> None:
    assert detect_location() == CloudLocation("gcp", "us-central1", "gcp-metadata")
    assert server.requests == [(METADATA_ZONE_PATH, "Google", server.host)]


@pytest.mark.parametrize(
    ("answer", "region"),
    [
        ("projects/1/zones/europe-west4-b", "europe-west4"),
        ("projects/1/zones/asia-southeast1-c\n", "asia-southeast1"),
        ("projects/9/zones/me-central2-a", "me-central2"),
    ],
)
def test_metadata_zone_forms(server: _MetadataServer, answer: str, region: str) -> None:
    server.body = answer
    assert detect_location() == CloudLocation("gcp", region, "gcp-metadata")


@pytest.mark.parametrize(
    ("status", "flavor", "body"),
    [
        (404, "Google", "not found"),
        (500, "Google", ZONE_ANSWER),
        (200, None, ZONE_ANSWER),  # not the metadata server (e.g. a captive portal)
        (200, "Other", ZONE_ANSWER),
        (200, "Google", "<html>hello</html>"),
        (200, "Google", ""),
    ],
)
def test_metadata_bad_answers_give_none(
    server: _MetadataServer, status: int, flavor: str | None, body: str
) -> None:
    server.status, server.flavor_header, server.body = status, flavor, body
    assert detect_location() is None


def test_slow_metadata_server_returns_none_within_budget(server: _MetadataServer) -> None:
    server.delay_s = 5.0
    started = time.monotonic()
    assert detect_location(timeout_s=0.5) is None
    elapsed = time.monotonic() - started
    assert elapsed < 1.0  # the 0.5 s budget, with slack for a loaded CI machine
    assert elapsed >= 0.45  # it did wait for the server
    assert len(server.requests) == 1


def test_small_budget_is_honoured(server: _MetadataServer) -> None:
    server.delay_s = 5.0
    started = time.monotonic()
    assert detect_location(timeout_s=0.2) is None
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, math.nan, math.inf, "soon"])
def test_unusable_budget_skips_the_query(server: _MetadataServer, timeout_s: float) -> None:
    assert detect_location(timeout_s=timeout_s) is None
    assert server.requests == []


def test_proxy_settings_are_bypassed(
    monkeypatch: pytest.MonkeyPatch, server: _MetadataServer
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert detect_location() == CloudLocation("gcp", "us-central1", "gcp-metadata")


def test_default_host_is_used_when_env_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_fetch(url: str, timeout_s: float) -> str:
        seen.append(url)
        return ZONE_ANSWER

    monkeypatch.setenv(METADATA_HOST_ENV_VAR, " ")
    monkeypatch.setattr("carbon_kfp.location._fetch_metadata", fake_fetch)
    assert detect_location() == CloudLocation("gcp", "us-central1", "gcp-metadata")
    assert seen == [f"http://metadata.google.internal{METADATA_ZONE_PATH}"]


def test_fetch_exception_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(url: str, timeout_s: float) -> str:
        raise RuntimeError("anything at all")

    monkeypatch.setattr("carbon_kfp.location._fetch_metadata", boom)
    assert detect_location() is None


_ENV_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=40,
)


@given(cloud_ml=_ENV_TEXT, google=_ENV_TEXT)
def test_never_raises_whatever_the_environment(cloud_ml: str, google: str) -> None:
    saved = {name: os.environ.get(name) for name in REGION_ENV_VARS}
    try:
        os.environ["CLOUD_ML_REGION"] = cloud_ml
        os.environ["GOOGLE_CLOUD_REGION"] = google
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = detect_location(timeout_s=0.3)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert found is None or (found.cloud_provider == "gcp" and found.cloud_region)


# ---------------------------------------------------------------------------------------------
# Helpers


_REGION = st.from_regex(r"[a-z]{2,12}(-[a-z]{2,12}){0,2}[0-9]{1,2}", fullmatch=True)


@given(region=_REGION, letter=st.sampled_from("abcdef"), project=st.integers(1, 10**12))
def test_region_from_zone_roundtrip(region: str, letter: str, project: int) -> None:
    assert region_from_zone(f"{region}-{letter}") == region
    assert region_from_zone(f"projects/{project}/zones/{region}-{letter}") == region


@pytest.mark.parametrize("text", ["", "us-central1", "zones/", "projects/1/zones/", "a-b-c"])
def test_region_from_zone_rejects_non_zones(text: str) -> None:
    assert region_from_zone(text) is None


@pytest.mark.parametrize(
    ("spelling", "provider"),
    [
        ("gcp", "gcp"),
        ("GCP", "gcp"),
        ("google", "gcp"),
        ("aws", "aws"),
        (" Amazon ", "aws"),
        ("azure", "azure"),
        ("Microsoft", "azure"),
    ],
)
def test_normalize_cloud_provider(spelling: str, provider: str) -> None:
    assert normalize_cloud_provider(spelling) == provider
    assert provider in CLOUD_PROVIDERS


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("ibm", r"unknown cloud_provider 'ibm': expected one of gcp, aws, azure$"),
        ("awz", r"unknown cloud_provider 'awz'.*closest valid: a"),
        ("", r"unknown cloud_provider ''"),
        (None, r"cloud_provider must be a string, one of gcp, aws, azure; got None"),
    ],
)
def test_normalize_cloud_provider_errors(value: object, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        normalize_cloud_provider(value)  # type: ignore[arg-type]


def test_metadata_machine_type(server: _MetadataServer) -> None:
    from carbon_kfp.location import METADATA_MACHINE_TYPE_PATH, detect_machine_type

    server.body = "projects/123456789/machineTypes/n1-standard-8"
    assert detect_machine_type() == "n1-standard-8"
    assert server.requests[-1][:2] == (METADATA_MACHINE_TYPE_PATH, "Google")
    server.body = ZONE_ANSWER  # another shape of answer is not a machine type
    assert detect_machine_type() is None


def test_machine_type_without_a_metadata_server_is_none() -> None:
    from carbon_kfp.location import detect_machine_type

    assert detect_machine_type(timeout_s=0.5) is None
    assert detect_machine_type(timeout_s=0) is None
