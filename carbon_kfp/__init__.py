"""carbon-kfp: energy and CO2 of ML pipeline steps, shown where ML engineers already look.

``import carbon_kfp`` loads only the standard library and the tracker core; KFP integration lives
in :mod:`carbon_kfp.kfp` (``carbon_kfp.track`` is a lazy alias of ``carbon_kfp.kfp.track``).
"""

from __future__ import annotations

from typing import Any

from carbon_kfp._version import __version__
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.record import EmissionsRecord
from carbon_kfp.tracker import CarbonBudgetExceeded, EmissionsTracker, track_emissions

__all__ = [
    "CarbonBudgetExceeded",
    "CarbonKfpWarning",
    "ConfigError",
    "EmissionsRecord",
    "EmissionsTracker",
    "__version__",
    "track",
    "track_emissions",
]


def __getattr__(name: str) -> Any:
    if name == "track":  # imports kfp: only when asked for
        from carbon_kfp.kfp import track

        return track
    raise AttributeError(f"module 'carbon_kfp' has no attribute {name!r}")
