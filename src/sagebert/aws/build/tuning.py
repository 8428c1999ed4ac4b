"""CreateHyperParameterTuningJob: ranges over sagebert's hyperparameters, an objective from its
MetricDefinitions, and the training-job definition the trials share."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ... import contract
from ...errors import HyperparameterError
from ...hyperparameters import HYPERPARAMETER_NAMES, Hyperparameters, from_mapping
from ..gate import QUALITY_METRICS, metric_goal, quality_metric_problem
from ..validation import InvalidRequestError
from .common import EncryptionSpec, NetworkSpec, check_name, tag_list
from .training import (
    algorithm_specification,
    checkpoint_config,
    input_data_config,
    output_data_config,
    resource_config,
    stopping_condition,
)

STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "hyperband": "Hyperband"}
WARM_START_TYPES = {"identical": "IdenticalDataAndAlgorithm", "transfer": "TransferLearning"}
TUNING_NAME_MAX = 32  # HyperParameterTuningJobName
# Searched when no --range/--values is given: the four that move F1 most on the reference workload.
DEFAULT_RANGES = ("learning_rate=1e-5:1e-4:log", "epochs=2:4", "warmup_ratio=0:0.2")
DEFAULT_VALUES = ("train_batch_size=16,32",)


def objective(metric: str, option: str = "--objective") -> dict:
    """The HyperParameterTuningJobObjective for one of the image's quality metrics (``eval:f1``...):
    a trial is no better for a higher ``train:learning_rate``."""
    problem = quality_metric_problem(metric)
    if problem:
        raise InvalidRequestError(
            f"{option} {problem}.", "Use one of " + ", ".join(QUALITY_METRICS) + " (measured after each epoch)."
        )
    return {"Type": metric_goal(metric), "MetricName": metric}


def _default_of(name: str):
    return getattr(Hyperparameters(), name)


def _bound(name: str, text: str, option: str):
    try:
        return getattr(from_mapping({name: text}), name)
    except HyperparameterError as exc:
        raise InvalidRequestError(f"{option}: {exc.message}", exc.fix) from None


def _hyperparameter(name: str, option: str) -> str:
    key = name.strip().replace("-", "_")
    if key not in HYPERPARAMETER_NAMES:
        _bound(key, "", option)  # the "did you mean" message of an unknown name
    return key


def parse_range(text: str) -> tuple[str, dict]:
    """``name=lo:hi[:log]`` → (kind, range): an IntegerParameterRange or ContinuousParameterRange."""
    name, sep, rest = text.partition("=")
    match = re.fullmatch(r"\s*([^:]+):([^:]+)(?::(log|linear|auto))?\s*", rest)
    if not sep or not match:
        raise InvalidRequestError(
            f"--range {text!r} is not NAME=LOW:HIGH[:log].", "Write e.g. --range learning_rate=1e-5:1e-4:log."
        )
    key = _hyperparameter(name, "--range")
    default = _default_of(key)
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise InvalidRequestError(
            f"{key} is not numeric, so it has no range.", f"Give its choices instead: --values {key}=a,b."
        )
    low, high = (_bound(key, value.strip(), f"--range {key}") for value in match.group(1, 2))
    if not low < high:
        raise InvalidRequestError(f"--range {key}: {low} is not below {high}.", "Give LOW:HIGH with LOW < HIGH.")
    scaling = {"log": "Logarithmic", "linear": "Linear", None: "Auto", "auto": "Auto"}[match.group(3)]
    if scaling == "Logarithmic" and low <= 0:
        raise InvalidRequestError(
            f"--range {key}: a logarithmic range needs LOW > 0 (got {low}).", "Raise LOW, or drop :log."
        )
    kind = "IntegerParameterRanges" if isinstance(default, int) else "ContinuousParameterRanges"
    return kind, {"Name": key, "MinValue": str(low), "MaxValue": str(high), "ScalingType": scaling}


def parse_values(text: str) -> dict:
    """``name=a,b,c`` → a CategoricalParameterRange (each value checked as that hyperparameter)."""
    name, sep, rest = text.partition("=")
    values = [value.strip() for value in rest.split(",") if value.strip()]
    if not sep or not values:
        raise InvalidRequestError(
            f"--values {text!r} is not NAME=A,B,...", "Write e.g. --values train_batch_size=16,32."
        )
    key = _hyperparameter(name, "--values")
    for value in values:
        _bound(key, value, f"--values {key}")
    if len(set(values)) != len(values):
        raise InvalidRequestError(f"--values {key} repeats a value.", "Give each choice once.")
    return {"Name": key, "Values": values}


def parameter_ranges(ranges: Sequence[str], values: Sequence[str]) -> dict:
    """ParameterRanges from --range and --values (the defaults when neither is given)."""
    if not ranges and not values:
        ranges, values = DEFAULT_RANGES, DEFAULT_VALUES
    result: dict[str, list] = {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    seen: set[str] = set()
    for kind, entry in [parse_range(text) for text in ranges] + [
        ("CategoricalParameterRanges", parse_values(t)) for t in values
    ]:
        if entry["Name"] in seen:
            raise InvalidRequestError(f"{entry['Name']} is tuned twice.", "Give one --range or --values per name.")
        seen.add(entry["Name"])
        result[kind].append(entry)
    return {kind: entries for kind, entries in result.items() if entries}


def tuned_names(ranges: Mapping) -> set[str]:
    return {entry["Name"] for entries in ranges.values() for entry in entries}


@dataclass(frozen=True)
class TuningSpec:
    """Everything a sagebert tuning job is made of."""

    name: str
    image: str
    role_arn: str
    channels: Mapping[str, str]
    output_path: str
    objective_metric: str = "eval:f1"
    ranges: Mapping = field(default_factory=dict)
    static_hyperparameters: Mapping[str, str] = field(default_factory=dict)
    strategy: str = "bayesian"
    max_jobs: int = 4
    max_parallel_jobs: int = 2
    early_stopping: bool = False
    min_resource: int | None = None
    max_resource: int | None = None
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_run: int = contract.DEFAULT_MAX_RUN_SECONDS
    spot: bool = False
    max_wait: int | None = None
    checkpoint_s3: str | None = None
    warm_start_parents: tuple[str, ...] = ()
    warm_start_type: str = "identical"
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    encryption: EncryptionSpec = field(default_factory=EncryptionSpec)
    keep_alive_s: int | None = None


def _check(spec: TuningSpec) -> None:
    if spec.max_parallel_jobs > spec.max_jobs:
        raise InvalidRequestError(
            f"--max-parallel-jobs {spec.max_parallel_jobs} is more than --max-jobs {spec.max_jobs}.",
            "Run at most as many trials at once as there are trials.",
        )
    overlap = tuned_names(spec.ranges) & set(spec.static_hyperparameters)
    if overlap:
        raise InvalidRequestError(
            f"{', '.join(sorted(overlap))} is both tuned and fixed.", "Drop the fixed value or its --range/--values."
        )
    if spec.strategy == "hyperband":
        if spec.early_stopping:
            raise InvalidRequestError(
                "Hyperband stops poor trials itself; --early-stopping cannot be added to it.", "Drop --early-stopping."
            )
        if "epochs" in tuned_names(spec.ranges):
            raise InvalidRequestError(
                "Hyperband decides how many epochs each trial trains, so epochs cannot be a tuned range.",
                "Fix it instead (--epochs N is the most any trial trains) and tune the others.",
            )
    elif spec.min_resource is not None or spec.max_resource is not None:
        raise InvalidRequestError("--min-resource/--max-resource only apply to --strategy hyperband.", "Drop them.")
    if len(spec.warm_start_parents) > 5:
        raise InvalidRequestError(
            f"{len(spec.warm_start_parents)} parent tuning jobs given; SageMaker warm-starts from at most 5.",
            "Name at most 5 with --warm-start.",
        )


def create_tuning_job_request(spec: TuningSpec) -> dict:
    """The CreateHyperParameterTuningJob request for ``spec``.

    Every trial is a sagebert training job: the image's MetricDefinitions (the objective is one of
    them), the same channels, static hyperparameters and spot settings. With --checkpoint-s3 the
    trials share CheckpointConfig ``<checkpoint-s3>/<tuning job>/``; sagebert names each checkpoint
    after a fingerprint of the job's hyperparameters and data, so a trial never resumes, overwrites
    or deletes another trial's checkpoints.
    """
    check_name("tuning job", spec.name)
    _check(spec)
    config: dict = {
        "Strategy": STRATEGIES[spec.strategy],
        "HyperParameterTuningJobObjective": objective(spec.objective_metric),
        "ResourceLimits": {"MaxNumberOfTrainingJobs": spec.max_jobs, "MaxParallelTrainingJobs": spec.max_parallel_jobs},
        "ParameterRanges": dict(spec.ranges),
        "TrainingJobEarlyStoppingType": "Auto" if spec.early_stopping else "Off",
    }
    if spec.strategy == "hyperband":
        hyperband = {}
        if spec.min_resource is not None:
            hyperband["MinResource"] = spec.min_resource
        if spec.max_resource is not None:
            hyperband["MaxResource"] = spec.max_resource
        if hyperband:
            config["StrategyConfig"] = {"HyperbandStrategyConfig": hyperband}
    definition: dict = {
        "AlgorithmSpecification": algorithm_specification(spec.image),
        "RoleArn": spec.role_arn,
        "StaticHyperParameters": dict(spec.static_hyperparameters),
        "InputDataConfig": input_data_config(spec.channels),
        "OutputDataConfig": output_data_config(spec.output_path, spec.encryption.kms_key),
        "ResourceConfig": resource_config(
            spec.instance_type, spec.instance_count, spec.volume_size_gb, spec.encryption.volume, spec.keep_alive_s
        ),
        "StoppingCondition": stopping_condition(spec.max_run, spec.spot, spec.max_wait),
        "EnableManagedSpotTraining": spec.spot,
        **spec.network.job_fields(),
    }
    checkpoint = checkpoint_config(spec.checkpoint_s3, spec.name)
    if checkpoint:
        definition["CheckpointConfig"] = checkpoint
    if spec.environment:
        definition["Environment"] = dict(spec.environment)
    request: dict = {
        "HyperParameterTuningJobName": spec.name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
    }
    if spec.warm_start_parents:
        for parent in spec.warm_start_parents:
            check_name("tuning job", parent)
        request["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in spec.warm_start_parents],
            "WarmStartType": WARM_START_TYPES[spec.warm_start_type],
        }
    if spec.tags:
        request["Tags"] = tag_list(spec.tags)
    return request


def best_summary(description: Mapping) -> dict:
    """The TrainingJobSummary of a tuning job's best trial ({} when none has completed):
    OverallBestTrainingJob when there is one — a warm-started tuning job's best over itself and
    its parents, which its own BestTrainingJob may be worse than — else BestTrainingJob."""
    return dict(description.get("OverallBestTrainingJob") or description.get("BestTrainingJob") or {})


def best_training_job(description: Mapping) -> str:
    """The name of a tuning job's best training job (``best_summary``); a SagebertError when it has none yet."""
    name = description.get("HyperParameterTuningJobName")
    best = best_summary(description).get("TrainingJobName")
    if not best:
        status = description.get("HyperParameterTuningJobStatus")
        raise InvalidRequestError(
            f"Tuning job {name} ({status}) has no best training job yet.",
            f"Wait for a trial to complete: sagebert status --tuning-job {name} --follow.",
        )
    return best
