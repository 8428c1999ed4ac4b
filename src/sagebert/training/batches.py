"""The data as the loop sees it: channels → labelled texts → token ids → each epoch's batches.

The data order is explicit and reproducible: each epoch's batches are length-grouped (similar
lengths together, so dynamic padding pads little) with a generator seeded by ``seed`` and the
epoch, then dealt round-robin to the processes of a data-parallel run. A resumed run finds its
place by counting batches into that order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..environment import TESTING_CHANNEL, TRAINING_CHANNEL, TrainingEnvironment
from ..errors import SagebertError
from ..hyperparameters import Hyperparameters
from . import data as data_io

log = logging.getLogger(__name__)


@dataclass
class Datasets:
    """The labelled texts to train on and to evaluate on, and where the latter came from."""

    train: data_io.LabelledTexts
    evaluation: data_io.LabelledTexts


def load_datasets(env: TrainingEnvironment, hp: Hyperparameters) -> Datasets:
    """Read the `training` channel and the `testing` channel (or hold out a stratified share)."""
    columns = data_io.ColumnChoice(hp.text_column, hp.label_column)

    def read(channel: str, directory) -> data_io.LabelledTexts:
        return data_io.read_channel(
            directory,
            channel=channel,
            label_names=hp.label_names,
            columns=columns,
            content_type=env.channel_content_type(channel),
            clean=hp.clean_text,
        )

    train = read(TRAINING_CHANNEL, env.channel(TRAINING_CHANNEL, required=True))
    data_io.require_classes(train, hp.label_names)
    testing_dir = env.channel(TESTING_CHANNEL)
    if testing_dir is not None:
        evaluation = read(TESTING_CHANNEL, testing_dir)
    else:
        train_idx, held_idx = data_io.stratified_split(train.labels, hp.validation_fraction, hp.seed)
        log.info(
            "no '%s' channel: holding out a stratified %.0f%% of the training data (%d rows) for evaluation",
            TESTING_CHANNEL,
            100 * hp.validation_fraction,
            len(held_idx),
        )
        train, evaluation = (train.subset(train_idx), train.subset(held_idx, f"{train.source} (held out)"))
        data_io.require_classes(train, hp.label_names)
    train = data_io.shuffled_head(train, hp.max_train_samples, hp.seed)
    if hp.max_eval_samples:
        evaluation = evaluation.subset(range(min(hp.max_eval_samples, len(evaluation))))
    data_io.report_conflicts(train, hp.label_names)
    shared = data_io.overlap(train.texts, evaluation.texts)
    if shared:
        log.warning("%d distinct texts appear in both the training and the evaluation data", shared)
    return Datasets(train, evaluation)


@dataclass
class TokenizedDataset:
    """One dataset tokenised: per example its input ids (and masks) and its label."""

    examples: list[dict[str, Any]]
    source: str

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def lengths(self) -> list[int]:
        return [len(e["input_ids"]) for e in self.examples]

    @property
    def labels(self) -> list[int]:
        return [e["labels"] for e in self.examples]


def tokenize_dataset(
    tokenizer: Any,
    texts: data_io.LabelledTexts,
    max_length: int,
    *,
    report: bool,
    base_model_digest: str | None = None,
) -> TokenizedDataset:
    """Tokenise ``texts`` (truncated to ``max_length`` tokens); ``report``: log how many were truncated.

    Given the base model's digest, the result is kept in (and taken from) the warm pool's cache.
    """
    from . import fingerprint, warm_pool

    cache = warm_pool.cache_dir() if base_model_digest else None

    def tokenize() -> dict:
        encoded = tokenizer(texts.texts, truncation=True, max_length=max_length)
        # Counted for the cache too: a later job that reuses the entry still reports it.
        full = tokenizer(texts.texts, truncation=False)["input_ids"] if report or cache else []
        return {"encoded": dict(encoded), "truncated": sum(len(ids) > max_length for ids in full)}

    key = warm_pool.tokenized_key(fingerprint.data_digest(texts), base_model_digest, max_length) if cache else ""
    made = warm_pool.cached_json(cache, key, tokenize)
    encoded, truncated = made["encoded"], made["truncated"]
    if report and truncated:
        log.info(
            "%s: %d of %d texts are longer than max_length=%d tokens and were truncated",
            texts.source,
            truncated,
            len(texts),
            max_length,
        )
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    examples = [{**{k: encoded[k][i] for k in keys}, "labels": texts.labels[i]} for i in range(len(texts))]
    return TokenizedDataset(examples, texts.source)


class Collator:
    """Pads the chosen examples to their longest and puts the batch on the training device."""

    def __init__(self, tokenizer: Any, device: torch.device):
        from transformers import DataCollatorWithPadding

        self.device = device
        # Multiples of 8 suit GPU tensor cores; on CPU they would only add padding.
        self._pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if device.type == "cuda" else None)

    def __call__(self, encoded: TokenizedDataset, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = self._pad([encoded.examples[i] for i in indices])
        return {k: v.to(self.device) for k, v in batch.items()}


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Every batch of one epoch, in order: length-grouped, shuffled by (seed, epoch)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator()
    generator.manual_seed(seed * 100_003 + epoch)
    order = get_length_grouped_indices(list(lengths), batch_size, generator=generator)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This process's batches: every ``world_size``-th, after dropping the tail that cannot be dealt evenly."""
    usable = len(batches) - len(batches) % world_size if world_size > 1 else len(batches)
    return batches[rank:usable:world_size]


@dataclass(frozen=True)
class Plan:
    """How many optimizer steps the job takes (every process takes the same)."""

    steps_per_epoch: int
    total_steps: int


def plan(train: TokenizedDataset, hp: Hyperparameters, rank: int, world_size: int) -> Plan:
    """Optimizer steps per epoch and in all; a SagebertError when a process would get no batch."""
    mine = len(shard_batches(epoch_batches(train.lengths, hp.train_batch_size, hp.seed, 1), rank, world_size))
    if mine == 0:
        raise SagebertError(
            f"{len(train)} training examples make fewer batches than there are processes ({world_size}).",
            "Add training data, lower train_batch_size, or use fewer instances/processes.",
        )
    steps_per_epoch = math.ceil(mine / hp.gradient_accumulation_steps)
    return Plan(steps_per_epoch, steps_per_epoch * hp.epochs)
