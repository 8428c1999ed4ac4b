#!/usr/bin/env bash
# The main job on the bundled defaults: set up, build the image, train on the bundled tweets,
# serve the model, and classify the reference's three sentences.
#
#   scripts/demo.sh                    # default hyperparameters (2 epochs, about 2 minutes of training on 2 cores)
#   scripts/demo.sh epochs=3 seed=7    # any hyperparameters, as name=value
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-sagebert:dev}"
PORT="${PORT:-8080}"

scripts/setup.sh
container/build-image.sh "$IMAGE"
FRESH=1 local_test/train_local.sh "$IMAGE" "$@"
echo "metrics on the whole test channel: $(python3 -c '
import json; m = json.load(open("local_test/test_dir/model/metrics.json"))
print("accuracy %.4f  precision %.4f  recall %.4f  f1 %.4f  (%d examples)" % (m["accuracy"], m["precision"], m["recall"], m["f1"], m["examples"]))')"

CONTAINER_NAME=sagebert-demo DETACH=1 PORT="$PORT" local_test/serve_local.sh "$IMAGE"
trap 'docker stop sagebert-demo >/dev/null' EXIT
echo "POST /invocations with local_test/payload.json:"
PORT="$PORT" local_test/predict.sh local_test/payload.json | python3 -c '
import json, sys
texts = json.load(open("local_test/payload.json"))["inputs"]
for text, p in zip(texts, json.load(sys.stdin)["predictions"]):
    print("  %-15s %.3f  %s" % (p["label"], p["probabilities"][p["label"]], text))'
