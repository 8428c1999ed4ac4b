#!/usr/bin/env bash
# Download every package the image installs into wheelhouse/, checked against the lock's hashes,
# so that `docker build` can install them with --no-index (for builds without index access).
#
#   container/make-wheelhouse.sh [cpu|gpu]
#
# Runs on the host with the host's pip configuration (index, certificates, find-links), so it
# must be a Linux x86-64 host with CPython 3.11, like the image. Source-only packages are kept
# as source: the image's builder stage compiles them, against the image's own Python.
set -euo pipefail
VARIANT="${1:-cpu}"
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/wheelhouse"
py="${PYTHON:-python3}"
"$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
  echo "make-wheelhouse.sh needs CPython 3.11 (set PYTHON=...)" >&2; exit 1; }
mkdir -p "$dest"
for lock in build.lock "image-$VARIANT.lock" model.lock; do
  log="$(mktemp)"
  if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
      -r "$here/requirements/$lock" -d "$dest" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"
    echo "pip download failed for requirements/$lock" >&2; exit 1
  fi
  rm -f "$log"
done
echo "wheelhouse: $(find "$dest" -maxdepth 1 -type f ! -name README.md | wc -l) files, $(du -sh "$dest" | cut -f1)"
