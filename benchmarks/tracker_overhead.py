"""Tracker overhead: carbon-kfp side by side with CodeCarbon and CarbonTracker, measured in one run.

For each tool, in fresh subprocesses of its own virtual environment (the anchors are installed by
this script into ``benchmarks/.venvs/<tool>``; carbon-kfp runs in the current interpreter):

- import time over a bare ``python -c pass`` (median of ``--repeats`` fresh interpreters);
- construct + start, and stop (wall ms, in-process);
- CPU used by the process while the tracker samples during an idle ``--idle-s`` sleep at a 1 s
  interval, as % of one core;
- peak RSS delta (the process's peak RSS, VmHWM, after start + idle + stop minus before the
  import). Units: MiB.

Targets for carbon-kfp on the 2-core reference machine: import <= 20 ms, construct + start
<= 20 ms, stop <= 5 ms, <= 0.05 % of one core while sampling, <= 5 MiB RSS.

Usage: ``python benchmarks/tracker_overhead.py [--idle-s 10] [--repeats 7] [--only carbon-kfp]``
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"

# Each tool: (pip requirement or None for the current env, import line, construct, start, stop)
TOOLS: dict[str, dict[str, str | None]] = {
    "carbon-kfp": {
        "requirement": None,
        "import": "from carbon_kfp import EmissionsTracker",
        "construct": "t = EmissionsTracker(output_dir=None, country_iso_code='USA', "
        "measure_interval_s=1.0)",
        "start": "t.start()",
        "stop": "t.stop()",
    },
    "codecarbon": {
        "requirement": "codecarbon==3.3.2",
        "import": "from codecarbon import OfflineEmissionsTracker",
        "construct": "t = OfflineEmissionsTracker(country_iso_code='USA', save_to_file=False, "
        "measure_power_secs=1, log_level='error')",
        "start": "t.start()",
        "stop": "t.stop()",
    },
    "carbontracker": {
        "requirement": "carbontracker==2.4.7",
        "import": "from carbontracker.tracker import CarbonTracker",
        "construct": "t = CarbonTracker(epochs=1, update_interval=1, verbose=0, "
        "log_dir=tmpdir, ignore_errors=True)",
        "start": "t.epoch_start()",
        "stop": "t.epoch_end(); t.stop()",
    },
}

CHILD = """
import json, resource, sys, tempfile, time
tmpdir = tempfile.mkdtemp()
def peak_rss_kib():
    # VmHWM belongs to this process image; ru_maxrss would include the parent's before exec
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss0 = peak_rss_kib()
t0 = time.perf_counter()
{import}
t1 = time.perf_counter()
{construct}
t2 = time.perf_counter()
{start}
t3 = time.perf_counter()
c0 = time.process_time()
time.sleep({idle_s})
c1 = time.process_time()
t4 = time.perf_counter()
{stop}
t5 = time.perf_counter()
rss1 = peak_rss_kib()
print("@@" + json.dumps({{
    "construct_ms": (t2 - t1) * 1e3, "start_ms": (t3 - t2) * 1e3, "stop_ms": (t5 - t4) * 1e3,
    "idle_cpu_pct": (c1 - c0) / {idle_s} * 100, "rss_delta_mib": (rss1 - rss0) / 1024,
}}))
"""


def python_for(tool: str) -> Path | None:
    """Interpreter of the tool's environment, creating it on first use; None if pip fails."""
    requirement = TOOLS[tool]["requirement"]
    if requirement is None:
        # pip byte-compiles the anchors at install; an editable checkout may have no .pyc
        # (PYTHONDONTWRITEBYTECODE), which would charge carbon-kfp for compiling its source.
        import carbon_kfp

        compileall.compile_dir(Path(carbon_kfp.__file__).parent, quiet=1)
        return Path(sys.executable)
    venv = VENVS / tool
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"[setup] creating {venv} with {requirement} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", requirement], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"[setup] pip install {requirement} failed:\n{done.stderr[-2000:]}")
            return None
    return python


def import_ms(python: Path, line: str, repeats: int) -> float:
    """Median wall time of ``python -c line`` minus that of ``python -c pass``. Units: ms."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([str(python), "-c", code], check=True, capture_output=True)
        return (time.perf_counter() - t0) * 1e3

    run(line)  # warm the file cache
    bare = statistics.median(run("pass") for _ in range(repeats))
    tool = statistics.median(run(line) for _ in range(repeats))
    return tool - bare


def lifecycle(python: Path, tool: str, idle_s: float) -> dict[str, float] | str:
    spec = TOOLS[tool]
    code = CHILD.format(idle_s=idle_s, **{k: v for k, v in spec.items() if k != "requirement"})
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300
        )
    for line in done.stdout.splitlines():
        if line.startswith("@@"):
            result: dict[str, float] = json.loads(line[2:])
            return result
    return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", choices=sorted(TOOLS), action="append")
    args = parser.parse_args()

    rows: dict[str, dict[str, float] | str] = {}
    for tool in args.only or list(TOOLS):
        python = python_for(tool)
        if python is None:
            rows[tool] = "not installable here"
            continue
        print(f"[run] {tool} ...", flush=True)
        try:
            result = lifecycle(python, tool, args.idle_s)
            if isinstance(result, dict):
                result["import_ms"] = import_ms(python, str(TOOLS[tool]["import"]), args.repeats)
            rows[tool] = result
        except (subprocess.SubprocessError, OSError) as exc:
            rows[tool] = f"failed: {exc}"

    columns = [
        ("import_ms", "import ms", "<= 20"),
        ("construct_ms", "construct ms", ""),
        ("start_ms", "start ms", ""),
        ("stop_ms", "stop ms", "<= 5"),
        ("idle_cpu_pct", "CPU % of 1 core", "<= 0.05"),
        ("rss_delta_mib", "RSS delta MiB", "<= 5"),
    ]
    python_version = sys.version.split()[0]
    print(f"\nidle sampling window {args.idle_s:g} s at a 1 s interval; python {python_version}")
    header = f"{'metric':<18}" + "".join(f"{tool:>16}" for tool in rows) + f"{'target':>12}"
    print(header)
    print("-" * len(header))
    for key, label, target in columns:
        cells = []
        for result in rows.values():
            cells.append(f"{result[key]:>16.3f}" if isinstance(result, dict) else f"{'-':>16}")
        print(f"{label:<18}" + "".join(cells) + f"{target:>12}")
    construct_start = []
    for result in rows.values():
        if isinstance(result, dict):
            construct_start.append(f"{result['construct_ms'] + result['start_ms']:>16.3f}")
        else:
            construct_start.append(f"{'-':>16}")
    print(f"{'construct+start ms':<18}" + "".join(construct_start) + f"{'<= 20':>12}")
    for tool, result in rows.items():
        if not isinstance(result, dict):
            print(f"{tool}: {result}")


if __name__ == "__main__":
    main()
