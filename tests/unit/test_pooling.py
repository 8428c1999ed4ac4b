"""The mean-pooling classification head: choosing it, saving and loading it, and padding that never counts."""

import itertools
import json
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagebert.errors import HyperparameterError
from sagebert.hyperparameters import load
from sagebert.modeling import BaseModelChoice, load_for_training, load_model_dir, resolve_pooling, save_model_dir
from sagebert.pooling import MODEL_TYPE, MeanPoolingForSequenceClassification
from support import TRAIN_CSV, read_rows

LABELS = ("Not a disaster", "Real disaster")
TEXTS = [row["sentence"] for row in read_rows(TRAIN_CSV, 40)]


def choice(directory) -> BaseModelChoice:
    return BaseModelChoice(str(directory), "test", "tiny")


@pytest.fixture(scope="module")
def mean_model_dir(tiny_bert, tmp_path_factory):
    """A model directory as a job with pooling=mean writes it."""
    tokenizer, model = load_for_training(choice(tiny_bert), LABELS, 32, "mean")
    directory = tmp_path_factory.mktemp("mean-model")
    save_model_dir(
        directory, model, tokenizer, LABELS, max_length=32, base_model="tiny", hyperparameters={}, metrics={}
    )
    return directory


@pytest.fixture(scope="module")
def mean_model(mean_model_dir):
    return load_model_dir(mean_model_dir)


def tokenize(trained, texts: list[str]) -> dict[str, torch.Tensor]:
    return trained.tokenizer(texts, padding=True, truncation=True, max_length=trained.max_length, return_tensors="pt")


def logits(trained, texts: list[str]) -> torch.Tensor:
    with torch.inference_mode():
        return trained.model(**tokenize(trained, texts)).logits


def test_a_mean_pooling_model_directory_loads_through_the_auto_classes_with_its_labels(mean_model_dir, mean_model):
    assert json.loads((mean_model_dir / "config.json").read_text())["model_type"] == MODEL_TYPE
    assert isinstance(mean_model.model, MeanPoolingForSequenceClassification)
    assert mean_model.label_names == list(LABELS)
    assert mean_model.max_length == 32


def test_saving_and_loading_keeps_every_weight(tiny_bert, tmp_path):
    tokenizer, model = load_for_training(choice(tiny_bert), LABELS, 32, "mean")
    save_model_dir(tmp_path, model, tokenizer, LABELS, max_length=32, base_model="tiny", hyperparameters={}, metrics={})
    model.eval()
    batch = tokenizer(TEXTS[:4], padding=True, return_tensors="pt")
    with torch.inference_mode():
        before = model(**batch).logits
    assert torch.equal(load_model_dir(tmp_path).model(**batch).logits, before)


def test_the_base_models_weights_become_the_encoders(tiny_bert):
    from transformers import AutoModel

    _, model = load_for_training(choice(tiny_bert), LABELS, 32, "mean")
    base = AutoModel.from_pretrained(tiny_bert)
    encoder = model.encoder.state_dict()
    assert all(torch.equal(encoder[k], v) for k, v in base.state_dict().items() if not k.startswith("pooler."))
    assert model.encoder.pooler is None  # it reads the first token: unused, and DDP refuses unused parameters


PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data())
def test_a_texts_logits_do_not_depend_on_its_batch_mates(mean_model, data):
    texts = data.draw(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=12), label="texts")
    order = data.draw(st.permutations(range(len(texts))), label="order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(texts) - 1, 1)), max_size=4), label="cuts"))
    alone = torch.cat([logits(mean_model, [text]) for text in texts])
    shuffled = [texts[i] for i in order]
    bounds = [0, *[c for c in cuts if c < len(texts)], len(texts)]
    batched = torch.cat([logits(mean_model, shuffled[a:b]) for a, b in itertools.pairwise(bounds) if b > a])
    torch.testing.assert_close(batched, alone[list(order)], rtol=0, atol=1e-5)


def test_the_forward_exports_as_input_ids_and_attention_mask_to_logits(mean_model):
    batch = tokenize(mean_model, TEXTS[:3])
    inputs = (batch["input_ids"], batch["attention_mask"])

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    exported = torch.export.export(Logits(mean_model.model).eval(), inputs)
    torch.testing.assert_close(exported.module()(*inputs), logits(mean_model, TEXTS[:3]))


def test_auto_pooling_is_mean_for_a_sentence_transformers_base_and_cls_otherwise(tiny_bert, tmp_path):
    assert resolve_pooling(choice(tiny_bert), "auto") == "cls"
    sentence_transformers = shutil.copytree(tiny_bert, tmp_path / "st")
    (sentence_transformers / "modules.json").write_text("[]")
    assert resolve_pooling(choice(sentence_transformers), "auto") == "mean"
    assert resolve_pooling(choice(sentence_transformers), "cls") == "cls"
    assert resolve_pooling(choice(tiny_bert), "mean") == "mean"


def test_auto_pooling_keeps_the_mean_head_of_a_model_trained_with_it(mean_model_dir):
    assert resolve_pooling(choice(mean_model_dir), "auto") == "mean"


def test_a_model_trained_with_the_mean_head_trains_further_with_a_new_head(mean_model_dir):
    _, model = load_for_training(choice(mean_model_dir), ("calm", "alarm", "panic"), 32, "mean")
    assert isinstance(model, MeanPoolingForSequenceClassification)
    assert model.config.id2label == {0: "calm", 1: "alarm", 2: "panic"}
    assert model.classifier.out_features == 3


def test_cls_pooling_on_a_model_trained_with_the_mean_head_says_how_to_fix_it(mean_model_dir):
    with pytest.raises(HyperparameterError, match="trained with the mean-pooling head.*Set pooling to mean or auto"):
        load_for_training(choice(mean_model_dir), LABELS, 32, "cls")


def test_an_unknown_pooling_names_what_is_allowed():
    with pytest.raises(HyperparameterError, match="'pooling' is 'max'; allowed: one of auto, cls, mean"):
        load({"pooling": "max"})


def test_pooling_is_read_in_any_case():
    assert load({"pooling": "MEAN"}).pooling == "mean"
