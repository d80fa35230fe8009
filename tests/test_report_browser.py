"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package).

Checks what a reader sees at 800 px: the expected rows and charts, no console errors and no
network fetches, no horizontal scrolling of the page, hostile names shown as text, and a
screenshot that is not blank. The page itself has no scripts; a measuring copy gets one
script, injected here, whose findings Chromium's ``--dump-dom`` writes out.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from carbon_kfp.report import build_steps, greener_regions, render_html
from tests.records import make_record

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
EVIL = "<script>alert(1)</script> & \"quotes\" 'single' <b>"
WIDTH_PX = 800

PROBE = """<script>
window.__errors = [];
window.addEventListener(
  "error", e => __errors.push(String(e.message || e.target.src || e.target.href)), true
);
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { __errors.push(args.join(" ")); original.apply(console, args); };
}
window.addEventListener("load", () => {
  const root = document.documentElement;
  const probe = {
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    errors: __errors,
    resources: performance.getEntriesByType("resource").map(r => r.name),
    scripts: document.querySelectorAll("script").length,
    svgs: document.querySelectorAll("svg").length,
    stepRows: document.querySelectorAll("table")[0].querySelectorAll("tbody tr").length,
    regionRows: document.querySelectorAll("table").length > 2
      ? document.querySelectorAll("table")[2].querySelectorAll("tbody tr").length : 0,
    text: document.body.innerText,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(probe);
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            f"--window-size={WIDTH_PX},2400",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def report_page() -> str:
    def step(name: str, cpu_j: float, gpu_j: float) -> tuple[str, object]:
        record = make_record(
            cpu_j=cpu_j,
            gpu_j=gpu_j,
            ram_j=2e4,
            power_timeline={
                "t_s": (10.0, 20.0, 30.0),
                "cpu_w": (40.0, 80.0, 60.0),
                "gpu_w": (0.0, 70.0, 65.0) if gpu_j else (0.0, 0.0, 0.0),
                "ram_w": (2.0, 2.0, 2.0),
            },
        )
        record = dataclasses.replace(
            record,
            pipeline_task=name,
            cloud_provider="gcp",
            cloud_region="us-central1",
            embodied_kg=1e-4,
            embodied_low_kg=5e-5,
            embodied_high_kg=1.5e-4,
            embodied_method="ccf-server-share (gcp n1-standard-8, 8/96 vCPUs)",
        )
        return name, record

    named = [
        step(EVIL, 3.6e5, 0.0),
        step("train-a-model-with-a-very-long-step-name-that-goes-on-and-on", 7.2e6, 3.6e6),
        step("evaluate", 2e3, 0.0),
    ]
    steps = build_steps(named)  # type: ignore[arg-type]
    return render_html(steps, title=f"Carbon report {EVIL}", advice=greener_regions(steps))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CHROMIUM is None:
        pytest.skip("headless browser test: no `chromium` on PATH (apt-get install -y chromium)")
    path = tmp_path_factory.mktemp("browser") / "report.html"
    path.write_text(report_page(), encoding="utf-8")
    return path


def test_page_reads_at_800_px_with_rows_charts_and_no_errors(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower()  # the report itself has none
    probed = page.with_name("probed.html")
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = chromium("--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stdout[-2000:]
    probe = json.loads(
        match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert probe["errors"] == []
    assert probe["resources"] == []  # self-contained: nothing fetched
    assert probe["scripts"] == 1  # only the probe: the hostile names did not become scripts
    assert probe["scrollWidth"] <= probe["clientWidth"] <= WIDTH_PX  # no horizontal scrolling
    assert probe["stepRows"] == 4  # 3 steps and the total
    assert probe["svgs"] == 5  # CO2, energy, 3 power timelines
    assert 1 <= probe["regionRows"] <= 5
    assert EVIL in probe["text"]  # shown as text
    assert "mg" in probe["text"] and "e-0" not in probe["text"]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == []


def png_size_and_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


def test_screenshot_is_800_px_wide_and_not_blank(page: Path) -> None:
    shot = page.with_name("report.png")
    done = chromium(f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0, done.stderr
    width, height, pixels = png_size_and_pixels(shot)
    assert width == WIDTH_PX and height > 0
    # A blank page filters to runs of one value; a rendered report has many distinct bytes.
    assert len(set(pixels)) > 50
