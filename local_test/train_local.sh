#!/usr/bin/env bash
# Run the image's `train` exactly as a SageMaker training job would, on this machine.
#
#   local_test/train_local.sh IMAGE [name=value ...]
#   local_test/train_local.sh sagebert:dev epochs=1 clean_text=true
#
# Lays out a SageMaker /opt/ml tree in local_test/test_dir (or $TEST_DIR):
#   input/config/hyperparameters.json   the name=value arguments, every value a string
#   input/config/inputdataconfig.json   one entry per channel
#   input/config/resourceconfig.json    a single host, algo-1
#   input/data/<channel>/               copied from local_test/data/<channel>/ (or $DATA_DIR)
# then runs `docker run ... IMAGE train` with it mounted at /opt/ml. The trained model lands in
# test_dir/model, metrics and curves in test_dir/output/data, a failure reason in
# test_dir/output/failure. Checkpoints (test_dir/checkpoints) are kept between runs so that an
# interrupted run resumes; a run with other code (a new image), base model, data or
# hyperparameters does not resume them but starts over beside them. FRESH=1 deletes them first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
IMAGE="${1:?usage: $0 IMAGE [name=value ...]}"
shift
TEST_DIR="${TEST_DIR:-$here/test_dir}"
DATA_DIR="${DATA_DIR:-$here/data}"
HOST="${HOST_NAME:-algo-1}"

if ! { command -v docker >/dev/null && docker info >/dev/null 2>&1; }; then
  echo "no Docker engine answers: start it (dockerd) and retry" >&2; exit 1; fi
[ -d "$DATA_DIR/training" ] || { echo "no training channel: $DATA_DIR/training does not exist" >&2; exit 1; }

# Everything but the checkpoints is made fresh, as SageMaker does for every job.
rm -rf "$TEST_DIR/input" "$TEST_DIR/model" "$TEST_DIR/output" "$TEST_DIR/code"
[ "${FRESH:-0}" = 1 ] && rm -rf "$TEST_DIR/checkpoints"
mkdir -p "$TEST_DIR/input/config" "$TEST_DIR/input/data" "$TEST_DIR/model" "$TEST_DIR/output/data" "$TEST_DIR/checkpoints"

channels=()
for channel_dir in "$DATA_DIR"/*/; do
  channel="$(basename "$channel_dir")"
  cp -r "$channel_dir" "$TEST_DIR/input/data/$channel"
  channels+=("$channel")
done

python3 - "$TEST_DIR/input/config" "$HOST" "${channels[@]}" -- "$@" <<'PY'
import json, sys
config_dir, host, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
split = rest.index("--")
channels, pairs = rest[:split], rest[split + 1:]
hyperparameters = {}
for pair in pairs:
    if "=" not in pair:
        sys.exit(f"hyperparameters are name=value, not {pair!r}")
    name, value = pair.split("=", 1)
    hyperparameters[name] = value  # SageMaker passes every value as a string
files = {
    "hyperparameters.json": hyperparameters,
    "inputdataconfig.json": {c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                                 "RecordWrapperType": "None"} for c in channels},
    "resourceconfig.json": {"current_host": host, "hosts": [host], "network_interface_name": "eth0"},
}
for name, content in files.items():
    with open(f"{config_dir}/{name}", "w") as f:
        json.dump(content, f, indent=2)
PY

echo "training with channels: ${channels[*]}; hyperparameters: ${*:-defaults}"
set +e
read -ra extra <<<"${DOCKER_RUN_ARGS:-}"
docker run --rm --name "sagebert-train-$$" --hostname "$HOST" \
  -e TRAINING_JOB_NAME="local-$(date +%Y%m%d-%H%M%S)" \
  -v "$TEST_DIR:/opt/ml" "${extra[@]}" "$IMAGE" train
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "training failed (exit $status): $(cat "$TEST_DIR/output/failure" 2>/dev/null || echo 'no failure file')" >&2
  exit "$status"
fi
echo "model: $TEST_DIR/model"
ls "$TEST_DIR/model"
