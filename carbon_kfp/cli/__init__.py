"""``carbon-kfp`` command line: run · compile · submit · results · exec · report · regions.

One module per group of subcommands; each has ``register(commands)`` that adds its parsers. Each
subcommand imports what it needs when it runs, so ``carbon-kfp exec`` in a container pays only for
the tracker core. Exit codes (:data:`EXIT_CODES`): 0 success, 1 the work failed (a pipeline step,
a file that cannot be read or written), 2 bad usage (arguments or configuration; the message
names the value); ``exec`` returns the child's. Output to a closed pipe (``carbon-kfp regions |
head``) ends quietly with 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from carbon_kfp.cli import compile, pipelines, regions, report, results, submit
from carbon_kfp.cli.help import HelpFormatter, add_subcommand, epilog

EXIT_CODES = """\
exit codes:
  0  ok
  1  the work failed: a pipeline step failed, a file could not be read or written
  2  bad usage: unknown option, bad value or configuration (the message names it)
  exec returns the exit code of the command it ran."""


def build_parser() -> argparse.ArgumentParser:
    """The ``carbon-kfp`` parser with every subcommand registered."""
    from carbon_kfp._version import __version__
    from carbon_kfp.executor import configure_exec_parser, exec_command

    parser = argparse.ArgumentParser(
        prog="carbon-kfp",
        description="Energy and CO2 of ML pipeline steps: run, measure, report, compare regions.",
        epilog=epilog(
            "carbon-kfp run wine --param n_estimators=50",
            "carbon-kfp report local_outputs/wine-quality-20260101-120000 --html report.html",
            "carbon-kfp regions --energy-kwh 1 --year 2024 --top 5",
            "carbon-kfp SUBCOMMAND --help",
            exit_codes=EXIT_CODES,
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"carbon-kfp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    pipelines.register(commands)
    compile.register(commands)
    submit.register(commands)
    results.register(commands)

    exec_ = add_subcommand(
        commands,
        "exec",
        help="run a command as a measured KFP container step",
        description=(
            "Run a command as a measured KFP container step: measure its process tree, forward "
            "signals and its exit code, and write the kpi_co2 Metrics into the executor output."
        ),
        examples=(
            'carbon-kfp exec --executor-output "$EXECUTOR_OUTPUT" --metrics kpi_co2 -- python '
            "train.py",
            "carbon-kfp exec --executor-output out.json --metrics-path kpi_co2.json -- ./train.sh "
            "--epochs 3",
        ),
        exit_codes="exit codes: the command's own; 2 when carbon-kfp's own arguments are bad "
        "(before it starts)",
    )
    configure_exec_parser(exec_)
    exec_.set_defaults(handler=exec_command)

    report.register(commands)
    regions.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbon-kfp`` script; returns the exit code (see :data:`EXIT_CODES`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): nothing more to say. Point stdout at devnull so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ValueError as exc:  # configuration errors carry a message naming the bad value
        print(f"carbon-kfp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"carbon-kfp {args.command}: error: {exc}", file=sys.stderr)
        return 1
