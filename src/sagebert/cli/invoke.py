"""`sagebert invoke`: classify texts with a real-time endpoint, or hand an S3 object to an async one."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from botocore.exceptions import ClientError

from ..aws import endpoints
from ..aws.build.common import S3Location
from ..aws.clients import AwsClients
from ..aws.errors import is_not_found
from ..aws.invocation import CONTENT_TYPES, InvocationError, async_content_type, invocation_body, parse_predictions
from ..aws.validation import matches_pattern, shape_limits
from . import options
from .output import FAILED, INTERRUPTED, OK, fail, say


def register(sub) -> None:
    p = sub.add_parser("invoke", help="classify texts with an endpoint (or --async: an S3 object)")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", metavar="PATH", help="more texts, one per line ('-' = stdin)")
    p.add_argument(
        "--content-type",
        choices=sorted(CONTENT_TYPES),
        default=None,
        help="request format (default json; with --async: from the object's suffix)",
    )
    p.add_argument("--target-model", metavar="NAME.tar.gz", help="multi-model endpoints: the model to use")
    p.add_argument("--raw", action="store_true", help="print the endpoint's answer as it is")
    p.add_argument(
        "--inference-id",
        type=inference_id,
        metavar="ID",
        help="recorded with the request in the data capture (1-64 printable ASCII characters), to match it there",
    )
    asynchronous = p.add_argument_group("asynchronous endpoints")
    asynchronous.add_argument(
        "--async", dest="async_input", metavar="S3_URI", help="InvokeEndpointAsync on this object (up to 1 GB)"
    )
    asynchronous.add_argument("--wait", action="store_true", help="with --async: wait for the answer and print it")
    options.waiting(asynchronous, timeout=True)
    p.set_defaults(handler=run)


def inference_id(text: str) -> str:
    """An argparse type: InvokeEndpoint's InferenceId, checked by the rules of the service model
    (1-64 printable ASCII characters, the first not a space; botocore checks only the length)."""
    limits = shape_limits("InferenceId", "sagemaker-runtime")
    if not limits["min"] <= len(text) <= limits["max"] or not matches_pattern(limits["pattern"], text):
        raise argparse.ArgumentTypeError(
            f"{text[:70]!r} is not an inference id: {limits['min']}-{limits['max']} printable ASCII characters, "
            "the first not a space"
        )
    return text


def read_texts(texts: Sequence[str], path: str | None) -> list[str]:
    """The texts given, and one per non-blank line of ``path`` ('-' = stdin); unreadable files are
    a one-line error saying why."""
    found = list(texts)
    if not path:
        return found
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
    except UnicodeDecodeError as exc:
        raise InvocationError(
            f"--file {path} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 8]!r}).",
            f"Save it as UTF-8 (e.g. iconv -f WINDOWS-1252 -t UTF-8 {path} > texts.txt).",
        ) from None
    except OSError as exc:
        raise InvocationError(
            f"Cannot read --file {path}: {exc.strerror or exc}.", "Check the path (one text per line; '-' reads stdin)."
        ) from None
    return found + [line for line in lines if line.strip()]


def prediction_lines(texts: Sequence[str], predictions) -> list[str]:
    """One line per text: the label (padded), its probability, the text (and [truncated])."""
    width = max(len(p.label) for p in predictions)
    lines = []
    for text, prediction in zip(texts, predictions, strict=True):
        probability = f"{prediction.probability:.3f}" if prediction.probability is not None else "  -  "
        mark = "  [truncated]" if prediction.truncated else ""
        lines.append(f"{prediction.label:<{width}}  {probability}  {text}{mark}")
    return lines


def _read_answer(clients: AwsClients, uri: str) -> bytes | None:
    location = S3Location.parse(uri, "async answer location")
    try:
        return clients.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def _run_async(args, clients: AwsClients) -> int:
    if args.texts or args.file or args.target_model:
        raise InvocationError(
            "--async sends an object already in S3; texts, --file and --target-model do not apply.",
            "Upload the texts (e.g. aws s3 cp texts.jsonl s3://BUCKET/in/) and pass --async s3://BUCKET/in/texts.jsonl.",
        )
    location = S3Location.parse(args.async_input, "--async input")
    content_type = CONTENT_TYPES[args.content_type] if args.content_type else async_content_type(location.key)
    answer = endpoints.invoke_endpoint_async(clients, args.endpoint, location.uri, content_type, args.inference_id)
    say(f"Accepted: inference {answer.get('InferenceId', '-')} ({content_type}).")
    say(f"  answer             {answer['OutputLocation']}")
    if answer.get("FailureLocation"):
        say(f"  failure            {answer['FailureLocation']}")
    if not args.wait:
        return OK
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.timeout:
            body = _read_answer(clients, answer["OutputLocation"])
            if body is not None:
                say(body.decode("utf-8", "replace").rstrip("\n"))
                return OK
            failure = _read_answer(clients, answer["FailureLocation"]) if answer.get("FailureLocation") else None
            if failure is not None:
                return fail(f"The endpoint failed this request: {' '.join(failure.decode('utf-8', 'replace').split())}")
            time.sleep(args.poll_interval)
    except KeyboardInterrupt:
        return INTERRUPTED
    return fail(f"No answer after {args.timeout} s; it will appear at {answer['OutputLocation']}.", FAILED)


def run(args, clients: AwsClients) -> int:
    if args.async_input:
        return _run_async(args, clients)
    content_type = CONTENT_TYPES[args.content_type or "json"]
    texts = read_texts(args.texts, args.file)
    body = invocation_body(texts, content_type)
    answer = endpoints.invoke_endpoint(clients, args.endpoint, body, content_type, args.target_model, args.inference_id)
    if args.raw:
        say(answer.decode("utf-8", "replace"))
        return OK
    for line in prediction_lines(texts, parse_predictions(answer, len(texts))):
        say(line)
    return OK
