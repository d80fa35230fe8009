"""A compact power timeline per component, bounded in memory whatever the run length.

:class:`PowerTimeline` takes the tracker's cumulative snapshots and keeps contiguous buckets of
(end time, joules per device). When ``max_points`` buckets are full, neighbouring pairs merge (their
joules add, so each bucket's mean power stays exact) and new buckets become twice as wide. Memory is
at most ``max_points`` buckets plus the open one; a sample costs O(1) amortised (a merge of N
buckets happens at most once per N/2 new buckets).

:class:`Heartbeat` prints elapsed time and current power to stderr every ``interval_s`` while a
long step runs (``carbon-kfp run`` turns it on for local steps through
:data:`HEARTBEAT_ENV_VAR`). Standard library only.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from carbon_kfp.record import DEVICES, Snapshot

#: Default bound on the number of timeline points per record.
MAX_POINTS = 1000
#: Seconds between heartbeat lines; unset or not a positive number: no heartbeat.
HEARTBEAT_ENV_VAR = "CARBON_KFP_HEARTBEAT_S"
#: Every heartbeat line starts with this (``carbon-kfp run`` picks them out of kfp's log).
HEARTBEAT_PREFIX = "carbon-kfp heartbeat:"


class PowerTimeline:
    """Mean power per device over contiguous time buckets, at most ``max_points`` of them.

    Not thread-safe: the tracker calls it under its lock.

    Args:
        max_points: bound on the buckets kept (an even number >= 2).

    Raises:
        ValueError: ``max_points`` is odd or < 2.
    """

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        if max_points < 2 or max_points % 2:
            raise ValueError(f"max_points={max_points!r}; expected an even number >= 2")
        self._max_points = max_points
        self._ends_s: list[float] = []
        self._joules: list[tuple[float, ...]] = []
        self._width_s = 0.0  # a bucket closes once it spans this long (0: every sample)
        self._last: Snapshot | None = None
        self._anchor_s = 0.0  # the first snapshot's time: where the first bucket starts
        self._open_start_s = 0.0
        self._open_end_s = 0.0
        self._open_j = [0.0] * len(DEVICES)
        self._open_has_data = False

    def __len__(self) -> int:
        """Buckets held, the open one included."""
        return len(self._ends_s) + self._open_has_data

    def add(self, snapshot: Snapshot) -> None:
        """Account the energy between the previous snapshot and this one (the first only anchors).

        Snapshots that do not move time forward are ignored; counters that go backwards count 0.
        """
        last, self._last = self._last, snapshot
        if last is None:
            self._anchor_s = self._open_start_s = self._open_end_s = snapshot.elapsed_s
            return
        if snapshot.elapsed_s <= last.elapsed_s:
            self._last = last
            return
        for index, device in enumerate(DEVICES):
            delta_j = snapshot.reading(device).energy_j - last.reading(device).energy_j
            self._open_j[index] += delta_j if delta_j > 0 and math.isfinite(delta_j) else 0.0
        self._open_end_s = snapshot.elapsed_s
        self._open_has_data = True
        if self._open_end_s - self._open_start_s >= self._width_s:
            self._close_open_bucket()

    def _close_open_bucket(self) -> None:
        self._ends_s.append(self._open_end_s)
        self._joules.append(tuple(self._open_j))
        self._open_start_s = self._open_end_s
        self._open_j = [0.0] * len(DEVICES)
        self._open_has_data = False
        if len(self._ends_s) >= self._max_points:
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        ends, joules = self._ends_s, self._joules
        self._ends_s = ends[1::2]
        self._joules = [
            tuple(a + b for a, b in zip(first, second, strict=True))
            for first, second in zip(joules[0::2], joules[1::2], strict=True)
        ]
        starts = [self._anchor_s, *self._ends_s[:-1]]
        self._width_s = max(end - start for start, end in zip(starts, self._ends_s, strict=True))

    def points(self) -> dict[str, tuple[float, ...]]:
        """The timeline as columns: ``t_s`` (bucket end, s since the first snapshot) and
        ``<device>_w`` (mean power, W).

        Buckets are contiguous; the first starts at 0 (the first snapshot, the tracker's start).
        The open bucket is included. Times are rounded to ms, powers to mW.
        """
        ends = list(self._ends_s)
        joules = list(self._joules)
        if self._open_has_data:
            ends.append(self._open_end_s)
            joules.append(tuple(self._open_j))
        starts = [self._anchor_s, *ends][: len(ends)]
        anchor_s = self._anchor_s
        columns: dict[str, tuple[float, ...]] = {"t_s": tuple(round(t - anchor_s, 3) for t in ends)}
        for index, device in enumerate(DEVICES):
            columns[f"{device}_w"] = tuple(
                round(bucket[index] / (end - start), 3) if end > start else 0.0
                for start, end, bucket in zip(starts, ends, joules, strict=True)
            )
        return columns

    def latest_power_w(self) -> dict[str, float]:
        """Mean power per device over the newest bucket (the open one if it has data). Units: W.

        O(1): the tracker asks on every sample while a heartbeat is on. Rounded like
        :meth:`points`; 0 W per device before the first bucket.
        """
        joules: Sequence[float]
        if self._open_has_data:
            start_s, end_s, joules = self._open_start_s, self._open_end_s, self._open_j
        elif self._ends_s:
            start_s = self._ends_s[-2] if len(self._ends_s) > 1 else self._anchor_s
            end_s, joules = self._ends_s[-1], self._joules[-1]
        else:
            return {device: 0.0 for device in DEVICES}
        span_s = end_s - start_s
        return {
            device: round(joules[index] / span_s, 3) if span_s > 0 else 0.0
            for index, device in enumerate(DEVICES)
        }


class Heartbeat:
    """Writes ``carbon-kfp heartbeat: 1 min 20 s elapsed, 45.3 W now (...)`` every ``interval_s``.

    Args:
        interval_s: seconds between lines; ``None`` or <= 0 disables it.
        stream: where lines go (default ``sys.stderr``).
    """

    def __init__(self, interval_s: float | None, stream: TextIO | None = None) -> None:
        self._interval_s = interval_s if interval_s and interval_s > 0 else None
        self._stream = stream
        self._next_s = self._interval_s or 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Heartbeat:
        """A heartbeat at :data:`HEARTBEAT_ENV_VAR` seconds; off when unset or not a number > 0."""
        raw = (os.environ if environ is None else environ).get(HEARTBEAT_ENV_VAR, "")
        try:
            interval_s = float(raw)
        except ValueError:
            interval_s = 0.0
        return cls(interval_s if math.isfinite(interval_s) else None)

    @property
    def enabled(self) -> bool:
        return self._interval_s is not None

    def beat(self, elapsed_s: float, power_w: Mapping[str, float]) -> bool:
        """Write a line if one is due at ``elapsed_s``; return whether it wrote. Never raises."""
        if self._interval_s is None or elapsed_s < self._next_s:
            return False
        from carbon_kfp.units import format_duration, format_power

        # The next multiple of the interval after now, in O(1) whatever the gap (a loop adding
        # a tiny interval to a large time would never catch up).
        self._next_s = (math.floor(elapsed_s / self._interval_s) + 1) * self._interval_s
        parts = ", ".join(
            f"{device} {format_power(power_w.get(device, 0.0))}" for device in DEVICES
        )
        total = format_power(math.fsum(power_w.values()))
        line = f"{HEARTBEAT_PREFIX} {format_duration(elapsed_s)} elapsed, {total} now ({parts})\n"
        try:
            stream = self._stream or sys.stderr
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):  # a closed stream must not stop the user's training
            return False
        return True
