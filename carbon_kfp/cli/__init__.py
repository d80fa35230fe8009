"""``carbon-kfp`` command line: run · compile · submit · results · exec · report · regions.

One module per group of subcommands; each has ``register(commands)`` that adds its parsers. Each
subcommand imports what it needs when it runs, so ``carbon-kfp exec`` in a container pays only for
the tracker core. Exit codes: 0 success, 1 a pipeline step (or the work) failed, 2 bad arguments or
configuration (the message names the value); ``exec`` returns the child's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from carbon_kfp.cli import compile, pipelines, regions, report, results, submit


def build_parser() -> argparse.ArgumentParser:
    """The ``carbon-kfp`` parser with every subcommand registered."""
    from carbon_kfp._version import __version__
    from carbon_kfp.executor import configure_exec_parser, exec_command

    parser = argparse.ArgumentParser(
        prog="carbon-kfp", description="Energy and CO2 of ML pipeline steps."
    )
    parser.add_argument("--version", action="version", version=f"carbon-kfp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pipelines.register(commands)
    compile.register(commands)
    submit.register(commands)
    results.register(commands)

    exec_ = commands.add_parser("exec", help="run a command as a measured KFP container step")
    configure_exec_parser(exec_)
    exec_.set_defaults(handler=exec_command)

    report.register(commands)
    regions.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbon-kfp`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ValueError as exc:  # configuration errors carry a message naming the bad value
        print(f"carbon-kfp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"carbon-kfp {args.command}: error: {exc}", file=sys.stderr)
        return 1
