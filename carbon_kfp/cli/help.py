"""Help text shared by the subcommands: an ``examples:`` block and the exit codes."""

from __future__ import annotations

import argparse
from typing import Any

STEP_EXIT_CODES = "exit codes: 0 ok, 1 a step or the submission failed, 2 bad arguments"
"""Exit codes of the subcommands that run or submit a pipeline."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps a one-paragraph text (a description) to the terminal's width, and keeps a laid-out
    one (an :func:`epilog`: it has line breaks) exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


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
    """``commands.add_parser`` with a wrapped description, then examples and exit codes verbatim.

    ``description`` is one paragraph (wrapped); ``exit_codes`` is laid out as written.
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog(*examples, exit_codes=exit_codes),
        formatter_class=HelpFormatter,
    )
    return parser
