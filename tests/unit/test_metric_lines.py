import re

import pytest

from sagebert.metric_lines import METRIC_DEFINITIONS, format_metric_line, parse_metric_line


def test_format_matches_the_documented_example():
    line = format_metric_line(
        {"epoch": 2, "step": 358, "train_loss": 0.34123, "eval_accuracy": 0.83512, "eval_f1": 0.79749}
    )
    assert line == "epoch=2 step=358 train_loss=0.3412 eval_accuracy=0.8351 eval_f1=0.7975"


def test_small_values_use_e_notation():
    assert format_metric_line({"learning_rate": 4.1e-05}) == "learning_rate=4.100e-05"


def test_every_metric_definition_captures_its_value_from_a_logged_line():
    line = "2026-01-01 12:00:00,000 INFO sagebert.training: " + format_metric_line(
        {
            "epoch": 1,
            "step": 179,
            "train_loss": 0.45,
            "learning_rate": 3.2e-5,
            "samples_per_second": 61.2,
            "eval_loss": 0.41,
            "eval_accuracy": 0.83,
            "eval_precision": 0.81,
            "eval_recall": 0.77,
            "eval_f1": 0.79,
        }
    )
    values = parse_metric_line(line)
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], line)
        assert match, definition
        key = definition["Regex"].split("=")[0].split(")")[-1]
        assert float(match.group(1)) == pytest.approx(values[key])


def test_eval_loss_regex_does_not_capture_train_loss():
    regex = next(d["Regex"] for d in METRIC_DEFINITIONS if d["Name"] == "eval:loss")
    assert re.search(regex, "epoch=1 step=5 train_loss=0.6888") is None


def test_definitions_fit_sagemaker_limits():
    assert len(METRIC_DEFINITIONS) <= 40
    for d in METRIC_DEFINITIONS:
        assert 1 <= len(d["Name"]) <= 255 and 1 <= len(d["Regex"]) <= 500
        assert re.compile(d["Regex"]).groups == 1


def test_bad_keys_are_refused():
    with pytest.raises(ValueError):
        format_metric_line({"Eval Accuracy": 1.0})
