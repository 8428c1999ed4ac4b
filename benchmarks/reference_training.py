"""The reference workflow's training recipe, re-implemented for the side-by-side training benchmark.

Runs inside the sagebert image (same torch, same CPU) on the baked-in base model:

    python reference_training.py TRAIN_CSV TEST_CSV MODEL_DIR [--epochs 2]

Kept as the reference had it: every tweet encoded with special tokens and zero-padded (or cut) to
64 tokens, batch 64 from a random sampler, AdamW at a constant 2e-5 (no warm-up, no decay),
gradient clipping at 1.0, float32, a plain loop. One thing is measured differently: after each
epoch the model is evaluated on ALL test rows (the reference reported its last batch only).
Prints one JSON line per epoch (prefixed "REFERENCE ") for benchmarks/training_vs_reference.py.
"""

import argparse
import csv
import json
import time

import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset
from transformers import AutoTokenizer, BertForSequenceClassification

from sagebert.training.metrics import classification_metrics

MAX_LEN = 64
BATCH = 64
LR = 2e-5


def read(path):
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def tensors(tokenizer, sentences, labels):
    ids = torch.zeros(len(sentences), MAX_LEN, dtype=torch.long)
    for row, sentence in enumerate(sentences):
        encoded = tokenizer.encode(sentence, add_special_tokens=True)[:MAX_LEN]
        ids[row, : len(encoded)] = torch.tensor(encoded)
    return TensorDataset(ids, (ids != 0).long(), torch.tensor(labels))


def evaluate(model, dataset):
    model.eval()
    predictions = []
    with torch.no_grad():
        for ids, mask, _ in DataLoader(dataset, batch_size=BATCH):
            predictions += model(ids, attention_mask=mask)[0].argmax(-1).tolist()
    model.train()
    # The same metric code as sagebert's own evaluation, so that both sides are scored alike.
    metrics = classification_metrics(dataset.tensors[2].tolist(), predictions, ["0", "1"])
    return metrics["accuracy"], metrics["f1"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("train_csv")
    parser.add_argument("test_csv")
    parser.add_argument("model_dir")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, do_lower_case=True)
    model = BertForSequenceClassification.from_pretrained(args.model_dir, num_labels=2)
    train = tensors(tokenizer, *read(args.train_csv))
    test = tensors(tokenizer, *read(args.test_csv))
    loader = DataLoader(train, sampler=RandomSampler(train), batch_size=BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    for epoch in range(1, args.epochs + 1):
        started = time.monotonic()
        total_loss = 0.0
        for step, (ids, mask, labels) in enumerate(loader, 1):
            optimizer.zero_grad()
            loss = model(ids, attention_mask=mask, labels=labels)[0]
            total_loss += loss.item()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            print(f"Train Epoch: {epoch} [{step * len(ids)}/{len(train)}] Loss: {loss.item():.6f}", flush=True)
        train_seconds = time.monotonic() - started
        eval_started = time.monotonic()
        accuracy, f1 = evaluate(model, test)
        print(
            "REFERENCE "
            + json.dumps(
                {
                    "epoch": epoch,
                    "train_seconds": round(train_seconds, 2),
                    "eval_seconds": round(time.monotonic() - eval_started, 2),
                    "samples_per_second": round(len(train) / train_seconds, 1),
                    "train_loss": round(total_loss / step, 4),
                    "accuracy": round(accuracy, 4),
                    "f1": round(f1, 4),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
