"""One training job, end to end: set up the parts, resume if a checkpoint allows, run the loop,
write the artifacts. Accelerate supplies the device, mixed precision, DistributedDataParallel and
cross-process gathering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from .. import modeling
from ..environment import PRETRAINED_CHANNEL, TrainingEnvironment
from ..errors import HyperparameterError
from ..hyperparameters import Hyperparameters
from . import artifacts, batches, evaluation, warm_pool
from .loop import LoopState, TrainingLoop, TrainingResult
from .resume import CheckpointStore, job_fingerprint

log = logging.getLogger("sagebert.training")


def resolve_mixed_precision(requested: str) -> str:
    """The ``mixed_precision`` to train with: ``auto`` picks what this machine does natively."""
    if requested != "auto":
        if requested == "fp16" and not torch.cuda.is_available():
            raise HyperparameterError(
                "mixed_precision is fp16 but this instance has no GPU.",
                "Use mixed_precision=bf16 or auto on CPU instances.",
            )
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 (or AMX): bf16 autocast trains about 1.4x faster there (BENCHMARKS.md); elsewhere
    bf16 is emulated and slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's parameter groups: no weight decay for biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _prepare_optimization(accelerator: Any, model: Any, hp: Hyperparameters, total_steps: int) -> tuple[Any, Any, Any]:
    """(model, optimizer, schedule): AdamW with linear warm-up and decay, prepared by accelerate."""
    from transformers import get_linear_schedule_with_warmup

    # The fused kernel updates every parameter in one pass; torch's default on CPU loops over the
    # tensors one by one, which cost more than the forward and backward passes (BENCHMARKS.md).
    optimizer = torch.optim.AdamW(param_groups(model, hp.weight_decay), lr=hp.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total_steps), total_steps)
    # The schedule stays outside prepare(): accelerate would step it once per process per step,
    # while total_steps already counts each process's own steps.
    model, optimizer = accelerator.prepare(model, optimizer)
    return model, optimizer, scheduler


def train(
    hp: Hyperparameters, env: TrainingEnvironment, should_stop: Callable[[], bool] = lambda: False
) -> TrainingResult:
    """Run a whole training job and write its artifacts; TrainingInterrupted if ``should_stop`` turns true."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    precision = resolve_mixed_precision(hp.mixed_precision)
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=precision)
    rank, world_size, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    try:
        set_seed(hp.seed)  # before the model loads: the new classifier head is drawn from it
        datasets = batches.load_datasets(env, hp)
        # On a warm pool's instance, a pretrained archive is unpacked into its cache, where the next job finds it.
        base = modeling.resolve_base_model(
            env.channel(PRETRAINED_CHANNEL), hp.model_name_or_path, scratch=warm_pool.cache_dir()
        )
        pooling = modeling.resolve_pooling(base, hp.pooling)
        tokenizer, model = modeling.load_for_training(base, hp.label_names, hp.max_length, pooling)
        # On a warm pool's instance, tokenized data is kept for (and taken from) the jobs that follow.
        digest = modeling.base_model_digest(base) if warm_pool.cache_dir() else None
        train_set = batches.tokenize_dataset(
            tokenizer, datasets.train, hp.max_length, report=main, base_model_digest=digest
        )
        eval_set = batches.tokenize_dataset(
            tokenizer, datasets.evaluation, hp.max_length, report=main, base_model_digest=digest
        )
        plan = batches.plan(train_set, hp, rank, world_size)
        model, optimizer, scheduler = _prepare_optimization(accelerator, model, hp, plan.total_steps)
        collate = batches.Collator(tokenizer, accelerator.device)
        store, state = None, LoopState()
        if hp.keep_checkpoints:
            fingerprint = job_fingerprint(accelerator, hp, precision, datasets, modeling.base_model_digest(base))
            store = CheckpointStore(accelerator, scheduler, env.checkpoint_dir, hp, fingerprint, plan.total_steps)
            state = store.resume()
        if main:
            log.info(
                "base model: %s (%s); pooling: %s; precision: %s; device: %s; processes: %d",
                base.display_name,
                base.origin,
                pooling,
                precision,
                accelerator.device,
                world_size,
            )
            log.info(
                "training on %d examples %s, evaluating on %d (%s); %d optimizer steps per epoch, %d in all",
                len(datasets.train),
                {hp.label_names[k]: v for k, v in datasets.train.class_counts().items()},
                len(datasets.evaluation),
                datasets.evaluation.source,
                plan.steps_per_epoch,
                plan.total_steps,
            )

        def evaluate() -> dict:
            return evaluation.evaluate(model, accelerator, eval_set, collate, hp.eval_batch_size, hp.label_names)

        loop = TrainingLoop(
            hp, accelerator, model, optimizer, scheduler, train_set, collate, plan, evaluate, store, should_stop, state
        )
        result = loop.run()
        accelerator.wait_for_everyone()
        if main:
            artifacts.write(env.paths, hp, accelerator.unwrap_model(model), tokenizer, base, datasets, result)
            if store and store.seconds_spent:
                spent = store.seconds_spent
                log.info(
                    "checkpoints: %d written, %.2f s each on average, %.1f%% of the training time",
                    len(spent),
                    sum(spent) / len(spent),
                    100 * sum(spent) / max(result.seconds, 1e-9),
                )
        return result
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
