import json

import pytest

from sagebert import hyperparameters as hp_module
from sagebert.errors import HyperparameterError
from sagebert.hyperparameters import Hyperparameters, from_mapping, load


def test_defaults_when_nothing_is_given():
    hp = load({})
    assert hp == Hyperparameters()
    assert hp.label_names == ("Not a disaster", "Real disaster")
    assert hp.epochs == 2 and hp.max_length == 128


def test_strings_from_hyperparameters_json_are_typed():
    hp = load(
        {
            "epochs": "3",
            "learning_rate": "2e-5",
            "clean_text": "true",
            "train_batch_size": "16",
            "warmup_ratio": "0",
            "max_train_samples": "100",
        }
    )
    assert (hp.epochs, hp.learning_rate, hp.clean_text, hp.train_batch_size) == (3, 2e-5, True, 16)
    assert hp.warmup_ratio == 0.0 and hp.max_train_samples == 100


def test_json_encoded_strings_are_decoded_once():
    # The SageMaker Python SDK (>= 2.110) JSON-encodes every value a second time.
    hp = load(
        {
            "model_name_or_path": json.dumps("bert-base-uncased"),
            "epochs": json.dumps("4"),
            "label_names": json.dumps("no,yes"),
        }
    )
    assert hp.model_name_or_path == "bert-base-uncased"
    assert hp.epochs == 4
    assert hp.label_names == ("no", "yes")


@pytest.mark.parametrize("text", ["True", "true", "TRUE", "1", "yes", True])
def test_true_booleans(text):
    assert load({"clean_text": text}).clean_text is True


@pytest.mark.parametrize("text", ["False", "false", "0", "no", False])
def test_false_booleans(text):
    assert load({"clean_text": text}).clean_text is False


def test_typed_values_of_a_hand_written_file_are_taken_as_they_are():
    # A local hyperparameters.json may hold JSON numbers, booleans and lists instead of strings.
    hp = load({"epochs": 3, "learning_rate": 1e-4, "clean_text": True, "label_names": ["no", "yes, really"]})
    assert (hp.epochs, hp.learning_rate, hp.clean_text) == (3, 1e-4, True)
    assert hp.label_names == ("no", "yes, really")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a,b,c", ("a", "b", "c")),
        ('["x", "y"]', ("x", "y")),
        (" spam , eggs ", ("spam", "eggs")),
    ],
)
def test_label_names_forms(value, expected):
    assert load({"label_names": value}).label_names == expected


def test_toolkit_sagemaker_keys_are_ignored():
    hp = load({"sagemaker_program": "train.py", "sagemaker_region": "eu-west-1", "_tuning_objective_metric": "x"})
    assert hp == Hyperparameters()


def test_unknown_name_fails_with_a_suggestion_and_the_known_names():
    with pytest.raises(HyperparameterError) as info:
        load({"epoch": "3"})
    message = str(info.value)
    assert "unknown hyperparameter 'epoch'" in message
    assert "did you mean 'epochs'" in message
    assert "learning_rate" in message  # the list of known names


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("epochs", "0", "an integer from 1 to 1000"),
        ("epochs", "two", "an integer from 1 to 1000"),
        ("epochs", "2.5", "an integer"),
        ("learning_rate", "-1", "greater than 0"),
        ("learning_rate", "nan", "a number"),
        ("warmup_ratio", "1", "less than 1"),
        ("clean_text", "maybe", "true or false"),
        ("mixed_precision", "fp8", "one of auto, no, fp16, bf16"),
        ("label_names", "onlyone", "at least two distinct"),
        ("label_names", "a,a", "at least two distinct"),
        ("label_names", "a,,b", "non-empty"),
        ("label_names", "['x', 'y']", "a JSON list of strings"),  # Python's list syntax, not JSON
        ("max_length", "4", "an integer from 8"),
        ("validation_fraction", "0.9", "at most 0.5"),
    ],
)
def test_invalid_values_name_the_hyperparameter_and_what_it_allows(name, value, allowed):
    with pytest.raises(HyperparameterError) as info:
        load({name: value})
    message = str(info.value)
    assert f"hyperparameter '{name}' is {value!r}" in message
    assert allowed in message
    assert "Fix:" in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(HyperparameterError) as info:
        from_mapping({"epochs": "x", "seed": "-3"})
    assert "'epochs'" in str(info.value) and "'seed'" in str(info.value)


def test_to_sagemaker_round_trips_through_strings():
    hp = Hyperparameters(epochs=3, clean_text=True, label_names=("a", "b", "c"), learning_rate=3e-5)
    strings = hp.to_sagemaker()
    assert all(isinstance(v, str) for v in strings.values())
    assert strings["clean_text"] == "true" and strings["label_names"] == "a,b,c"
    assert load(strings) == hp


def test_label_names_with_commas_survive_the_round_trip():
    hp = Hyperparameters(label_names=("calm, really", "on fire"))
    assert load(hp.to_sagemaker()).label_names == ("calm, really", "on fire")


def test_describe_lists_every_hyperparameter_with_help():
    rows = hp_module.describe()
    assert [r[0] for r in rows] == list(hp_module.HYPERPARAMETER_NAMES)
    assert all(r[2] for r in rows)
