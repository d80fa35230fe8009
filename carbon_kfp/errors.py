"""Exceptions and the warn-once channel shared by every module.

Configuration errors are ``ValueError`` subclasses raised at construction (DESIGN §5); measurement
faults are never raised to the caller but reported once through :func:`warn_once` and kept in the
record.

:mod:`logging` and :mod:`difflib` are imported where they are used, not here: this module is on
``import carbon_kfp``'s path, and the two cost about 3 ms there while most runs never warn.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

LOGGER_NAME = "carbon_kfp"

_seen: set[str] = set()
_seen_lock = threading.Lock()


class CarbonKfpWarning(UserWarning):
    """A measurement was downgraded or a default was assumed; the record says which."""


class ConfigError(ValueError):
    """A bad argument or environment value, named in the message with what was expected."""


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """The ``carbon_kfp`` logger (or a child of it, e.g. ``__name__``), importing logging lazily."""
    import logging

    return logging.getLogger(name)


def log_debug(name: str, message: str, *args: object) -> None:
    """Log ``message % args`` at DEBUG on logger ``name``, without importing logging.

    Only a program that configured logging can see a debug line, and configuring it imports
    :mod:`logging`; when it is not imported yet, nobody is listening and nothing is done.
    """
    if "logging" in sys.modules:
        get_logger(name).debug(message, *args)


def warn_once(message: str) -> None:
    """Emit ``message`` as a :class:`CarbonKfpWarning` and a log line, once per process.

    Never raises: where warnings are turned into errors (``-W error``, pytest's
    ``filterwarnings = error``) the warning is only logged, because a measurement fault must not
    stop the user's training (DESIGN §5).
    """
    with _seen_lock:
        if message in _seen:
            return
        _seen.add(message)
    get_logger().warning(message)
    # A filter may escalate the warning to an exception: the log line above remains.
    with contextlib.suppress(Exception):
        warnings.warn(message, CarbonKfpWarning, stacklevel=3)


def close_matches(
    value: str,
    valid: Iterable[str],
    n: int = 5,
    cutoff: float = 0.5,
    shown: Mapping[str, str] | None = None,
) -> str:
    """``"; closest valid: a, b, c"`` for an error message, or ``""`` when nothing is close.

    ``cutoff`` is :func:`difflib.get_close_matches`' similarity threshold (0-1); ``shown`` maps a
    compared form (e.g. lower case) to how the message spells it.
    """
    import difflib

    matches = difflib.get_close_matches(value, list(valid), n=n, cutoff=cutoff)
    if shown is not None:
        matches = [shown.get(match, match) for match in matches]
    return f"; closest valid: {', '.join(matches)}" if matches else ""


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int
    (dict, "object"),
    (list, "array"),
    (str, "string"),
    (int, "number"),
    (float, "number"),
)


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type: ``object``, ``array``, ``string``, ``null`` ..."""
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "value")


def read_utf8(path: str | os.PathLike[str], shown: str | None = None) -> str:
    """The text of a UTF-8 file (a leading byte-order mark is dropped).

    Args:
        path: the file to read.
        shown: how messages name the file (a URL it was downloaded from); default ``path``.

    Raises:
        ValueError: the file is not UTF-8 text: the message names the file, the first bad byte
            and its offset, and says when the file looks like UTF-16 or binary (NUL bytes).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    name = str(path) if shown is None else shown
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data
    hint = " (it looks like UTF-16 or a binary file)" if utf16 else ""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{name}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"({exc.reason}){hint}; expected a UTF-8 text file"
        ) from None
    if utf16:
        raise ValueError(f"{name}: holds NUL bytes{hint}; expected a UTF-8 text file")
    return text
