"""The metric gate: is a candidate model better than the one that serves now?

A model's final metrics come from its training job — DescribeTrainingJob's FinalMetricDataList
(what SageMaker read from the log with the MetricDefinitions), else the metrics.json that
training writes into the model artifact — and are recorded on every model sagebert creates as
tags ``sagebert:metric:<name>`` (and on registered packages as customer metadata). Losses must
go down, every other metric up. Pure functions: values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..metric_lines import METRIC_DEFINITIONS

METRIC_TAG_PREFIX = "sagebert:metric:"
METRIC_NAMES = tuple(definition["Name"] for definition in METRIC_DEFINITIONS)
EVAL_METRICS = tuple(name for name in METRIC_NAMES if name.startswith("eval:"))
# Differences this small are float noise (0.3 - 0.2 is 0.09999999999999998), not an improvement.
RESOLUTION = 1e-12


def metric_goal(name: str) -> str:
    """``Minimize`` for losses, ``Maximize`` for every other sagebert metric."""
    return "Minimize" if "loss" in name.split(":")[-1] else "Maximize"


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
