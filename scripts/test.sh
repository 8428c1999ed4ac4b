#!/usr/bin/env bash
# The test command: set up what is missing, then run every test, the container tests included
# (they build the image and run it with `docker run`). Extra arguments go to pytest, e.g.
#   scripts/test.sh -m "not container"      # skip the slow container tests locally
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
