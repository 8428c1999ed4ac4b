"""The `sagebert` command line: every command's parser, wired in one place."""

from __future__ import annotations

import argparse

from .. import __version__
from . import (
    autoscale,
    compare,
    delete,
    deploy,
    invoke,
    options,
    register,
    report,
    rollback,
    shadow,
    status,
    stop,
    train,
    transform,
    tune,
    update,
    upload_data,
)

DESCRIPTION = "Train, tune, deploy, compare, promote, invoke and clean up the sagebert image on SageMaker."
EXIT_CODES = """exit codes:
  0    success (update --require-better: promoted)
  1    failure: AWS refused, a job or deployment failed, bad local input
  2    bad command line (e.g. --require-better with a metric that is not eval:*)
  3    not promoted: update --require-better found the new model not better (or within noise)
  4    cannot compare: a model lacks the metric or test predictions, or the test data differ
  5    drifted: report --fail-on-drift found a measure past its threshold
  130  interrupted"""
# The order `sagebert --help` lists them in: the lifecycle, start to end.
COMMANDS = (
    upload_data,
    train,
    tune,
    stop,
    compare,
    register,
    deploy,
    update,
    shadow,
    rollback,
    autoscale,
    invoke,
    report,
    transform,
    status,
    delete,
)
# The commands that change something in AWS: each takes --dry-run (and --json) to plan instead.
CHANGING = (upload_data, train, tune, stop, register, deploy, update, shadow, rollback, autoscale, transform, delete)


def build_parser() -> argparse.ArgumentParser:
    """The ``sagebert`` command line."""
    parser = argparse.ArgumentParser(
        prog="sagebert",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sagebert {__version__}")
    options.common(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    options.common(common, suppress=True)
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=lambda **kw: argparse.ArgumentParser(parents=[common], **kw),
    )
    for command in COMMANDS:
        command.register(sub)
    for command in CHANGING:
        options.planning(sub.choices[command_name(command)])
    return parser


def command_name(command) -> str:
    """``upload_data`` module → ``upload-data`` command."""
    return command.__name__.rsplit(".", 1)[-1].replace("_", "-")
