"""carbon-kfp and CodeCarbon side by side in one limited container: what each charges for.

Runs ``carbon-kfp-cpu:local`` (``make images-local``) with ``docker run --cpus=CPUS
--memory=MEMORY``, installs CodeCarbon into a folder of the container as its non-root user (pip
reaches the index through ``--network host`` and the host's CA bundle), then starts both trackers
around one busy child process and prints what each recorded: CPUs, memory, CPU utilisation and
power, and energy.

Usage: ``python benchmarks/container_scope.py [--cpus 1] [--memory 2g] [--busy-s 5]``
(needs a Docker daemon; ``images/local/dockerd.sh`` starts one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CODECARBON = "codecarbon==3.3.2"

INSIDE = r"""
import json, subprocess, sys
from carbon_kfp import EmissionsTracker
from codecarbon import OfflineEmissionsTracker

busy_s = float(sys.argv[1])
busy = "import time\nend = time.monotonic() + %r\nwhile time.monotonic() < end: pass" % busy_s
ours = EmissionsTracker(country_iso_code="DEU", output_dir=None, measure_interval_s=1.0)
theirs = OfflineEmissionsTracker(
    country_iso_code="DEU", save_to_file=False, log_level="error", measure_power_secs=1
)
ours.start()
theirs.start()
subprocess.run([sys.executable, "-c", busy], check=True)
theirs.stop()
record = ours.stop()
cc = theirs.final_emissions_data
print(json.dumps({
    "carbon-kfp": {
        "method": f"{record.scope} / {record.cpu_method}",
        "cpus": record.cpu_count,
        "memory_gib": record.ram_total_size_gib,
        "cpu_utilization_percent": record.cpu_utilization_percent,
        "cpu_power_w": record.cpu_power_w,
        "energy_kwh": record.energy_kwh,
    },
    "codecarbon": {
        "method": f"{cc.tracking_mode} / {cc.cpu_model}",
        "cpus": cc.cpu_count,
        "memory_gib": cc.ram_total_size,
        "cpu_utilization_percent": cc.cpu_utilization_percent,
        "cpu_power_w": cc.cpu_power,
        "energy_kwh": cc.energy_consumed,
    },
}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="carbon-kfp-cpu:local")
    parser.add_argument("--cpus", default="1")
    parser.add_argument("--memory", default="2g")
    parser.add_argument("--busy-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    script = (
        f"pip install -q --no-cache-dir --target /tmp/cc {CODECARBON} >&2 && "
        f'PYTHONPATH=/tmp/cc python -c "$0" {args.busy_s}'
    )
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "-v", "/etc/ssl/certs:/etc/ssl/certs:ro",
         f"--cpus={args.cpus}", f"--memory={args.memory}", args.image,
         "sh", "-c", script, INSIDE],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        return done.returncode
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"docker run --cpus={args.cpus} --memory={args.memory}, {args.busy_s:g} s busy child")
    rows = ["method", "cpus", "memory_gib", "cpu_utilization_percent", "cpu_power_w", "energy_kwh"]
    print(f"{'':26} {'carbon-kfp':>28} {CODECARBON:>28}")
    for row in rows:
        ours, theirs = results["carbon-kfp"][row], results["codecarbon"][row]
        fmt = (lambda v: f"{v:.4g}") if isinstance(ours, float) else str
        print(f"{row:26} {fmt(ours):>28} {fmt(theirs) if theirs is not None else '-':>28}")
    ratio = results["codecarbon"]["energy_kwh"] / results["carbon-kfp"]["energy_kwh"]
    print(f"CodeCarbon energy / carbon-kfp energy: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
