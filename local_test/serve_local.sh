#!/usr/bin/env bash
# Serve the model in local_test/test_dir/model exactly as a SageMaker endpoint would:
#   docker run -v local_test/test_dir:/opt/ml -p 8080:8080 IMAGE serve
#
#   local_test/serve_local.sh IMAGE            # foreground; Ctrl-C (SIGTERM) stops it gracefully
#   DETACH=1 local_test/serve_local.sh IMAGE   # background; returns once /ping answers 200
#
# Environment: PORT (host port, default 8080), TEST_DIR, and any server setting passed through
# with DOCKER_RUN_ARGS, e.g. DOCKER_RUN_ARGS="-e SAGEMAKER_MODEL_SERVER_WORKERS=2".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
IMAGE="${1:?usage: $0 IMAGE}"
TEST_DIR="${TEST_DIR:-$here/test_dir}"
PORT="${PORT:-8080}"
NAME="${CONTAINER_NAME:-sagebert-serve}"
[ -f "$TEST_DIR/model/config.json" ] || {
  echo "no model in $TEST_DIR/model: run local_test/train_local.sh $IMAGE first" >&2; exit 1; }
docker rm -f "$NAME" >/dev/null 2>&1 || true
read -ra extra <<<"${DOCKER_RUN_ARGS:-}"
args=(--rm --name "$NAME" -v "$TEST_DIR:/opt/ml" -p "127.0.0.1:$PORT:8080" "${extra[@]}" "$IMAGE" serve)
if [ "${DETACH:-0}" != 1 ]; then
  exec docker run "${args[@]}"
fi
docker run -d "${args[@]}" >/dev/null
for _ in $(seq 1 120); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ping" || true)" = 200 ]; then
    echo "serving on http://127.0.0.1:$PORT (container $NAME; stop it with: docker stop $NAME)"
    exit 0
  fi
  docker inspect "$NAME" >/dev/null 2>&1 || { echo "the server exited; see its log above" >&2; exit 1; }
  sleep 0.5
done
echo "the server did not become healthy in 60 s:" >&2
docker logs --tail 30 "$NAME" >&2
exit 1
