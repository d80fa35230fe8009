"""``carbon-kfp exec``: run as the KFP launcher would, read back as kfp's own code reads it.

The command line is the compiled ``carbon_container_component``'s, with placeholders resolved by
``kfp.local``'s resolver against an executor input built by ``kfp.local`` (the Docker runner's
path, minus Docker); the executor output is read back with ``kfp.local``'s reader. Only the
leading ``carbon-kfp`` script is swapped for ``python -m carbon_kfp.cli``, so the tests do not
depend on the script being on ``PATH``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils, utils
from kfp.pipeline_spec import pipeline_spec_pb2

from carbon_kfp.errors import ConfigError
from carbon_kfp.executor import (
    EXECUTOR_INPUT_SHAPE,
    MetricsTarget,
    configure_exec_parser,
    exec_command,
    exit_code,
    merge_executor_output,
    path_to_uri,
    resolve_target,
    uri_to_path,
    write_outputs,
)
from carbon_kfp.kfp import carbon_container_component
from carbon_kfp.tracker_options import is_unresolved_placeholder, resolved_or_empty
from tests.records import DESIGN_METRIC_KEYS, make_record

METRIC_KEYS = DESIGN_METRIC_KEYS
REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("fresh_warn_once")

# A child that runs Python code given as its one argument.
step = carbon_container_component(
    "python-step",
    image="python:3.11",
    command=["python3", "-c", "{code}"],
    inputs={"code": str},
    exec_options=["--carbon-intensity-g-per-kwh", "300", "--measure-interval-s", "0.2"],
)


@dataclass
class Launch:
    """A resolved task: its command line, executor input and component spec."""

    command: list[str]
    executor_input: pipeline_spec_pb2.ExecutorInput
    component_spec: pipeline_spec_pb2.ComponentSpec
    task_root: Path

    def outputs(self) -> dict[str, Any]:
        """What kfp.local reads back from the executor output after the task."""
        return executor_output_utils.get_outputs_for_task(self.executor_input, self.component_spec)

    def record(self) -> dict[str, Any]:
        path = Path(self.executor_input.outputs.artifacts["kpi_co2"].artifacts[0].uri)
        data: dict[str, Any] = json.loads(path.read_text())
        return data


def launch(root: Path, code: str, grace_period_s: float | None = None) -> Launch:
    """Resolve the compiled component's command for one task, as kfp.local does."""
    pipeline_spec = step.pipeline_spec
    component_spec = next(iter(pipeline_spec.components.values()))
    executor = utils.struct_to_executor_spec(
        pipeline_spec.deployment_spec["executors"][component_spec.executor_label]
    )
    task_root = root / "job" / "python-step"
    arguments = {"code": code, "pipeline_task": "{{$.pipeline_task_name}}"}
    executor_input = executor_input_utils.construct_executor_input(
        component_spec, arguments, str(task_root), block_input_artifact=True
    )
    command = placeholder_utils.replace_placeholders(
        full_command=[*executor.container.command, *executor.container.args],
        executor_input_dict=executor_input_utils.executor_input_to_dict(
            executor_input, component_spec
        ),
        pipeline_resource_name="job",
        task_resource_name="python-step",
        pipeline_root=str(root),
        unique_pipeline_id="1",
    )
    assert command[:2] == ["carbon-kfp", "exec"]
    extra = ["--grace-period-s", str(grace_period_s)] if grace_period_s is not None else []
    command = [sys.executable, "-m", "carbon_kfp.cli", "exec", *extra, *command[2:]]
    return Launch(command, executor_input, component_spec, task_root)


def start(task: Launch, **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(task.command, env=env, text=True, **popen)


def assert_kpi_co2(task: Launch, status: str) -> dict[str, Any]:
    kpi = task.outputs()["kpi_co2"]
    assert kpi.schema_title == "system.Metrics"
    assert set(kpi.metadata) >= METRIC_KEYS
    assert all(isinstance(v, float) and math.isfinite(v) for v in kpi.metadata.values())
    assert kpi.uri == str(task.task_root / "kpi_co2")
    record = task.record()
    assert record["status"] == status
    assert record["emissions_kg"] == kpi.metadata["emissions_kg"]
    assert record["pipeline_task"] == "python-step"
    assert record["carbon_intensity_g_per_kwh"] == 300
    return record


# -- real subprocesses ---------------------------------------------------------------------------

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"


def test_success_writes_what_kfp_reads(tmp_path: Path) -> None:
    task = launch(tmp_path, BUSY + "print('child done')")
    child = start(task, stdout=subprocess.PIPE)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert "child done" in out
    record = assert_kpi_co2(task, "completed")
    assert record["cpu_energy_kwh"] > 0  # the child's CPU time is the wrapper's process tree
    assert record["duration_s"] >= 0.3


@pytest.mark.slow
def test_failure_keeps_exit_code_and_still_records(tmp_path: Path) -> None:
    task = launch(tmp_path, "import sys; sys.exit(3)")
    assert start(task).wait(timeout=60) == 3
    assert_kpi_co2(task, "failed")


@pytest.mark.slow
def test_child_killed_by_sigterm_exits_143(tmp_path: Path) -> None:
    task = launch(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert start(task).wait(timeout=60) == 143
    assert_kpi_co2(task, "failed")


def wait_for_line(child: subprocess.Popen[str], expected: str) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == expected, line


def test_sigterm_is_forwarded_and_output_is_not_buffered(tmp_path: Path) -> None:
    # "ready" must reach us while the child still runs (it waits for SIGTERM).
    task = launch(tmp_path, "import time\nprint('ready', flush=True)\ntime.sleep(60)")
    child = start(task, stdout=subprocess.PIPE)
    wait_for_line(child, "ready")
    assert child.poll() is None
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 143
    assert_kpi_co2(task, "interrupted")


@pytest.mark.slow
def test_child_ignoring_sigterm_is_killed_after_grace_period(tmp_path: Path) -> None:
    code = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)"
    )
    task = launch(tmp_path, code, grace_period_s=0.5)
    child = start(task, stdout=subprocess.PIPE)
    wait_for_line(child, "ready")
    begin = time.monotonic()
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGKILL
    assert 0.4 < time.monotonic() - begin < 20
    assert_kpi_co2(task, "interrupted")


@pytest.mark.slow
def test_sigint_is_forwarded(tmp_path: Path) -> None:
    task = launch(tmp_path, "import time\nprint('ready', flush=True)\ntime.sleep(60)")
    child = start(task, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_for_line(child, "ready")
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 130  # Python re-raises SIGINT on KeyboardInterrupt
    assert_kpi_co2(task, "interrupted")


# -- the handler in-process ----------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_exec_parser(parser)
    return parser.parse_args(["--carbon-intensity-g-per-kwh", "300", *argv])


def executor_input(tmp_path: Path, names: Sequence[str] = ("kpi_co2",)) -> str:
    return json.dumps(
        {
            "outputs": {
                "artifacts": {
                    name: {"artifacts": [{"name": name, "uri": str(tmp_path / name)}]}
                    for name in names
                },
                "outputFile": str(tmp_path / "executor_output.json"),
            }
        }
    )


def test_command_not_found_exits_127_with_a_record(tmp_path: Path) -> None:
    args = parse(
        ["--executor-input", executor_input(tmp_path), "--", str(tmp_path / "no-such-program")]
    )
    assert exec_command(args) == 127
    record = json.loads((tmp_path / "kpi_co2").read_text())
    assert record["status"] == "failed"


def test_remainder_keeps_the_commands_own_options(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    code = "import json, sys; json.dump(sys.argv[1:], open(sys.argv[1], 'w'))"
    argv = [sys.executable, "-c", code, str(out), "--metrics", "x", "--"]
    args = parse(["--executor-input", executor_input(tmp_path), "--", *argv])
    assert exec_command(args) == 0
    assert json.loads(out.read_text()) == [str(out), "--metrics", "x", "--"]


NO_OUTPUT_FILE = {"outputs": {"artifacts": {"kpi_co2": {"artifacts": [{"uri": "/tmp/k"}]}}}}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--executor-input", json.dumps(NO_OUTPUT_FILE), "--", "true"], "no executor output path"),
        (["--executor-input", "not json", "--", "true"], "not JSON"),
        (["--executor-output", "x.json", "--", "true"], "no path for the 'kpi_co2' artifact"),
        (["--executor-output", "x.json", "--metrics-path", "m"], "no command"),
        (["--grace-period-s", "-1", "--executor-output", "x", "--", "true"], "grace-period"),
    ],
)
def test_bad_configuration_fails_before_running(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        exec_command(parse(argv))


def test_cli_reports_configuration_errors_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from carbon_kfp.cli import main

    assert main(["exec", "--executor-output", "x.json", "--metrics-path", "m"]) == 2
    assert "carbon-kfp exec: error: no command to run" in capsys.readouterr().err


def test_unknown_metrics_name_lists_the_outputs(tmp_path: Path) -> None:
    args = parse(
        ["--executor-input", executor_input(tmp_path), "--metrics", "kpi_co", "--", "true"]
    )
    with pytest.raises(ConfigError, match=r"\(outputs: kpi_co2\); closest valid: kpi_co2"):
        exec_command(args)


# -- pure parts ----------------------------------------------------------------------------------


def test_parser_fits_under_a_subcommand_parser() -> None:
    # As cli.py registers it: the subcommand's name lives in args.command.
    parser = argparse.ArgumentParser(prog="carbon-kfp")
    configure_exec_parser(parser.add_subparsers(dest="command").add_parser("exec"))
    args = parser.parse_args(["exec", "--metrics", "m", "--", "sh", "-c", "exit 3", "--", "-x"])
    assert (args.command, args.metrics) == ("exec", "m")
    assert args.child_argv == ["--", "sh", "-c", "exit 3", "--", "-x"]


@pytest.mark.parametrize(
    ("returncode", "expected"), [(0, 0), (3, 3), (-15, 143), (-9, 137), (-2, 130)]
)
def test_exit_code_follows_the_shell_convention(returncode: int, expected: int) -> None:
    assert exit_code(returncode) == expected


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("gs://bucket/root/kpi_co2", "/gcs/bucket/root/kpi_co2"),
        ("minio://b/k", "/minio/b/k"),
        ("s3://b/k", "/s3/b/k"),
        ("/tmp/root/kpi_co2", "/tmp/root/kpi_co2"),
    ],
)
def test_uri_and_path_map_like_kfp(uri: str, path: str) -> None:
    from kfp import dsl

    assert uri_to_path(uri) == path == dsl.Metrics(uri=uri).path
    assert path_to_uri(path) == uri


def test_target_from_executor_input_and_overrides(tmp_path: Path) -> None:
    document = {
        "outputs": {
            "artifacts": {
                "kpi_co2": {"artifacts": [{"name": "projects/1/artifacts/2", "uri": "gs://b/k"}]}
            },
            "outputFile": "/gcs/b/executor_output.json",
        }
    }
    target = resolve_target(executor_input=json.dumps(document), executor_output=None)
    assert target.artifact_name == "projects/1/artifacts/2"
    assert (target.artifact_uri, str(target.artifact_path)) == ("gs://b/k", "/gcs/b/k")
    assert str(target.executor_output) == "/gcs/b/executor_output.json"
    explicit = resolve_target(
        executor_input=None, executor_output="out.json", metrics_path="/gcs/b/m"
    )
    assert (explicit.artifact_name, explicit.artifact_uri) == ("kpi_co2", "gs://b/m")


def test_write_outputs_merges_what_the_command_wrote(tmp_path: Path) -> None:
    target = resolve_target(
        executor_input=executor_input(tmp_path, ["kpi_co2"]), executor_output=None
    )
    own = {
        "parameterValues": {"accuracy": 0.9},
        "artifacts": {"kpi_co2": {"artifacts": [{"metadata": {"note": 1.0}}]}},
    }
    target.executor_output.write_text(json.dumps(own))
    record = make_record()
    write_outputs(target, record)
    written = json.loads(target.executor_output.read_text())
    assert written["parameterValues"] == {"accuracy": 0.9}
    entry = written["artifacts"]["kpi_co2"]["artifacts"][0]
    assert entry["metadata"] == {"note": 1.0, **record.to_metrics()}
    assert entry["uri"] == str(tmp_path / "kpi_co2")
    assert json.loads((tmp_path / "kpi_co2").read_text()) == json.loads(record.to_json())


def test_unresolved_placeholders_are_recognised_and_ignored() -> None:
    with pytest.warns(UserWarning, match="not resolved"):
        assert resolved_or_empty("cloud_location", "{{$.pipeline_google_cloud_location}}") == ""
    assert resolved_or_empty("cloud_location", "europe-west4") == "europe-west4"
    assert is_unresolved_placeholder("{{$.pipeline_task_name}}")
    assert not is_unresolved_placeholder("train")


# -- issue 10: the step's outcome is the command's ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("child_code", [0, 3])
@pytest.mark.parametrize("blocked", ["metrics", "executor output"])
def test_item3_child_exit_code_wins_over_write_failures(
    tmp_path: Path, child_code: int, blocked: str
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    metrics = not_a_dir / "kpi_co2" if blocked == "metrics" else tmp_path / "kpi_co2"
    output = not_a_dir / "out.json" if blocked == "executor output" else tmp_path / "out.json"
    command = [
        *(sys.executable, "-m", "carbon_kfp.cli", "exec"),
        *("--carbon-intensity-g-per-kwh", "300"),
        *("--executor-output", str(output), "--metrics-path", str(metrics)),
        *("--", sys.executable, "-c", f"import sys; sys.exit({child_code})"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == child_code, done.stderr
    assert "carbon-kfp exec: could not write the emissions record (FileExistsError" in done.stderr
    assert str(not_a_dir) in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_item4_undecodable_project_name_through_exec(tmp_path: Path) -> None:
    import pandas as pd

    project = b"caf\xe9 \xff"  # latin-1 bytes in argv, as a shell passes them
    command: list[str | bytes] = [
        *(sys.executable, "-m", "carbon_kfp.cli", "exec", "--project-name", project),
        *("--output-dir", str(tmp_path), "--carbon-intensity-g-per-kwh", "300"),
        *("--executor-output", str(tmp_path / "out.json"), "--metrics-path"),
        *(str(tmp_path / "kpi_co2"), "--", sys.executable, "-c", "import sys; sys.exit(4)"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert done.returncode == 4, done.stderr
    assert b"Traceback" not in done.stderr
    frame = pd.read_csv(tmp_path / "emissions.csv", encoding="utf-8")
    assert list(frame["project_name"]) == ["caf\\xe9 \\xff"]
    assert list(frame["status"]) == ["failed"]
    record = json.loads((tmp_path / "kpi_co2").read_bytes().decode("utf-8", errors="strict"))
    assert record["project_name"] == "caf\\xe9 \\xff"
    metadata = json.loads((tmp_path / "out.json").read_text())["artifacts"]["kpi_co2"]
    assert metadata["artifacts"][0]["metadata"]["emissions_kg"] == record["emissions_kg"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ('{"artifacts": {"kpi_co2": "oops"}}', "artifacts.kpi_co2 is a JSON string"),
        ('{"artifacts": {"kpi_co2": {"artifacts": "x"}}}', "kpi_co2.artifacts is a JSON string"),
        ('{"artifacts": {"kpi_co2": {"artifacts": [7]}}}', "artifacts[0] is a JSON number"),
        ('{"artifacts": []}', "artifacts is a JSON array"),
        ("[1, 2]", "the document is a JSON array"),
        ("null", "the document is a JSON null"),
        ("{not json", "replacing unreadable"),
    ],
)
def test_item5_own_executor_output_of_another_shape_is_merged_robustly(
    tmp_path: Path, written: str, problem: str
) -> None:
    task = launch(tmp_path, "")
    path = task.executor_input.outputs.output_file
    code = (
        f"import os, sys\nos.makedirs(os.path.dirname({path!r}), exist_ok=True)\n"
        f"open({path!r}, 'w').write({written!r})\nsys.exit(5)"
    )
    task = launch(tmp_path, code)
    child = start(task, stderr=subprocess.PIPE)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 5, err
    assert "Traceback" not in err
    assert problem in err and path in err
    assert_kpi_co2(task, "failed")  # kfp.local's reader finds the metrics


def _target(tmp_path: Path) -> Any:
    return resolve_target(executor_input=executor_input(tmp_path), executor_output=None)


def test_item5_merge_keeps_every_part_of_the_expected_shape(tmp_path: Path) -> None:
    own = {
        "parameterValues": {"accuracy": 0.9},
        "artifacts": {
            "model": {"artifacts": [{"name": "m", "uri": "gs://b/m"}]},
            "kpi_co2": {
                "artifacts": [
                    {"name": "mine", "uri": 3, "metadata": {"note": 1.0, "pue": 9.0}},
                    {"name": "second"},
                ]
            },
        },
    }
    snapshot = json.dumps(own)
    merged, problems = merge_executor_output(own, _target(tmp_path), {"pue": 1.1})
    assert json.dumps(own) == snapshot  # not changed in place
    assert problems == [
        "artifacts.kpi_co2.artifacts[0].uri is a JSON number, expected a JSON string"
    ]
    assert merged["parameterValues"] == own["parameterValues"]
    assert merged["artifacts"]["model"] == own["artifacts"]["model"]
    entries = merged["artifacts"]["kpi_co2"]["artifacts"]
    assert entries[0] == {
        "name": "mine",
        "uri": str(tmp_path / "kpi_co2"),
        "metadata": {"note": 1.0, "pue": 1.1},
    }
    assert entries[1] == {"name": "second"}
    assert merge_executor_output({}, _target(tmp_path), {"pue": 1.1}) == (
        {
            "artifacts": {
                "kpi_co2": {
                    "artifacts": [
                        {
                            "name": "kpi_co2",
                            "uri": str(tmp_path / "kpi_co2"),
                            "metadata": {"pue": 1.1},
                        }
                    ]
                }
            }
        },
        [],
    )


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["artifacts", "kpi_co2", "metadata", "uri"]), inner)
        ),
        max_leaves=12,
    )
)
def test_item5_merge_gives_the_executor_output_shape_for_any_json(document: Any) -> None:
    target = MetricsTarget(Path("out.json"), "kpi_co2", "kpi_co2", "/r/kpi_co2", Path("/r/k"))
    merged, _ = merge_executor_output(document, target, {"pue": 1.1})
    entry = merged["artifacts"]["kpi_co2"]["artifacts"][0]
    assert isinstance(entry["name"], str) and isinstance(entry["uri"], str)
    assert entry["metadata"]["pue"] == 1.1
    json.dumps(merged)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "child_handles", "expected"),
    [
        (signal.SIGHUP, False, 128 + signal.SIGHUP),
        (signal.SIGQUIT, True, 7),  # handled: no core dump; the child's own code wins
        (signal.SIGHUP, True, 7),
    ],
)
def test_item6_sighup_and_sigquit_are_forwarded_and_recorded(
    tmp_path: Path, sig: signal.Signals, child_handles: bool, expected: int
) -> None:
    handler = f"signal.signal({int(sig)}, lambda *_: sys.exit(7))\n" if child_handles else ""
    code = (
        f"import os, signal, sys, time\n{handler}"
        "print('ready', os.getpid(), flush=True)\ntime.sleep(60)"
    )
    task = launch(tmp_path, code)
    child = start(task, stdout=subprocess.PIPE)
    assert child.stdout is not None
    ready, pid = child.stdout.readline().split()
    assert ready == "ready"
    child.send_signal(sig)
    assert child.wait(timeout=30) == expected
    with pytest.raises(ProcessLookupError):  # not left running detached
        os.kill(int(pid), 0)
    assert_kpi_co2(task, "interrupted")


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ([1], "the document is a JSON array, expected a JSON object"),
        ({"outputs": []}, "outputs is a JSON array"),
        ({"outputs": {"outputFile": 3}}, "outputs.outputFile is a JSON number, expected a JSON s"),
        ({"outputs": {"artifacts": "a"}}, "outputs.artifacts is a JSON string"),
        ({"outputs": {"artifacts": {"kpi_co2": []}}}, "outputs.artifacts.kpi_co2 is a JSON arr"),
        (
            {"outputs": {"artifacts": {"kpi_co2": {"artifacts": {}}}}},
            "kpi_co2.artifacts is a JSON o",
        ),
        (
            {"outputs": {"artifacts": {"kpi_co2": {"artifacts": [None]}}}},
            "artifacts[0] is a JSON n",
        ),
    ],
)
def test_item17_executor_input_of_another_shape_is_a_clear_error(
    document: Any, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from carbon_kfp.cli import main

    argv = ["exec", "--executor-input", json.dumps(document), "--", "true"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("carbon-kfp exec: error: --executor-input: ") and where in err
    assert EXECUTOR_INPUT_SHAPE in err and "Traceback" not in err


@pytest.mark.slow
def test_item2_command_runs_when_the_sensors_cannot_start(tmp_path: Path) -> None:
    """A procfs without the wrapper in it (another pid namespace's): the command runs, its code
    wins, and the record says the CPU and RAM were not measured."""
    proc = tmp_path / "proc"
    proc.mkdir()
    for name in ("stat", "meminfo", "cpuinfo"):
        (proc / name).write_bytes(Path("/proc", name).read_bytes())
    marker = tmp_path / "ran"
    task = launch(
        tmp_path, f"import pathlib, sys; pathlib.Path({str(marker)!r}).touch(); sys.exit(3)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CARBON_KFP_PROC_ROOT": str(proc)}
    done = subprocess.run(task.command, env=env, text=True, capture_output=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert marker.exists()
    record = assert_kpi_co2(task, "failed")
    assert (record["cpu_method"], record["ram_method"]) == ("none", "none")
    assert any("cannot start" in warning for warning in record["warnings"])
