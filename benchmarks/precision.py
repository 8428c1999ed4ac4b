"""Inference precisions side by side: speed, accuracy, and whether a text's answer depends on what
shares its forward pass.

    .venv/bin/python benchmarks/precision.py --model-dir local_test/test_dir/model

In one process, on the model trained on the bundled data, with one torch thread (what each server
worker gets with one worker per CPU). For every candidate:
- accuracy and F1 over all 1,904 test tweets, in 32-tweet requests;
- batch dependence: every tweet predicted alone, then again inside merged forward passes of
  random requests (1 to 64 tweets each, random order, as the micro-batcher merges clients'
  requests); the largest probability difference and the number of labels that change;
- single-tweet latency (p50, p99 over 480 tweets) and throughput with 32-tweet requests (median
  of 48), the candidates taking turns round by round so that the machine's busy moments fall on
  all of them alike.
The candidates are the offered precisions as served (fp32 in length-sorted batches, torch int8,
ONNX Runtime int8 and bf16 each text alone) and, for comparison, int8 and bf16 in batches, and int8 with per-row (per-token)
activation scales and per-channel weight scales (what torchao's int8 dynamic quantization does),
batched. Writes benchmarks/results/precision.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import fields, replace
from pathlib import Path

import torch
from common import REPO, machine, percentile, test_rows

from sagebert.serving.inference import InferenceModel, model_fn
from sagebert.training.metrics import classification_metrics


class RowwiseInt8Linear(torch.nn.Module):
    """A linear layer in int8 with one activation scale per row (token) and one weight scale per
    output channel: no scale depends on another row, unlike torch.ao's per-tensor dynamic one."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        quantized = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("weight_t", quantized.t().contiguous())
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
        quantized = torch.round(rows / scale).clamp(-127, 127).to(torch.int8)
        out = torch._int_mm(quantized, self.weight_t).float() * scale * self.weight_scale
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def rowwise_int8(model: torch.nn.Module) -> torch.nn.Module:
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(module, name, RowwiseInt8Linear(child))
    return model


class Batched(InferenceModel):
    """Forces length-sorted batches whatever the precision (not offered: for comparison)."""

    batched = True  # type: ignore[assignment]


def candidates(model_dir: Path) -> dict[str, InferenceModel]:
    torch.set_num_threads(1)  # onnxruntime's session takes torch's thread count when it is made
    int8, bf16, fp32, onnx_int8 = (model_fn(model_dir, p) for p in ("int8", "bf16", "fp32", "onnx-int8"))

    def as_batched(model: InferenceModel, precision: str) -> Batched:
        return Batched(**{**{f.name: getattr(model, f.name) for f in fields(model)}, "precision": precision})

    row = replace(model_fn(model_dir, "fp32"), precision="int8-rowwise")
    row.model = rowwise_int8(row.model)
    return {
        "fp32, batched (served)": fp32,
        "int8, each text alone (served)": int8,
        "ONNX Runtime int8, each text alone (served)": onnx_int8,
        "bf16, each text alone (served)": bf16,
        "int8, batched (the old default)": as_batched(int8, "int8"),
        "bf16, batched": as_batched(bf16, "bf16"),
        "int8 per-row scales, batched": as_batched(row, "int8-rowwise"),
    }


def probabilities(model: InferenceModel, groups: list[list[int]], texts: list[str]) -> torch.Tensor:
    out = torch.zeros(len(texts), len(model.label_names))
    for group in groups:
        for i, p in zip(group, model.forward(model.tokenize([texts[i] for i in group])), strict=True):
            out[i] = torch.tensor(p.probabilities)
    return out


def quality(model: InferenceModel, texts: list[str], labels: list[int], seed: int) -> dict:
    """Accuracy and F1 in 32-tweet requests, and how far merged forward passes move each answer."""
    torch.set_num_threads(1)
    model.intra_op_threads = 1
    requests = [list(range(s, min(len(texts), s + 32))) for s in range(0, len(texts), 32)]
    in_requests = probabilities(model, requests, texts)
    metrics = classification_metrics(labels, in_requests.argmax(-1).tolist(), model.label_names)
    alone = probabilities(model, [[i] for i in range(len(texts))], texts)
    rng = random.Random(seed)
    order = rng.sample(range(len(texts)), len(texts))
    merged, start = [], 0
    while start < len(order):  # merged forward passes of several random requests, as the micro-batcher makes
        size = rng.randint(1, 64)
        merged.append(order[start : start + size])
        start += size
    mixed = probabilities(model, merged, texts)
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "f1": round(metrics["f1"], 4),
        "max_probability_difference": float((alone - mixed).abs().max()),
        "labels_changed": int((alone.argmax(-1) != mixed.argmax(-1)).sum()),
    }


def speed(models: dict[str, InferenceModel], texts: list[str], rounds: int) -> dict:
    """Single-tweet latency and 32-tweet throughput, the candidates taking turns in every round so
    that a busy moment of the machine falls on all of them alike."""
    torch.set_num_threads(1)
    latencies = {name: [] for name in models}
    batch_seconds = {name: [] for name in models}
    for round_number in range(rounds):
        chunk = texts[round_number * 40 : round_number * 40 + 40]
        batches = [texts[(round_number * 128 + i) % (len(texts) - 32) :][:32] for i in range(0, 128, 32)]
        for name, model in models.items():
            model.intra_op_threads = 1
            for text in chunk:
                begun = time.perf_counter()
                model.predict([text])
                latencies[name].append((time.perf_counter() - begun) * 1000)
            for batch in batches:
                begun = time.perf_counter()
                model.predict(batch)
                batch_seconds[name].append(time.perf_counter() - begun)
    return {
        name: {
            "single_p50_ms": round(percentile(latencies[name], 50), 2),
            "single_p99_ms": round(percentile(latencies[name], 99), 2),
            "x32_tweets_per_s": round(32 / percentile(batch_seconds[name], 50), 1),
        }
        for name in models
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "local_test" / "test_dir" / "model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=12, help="speed rounds (40 single tweets, 4 x 32 each)")
    args = parser.parse_args()
    rows = test_rows()
    texts = [row["sentence"] for row in rows]
    labels = [int(r["label"]) for r in rows]
    models = candidates(args.model_dir)
    timings = speed(models, texts, args.rounds)
    results = {}
    for name, model in models.items():
        results[name] = {**quality(model, texts, labels, args.seed), **timings[name]}
        print(name, results[name], flush=True)
    out = REPO / "benchmarks" / "results" / "precision.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "torch": torch.__version__, "results": results}, indent=2))
    print(
        "\n| precision, how it runs | accuracy | F1 | max probability difference | labels changed "
        "| single p50 ms | single p99 ms | ×32 tweets/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['accuracy']:.4f} | {r['f1']:.4f} | {r['max_probability_difference']:.1e} "
            f"| {r['labels_changed']} | {r['single_p50_ms']} | {r['single_p99_ms']} | {r['x32_tweets_per_s']} |"
        )


if __name__ == "__main__":
    main()
