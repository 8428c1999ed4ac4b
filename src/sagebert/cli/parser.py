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
    rollback,
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
    rollback,
    autoscale,
    invoke,
    transform,
    status,
    delete,
)


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
    return parser
