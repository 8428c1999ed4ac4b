"""``sagebert``: train, tune, deploy, compare, promote, invoke and clean up the sagebert image on SageMaker.

Raw boto3 calls only (no SageMaker Python SDK). One module per command (its options and what it
does), the parser wired in ``parser``. Every command returns an exit code: 0 on success, 1 when
AWS or the job reports a failure or a request is refused (one line on stderr with the fix; the
traceback only with --debug), 2 for a command line argparse rejects, 3 when ``update
--require-better`` refuses a model that is not better, 4 when it cannot compare the two models,
5 when ``report --fail-on-drift`` finds drift, 130 when interrupted (``parser.EXIT_CODES``).
"""

from __future__ import annotations

import contextlib
import io
import sys
import traceback
from collections.abc import Sequence

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from ..aws.clients import AwsClients
from ..aws.errors import translate
from ..errors import SagebertError
from .output import INTERRUPTED, OK, USAGE, fail, show_plan
from .parser import build_parser

__all__ = ["build_parser", "main"]


def _region(clients: AwsClients) -> str | None:
    try:
        return clients.session.region_name
    except (BotoCoreError, SagebertError):
        return None


def _dry_run(args, clients: AwsClients) -> int:
    """Run the command with every change recorded instead of sent, then print the plan.

    What the command would say as it goes ("created model ...") is not true of a dry run and is
    dropped; its warnings and errors still reach stderr. The plan goes on stdout once the command
    has got through all its checks.
    """
    plan = clients.start_plan()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = args.handler(args, clients)
    finally:
        clients.end_plan()
    if code != OK:
        return code
    show_plan(plan, as_json=args.json)
    return OK


def main(argv: Sequence[str] | None = None, *, clients: AwsClients | None = None) -> int:
    """Run one command; return its exit code. ``clients`` replaces the boto3 clients (tests)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse already explained
        return exc.code if isinstance(exc.code, int) else USAGE
    # --json of a changing command prints its plan (`report --json` is another thing: its report).
    if hasattr(args, "dry_run") and args.json and not args.dry_run:
        return fail("--json prints a plan, so it goes with --dry-run. Fix: add --dry-run, or drop --json.", USAGE)
    clients = clients or AwsClients(region=args.region, profile=args.profile)
    try:
        if getattr(args, "dry_run", False):
            return _dry_run(args, clients)
        return args.handler(args, clients)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return INTERRUPTED
    except SagebertError as exc:
        if args.debug:
            traceback.print_exc()
        return fail(" ".join(str(exc).split()))
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        if args.debug:
            traceback.print_exc()
        return fail(str(translate(exc, _region(clients))))
    except OSError as exc:  # a local file that cannot be read (AWS connection errors are BotoCoreErrors)
        if args.debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}. Fix: Check the path and that it is readable.")
