"""Help text shared by the subcommands: an ``examples:`` block and the exit codes."""

from __future__ import annotations

import argparse
from typing import Any

STEP_EXIT_CODES = "exit codes: 0 ok, 1 a step or the submission failed, 2 bad arguments"
"""Exit codes of the subcommands that run or submit a pipeline."""


def epilog(*examples: str, exit_codes: str = STEP_EXIT_CODES) -> str:
    """An argparse epilog: each example on its own indented line, then the exit codes."""
    return "examples:\n" + "".join(f"  {example}\n" for example in examples) + "\n" + exit_codes


def add_subcommand(
    commands: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: tuple[str, ...],
    exit_codes: str = STEP_EXIT_CODES,
) -> argparse.ArgumentParser:
    """``commands.add_parser`` with a description, examples and exit codes laid out verbatim."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog(*examples, exit_codes=exit_codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
