"""Test plumbing for re-entrancy: run a call with a hang detector, re-enter a sensor mid-call.

The tracker's SIGTERM handler runs on the main thread and may call a sensor while that thread is
already inside one of the sensor's methods, holding its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from carbon_kfp.sensors.base import Reading, Sensor

T = TypeVar("T")


def finishes(call: Callable[[], T], timeout_s: float = 10.0) -> T:
    """``call()`` on another thread; fails the test if it hangs (a deadlock) instead of hanging."""
    results: list[T] = []
    worker = threading.Thread(target=lambda: results.append(call()), daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"{call} did not return within {timeout_s} s (deadlock?)"
    assert results, f"{call} raised"
    return results[0]


def reenter_once(sensor: Sensor, owner: Any, method: str) -> list[Reading]:
    """Make ``owner.method`` (a call the sensor makes under its lock) call ``sensor.read()`` and
    ``sensor.sample()`` once, as a signal handler would; returns the nested readings."""
    nested: list[Reading] = []
    armed = [True]  # fire once, also if the nested call reaches here again
    real = getattr(owner, method)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if armed:
            armed.clear()
            nested.append(sensor.read())
            sensor.sample()
        return real(*args, **kwargs)

    setattr(owner, method, interrupted)
    return nested
