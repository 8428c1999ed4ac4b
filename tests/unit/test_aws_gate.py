"""The metric gate (sagebert.aws.gate): what counts as better, where metrics are read, the tables."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagebert.aws.gate import (
    EVAL_METRICS,
    RESOLUTION,
    comparison_table,
    final_metrics,
    gate_table,
    judge,
    metric_goal,
    metric_tags,
    metrics_from_model_json,
    metrics_from_tags,
)
from sagebert.aws.validation import request_problems

scores = st.floats(0, 1, allow_nan=False)
deltas = st.floats(0, 0.5, allow_nan=False)
metrics = st.sampled_from(EVAL_METRICS)


@given(metric=metrics, value=scores, delta=deltas)
def test_an_equal_model_is_never_better(metric, value, delta):
    assert not judge(metric, {metric: value}, {metric: value}, delta).accepted


@given(metric=metrics, a=scores, b=scores, delta=deltas)
def test_of_two_models_at_most_one_is_better_than_the_other(metric, a, b, delta):
    assert not (
        judge(metric, {metric: a}, {metric: b}, delta).accepted
        and judge(metric, {metric: b}, {metric: a}, delta).accepted
    )


@given(metric=metrics, candidate=scores, current=scores, low=deltas, high=deltas)
def test_a_larger_min_delta_never_accepts_more(metric, candidate, current, low, high):
    low, high = sorted((low, high))
    if judge(metric, {metric: candidate}, {metric: current}, high).accepted:
        assert judge(metric, {metric: candidate}, {metric: current}, low).accepted


@given(candidate=scores, current=scores)
def test_higher_is_better_for_scores_and_lower_for_losses(candidate, current):
    assert judge("eval:f1", {"eval:f1": candidate}, {"eval:f1": current}).accepted == (candidate - current > RESOLUTION)
    assert judge("eval:loss", {"eval:loss": candidate}, {"eval:loss": current}).accepted == (
        current - candidate > RESOLUTION
    )


def test_a_min_delta_is_met_exactly_despite_binary_fractions():
    # 0.3 - 0.2 is 0.09999999999999998 in binary: still "0.1 better".
    assert judge("eval:f1", {"eval:f1": 0.3}, {"eval:f1": 0.2}, 0.1).accepted


@pytest.mark.parametrize("candidate, current", [({}, {"eval:f1": 0.8}), ({"eval:f1": 0.9}, {})])
def test_a_missing_metric_on_either_side_is_never_better(candidate, current):
    verdict = judge("eval:f1", candidate, current)

    assert not verdict.accepted
    assert "cannot be shown to be better" in verdict.reason()


def test_losses_are_minimised_and_everything_else_maximised():
    assert [metric_goal(name) for name in ("eval:loss", "train:loss", "eval:f1", "eval:accuracy")] == [
        "Minimize",
        "Minimize",
        "Maximize",
        "Maximize",
    ]


@given(values=st.dictionaries(metrics, st.floats(allow_nan=False, allow_infinity=False), max_size=5))
def test_metric_tags_round_trip_exactly_and_fit_the_tag_rules(values):
    tags = metric_tags(values)

    assert metrics_from_tags(tags) == values
    request = {"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v"}]}
    assert (
        request_problems("CreateEndpointConfig", {**request, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]})
        == []
    )


def test_a_model_json_is_read_by_sagemaker_metric_names():
    written = {
        "accuracy": 0.83,
        "precision": 0.81,
        "recall": 0.78,
        "f1": 0.7993,
        "loss": 0.41,
        "examples": 1904,
        "confusion_matrix": [[1, 2], [3, 4]],
        "per_class": {},
    }

    assert metrics_from_model_json(written) == {
        "eval:loss": 0.41,
        "eval:accuracy": 0.83,
        "eval:precision": 0.81,
        "eval:recall": 0.78,
        "eval:f1": 0.7993,
    }
    assert metrics_from_model_json({"f1": math.nan, "accuracy": True, "recall": "0.5"}) == {}


def test_final_metrics_are_read_from_final_metric_data_list():
    job = {"FinalMetricDataList": [{"MetricName": "eval:f1", "Value": 0.8}, {"MetricName": "train:loss", "Value": 0.3}]}

    assert final_metrics(job) == {"eval:f1": 0.8, "train:loss": 0.3}
    assert final_metrics({}) == {}


def test_the_gate_table_puts_the_models_side_by_side_with_the_change():
    current, candidate = {"eval:f1": 0.7993, "eval:accuracy": 0.83}, {"eval:f1": 0.8101}
    verdict = judge("eval:f1", candidate, current, 0.005)

    rows = gate_table(verdict, "serving (job-1)", "candidate (job-2)", current, candidate)

    assert [row.split() for row in rows] == [
        ["metric", "serving", "(job-1)", "candidate", "(job-2)", "change"],
        ["eval:accuracy", "0.8300", "-", "-"],
        ["eval:f1", "0.7993", "0.8101", "+0.0108", "<-", "gate:", "must", "be", "higher", "by", ">=", "0.005"],
    ]


def test_the_comparison_table_has_a_column_per_model():
    rows = comparison_table(["job-1", "job-2"], [{"eval:f1": 0.7, "train:progress": 100.0}, {"eval:f1": 0.75}])

    assert [row.split() for row in rows] == [
        ["metric", "job-1", "job-2"],
        ["eval:f1", "0.7000", "0.7500"],
        ["train:progress", "100.0000", "-"],
    ]
