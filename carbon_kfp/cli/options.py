"""Options shared by subcommands, and ``KEY=VALUE`` parsing (standard library only).

Kept apart from the subcommands' modules so that building the parser imports neither kfp nor
google-cloud: ``carbon-kfp exec`` in a container carries only the tracker core.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from carbon_kfp.errors import ConfigError


def add_param_option(parser: argparse.ArgumentParser) -> None:
    """``--param NAME=VALUE`` (repeatable), shared by ``run`` and ``submit``."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable), e.g. --param n_estimators=100",
    )


def parse_pairs(pairs: Sequence[str], option: str, name: str = "NAME") -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}`` (names stripped, values as given).

    Args:
        pairs: the repeated option's values.
        option: the option, for messages (``"--param"``, ``"--label"``).
        name: what the left side is called in messages (``"NAME"``, ``"KEY"``).

    Raises:
        ConfigError: an item without ``=`` or with an empty name, or a name given twice.
    """
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} {pair!r}; expected {name}=VALUE")
        if key in parsed:
            raise ConfigError(f"{option} {key!r} given twice")
        parsed[key] = value
    return parsed
