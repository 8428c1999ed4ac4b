import pytest

from sagebert.training.metrics import classification_metrics, confusion_matrix


def test_binary_metrics_are_those_of_the_positive_class():
    labels = [0, 0, 0, 1, 1, 1, 1, 0]
    preds = [0, 1, 0, 1, 1, 0, 1, 0]
    m = classification_metrics(labels, preds, ["neg", "pos"])
    assert m["confusion_matrix"] == [[3, 1], [1, 3]]
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["examples"] == 8
    assert m["per_class"]["neg"]["support"] == 4


def test_multiclass_uses_macro_averages():
    labels = [0, 1, 2, 2]
    preds = [0, 2, 2, 2]
    m = classification_metrics(labels, preds, ["a", "b", "c"])
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["recall"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["precision"] == pytest.approx((1 + 0 + 2 / 3) / 3)


def test_a_class_never_predicted_has_zero_precision_not_an_error():
    m = classification_metrics([0, 1], [0, 0], ["neg", "pos"])
    assert m["precision"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 0.5


def test_confusion_matrix_rows_are_true_labels():
    assert confusion_matrix([1, 1, 0], [0, 1, 1], 2).tolist() == [[0, 1], [1, 1]]
