"""Check GPU energy measurement on a real NVIDIA GPU: counter vs 10 Hz power, and tracker overhead.

First it runs the body of the ``train_fashion_cnn`` component (Keras 3, the kit's Fashion-MNIST
CNN) for one epoch, as the pipeline's train step would run it: it prints images/s, the
``gpu_method`` and GPU energy of the step's own ``kpi_co2`` record, and the energy of the same
call from the NVML counter and from NVML power integrated at ``--power-hz``. The images are the
Fashion-MNIST training files under ``--fashion-data`` (a folder or any ``data_uri``), else
``--fashion-images`` random images of the same shape (speed and energy do not depend on pixels;
60,000 on ``cuda``, 256 on ``cpu``); ``--fashion-images 0`` skips this part. Keras picks the GPU
itself (PyTorch backend by default).

Then it trains a small CNN on synthetic data with PyTorch for ``--seconds`` (default 60), split into
interleaved blocks with and without the tracker's sampling (ABBA order, so drift in clocks or
temperature cancels). In every "with" block two :class:`~carbon_kfp.sensors.gpu.GpuSensor` measure
the same GPU side by side: one with the NVML total-energy counter (``nvml-energy``), one forced to
integrate NVML power sampled at ``--power-hz`` (``nvml-power``), and a helper thread calls
``sample()`` on both once a second as the tracker does. It prints both energies, their difference,
and the mean step time with and without sampling (each step is synchronised, so host-side overhead
shows up). The overhead measured is that of both sensors together, an upper bound for the tracker.

No GPU (or no PyTorch): prints why and exits 0. ``--device cpu`` with ``CARBON_KFP_NVML_MODULE``
pointing at a fake NVML exercises the script without a GPU (see tests/test_gpu_sensor.py).

Usage:
    python benchmarks/gpu_check.py [--fashion-data DIR] [--seconds 60] [--blocks 6]
        [--json result.json]

Runtime: CUDA init and warm-up (about 5-20 s), the Fashion-MNIST epoch (under a minute on a T4),
and ``--seconds``; under 3 minutes on an H100.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    from carbon_kfp.sensors.base import Reading
    from carbon_kfp.sensors.gpu import GpuSensor
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from carbon_kfp.sensors.base import Reading
    from carbon_kfp.sensors.gpu import GpuSensor


class _Ticker:
    """Calls ``sample()`` on sensors every ``interval_s``, as the tracker's thread does."""

    def __init__(self, sensors: list[GpuSensor], interval_s: float = 1.0) -> None:
        self._sensors = sensors
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-check-ticker", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            for sensor in self._sensors:
                sensor.sample()

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _counter_and_power(
    visible: str | None, power_hz: float
) -> Iterator[tuple[GpuSensor, GpuSensor]]:
    """Two started, ticking sensors on the same GPUs: the energy counter, and power sampled at
    ``power_hz``; both are closed on leaving, also when the measured code raises."""
    counter = GpuSensor(visible_devices=visible)
    power = GpuSensor(visible_devices=visible, method="nvml-power", power_sample_hz=power_hz)
    try:
        counter.start()
        power.start()
        with _Ticker([counter, power]):
            yield counter, power
    finally:
        counter.close()
        power.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time in blocks")
    parser.add_argument("--blocks", type=int, default=6, help="interleaved blocks (even: balanced)")
    parser.add_argument("--warmup-seconds", type=float, default=5.0, help="untimed warm-up")
    parser.add_argument("--power-hz", type=float, default=10.0, help="power sampling rate")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--batch", type=int, default=None, help="default: 256 on cuda, 8 on cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--fashion-data", default="", help="Fashion-MNIST data_uri (folder...)")
    parser.add_argument(
        "--fashion-images",
        type=int,
        default=None,
        help="images for the epoch (default: 60000 on cuda, 256 on cpu); 0 skips it",
    )
    parser.add_argument("--fashion-batch", type=int, default=64, help="the article's batch size")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.blocks < 2:
        parser.error("need --seconds > 0 and --blocks >= 2")
    if args.fashion_images is None:
        args.fashion_images = 60000 if args.device == "cuda" else 256
    if args.fashion_images < 0 or args.fashion_batch < 1:
        parser.error("need --fashion-images >= 0 and --fashion-batch >= 1")
    return args


def build_step(torch: Any, device: Any, batch: int) -> Any:
    """A training step of a small CNN on a fixed synthetic batch; returns a callable."""
    nn = torch.nn
    size = 64 if device.type == "cuda" else 32
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1),
        nn.BatchNorm2d(256),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, 10),
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator(device="cpu").manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()
        synchronize()

    return step


def fashion_epoch(args: argparse.Namespace, visible: str | None) -> dict[str, Any]:
    """One epoch of ``train_fashion_cnn``'s body, with two sensors around the whole call.

    Returns images/s over the tracked fit, the step record's ``gpu_method`` and GPU energy, and
    the call's energy by NVML counter and by power integration. Units: J, s, images/s.
    """
    import tempfile

    import numpy as np
    from kfp import dsl

    from carbon_kfp.components.train_fashion_cnn.component import train_fashion_cnn
    from carbon_kfp.fashion import data

    if args.fashion_data:
        folder, _ = data.resolve_data_dir(args.fashion_data)
        images, labels = data.load_split(folder, "train")
        source = args.fashion_data
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(args.fashion_images, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=args.fashion_images, dtype=np.uint8)
        source = "random images"
    count = min(args.fashion_images, len(labels))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        root = Path(scratch)
        train_data = dsl.Dataset(uri=str(root / "train_data"))
        data.save_split(Path(train_data.path), images[:count], labels[:count])
        kpi = dsl.Metrics(uri=str(root / "kpi_co2"))
        with _counter_and_power(visible, args.power_hz) as (counter, power):
            t0 = time.perf_counter()
            train_fashion_cnn.python_func(
                train_data=train_data,
                model=dsl.Model(uri=str(root / "model")),
                kpi_co2=kpi,
                epochs=1,
                batch_size=args.fashion_batch,
                validation_split=0.0,
                max_train_samples=count,
                compare="",
            )
            counter_r = counter.read()
            power_r = power.read()
            call_s = time.perf_counter() - t0
        record = json.loads(Path(kpi.path).read_text())
    return {
        "source": source,
        "images": count,
        "fit_s": record["duration_s"],
        "images_per_s": count / record["duration_s"],
        "gpu_method": record["gpu_method"],
        "record_gpu_energy_j": record["gpu_energy_kwh"] * 3.6e6,
        "call_s": call_s,
        "counter_method": counter_r.method,
        "counter_energy_j": counter_r.energy_j,
        "power_method": power_r.method,
        "power_energy_j": power_r.energy_j,
        "difference_percent": percent(power_r.energy_j, counter_r.energy_j),
    }


def print_fashion(result: dict[str, Any], power_hz: float) -> None:
    print(
        f"fashion-mnist epoch: {result['images']} images ({result['source']}) in "
        f"{result['fit_s']:.1f} s: {result['images_per_s']:.0f} images/s"
    )
    print(
        f"  step record: gpu_method={result['gpu_method']}, "
        f"GPU energy {result['record_gpu_energy_j']:.1f} J"
    )
    print(
        f"  whole call ({result['call_s']:.1f} s): {result['counter_method']} (counter) "
        f"{result['counter_energy_j']:.1f} J, {result['power_method']} ({power_hz:g} Hz power) "
        f"{result['power_energy_j']:.1f} J: {result['difference_percent']:+.2f} %"
    )


def train_for(step: Any, seconds: float) -> list[float]:
    """Run steps for ``seconds``; the duration of each. Units: s."""
    durations_s: list[float] = []
    end = time.perf_counter() + seconds
    while (start := time.perf_counter()) < end:
        step()
        durations_s.append(time.perf_counter() - start)
    return durations_s


def percent(a: float, b: float) -> float:
    """How much ``a`` exceeds ``b``, in percent of ``b`` (0 when ``b`` is 0)."""
    return (a - b) / b * 100.0 if b else 0.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_begin = time.perf_counter()
    try:
        import torch
    except ImportError:
        print("gpu_check: PyTorch is not installed; nothing to check (pip install torch).")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU is available to PyTorch (torch.cuda.is_available() is False);"
            " nothing to check. Run it on a machine with an NVIDIA GPU and driver."
        )
        return 0

    device = torch.device(args.device)
    visible: str | None = None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
        if uuid is not None:  # measure the GPU we train on, not its idle neighbours
            text = str(uuid)
            visible = text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"

    probe = GpuSensor(visible_devices=visible)
    probe_reading = probe.read()
    probe.close()
    if probe_reading.method == "none" and visible is not None:
        print(f"gpu_check: NVML does not know {visible}; measuring CUDA's visible devices instead")
        visible = None
        probe = GpuSensor()
        probe_reading = probe.read()
        probe.close()
    if probe_reading.method == "none":
        print(
            "gpu_check: NVML sees no GPU to measure (no NVIDIA driver, or no device visible);"
            f" nothing to check. {' '.join(probe.warnings())}".rstrip()
        )
        return 0

    fashion = fashion_epoch(args, visible) if args.fashion_images else None
    if fashion is not None:
        print_fashion(fashion, args.power_hz)

    batch = args.batch or (256 if device.type == "cuda" else 8)
    step = build_step(torch, device, batch)
    train_for(step, args.warmup_seconds)
    step()

    block_s = args.seconds / args.blocks
    with_times: list[float] = []
    without_times: list[float] = []
    blocks: list[dict[str, Any]] = []
    counter_j = power_j = measured_s = 0.0
    power_samples = 0
    counter_r: Reading | None = None
    power_r: Reading | None = None
    notes: list[str] = []
    for index in range(args.blocks):
        sampling = index % 4 in (0, 3)  # ABBA: on, off, off, on, on, off, ...
        if not sampling:
            durations = train_for(step, block_s)
            without_times += durations
            blocks.append({"sampling": False, "steps": len(durations)})
            blocks[-1]["mean_step_ms"] = statistics.fmean(durations) * 1e3
            continue
        with _counter_and_power(visible, args.power_hz) as (counter, power):
            t0 = time.perf_counter()
            durations = train_for(step, block_s)
            counter_r = counter.read()
            power_r = power.read()
            elapsed_s = time.perf_counter() - t0
        samples = sum(d.power_samples for d in power.device_readings())
        notes += [w for w in (*counter.warnings(), *power.warnings()) if w not in notes]
        with_times += durations
        counter_j += counter_r.energy_j
        power_j += power_r.energy_j
        measured_s += elapsed_s
        power_samples += samples
        blocks.append(
            {
                "sampling": True,
                "steps": len(durations),
                "mean_step_ms": statistics.fmean(durations) * 1e3,
                "counter_j": counter_r.energy_j,
                "power_j": power_r.energy_j,
                "seconds": elapsed_s,
            }
        )
    assert counter_r is not None and power_r is not None  # blocks >= 2 includes a sampled one

    with_ms = statistics.fmean(with_times) * 1e3
    without_ms = statistics.fmean(without_times) * 1e3
    result = {
        "device": probe_reading.model,
        "torch": torch.__version__,
        "batch": batch,
        "blocks": blocks,
        "measured_s": measured_s,
        "counter_method": counter_r.method,
        "power_method": power_r.method,
        "counter_energy_j": counter_j,
        "power_energy_j": power_j,
        "difference_percent": percent(power_j, counter_j),
        "power_samples": power_samples,
        "power_samples_per_s_per_gpu": power_samples
        / measured_s
        / max(1.0, probe_reading.capacity),
        "step_ms_with_sampling": with_ms,
        "step_ms_without_sampling": without_ms,
        "overhead_percent": percent(with_ms, without_ms),
        "warnings": notes,
        "fashion": fashion,
        "total_runtime_s": time.perf_counter() - t_begin,
    }

    print(
        f"gpu_check: {result['device']} on {device.type}, torch {torch.__version__}, batch {batch}"
    )
    for i, block in enumerate(blocks):
        tag = "with sampling   " if block["sampling"] else "without sampling"
        extra = (
            f"  counter {block['counter_j']:9.1f} J  power {block['power_j']:9.1f} J"
            if block["sampling"]
            else ""
        )
        print(
            f"  block {i}: {tag} {block['steps']:6d} steps {block['mean_step_ms']:8.3f} ms{extra}"
        )
    print(f"energy over the {measured_s:.1f} s of sampled blocks:")
    print(
        f"  {counter_r.method:<11} (counter)      {counter_j:10.1f} J"
        f"  ({counter_j / measured_s:6.1f} W mean)"
    )
    print(
        f"  {power_r.method:<11} ({args.power_hz:g} Hz power) {power_j:10.1f} J"
        f"  ({power_j / measured_s:6.1f} W mean, {power_samples} samples,"
        f" {result['power_samples_per_s_per_gpu']:.1f} per s per GPU incl. block edges)"
    )
    print(f"  difference: {result['difference_percent']:+.2f} % (power vs counter)")
    print(
        f"step time: {with_ms:.3f} ms with sampling, {without_ms:.3f} ms without:"
        f" overhead {result['overhead_percent']:+.2f} %"
    )
    for note in notes:
        print(f"  note: {note}")
    print(f"total runtime {result['total_runtime_s']:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
