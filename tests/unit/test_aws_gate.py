"""The metric gate (sagebert.aws.gate): what counts as better, where metrics are read, the tables."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagebert.aws.gate import (
    CANNOT_COMPARE,
    EVAL_METRICS,
    NOT_BETTER,
    PROMOTE,
    RESOLUTION,
    Evidence,
    Predictions,
    comparison_table,
    decide,
    final_metrics,
    gate_table,
    judge,
    mcnemar_p_value,
    metric_goal,
    metric_tags,
    metrics_from_model_json,
    metrics_from_tags,
    quality_metric_problem,
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


# ---- quality metrics, the exact McNemar test, and the decision ------------------------------------------
@pytest.mark.parametrize("name", ["train:learning_rate", "train:epoch", "train:loss", "eval:f2", ""])
def test_only_eval_metrics_can_gate(name):
    assert quality_metric_problem(name) is not None
    assert all(quality_metric_problem(metric) is None for metric in EVAL_METRICS)


@pytest.mark.parametrize(
    "candidate_only, current_only, p",
    [
        (0, 0, 1.0),
        (5, 0, 2 / 32),  # all five discordant examples one way: 2 * (1/2)^5
        (10, 2, 2 * (1 + 12 + 66) / 4096),  # 2 * P(Binomial(12, 1/2) <= 2)
        (3, 3, 1.0),  # a tie is no evidence at all
    ],
)
def test_the_exact_mcnemar_p_value_is_the_two_sided_binomial_tail(candidate_only, current_only, p):
    assert mcnemar_p_value(candidate_only, current_only) == pytest.approx(p, rel=1e-12)
    assert mcnemar_p_value(current_only, candidate_only) == pytest.approx(p, rel=1e-12)


@given(b=st.integers(0, 400), c=st.integers(0, 400))
def test_mcnemar_p_values_are_probabilities_and_fall_as_the_imbalance_grows(b, c):
    p = mcnemar_p_value(b, c)
    assert 0 < p <= 1
    if b > c:
        assert mcnemar_p_value(b + 1, c) <= p


def test_mcnemar_on_a_large_test_set_does_not_underflow():
    # Integer arithmetic up to the last division: 2**3100 would overflow a float (OverflowError).
    assert mcnemar_p_value(3000, 100) < 1e-300
    assert mcnemar_p_value(5000, 5000) == pytest.approx(1.0, abs=1e-9)


def test_predictions_that_are_not_a_test_predictions_file_are_none():
    assert Predictions.from_json({"labels": [1, 0], "predictions": [1]}) is None
    assert Predictions.from_json({"labels": [1, "0"], "predictions": [1, 0]}) is None
    assert Predictions.from_json([1, 0]) is None
    assert Predictions.from_json({"eval_data_sha256": "d", "labels": [1], "predictions": [0]}) == Predictions(
        "d", (1,), (0,)
    )


def evidence(f1, digest="d", predicted=None, labels=(1, 1, 1, 1)):
    predictions = Predictions(digest, tuple(labels), tuple(predicted)) if predicted is not None else None
    return Evidence({"eval:f1": f1} if f1 is not None else {}, digest, predictions)


def test_the_decision_refuses_what_it_cannot_compare():
    assert decide("eval:f1", evidence(None), evidence(0.8)).outcome == CANNOT_COMPARE
    assert decide("eval:f1", evidence(0.9, "x"), evidence(0.8, "y")).outcome == CANNOT_COMPARE
    assert decide(
        "eval:f1", evidence(0.9, predicted=None), evidence(0.8, predicted=[1, 1, 1, 1]), 0.01, 0.05
    ).outcome == (CANNOT_COMPARE)
    other_labels = evidence(0.8, predicted=[1, 1, 1, 1], labels=(0, 1, 1, 1))
    assert decide("eval:f1", evidence(0.9, predicted=[1, 1, 1, 1]), other_labels, 0.01, 0.05).outcome == CANNOT_COMPARE
    with pytest.raises(ValueError):
        decide("train:epoch", evidence(0.9), evidence(0.8))


def test_the_decision_compares_a_model_without_a_digest_and_notes_it():
    decision = decide("eval:f1", evidence(0.9, None), evidence(0.8, "d"))

    assert decision.outcome == PROMOTE
    assert decision.notes == [
        "the candidate predates the test-data digest (no eval_data_sha256): "
        "comparing without knowing both were scored on the same test data"
    ]


def test_the_decision_refuses_an_improvement_within_noise():
    tested = decide("eval:f1", evidence(0.9, predicted=[1, 1, 1, 0]), evidence(0.8, predicted=[1, 1, 0, 0]), 0.01, 0.05)

    assert tested.outcome == NOT_BETTER
    assert tested.significance.candidate_only == 1 and tested.significance.current_only == 0
    assert "p = 1 (>= 0.05)" in tested.reason
