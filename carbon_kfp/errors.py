"""Exceptions and the warn-once channel shared by every module.

Configuration errors are ``ValueError`` subclasses raised at construction (DESIGN §5); measurement
faults are never raised to the caller but reported once through :func:`warn_once` and kept in the
record.
"""

from __future__ import annotations

import difflib
import logging
import threading
import warnings
from collections.abc import Iterable

logger = logging.getLogger("carbon_kfp")

_seen: set[str] = set()
_seen_lock = threading.Lock()


class CarbonKfpWarning(UserWarning):
    """A measurement was downgraded or a default was assumed; the record says which."""


class ConfigError(ValueError):
    """A bad argument or environment value, named in the message with what was expected."""


def warn_once(message: str) -> None:
    """Emit ``message`` as a :class:`CarbonKfpWarning` and a log line, once per process."""
    with _seen_lock:
        if message in _seen:
            return
        _seen.add(message)
    logger.warning(message)
    warnings.warn(message, CarbonKfpWarning, stacklevel=3)


def close_matches(value: str, valid: Iterable[str], n: int = 5) -> str:
    """``"; closest valid: a, b, c"`` for an error message, or ``""`` when nothing is close."""
    matches = difflib.get_close_matches(value, list(valid), n=n, cutoff=0.5)
    return f"; closest valid: {', '.join(matches)}" if matches else ""
