#!/usr/bin/env bash
# Choose the default learning rate without looking at the test split: train on the bundled
# training split only (sagebert then holds out a stratified 20 % for validation), for each
# learning rate and seed, and print the validation accuracy and F1 after the default 2 epochs.
#
#   benchmarks/lr_sweep.sh [IMAGE] [LEARNING_RATES] [SEEDS]
#   benchmarks/lr_sweep.sh sagebert:dev "5e-5 8e-5 1.2e-4" "1 2"
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${1:-sagebert:dev}"
RATES="${2:-5e-5 8e-5 1.2e-4}"
SEEDS="${3:-1 2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data"
cp -r "$here/local_test/data/training" "$work/data/training"   # no testing channel: validation hold-out
echo "| learning_rate | seed | validation accuracy | validation F1 |"
echo "|---|---|---|---|"
for rate in $RATES; do
  for seed in $SEEDS; do
    DATA_DIR="$work/data" TEST_DIR="$work/run" FRESH=1 \
      "$here/local_test/train_local.sh" "$IMAGE" "learning_rate=$rate" "seed=$seed" >"$work/log" 2>&1 \
      || { tail -20 "$work/log" >&2; exit 1; }
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print("| %s | %s | %.4f | %.4f |" % (sys.argv[2], sys.argv[3], m["accuracy"], m["f1"]))' \
      "$work/run/model/metrics.json" "$rate" "$seed"
  done
done
