#!/usr/bin/env python3
"""A bounded load test of a live endpoint, with a latency and an error budget.

    python scripts/load_test.py --endpoint NAME [--requests 200] [--concurrency 4]
        [--p95-ms 1000] [--max-error-rate 0.01] [--summary FILE]

Sends ``--requests`` InvokeEndpoint calls (a few tweets each, the way `sagebert invoke` sends
them), ``--concurrency`` at a time, and checks the answers: each must parse as one prediction per
text. Exit 0 when the 95th-percentile latency and the error rate are within budget, 1 otherwise,
2 for a bad command line; the figures go to stdout and, with ``--summary`` (the CI passes
$GITHUB_STEP_SUMMARY), as a Markdown table. The CI workflow runs it against the staging endpoint
before production's reviewers are asked to approve.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from sagebert.aws.clients import AwsClients
from sagebert.aws.endpoints import invoke_endpoint
from sagebert.aws.invocation import CONTENT_TYPES, InvocationError, invocation_body, parse_predictions

TEXTS = (
    "Just happened a terrible car crash",
    "Forest fire near La Ronge Sask. Canada",
    "I love fruits",
    "Heard about the earthquake? Buildings shaking downtown",
    "What a goooooooaaaaaal!!!!!!",
)


@dataclass(frozen=True)
class Budget:
    """What a passing run may not exceed."""

    p95_ms: float
    max_error_rate: float


@dataclass(frozen=True)
class Outcome:
    """Per-request latencies (ms) of the answers that were good, and the errors, by message."""

    latencies_ms: tuple[float, ...]
    errors: tuple[str, ...]

    @property
    def requests(self) -> int:
        """How many requests were sent."""
        return len(self.latencies_ms) + len(self.errors)

    @property
    def error_rate(self) -> float:
        """The share of requests that failed (1 when none was sent)."""
        return len(self.errors) / self.requests if self.requests else 1.0

    def percentile_ms(self, fraction: float) -> float | None:
        """The nearest-rank percentile of the good answers' latencies (None when there are none)."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def problems(outcome: Outcome, budget: Budget) -> list[str]:
    """Why ``outcome`` is over ``budget`` (empty: within it)."""
    found = []
    if outcome.error_rate > budget.max_error_rate:
        found.append(
            f"error rate {outcome.error_rate:.2%} ({len(outcome.errors)} of {outcome.requests}) is over "
            f"{budget.max_error_rate:.2%}"
        )
    p95 = outcome.percentile_ms(0.95)
    if p95 is None or p95 > budget.p95_ms:
        shown = "no good answer" if p95 is None else f"{p95:.0f} ms"
        found.append(f"p95 latency {shown} is over {budget.p95_ms:g} ms")
    return found


def run_load(call: Callable[[int], None], requests: int, concurrency: int) -> Outcome:
    """Call ``call(i)`` for i in range(requests), ``concurrency`` at a time; time each good one."""

    def timed(i: int) -> tuple[float | None, str | None]:
        start = time.perf_counter()
        try:
            call(i)
        except (ClientError, BotoCoreError, InvocationError) as exc:
            return None, " ".join(str(exc).split())
        return (time.perf_counter() - start) * 1000, None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(timed, range(requests)))
    return Outcome(
        tuple(ms for ms, error in results if error is None), tuple(error for _, error in results if error is not None)
    )


def report(endpoint: str, outcome: Outcome, budget: Budget, found: Sequence[str]) -> str:
    """The result as a Markdown table (for the job summary)."""
    p50, p95 = outcome.percentile_ms(0.5), outcome.percentile_ms(0.95)
    shown = ["-" if v is None else f"{v:.0f} ms" for v in (p50, p95)]
    verdict = "within budget" if not found else "OVER BUDGET: " + "; ".join(found)
    lines = [
        f"### Load test of {endpoint}: {verdict}",
        "",
        "| requests | errors | p50 | p95 (budget) | error rate (budget) |",
        "|---|---|---|---|---|",
        f"| {outcome.requests} | {len(outcome.errors)} | {shown[0]} | {shown[1]} ({budget.p95_ms:g} ms) "
        f"| {outcome.error_rate:.2%} ({budget.max_error_rate:.2%}) |",
    ]
    if outcome.errors:
        lines += ["", f"First error: `{outcome.errors[0]}`"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, clients: AwsClients | None = None) -> int:
    """Run the load test the command line describes; the exit code (``clients``: tests)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--p95-ms", type=float, default=1000.0)
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--summary", help="append the Markdown table to this file (e.g. $GITHUB_STEP_SUMMARY)")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 10000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1-10000 and --concurrency 1-64 (a bounded test)")
    if not (math.isfinite(args.p95_ms) and args.p95_ms > 0 and 0 <= args.max_error_rate < 1):
        parser.error("--p95-ms must be a positive number and --max-error-rate between 0 and 1")
    clients = clients or AwsClients(region=args.region)
    content_type = CONTENT_TYPES["json"]
    budget = Budget(args.p95_ms, args.max_error_rate)

    def call(i: int) -> None:
        # Each request a different pair of texts, so no cache in between answers a repeat.
        texts = [TEXTS[i % len(TEXTS)], f"{TEXTS[(i + 1) % len(TEXTS)]} #{i}"]
        answer = invoke_endpoint(clients, args.endpoint, invocation_body(texts, content_type), content_type)
        parse_predictions(answer, len(texts))

    outcome = run_load(call, args.requests, args.concurrency)
    found = problems(outcome, budget)
    table = report(args.endpoint, outcome, budget, found)
    print(table, end="")
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as summary:
            summary.write(table)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
