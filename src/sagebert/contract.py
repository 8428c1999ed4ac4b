"""Values of the container's contract with SageMaker and with its clients, in one module that
imports nothing, so that the code in the image (codecs, data, environment, serving) and the
tooling outside it (the CLI, aws/build) use the same values and cannot drift apart."""

# Content types. The server reads REQUEST_TYPES and answers RESPONSE_TYPES (sagebert.codecs); the
# model package advertises the same (aws/build/packages.py); a training channel's ContentType
# says how its files without a suffix are read (sagebert.training.data).
JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
TEXT = "text/plain"
# Names clients use for JSON Lines: accepted for requests, Accept and channels alike.
JSONLINES_ALIASES = (
    JSONLINES,
    "application/x-jsonlines",
    "application/jsonl",
    "application/json-lines",
    "application/x-ndjson",
)
REQUEST_TYPES = (JSON, JSONLINES, CSV, TEXT)
RESPONSE_TYPES = (JSON, JSONLINES, CSV)
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"

# Where SageMaker syncs a training job's checkpoints with S3 (CheckpointConfig.LocalPath), unless
# the job names another path.
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"

# A training job's MaxRuntimeInSeconds when the user gives none: one day.
DEFAULT_MAX_RUN_SECONDS = 24 * 3600

# SAGEBERT_INFERENCE_PRECISION's values: auto chooses onnx-int8 on CPU, fp32 on GPU.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8", "onnx-int8")
