"""The training program in-process, on the tiny BERT (given through the `pretrained` channel)."""

import json

import pytest

from sagebert.container.train_entry import main as train_main
from sagebert.environment import TrainingEnvironment
from sagebert.hyperparameters import load
from sagebert.metric_lines import METRIC_DEFINITIONS
from sagebert.modeling import load_model_dir
from sagebert.training import train
from sagebert.training.batches import epoch_batches, shard_batches
from support import make_opt_ml, write_csv

FAST = {"epochs": 2, "train_batch_size": 16, "eval_batch_size": 32, "log_interval": 4, "learning_rate": 1e-3}


@pytest.fixture
def opt_ml(tmp_path, tiny_bert, monkeypatch):
    made = []

    def build(**kwargs):
        kwargs.setdefault("hyperparameters", FAST)
        made.append(1)
        base = make_opt_ml(tmp_path / f"opt_ml{len(made)}", pretrained=tiny_bert, **kwargs)
        monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
        return base

    return build


def run(base):
    env = TrainingEnvironment.read(base)
    return train(load(env.hyperparameters), env)


def test_training_writes_a_loadable_model_and_metrics(opt_ml, caplog):
    base = opt_ml(train_rows=160, test_rows=60)
    caplog.set_level("INFO")
    result = run(base)
    model_dir = base / "model"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "labels.json", "sagebert.json", "metrics.json"):
        assert (model_dir / name).exists(), name
    loaded = load_model_dir(model_dir)
    assert loaded.label_names == ["Not a disaster", "Real disaster"]
    assert loaded.max_length == 128
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["examples"] == 60  # the WHOLE test channel, not a batch of it
    assert sum(map(sum, metrics["confusion_matrix"])) == 60
    assert metrics["epochs"] == 2 and metrics["optimizer_steps"] == result.total_steps == 2 * 10
    assert 0.0 <= metrics["accuracy"] <= 1.0 and set(metrics) >= {"precision", "recall", "f1"}
    baseline = json.loads((model_dir / "baseline.json").read_text())  # for `sagebert report`'s drift
    assert baseline["rows"] == 160 and sum(baseline["length"]["counts"]) == 160
    assert sum(baseline["labels"].values()) == 160 and set(baseline["labels"]) == set(loaded.label_names)
    assert 0 < baseline["vocabulary"]["coverage"] <= 1 and baseline["vocabulary"]["top"]
    # The gate's evidence: which test examples were scored, and each one's prediction.
    predictions = json.loads((model_dir / "test_predictions.json").read_text())
    assert "predictions" not in metrics
    assert predictions["eval_data_sha256"] == metrics["eval_data_sha256"] and len(metrics["eval_data_sha256"]) == 64
    assert len(predictions["labels"]) == len(predictions["predictions"]) == 60
    right = sum(p == y for p, y in zip(predictions["predictions"], predictions["labels"], strict=True))
    assert right / 60 == pytest.approx(metrics["accuracy"])
    history = json.loads((base / "output" / "data" / "metrics_history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    csv_lines = (base / "output" / "data" / "metrics_history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,step,train_loss,eval_loss,eval_accuracy") and len(csv_lines) == 3
    assert (base / "output" / "data" / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Metric lines: every epoch line carries every eval metric, readable by the MetricDefinitions.
    import re

    epoch_lines = [r.getMessage() for r in caplog.records if "eval_accuracy=" in r.getMessage()]
    assert len(epoch_lines) == 2
    for definition in METRIC_DEFINITIONS:
        if definition["Name"].startswith("eval:"):
            assert re.search(definition["Regex"], epoch_lines[-1]), definition["Name"]
    assert any(re.search(r"epoch=1 step=4 train_loss=[0-9.]+ learning_rate=", r.getMessage()) for r in caplog.records)


def test_the_test_data_digest_changes_with_the_test_texts_even_at_the_same_size(opt_ml):
    one = opt_ml(train_rows=48, test_rows=16, hyperparameters={**FAST, "epochs": 1})
    run(one)
    two = opt_ml(train_rows=48, test_rows=16, hyperparameters={**FAST, "epochs": 1})
    test_csv = two / "input" / "data" / "testing" / "test.csv"
    data = bytearray(test_csv.read_bytes())
    position = next(i for i in range(data.index(b"\n"), len(data)) if data[i] in b"aeiou")  # a row's letter
    data[position] = ord("x")
    test_csv.write_bytes(bytes(data))
    run(two)

    def digest(base):
        return json.loads((base / "model" / "metrics.json").read_text())["eval_data_sha256"]

    assert digest(one) != digest(two)
    assert test_csv.stat().st_size == (one / "input" / "data" / "testing" / "test.csv").stat().st_size


def test_pooling_mean_trains_and_writes_the_mean_pooling_head(opt_ml, caplog):
    from sagebert.pooling import MeanPoolingForSequenceClassification

    base = opt_ml(train_rows=64, test_rows=32, hyperparameters={**FAST, "epochs": 1, "pooling": "mean"})
    caplog.set_level("INFO")
    run(base)
    assert isinstance(load_model_dir(base / "model").model, MeanPoolingForSequenceClassification)
    assert json.loads((base / "model" / "sagebert.json").read_text())["hyperparameters"]["pooling"] == "mean"
    assert any("pooling: mean" in r.getMessage() for r in caplog.records)


def test_training_exports_the_serving_model_so_a_start_loads_no_torch_weights(opt_ml, monkeypatch):
    """The model directory (model.tar.gz) holds the onnx-int8 export made from its own weights."""
    from transformers import AutoModelForSequenceClassification

    from sagebert import onnx_runtime
    from sagebert.serving.inference import model_fn

    base = opt_ml(train_rows=64, test_rows=32, hyperparameters={**FAST, "epochs": 1})
    run(base)
    model_dir = base / "model"
    exact = model_fn(model_dir, "fp32")
    (export,) = model_dir.glob("*.onnx")
    assert export.name == onnx_runtime.export_name(model_dir)
    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", lambda *a, **k: pytest.fail("loaded"))
    served = model_fn(model_dir, "onnx-int8")
    assert served.model.path == export
    texts = ["a terrible car crash on the highway", "what a lovely day"]
    for quantized, reference in zip(served.predict(texts), exact.predict(texts), strict=True):
        assert max(abs(a - b) for a, b in zip(quantized.logits, reference.logits, strict=True)) < 0.05


def test_same_seed_same_result(opt_ml, tmp_path):
    first = run(opt_ml(train_rows=96, test_rows=40)).metrics
    second = run(opt_ml(train_rows=96, test_rows=40)).metrics
    assert first["loss"] == second["loss"] and first["confusion_matrix"] == second["confusion_matrix"]


def test_without_a_testing_channel_a_stratified_fifth_is_held_out(opt_ml):
    base = opt_ml(train_rows=200, test_rows=None, hyperparameters={**FAST, "epochs": 1})
    metrics = run(base).metrics
    assert metrics["examples"] == 40


def test_gradient_accumulation_counts_optimizer_steps(opt_ml):
    base = opt_ml(train_rows=96, test_rows=20, hyperparameters={**FAST, "epochs": 1, "gradient_accumulation_steps": 4})
    assert run(base).global_step == 2  # 6 batches of 16 → ceil(6 / 4)


def test_batches_are_length_grouped_and_cover_every_example_once():
    lengths = [5, 50, 7, 48, 6, 49, 8, 47] * 100
    batches = epoch_batches(lengths, 8, seed=1, epoch=1)
    assert sorted(i for b in batches for i in b) == list(range(800))
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(s < 10 for s in spreads) >= 0.9 * len(batches)  # similar lengths share a batch
    assert epoch_batches(lengths, 8, seed=1, epoch=1) == batches
    assert epoch_batches(lengths, 8, seed=1, epoch=2) != batches


def test_sharding_deals_batches_round_robin_and_evenly():
    batches = [[i] for i in range(7)]
    assert shard_batches(batches, 0, 2) == [[0], [2], [4]]
    assert shard_batches(batches, 1, 2) == [[1], [3], [5]]
    assert shard_batches(batches, 0, 1) == batches


# ---- the program: failures reach /opt/ml/output/failure -------------------------------------------


def test_bad_data_writes_a_failure_reason_and_exits_non_zero(opt_ml):
    base = opt_ml(train_rows=20, test_rows=None)
    write_csv(base / "input" / "data" / "training" / "train.csv", ["label", "sentence"], [["7", "x"], ["0", "y"]])
    assert train_main([]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "label outside the label set" in reason and "Fix:" in reason
    assert "Traceback" not in reason and len(reason) <= 1024 + 1


def test_a_bad_hyperparameter_fails_before_any_model_loads(opt_ml):
    base = opt_ml(train_rows=20, hyperparameters={"learning_rate": "lots"})
    assert train_main([]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "hyperparameter 'learning_rate' is 'lots'" in reason and "Fix:" in reason


def test_hyperparameters_come_from_the_file_only(opt_ml):
    # The file is their one source: arguments are refused, not merged (the launcher passes none).
    base = opt_ml(train_rows=20, hyperparameters={"epochs": "1"})
    assert train_main(["--epochs", "3"]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "takes no arguments" in reason and "hyperparameters.json" in reason and "Traceback" not in reason


def test_a_missing_training_channel(opt_ml):
    base = opt_ml(train_rows=20)
    import shutil

    shutil.rmtree(base / "input" / "data" / "training")
    cfg = base / "input" / "config" / "inputdataconfig.json"
    cfg.write_text(json.dumps({k: v for k, v in json.loads(cfg.read_text()).items() if k != "training"}))
    assert train_main([]) == 2
    assert (
        "The required 'training' channel is missing (channels present: pretrained, testing)"
        in (base / "output" / "failure").read_text()
    )


def test_an_unreadable_pretrained_channel(opt_ml, tmp_path):
    base = opt_ml(train_rows=20)
    for f in (base / "input" / "data" / "pretrained").iterdir():
        f.unlink()
    (base / "input" / "data" / "pretrained" / "README").write_text("nothing here")
    assert train_main([]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "holds no Hugging Face model" in reason and "README" in reason


def test_a_pretrained_model_whose_tokenizer_lost_its_vocabulary_is_refused(opt_ml):
    # With tokenizer_config.json alone, the tokenizer loads with its 5 special tokens: every word
    # was [UNK], and the job trained to chance accuracy with exit 0.
    base = opt_ml(train_rows=20)
    for name in ("vocab.txt", "tokenizer.json"):
        (base / "input" / "data" / "pretrained" / name).unlink()
    assert train_main([]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "cannot encode text: its vocabulary has 5 tokens and 100% of" in reason and "vocab.txt" in reason
    assert not (base / "model" / "model.safetensors").exists()


def test_an_unreachable_hub_model_says_to_use_the_pretrained_channel(tmp_path, monkeypatch):
    base = make_opt_ml(
        tmp_path / "opt_ml", train_rows=20, hyperparameters={"model_name_or_path": "no-such-org/no-such-model-xyz"}
    )
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    # As in a network-isolated job, but without waiting on connection timeouts: huggingface_hub
    # reads HF_HUB_OFFLINE once, at import, so the flag itself is set for this test.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert train_main([]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "Could not load base model 'no-such-org/no-such-model-xyz'" in reason and "'pretrained' channel" in reason


def test_a_failure_while_the_model_is_written_leaves_the_model_dir_empty(opt_ml, monkeypatch):
    from sagebert import modeling

    base = opt_ml(train_rows=48, test_rows=16, hyperparameters={**FAST, "epochs": 1})
    save = modeling.save_model_dir

    def disk_full_half_way(directory, model, *args, **kwargs):
        save(directory, model, *args, **kwargs)
        (directory / "metrics.json").unlink()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(modeling, "save_model_dir", disk_full_half_way)
    assert train_main([]) == 1
    assert "No space left on device" in (base / "output" / "failure").read_text()
    assert list((base / "model").iterdir()) == []
