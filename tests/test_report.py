"""``carbon_kfp.report``: totals, shares, Markdown/HTML escaping, record files and the CLI."""

import argparse
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon_kfp.cli.report import configure_report_parser, report_command
from carbon_kfp.outputs import load_record
from carbon_kfp.record import EmissionsRecord
from carbon_kfp.report import (
    TOTAL_KEYS,
    build_steps,
    default_step_name,
    greener_regions,
    metric_key,
    render_html,
    render_markdown,
    render_text,
    report_metrics,
    run_energy,
    step_name,
    text_table,
    totals,
)
from tests.records import make_record

EVIL = "<script>alert(1)</script>"


def record(task: str = "", **kwargs: object) -> EmissionsRecord:
    return dataclasses.replace(make_record(**kwargs), pipeline_task=task)  # type: ignore[arg-type]


def test_totals_and_metrics_are_sums_of_the_steps() -> None:
    steps = build_steps(
        [
            ("train", record("train", cpu_j=7.2e6, gpu_j=3.6e6, duration_s=50)),
            ("evaluate", record("evaluate", cpu_j=3.6e5, duration_s=5)),
        ]
    )
    metrics = report_metrics(steps)
    for key in TOTAL_KEYS:
        assert metrics[key] == pytest.approx(sum(getattr(s.record, key) for s in steps))
    assert metrics["steps"] == 2.0
    assert metrics["carbon_intensity_g_per_kwh"] == pytest.approx(400.0)  # both steps: 400
    assert metrics["pue"] == pytest.approx(1.1)
    shares = {k: v for k, v in metrics.items() if k.startswith("emissions_share_")}
    assert set(shares) == {"emissions_share_train", "emissions_share_evaluate"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["emissions_share_train"] > shares["emissions_share_evaluate"]


@given(
    st.lists(
        st.tuples(st.floats(0, 1e9), st.floats(0, 1e9), st.floats(0, 1e9), st.floats(0.001, 1e6)),
        max_size=6,
    )
)
def test_metrics_are_finite_and_shares_add_up(parts: list[tuple[float, ...]]) -> None:
    steps = build_steps(
        ("step", make_record(cpu_j=cpu, gpu_j=gpu, ram_j=ram, duration_s=d))
        for cpu, gpu, ram, d in parts
    )
    metrics = report_metrics(steps)
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["energy_kwh"] == pytest.approx(math.fsum(s.record.energy_kwh for s in steps))
    shares = [v for k, v in metrics.items() if k.startswith("emissions_share_")]
    assert len(shares) == len(steps)
    assert all(0.0 <= share <= 1.0 for share in shares)
    assert sum(shares) == pytest.approx(1.0 if metrics["emissions_kg"] > 0 else 0.0)


def test_no_steps_and_no_energy_render_without_dividing_by_zero() -> None:
    for steps in (build_steps([]), build_steps([("idle", make_record(cpu_j=0.0))])):
        metrics = report_metrics(steps)
        assert all(math.isfinite(v) for v in metrics.values())
        assert "carbon_intensity_g_per_kwh" not in metrics
        assert render_markdown(steps) and "<svg" in render_html(steps)


def test_repeated_names_are_made_unique_and_keys_do_not_collide() -> None:
    steps = build_steps([("train", record()), ("train", record()), ("Train!", record())])
    assert [s.name for s in steps] == ["train", "train #2", "Train!"]
    keys = [k for k in report_metrics(steps) if k.startswith("emissions_share_")]
    assert keys == ["emissions_share_train", "emissions_share_train_2", "emissions_share_train_3"]
    assert metric_key("Load wine/data (v2)") == "load_wine_data_v2"


@given(st.lists(st.sampled_from(["a", "a #2", "b", " ", "a #3"]), max_size=8))
def test_step_names_are_always_unique(names: list[str]) -> None:
    steps = build_steps((name, make_record()) for name in names)
    assert len({s.name for s in steps}) == len(names)
    metrics = report_metrics(steps)
    assert len([k for k in metrics if k.startswith("emissions_share_")]) == len(names)


def test_long_names_are_cut_in_the_chart_only() -> None:
    name = "x" * 40
    page = render_html(build_steps([(name, record())]))
    assert f">{'x' * 21}\u2026<title>{name}</title>" in page  # fits the 170 px label column
    assert f'<td class="text">{name}</td>' in page


def test_step_names_prefer_the_pipeline_task() -> None:
    assert step_name(record("train"), "fallback") == "train"
    assert step_name(record("", task_name="epoch-1"), "fallback") == "epoch-1"
    assert step_name(record(""), "fallback") == "fallback"
    assert default_step_name(Path("/root/run-1/train-model/kpi_co2")) == "train-model"
    assert default_step_name(Path("/tmp/evaluate.json")) == "evaluate"


def test_html_escapes_every_string_and_has_no_script() -> None:
    steps = build_steps(
        [(EVIL, record(EVIL, warnings=('<img src=x onerror="alert(2)">',))), ("ok", record())]
    )
    page = render_html(steps, title=EVIL)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 4  # title, heading, chart label, table cell
    assert "onerror=&quot;alert(2)&quot;" in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "&lt;script&gt;" in svg
    assert len(re.findall(r"<rect ", svg)) >= 4 + 2  # legend + a bar segment per step


def test_markdown_escapes_html_and_table_breakers() -> None:
    steps = build_steps([(f"{EVIL} | x\ny", record())])
    markdown = render_markdown(steps)
    assert "<script>" not in markdown
    assert "| &lt;script&gt;alert(1)&lt;/script&gt; \\| x y |" in markdown
    for block in markdown.split("\n\n"):  # each table: every row has the header's columns
        rows = [line for line in block.splitlines() if line.startswith("|")]
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in rows}) <= 1


def test_load_record_round_trips_and_names_bad_files(tmp_path: Path) -> None:
    original = record("train")
    good = tmp_path / "kpi_co2"
    good.write_text(original.to_json())
    assert load_record(good) == original

    cases = {"text.json": "not json", "list.json": "[1]", "partial.json": '{"run_id": "x"}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=re.escape(str(tmp_path / name))):
            load_record(tmp_path / name)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_report_parser(parser)
    return parser.parse_args(argv)


def test_report_command_prints_the_table_and_writes_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for task in ("train", "evaluate"):
        (tmp_path / task).mkdir()
        (tmp_path / task / "kpi_co2").write_text(record().to_json())
    files = [str(tmp_path / "train" / "kpi_co2"), str(tmp_path / "evaluate" / "kpi_co2")]

    assert report_command(parse(files)) == 0
    table = capsys.readouterr().out
    assert re.search(r"^train\s+\d", table, re.M) and re.search(r"^evaluate\s+\d", table, re.M)
    assert re.search(r"^Total \(2 steps\)", table, re.M)
    assert "e-0" not in table  # no scientific notation

    out = tmp_path / "out"
    argv = [*files, "--markdown", f"{out}/r.md", "--html", f"{out}/r.html"]
    assert report_command(parse([*argv, "--metrics-json", f"{out}/m.json", "--title", "T"])) == 0
    assert f"wrote {out}/r.html" in capsys.readouterr().out
    assert (out / "r.md").read_text().startswith("# T\n")
    assert "| evaluate |" in (out / "r.md").read_text()
    assert "<title>T</title>" in (out / "r.html").read_text()
    metrics = json.loads((out / "m.json").read_text())
    assert metrics["emissions_kg"] == pytest.approx(
        totals(build_steps([("a", record())] * 2))["emissions_kg"]
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"emissions_high_kg": None}, "'emissions_high_kg' is a JSON null"),
        ({"emissions_kg": float("nan")}, "'emissions_kg' is nan"),
        ({"energy_kwh": float("inf")}, "'energy_kwh' is inf"),
        ({"emissions_kg": -1.0}, "'emissions_kg' is -1.0"),
        ({"warnings": "abc"}, "'warnings' is 'abc'; expected a JSON array of strings"),
    ],
)
def test_item15_report_names_the_file_and_the_bad_field(
    tmp_path: Path, changes: dict[str, object], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from carbon_kfp.cli import main

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(record("train").to_json())
    bad.write_text(json.dumps(json.loads(record("eval").to_json()) | changes))  # NaN as NaN
    assert main(["report", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"carbon-kfp report: error: {bad}: not a valid carbon-kfp record: field {field}" in (
        captured.err
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("é".encode("latin-1") + b"{}", "byte 0xe9 at offset 0 (invalid continuation byte)"),
        ("{}".encode("utf-16"), "byte 0xff at offset 0 (invalid start byte) (it looks like UTF-16"),
        ("{}".encode("utf-16-le"), "holds NUL bytes (it looks like UTF-16 or a binary file)"),
        (bytes(range(256)), "byte 0x80 at offset 128"),
    ],
)
def test_item16_report_on_a_non_utf8_file_names_file_and_encoding(
    tmp_path: Path, content: bytes, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from carbon_kfp.cli import main

    path = tmp_path / "kpi_co2"
    path.write_bytes(content)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"carbon-kfp report: error: {path}: not UTF-8 text" in err or (
        f"carbon-kfp report: error: {path}: holds NUL bytes" in err
    )
    assert problem in err


def in_region(region: str, **kwargs: object) -> EmissionsRecord:
    return dataclasses.replace(
        make_record(**kwargs),  # type: ignore[arg-type]
        cloud_provider="gcp",
        cloud_region=region,
        intensity_source="gcp-region",
        intensity_year=2024,
    )


@pytest.mark.filterwarnings("ignore::carbon_kfp.errors.CarbonKfpWarning")
def test_greener_regions_reprice_the_run_device_energy_against_its_own_emissions() -> None:
    steps = build_steps(
        [("small", in_region("asia-south1", cpu_j=1e5)), ("big", in_region("asia-south1"))]
    )
    device_kwh, main = run_energy(steps)
    assert device_kwh == pytest.approx((1e5 + 3.6e6) / 3.6e6)
    assert main is steps[1].record  # the step that used the most energy sets the basis
    advice = greener_regions(steps)
    assert advice is not None and 1 <= len(advice.alternatives) <= 5
    run_kg = totals(steps)["emissions_kg"]
    kgs = [option.emissions_kg for option in advice.alternatives]
    assert kgs == sorted(kgs) and all(kg < run_kg for kg in kgs)
    for option in advice.alternatives:
        assert option.factor == pytest.approx(option.emissions_kg / run_kg)
        assert option.emissions_kg == pytest.approx(
            device_kwh * option.pue * option.intensity_g_per_kwh / 1000.0
        )
    assert advice.basis.startswith("gcp 2024 grid intensity (gcp-region) x gcp PUE")
    assert len(greener_regions(steps, count=2).alternatives) == 2  # type: ignore[union-attr]


def test_no_greener_regions_without_measured_energy() -> None:
    assert greener_regions(()) is None
    assert greener_regions(build_steps([("idle", in_region("asia-south1", cpu_j=0.0))])) is None
    cached = build_steps([("old", dataclasses.replace(in_region("x"), pipeline_job="a"))], "b")
    assert greener_regions(cached) is None
    assert run_energy(cached) == (0.0, None)


def test_text_table_aligns_columns_and_sets_off_the_total() -> None:
    rows = [("name", "kg"), ("a", "1.5"), ("long name", "10"), ("Total", "11.5")]
    assert text_table(rows, {1}, total=True) == [
        "name         kg",
        "---------  ----",
        "a           1.5",
        "long name    10",
        "---------  ----",
        "Total      11.5",
    ]
    assert len(text_table(rows, {1})) == 5


@pytest.mark.filterwarnings("ignore::carbon_kfp.errors.CarbonKfpWarning")
def test_text_report_has_the_steps_a_total_and_greener_regions() -> None:
    steps = build_steps([("train", in_region("asia-south1")), ("eval", in_region("asia-south1"))])
    lines = render_text(steps, greener_regions(steps)).splitlines()
    header = ("Step", "CO2", "CO2 range", "Embodied", "Energy", "Share", "Duration")
    assert re.split(r"\s{2,}", lines[0]) == list(header)
    assert lines[2].startswith("train ") and lines[3].startswith("eval ")
    assert set(lines[4]) == {"-", " "} and lines[5].startswith("Total (2 steps)")
    assert "Greener regions for this run:" in lines
