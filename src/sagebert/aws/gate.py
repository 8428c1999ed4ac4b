"""The metric gate: is a candidate model better than the one that serves now?

A model's final metrics come from its training job — DescribeTrainingJob's FinalMetricDataList
(what SageMaker read from the log with the MetricDefinitions), else the metrics.json that
training writes into the model artifact — and are recorded on every model sagebert creates as
tags ``sagebert:metric:<name>`` (and on registered packages as customer metadata). Losses must
go down, every other metric up. Pure functions: values in, values out.

Only the quality metrics (``eval:*``, measured on the test channel after the last epoch) can gate:
``train:learning_rate`` or ``train:epoch`` being "higher" says nothing about a model. Two models
are compared only when they were scored on the same test data: training records the sha256 of the
evaluation examples (``eval_data_sha256`` in metrics.json, the ``sagebert:eval-data-sha256`` tag on
models); and, asked to, the gate runs an exact McNemar test on both models' per-example
predictions of that test set (test_predictions.json in the artifact) to refuse an improvement
that is within noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..metric_lines import EVAL_DATA_KEY, METRIC_DEFINITIONS, PREDICTIONS_FILE

METRIC_TAG_PREFIX = "sagebert:metric:"
METRIC_NAMES = tuple(definition["Name"] for definition in METRIC_DEFINITIONS)
EVAL_METRICS = tuple(name for name in METRIC_NAMES if name.startswith("eval:"))
# What a gate or a tuning objective may compare: the eval metrics only (train:* describe the run).
QUALITY_METRICS = EVAL_METRICS
EVAL_DATA_TAG = "sagebert:eval-data-sha256"  # on the models sagebert creates, when known
# The default --min-delta. Retraining the same recipe with another seed moves eval:f1 and
# eval:accuracy by up to a point on the bundled 1,904-row test split (BENCHMARKS.md: F1
# 0.7975-0.8075, accuracy 82.8-83.8 % over four seeds), so a smaller change is what luck gives.
DEFAULT_MIN_DELTA = 0.01
DEFAULT_SIGNIFICANCE_LEVEL = 0.05
# Differences this small are float noise (0.3 - 0.2 is 0.09999999999999998), not an improvement.
RESOLUTION = 1e-12


def metric_goal(name: str) -> str:
    """``Minimize`` for losses, ``Maximize`` for every other sagebert metric."""
    return "Minimize" if "loss" in name.split(":")[-1] else "Maximize"


def quality_metric_problem(name: str) -> str | None:
    """Why ``name`` cannot gate (or be a tuning objective), or None when it can."""
    if name in QUALITY_METRICS:
        return None
    known = "one of sagebert's metrics but not a quality metric" if name in METRIC_NAMES else "not a sagebert metric"
    return (
        f"{name!r} is {known}: compare only "
        + ", ".join(f"{m} ({'lower' if metric_goal(m) == 'Minimize' else 'higher'} is better)" for m in QUALITY_METRICS)
        + ", measured on the test channel"
    )


def final_metrics(description: Mapping) -> dict[str, float]:
    """DescribeTrainingJob's FinalMetricDataList as ``{name: value}``."""
    return {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList") or ()}


def metrics_from_model_json(values: Mapping) -> dict[str, float]:
    """The eval metrics in a model's metrics.json (``{"f1": 0.79, "accuracy": ...}``) by SageMaker name."""
    found = {}
    for name in EVAL_METRICS:
        key = name.split(":", 1)[1]
        for candidate in (key, f"eval_{key}", name):
            value = values.get(candidate)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                found[name] = float(value)
                break
    return found


def metric_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    """``{"eval:f1": 0.79}`` → ``{"sagebert:metric:eval:f1": "0.79"}`` (the exact float, as repr writes it)."""
    return {f"{METRIC_TAG_PREFIX}{name}": repr(float(value)) for name, value in metrics.items()}


def metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    """The inverse of ``metric_tags``; tags that are not numbers are ignored."""
    found = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                found[key[len(METRIC_TAG_PREFIX) :]] = float(value)
            except ValueError:
                continue
    return found


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one metric."""

    metric: str
    candidate: float | None
    current: float | None
    min_delta: float = 0.0

    @property
    def goal(self) -> str:
        return metric_goal(self.metric)

    @property
    def improvement(self) -> float | None:
        """How much better the candidate is (positive = better), in the metric's own units."""
        if self.candidate is None or self.current is None:
            return None
        change = self.candidate - self.current
        return change if self.goal == "Maximize" else -change

    @property
    def accepted(self) -> bool:
        """Strictly better, and by at least ``min_delta``."""
        improvement = self.improvement
        return improvement is not None and improvement > RESOLUTION and improvement + RESOLUTION >= self.min_delta

    def reason(self) -> str:
        """One sentence saying why the candidate is or is not promoted."""
        direction = "higher" if self.goal == "Maximize" else "lower"
        if self.candidate is None:
            return f"the candidate has no {self.metric} recorded, so it cannot be shown to be better"
        if self.current is None:
            return f"the model serving now has no {self.metric} recorded, so the candidate cannot be shown to be better"
        needed = f" by at least {self.min_delta:g}" if self.min_delta else ""
        verdict = "is" if self.accepted else "is not"
        return (
            f"{self.metric} {self.candidate:.4f} {verdict} {direction} than {self.current:.4f}{needed} "
            f"(change {self.candidate - self.current:+.4f})"
        )


def judge(metric: str, candidate: Mapping[str, float], current: Mapping[str, float], min_delta: float = 0.0) -> Verdict:
    """Compare ``candidate`` with ``current`` on ``metric``."""
    if min_delta < 0:
        raise ValueError("min_delta must not be negative")
    return Verdict(metric, candidate.get(metric), current.get(metric), min_delta)


@dataclass(frozen=True)
class Predictions:
    """One model's predicted label per example of its test set, in the test set's order, with the
    true labels and the digest of the examples they were made on (test_predictions.json)."""

    eval_data: str | None
    labels: tuple[int, ...]
    predicted: tuple[int, ...]

    @classmethod
    def from_json(cls, values: object) -> Predictions | None:
        """The parsed test_predictions.json, or None when it is not one (wrong shape, lengths differ)."""
        if not isinstance(values, Mapping):
            return None
        labels, predicted = values.get("labels"), values.get("predictions")
        digest = values.get(EVAL_DATA_KEY)
        if not (isinstance(labels, list) and isinstance(predicted, list)) or len(labels) != len(predicted):
            return None
        if not all(type(v) is int for v in (*labels, *predicted)):
            return None
        return cls(digest if isinstance(digest, str) else None, tuple(labels), tuple(predicted))


def mcnemar_p_value(candidate_only: int, current_only: int) -> float:
    """The two-sided exact McNemar p-value: under "the two models err equally often", each
    example that exactly one of them gets right is a fair coin flip, so the smaller count of the
    two follows Binomial(n, 1/2); p is twice its lower tail (at most 1)."""
    if candidate_only < 0 or current_only < 0:
        raise ValueError("counts must not be negative")
    discordant = candidate_only + current_only
    if discordant == 0:
        return 1.0
    smaller = min(candidate_only, current_only)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1))
    # Exact integer arithmetic until the one division: no float underflow for large test sets.
    return min(1.0, 2 * tail / 2**discordant)


@dataclass(frozen=True)
class Significance:
    """The McNemar test of two models' predictions of the same test set."""

    candidate_only: int  # examples the candidate gets right and the serving model wrong
    current_only: int  # and the other way round
    examples: int
    level: float

    @property
    def p_value(self) -> float:
        """The exact two-sided McNemar p-value of the discordant counts."""
        return mcnemar_p_value(self.candidate_only, self.current_only)

    @property
    def significant(self) -> bool:
        """Whether chance alone explains the difference less often than ``level``."""
        return self.p_value < self.level

    def describe(self) -> str:
        """The counts, the p-value and the level, for the gate's message."""
        return (
            f"exact McNemar test over {self.examples} test examples: the candidate alone is right on "
            f"{self.candidate_only}, the serving model alone on {self.current_only}, p = {self.p_value:.4g} "
            f"({'<' if self.significant else '>='} {self.level:g})"
        )


def paired_significance(candidate: Predictions, current: Predictions, level: float) -> Significance | str:
    """The McNemar test of two models' predictions, or why the predictions cannot be paired."""
    if candidate.eval_data != current.eval_data or candidate.labels != current.labels:
        return "their per-example predictions were made on different test data"
    right_now = [p == y for p, y in zip(current.predicted, current.labels, strict=True)]
    right_then = [p == y for p, y in zip(candidate.predicted, candidate.labels, strict=True)]
    return Significance(
        candidate_only=sum(new and not old for new, old in zip(right_then, right_now, strict=True)),
        current_only=sum(old and not new for new, old in zip(right_then, right_now, strict=True)),
        examples=len(candidate.labels),
        level=level,
    )


@dataclass(frozen=True)
class Evidence:
    """What the gate knows of one model: its metrics, the digest of the test data they were
    measured on (None: trained before sagebert recorded it) and, when asked for, its predictions."""

    metrics: Mapping[str, float]
    eval_data: str | None = None
    predictions: Predictions | None = None


PROMOTE, NOT_BETTER, CANNOT_COMPARE = "promote", "not better", "cannot compare"


@dataclass(frozen=True)
class Decision:
    """The gate's answer: ``outcome`` (PROMOTE, NOT_BETTER or CANNOT_COMPARE), the sentence that
    says why, and notes worth printing whatever the outcome."""

    outcome: str
    reason: str
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    significance: Significance | None = None


def _short(digest: str) -> str:
    return digest[:12]


def decide(
    metric: str,
    candidate: Evidence,
    current: Evidence,
    min_delta: float = DEFAULT_MIN_DELTA,
    significance_level: float | None = None,
) -> Decision:
    """Whether ``candidate`` may replace ``current`` on ``metric`` (a quality metric).

    CANNOT_COMPARE when either lacks the metric, when both carry test-data digests that differ,
    or, with ``significance_level``, when either lacks per-example predictions of that test set;
    NOT_BETTER when the change is below ``min_delta`` or, tested, within noise
    (McNemar p >= ``significance_level``).
    """
    problem = quality_metric_problem(metric)
    if problem:
        raise ValueError(problem)
    verdict = judge(metric, candidate.metrics, current.metrics, min_delta)
    notes: list[str] = []

    def refuse(outcome: str, reason: str, significance: Significance | None = None) -> Decision:
        return Decision(outcome, reason, verdict, notes, significance)

    if verdict.candidate is None or verdict.current is None:
        return refuse(CANNOT_COMPARE, verdict.reason())
    if candidate.eval_data and current.eval_data and candidate.eval_data != current.eval_data:
        return refuse(
            CANNOT_COMPARE,
            f"the two models were scored on different test data (sha256 {_short(current.eval_data)}... serving, "
            f"{_short(candidate.eval_data)}... candidate), so their {metric} says nothing about which is better",
        )
    for who, evidence in (("the serving model", current), ("the candidate", candidate)):
        if not evidence.eval_data:
            notes.append(
                f"{who} predates the test-data digest (no {EVAL_DATA_KEY}): "
                "comparing without knowing both were scored on the same test data"
            )
    if not verdict.accepted:
        return refuse(NOT_BETTER, verdict.reason())
    if significance_level is None:
        return Decision(PROMOTE, verdict.reason(), verdict, notes)
    missing = [who for who, e in (("the serving model", current), ("the candidate", candidate)) if not e.predictions]
    if missing:
        return refuse(
            CANNOT_COMPARE,
            f"{' and '.join(missing)} has no per-example test predictions ({PREDICTIONS_FILE} in its model artifact), "
            "so the improvement cannot be tested for significance",
        )
    tested = paired_significance(candidate.predictions, current.predictions, significance_level)
    if isinstance(tested, str):
        return refuse(CANNOT_COMPARE, tested)
    if not tested.significant:
        return refuse(NOT_BETTER, f"{verdict.reason()}, but within noise: {tested.describe()}", tested)
    return Decision(PROMOTE, f"{verdict.reason()}; {tested.describe()}", verdict, notes, tested)


def _format(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _rows_of(metrics: Sequence[Mapping[str, float]]) -> list[str]:
    names = [name for name in METRIC_NAMES if any(name in m for m in metrics)]
    others = sorted({name for m in metrics for name in m} - set(names))
    return names + others


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def comparison_table(labels: Sequence[str], metrics: Sequence[Mapping[str, float]]) -> list[str]:
    """One column per model, one row per metric (eval metrics first), ``-`` where one is missing."""
    rows = [[name, *(_format(m.get(name)) for m in metrics)] for name in _rows_of(metrics)]
    return render(["metric", *labels], rows)


def gate_table(
    verdict: Verdict, current_label: str, candidate_label: str, current: Mapping, candidate: Mapping
) -> list[str]:
    """The serving model and the candidate side by side, with the change, the gated metric marked."""
    rows = []
    for name in _rows_of([current, candidate]):
        old, new = current.get(name), candidate.get(name)
        change = f"{new - old:+.4f}" if old is not None and new is not None else "-"
        mark = ""
        if name == verdict.metric:
            need = f" by >= {verdict.min_delta:g}" if verdict.min_delta else ""
            mark = f"<- gate: must be {'higher' if verdict.goal == 'Maximize' else 'lower'}{need}"
        rows.append([name, _format(old), _format(new), change, mark])
    return render(["metric", current_label, candidate_label, "change", ""], rows)
