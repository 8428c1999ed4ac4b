#!/usr/bin/env bash
# POST a payload to the local endpoint's /invocations and print the answer.
#
#   local_test/predict.sh local_test/payload.json [ACCEPT]
#
# The Content-Type follows the file's suffix: .json application/json, .csv text/csv (one text per
# record; CSV_HEADER=present for a file whose first row names the columns, one of them `text`),
# .jsonl application/jsonlines, anything else text/plain. ACCEPT defaults to application/json.
set -euo pipefail
PAYLOAD="${1:?usage: $0 PAYLOAD_FILE [ACCEPT]}"
ACCEPT="${2:-application/json}"
PORT="${PORT:-8080}"
case "$PAYLOAD" in
  *.json) content_type=application/json ;;
  *.csv) content_type="text/csv${CSV_HEADER:+; header=$CSV_HEADER}" ;;
  *.jsonl) content_type=application/jsonlines ;;
  *) content_type=text/plain ;;
esac
curl -sS --fail-with-body -X POST "http://127.0.0.1:$PORT/invocations" \
  -H "Content-Type: $content_type" -H "Accept: $ACCEPT" --data-binary "@$PAYLOAD"
echo
