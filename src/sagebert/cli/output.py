"""How the CLI speaks: results on stdout, warnings and errors on stderr, each one line."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..aws.endpoints import Created, Deleted, Event, Kept, Note
from ..aws.plan import Plan

# Exit codes (README, docs/aws.md): 0 success, 1 failure, 2 usage, 3 not promoted by the metric gate
# (not better, or within noise), 4 the gate cannot compare the two models, 130 interrupted.
OK, FAILED, USAGE, NOT_BETTER, NOT_COMPARABLE, INTERRUPTED = 0, 1, 2, 3, 4, 130


def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def fail(text: str, code: int = FAILED) -> int:
    print(f"error: {text}", file=sys.stderr, flush=True)
    return code


def duration(seconds: float | int | None) -> str:
    """``3725`` → ``1h02m05s``; ``95`` → ``1m35s``."""
    seconds = int(seconds or 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def console_url(region: str | None, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{path}"


def show(events: Iterable[Event]) -> None:
    """One line per thing created, deleted, kept or noted."""
    for event in events:
        if isinstance(event, Created):
            say(f"created {event.kind} {event.name}")
        elif isinstance(event, Deleted):
            say(f"deleted {event.kind} {event.name}" + (f" ({event.why})" if event.why else ""))
        elif isinstance(event, Kept):
            warn(f"kept {event.kind} {event.name}: {event.why}")
        elif isinstance(event, Note):
            say(event.text)


def show_plan(plan: Plan, as_json: bool) -> None:
    """The dry run's requests in order: with ``as_json`` one JSON line per change on stdout (the
    reads on stderr, so stdout is the plan alone); else every request, reads marked ``read:``."""
    if as_json:
        for step in plan.steps:
            if step.read:
                print(f"read: {step.summary()}", file=sys.stderr, flush=True)
            else:
                say(step.as_json())
        return
    changes = len(plan.changes)
    say(f"Plan ({changes} change{'s' if changes != 1 else ''}; dry run: nothing was changed):")
    number = 0
    for step in plan.steps:
        if step.read:
            say(f"  read: {step.summary()}")
        else:
            number += 1
            say(f"  {number}. {step.summary()}")
    if not changes:
        say("  nothing would change")
