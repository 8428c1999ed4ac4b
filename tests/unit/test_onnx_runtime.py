"""The ONNX Runtime int8 backend (sagebert.onnx_runtime): its answers follow the torch model's, the
export is made once when the model directory has none, and a missing or broken onnxruntime or
export says what to do."""

import shutil
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagebert import onnx_runtime
from sagebert.errors import SagebertError
from sagebert.serving.inference import model_fn
from support import REPO, TRAIN_CSV, read_rows, with_scaled_head

TWEETS = [row["sentence"] for row in read_rows(TRAIN_CSV, 400)]
# Measured on the tiny model with its head scaled by 100 (logits up to ±1.1, every tweet's margin
# over 0.2): int8 moves a logit by at most 0.024 over the first 400 training tweets and changes no
# label; the bound leaves a margin for other CPUs' int8 kernels.
LOGIT_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with a classifier head 100 times larger, in this module's own folder."""
    return with_scaled_head(tiny_model_dir, tmp_path_factory.mktemp("onnx-model"), 100)


@pytest.fixture(scope="module")
def onnx_and_fp32(model_dir):
    return model_fn(model_dir, "onnx-int8"), model_fn(model_dir, "fp32")


def copy_model(source, destination):
    """A copy without the export another test may have left in the shared tiny model directory."""
    shutil.copytree(source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.onnx"))
    return destination


def exports(directory):
    return sorted(directory.glob(f"{onnx_runtime.ONNX_PREFIX}*{onnx_runtime.ONNX_SUFFIX}"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.sampled_from(TWEETS), min_size=1, max_size=16))
def test_int8_answers_follow_the_fp32_model(onnx_and_fp32, texts):
    onnx, fp32 = onnx_and_fp32
    for quantized, exact in zip(onnx.predict(texts), fp32.predict(texts), strict=True):
        assert max(abs(a - b) for a, b in zip(quantized.logits, exact.logits, strict=True)) <= LOGIT_TOLERANCE
        if abs(exact.logits[0] - exact.logits[1]) > 2 * LOGIT_TOLERANCE:  # a clear answer stays the same
            assert quantized.label_id == exact.label_id


def test_the_export_keeps_the_attention_mask(onnx_and_fp32):
    """Run padded, a text's logits are those of the text alone: the graph did not bake in 'no padding'."""
    import numpy as np

    onnx, _ = onnx_and_fp32
    short, long = (onnx.tokenize([t])[0].ids for t in ("flood", "a terrible car crash on the highway near the bridge"))
    ids = np.zeros((2, len(long)), dtype=np.int64)
    ids[0, : len(short)], ids[1] = short, long
    mask = (np.arange(len(long))[None, :] < np.array([[len(short)], [len(long)]])).astype(np.int64)
    padded = onnx.model.logits(ids, mask)
    alone = onnx.model.logits(np.array([short], dtype=np.int64), np.ones((1, len(short)), dtype=np.int64))
    assert np.abs(padded[0] - alone[0]).max() < LOGIT_TOLERANCE


def test_a_model_directory_without_an_export_gets_one_at_start_and_keeps_it(tiny_model_dir, tmp_path, monkeypatch):
    copy_model(tiny_model_dir, tmp_path)
    assert exports(tmp_path) == []
    model_fn(tmp_path, "onnx-int8")
    (made,) = exports(tmp_path)
    calls = []
    monkeypatch.setattr(onnx_runtime, "export_int8", lambda *args: calls.append(args))
    assert model_fn(tmp_path, "onnx-int8").model.path == made
    assert calls == []  # the second start reuses it


def test_a_retrained_model_gets_a_new_export(tiny_model_dir, tmp_path):
    copy_model(tiny_model_dir, tmp_path)
    first = model_fn(tmp_path, "onnx-int8").model.path
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    with torch.no_grad():
        model.classifier.bias += 1
    model.save_pretrained(tmp_path)
    assert model_fn(tmp_path, "onnx-int8").model.path != first


def test_a_read_only_model_directory_exports_to_the_cache(tiny_model_dir, tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    copy_model(tiny_model_dir, model_dir)
    monkeypatch.setenv(onnx_runtime.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_runtime.os, "access", lambda path, mode: False)
    path = model_fn(model_dir, "onnx-int8").model.path
    assert path.is_relative_to(tmp_path / "cache") and exports(model_dir) == []


def test_without_onnxruntime_the_error_says_what_to_use(tiny_model_dir, tmp_path, monkeypatch):
    copy_model(tiny_model_dir, tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what a missing package looks like to import
    with pytest.raises(onnx_runtime.OnnxRuntimeMissingError) as error:
        model_fn(tmp_path, "onnx-int8")
    assert "onnxruntime" in error.value.message and "int8 or fp32" in error.value.fix


def test_a_corrupted_export_is_named_in_the_log_and_made_again(tiny_model_dir, tmp_path, caplog):
    copy_model(tiny_model_dir, tmp_path)
    model_fn(tmp_path, "onnx-int8")
    (made,) = exports(tmp_path)
    made.write_bytes(b"not an onnx model")
    caplog.set_level("WARNING")
    again = model_fn(tmp_path, "onnx-int8")
    assert again.model.path == made and made.stat().st_size > 1000
    assert any(str(made) in r.getMessage() and "Exporting the model again" in r.getMessage() for r in caplog.records)


def no_torch_weights(monkeypatch):
    """Make loading the torch weights fail, so a test sees whether a start needed them."""
    from transformers import AutoModelForSequenceClassification

    def refuse(*args, **kwargs):
        raise AssertionError("the torch weights were loaded")

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", refuse)


def test_a_start_with_a_verified_export_loads_no_torch_weights(model_dir, onnx_and_fp32, tmp_path, monkeypatch):
    """What a model.tar.gz from training gives: the export beside the weights, nothing else loaded."""
    copy_model(model_dir, tmp_path)
    onnx_runtime.export_into(tmp_path, onnx_and_fp32[1].model)
    no_torch_weights(monkeypatch)
    monkeypatch.setattr(onnx_runtime, "export_int8", lambda *args: pytest.fail("exported again"))
    served = model_fn(tmp_path, "onnx-int8")
    assert served.model.path.parent == tmp_path and served.label_names == onnx_and_fp32[1].label_names
    for quantized, exact in zip(served.predict(TWEETS[:20]), onnx_and_fp32[1].predict(TWEETS[:20]), strict=True):
        assert max(abs(a - b) for a, b in zip(quantized.logits, exact.logits, strict=True)) <= LOGIT_TOLERANCE


@pytest.mark.parametrize("made_from", [None, "0123456789abcdef"], ids=["no export key inside", "another model's"])
def test_an_export_whose_key_does_not_match_is_made_again(tiny_model_dir, tmp_path, made_from, caplog):
    """A file with the right name but not made from these weights (an older sagebert's export, or a
    file renamed from another model's) is not trusted: the start exports the model again."""
    copy_model(tiny_model_dir, tmp_path)
    from sagebert.modeling import load_model_dir

    name = onnx_runtime.export_name(tmp_path)
    onnx_runtime.export_int8(load_model_dir(tmp_path).model, tmp_path / name, made_from)
    caplog.set_level("WARNING")
    assert onnx_runtime.load_verified(tmp_path) is None
    assert any("made from other weights" in r.getMessage() for r in caplog.records)
    served = model_fn(tmp_path, "onnx-int8")
    assert onnx_runtime.load_verified(tmp_path).path == served.model.path == tmp_path / name


def test_onnx_int8_is_refused_on_a_gpu():
    from sagebert.serving.inference import resolve_precision

    with pytest.raises(SagebertError, match="CPU only"):
        resolve_precision("onnx-int8", torch.device("cuda"))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.sampled_from(TWEETS), min_size=1, max_size=12))
def test_the_mean_pooling_head_exports_and_answers_like_its_torch_model(mean_onnx_and_fp32, texts):
    """The default head (masked mean over the tokens) goes through the same generic export."""
    onnx, fp32 = mean_onnx_and_fp32
    assert type(fp32.model).__name__ == "MeanPoolingForSequenceClassification"
    for quantized, exact in zip(onnx.predict(texts), fp32.predict(texts), strict=True):
        assert max(abs(a - b) for a, b in zip(quantized.logits, exact.logits, strict=True)) <= LOGIT_TOLERANCE


@pytest.fixture(scope="module")
def mean_onnx_and_fp32(tiny_bert, tmp_path_factory):
    from sagebert.modeling import BaseModelChoice, load_for_training, save_model_dir

    labels = ["not disaster", "disaster"]
    tokenizer, model = load_for_training(BaseModelChoice(str(tiny_bert), "test", "tiny"), labels, 32, "mean")
    with torch.no_grad():
        # Its mean of token states is larger than the first token's state: ×6 gives logits up to ±1.06
        # like model_dir's head (measured over the first 400 training tweets: int8 moves a logit by
        # at most 0.008 and changes no label).
        model.classifier.weight *= 6
    directory = tmp_path_factory.mktemp("onnx-mean-model")
    save_model_dir(
        directory, model, tokenizer, labels, max_length=32, base_model="tiny", hyperparameters={}, metrics={}
    )
    return model_fn(directory, "onnx-int8"), model_fn(directory, "fp32")


# What gunicorn's master runs before it forks the workers: serve.py's own load function, which
# run_gunicorn would hand to gunicorn; here it is called directly, in a process of its own, and the
# process reports which modules it imported. A worker's warm-up then opens the session: the same
# check must see onnxruntime there, or it proves nothing.
_MASTER = """
import json, sys
from sagebert.container import serve

def run_gunicorn(settings, options, load):
    class Application:
        holder = None
    application = Application()
    load(application)
    holder = application.holder
    report = {"preload_app": options["preload_app"], "error": holder.error,
              "after_load": "onnxruntime" in sys.modules}
    report["warmed_up"] = holder.warm_up()  # what each worker does after the fork
    report["after_warm_up"] = "onnxruntime" in sys.modules
    print(json.dumps(report))

serve.run_gunicorn = run_gunicorn
sys.exit(serve.main([]))
"""


@pytest.mark.parametrize("export", ["made at this start", "already there"])
def test_the_master_loads_the_onnx_model_without_importing_onnxruntime(model_dir, tmp_path, export):
    """A worker forked from a process that imported onnxruntime aborts or hangs when it exits."""
    import json
    import os
    import subprocess

    served = copy_model(model_dir, tmp_path / "model")
    if export == "already there":
        model_fn(served, "onnx-int8")
        assert len(exports(served)) == 1
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),  # this tree's code
        "SAGEBERT_MODEL_DIR": str(served),
        "SAGEBERT_INFERENCE_PRECISION": "onnx-int8",
    }
    done = subprocess.run([sys.executable, "-c", _MASTER], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["preload_app"] and report["error"] is None  # loaded, in the process that forks
    assert report["after_load"] is False, "the master imported onnxruntime before forking"
    assert report["warmed_up"] and report["after_warm_up"] is True  # the check sees the import


def test_exporting_leaves_the_model_in_eval_mode(tiny_model_dir, tmp_path):
    """Training exports its model, and tests go on predicting with theirs: no dropout turned on."""
    from sagebert.modeling import load_model_dir

    model = load_model_dir(tiny_model_dir).model
    onnx_runtime.export_int8(model, tmp_path / "model.onnx")
    assert not any(module.training for module in model.modules())


def test_a_start_with_the_export_imports_no_modeling_code(mean_onnx_and_fp32, tmp_path):
    """In a fresh process (as gunicorn's master): the mean-pooling model's labels and token limit
    come from its config without importing transformers' modeling code (1.8 s of CPU per start)."""
    import json
    import subprocess

    _, fp32 = mean_onnx_and_fp32
    copy_model(fp32.model.name_or_path, tmp_path)
    onnx_runtime.export_into(tmp_path, fp32.model)
    probe = (
        "import json, sys; from sagebert.serving.inference import model_fn; m = model_fn(sys.argv[1], 'onnx-int8'); "
        "print(json.dumps([m.label_names, m.max_length, m.model.path.name, "
        "sorted(k for k in ('transformers.modeling_utils', 'sagebert.pooling', 'onnxruntime') if k in sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True)
    labels, max_length, name, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert (labels, max_length, name) == (fp32.label_names, fp32.max_length, onnx_runtime.export_name(tmp_path))
    assert imported == []


def test_the_session_runs_on_the_intra_op_threads_the_model_is_given(model_dir):
    """The count a server worker sets (its share of the CPUs) reaches onnxruntime's session, also
    after the session was opened, whatever torch's own setting is then."""
    model = model_fn(model_dir, "onnx-int8")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model.intra_op_threads = 2
        model.predict(["flood"])
        assert model.model.session.get_session_options().intra_op_num_threads == 2
        model.intra_op_threads = 3
        assert model.model.session.get_session_options().intra_op_num_threads == 3
        assert model.intra_op_threads == 3
    finally:
        torch.set_num_threads(before)
