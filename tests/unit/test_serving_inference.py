"""sagebert.serving.inference with the tiny model: a prediction is a function of its text alone, and a text
costs the same to tokenise however long it is."""

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagebert.serving.inference import PIECE_CHARS_PER_TOKEN, model_fn
from support import TRAIN_CSV, read_rows, with_scaled_head

CPU_PRECISIONS = ("fp32", "int8", "bf16", "onnx-int8")  # every precision offered on CPU
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=12)
TWEET_WORDS = sorted({w for row in read_rows(TRAIN_CSV, 300) for w in row["sentence"].split()})
TEXT = st.lists(st.one_of(st.sampled_from(TWEET_WORDS), WORDS), max_size=40).map(" ".join)


@pytest.fixture(scope="module")
def sensitive_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with a classifier head 100 times larger, so that its logits are about 1: the
    untrained head's are about 0.01, too small for a difference in the hidden states to show; a
    larger head saturates the probabilities, where a tolerance on them hides large logit errors."""
    return with_scaled_head(tiny_model_dir, tmp_path_factory.mktemp("sensitive-model"), 100)


@pytest.fixture(scope="module")
def models(sensitive_model_dir):
    return {precision: model_fn(sensitive_model_dir, precision) for precision in CPU_PRECISIONS}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=24), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("precision", CPU_PRECISIONS)
def test_a_prediction_does_not_depend_on_what_shares_its_forward_pass(models, precision, texts, seed):
    model = models[precision]
    alone = [model.predict([text])[0] for text in texts]
    rng = random.Random(seed)
    order = rng.sample(range(len(texts)), len(texts))
    merged = [None] * len(texts)
    start = 0
    while start < len(order):  # random merges of random requests, as the micro-batcher makes them
        group = order[start : start + rng.randint(1, 12)]
        start += len(group)
        for i, prediction in zip(group, model.forward(model.tokenize([texts[i] for i in group])), strict=True):
            merged[i] = prediction
    for a, b in zip(alone, merged, strict=True):
        assert a.label_id == b.label_id
        # On logits of about 1, not on probabilities: only the order of float32 sums may differ.
        assert max(abs(x - y) for x, y in zip(a.logits, b.logits, strict=True)) <= 1e-4
        assert max(abs(x - y) for x, y in zip(a.probabilities, b.probabilities, strict=True)) <= 1e-4


def test_only_fp32_shares_forward_passes(models):
    assert [models[p].batched for p in CPU_PRECISIONS] == [True, False, False, False]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(WORDS, min_size=1, max_size=400), separators=st.sampled_from([" ", "  ", "\n", " \t "]))
def test_long_texts_are_tokenised_in_pieces_to_the_same_ids(models, words, separators):
    model = models["fp32"]
    text = separators.join(words)
    full = model.tokenizer([text], add_special_tokens=False)["input_ids"][0]
    (before, after), keep = model._special_tokens, model.max_length - 2
    encoded = model.tokenize([text])[0]
    assert list(encoded.ids) == before + full[:keep] + after
    assert encoded.truncated == (len(full) > keep)


@pytest.mark.parametrize(
    "text",
    [
        "a," * 3_000_000,  # 6 MB of one-character tokens: the 3.7 GB case
        "flood " * 1_000_000,
        " " * 6_000_000 + "fire",  # six megabytes of nothing, then a word
    ],
    ids=["dense", "words", "whitespace"],
)
def test_tokenising_a_huge_text_never_hands_the_tokenizer_more_than_one_piece(models, text, monkeypatch):
    model = models["fp32"]
    seen = []
    tokenize = model._token_ids

    def spy(texts):
        seen.append(sum(map(len, texts)))
        return tokenize(texts)

    monkeypatch.setattr(model, "_token_ids", spy)
    encoded = model.tokenize([text])[0]
    assert max(seen) <= PIECE_CHARS_PER_TOKEN * model.max_length
    assert len(encoded) <= model.max_length
    if text.strip() != "fire":
        assert encoded.truncated and len(seen) <= 3  # stops as soon as the text is known to be too long
    else:
        assert not encoded.truncated and len(encoded) == 3


@pytest.mark.parametrize("precision", ["int8", "onnx-int8"])
def test_predictions_are_identical_for_the_same_text_in_any_request(models, precision):
    model = models[precision]
    first = model.predict(["flood in the valley", "calm"])[0]
    again = model.predict(["something else entirely, much longer than the rest", "flood in the valley"])[1]
    assert first.probabilities == again.probabilities  # bitwise: each text runs on its own


def test_auto_is_onnx_int8_on_cpu(sensitive_model_dir):
    assert model_fn(sensitive_model_dir, "auto").precision == "onnx-int8"
    assert torch.cuda.is_available() or model_fn(sensitive_model_dir).precision == "onnx-int8"
