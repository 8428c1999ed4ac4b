#!/usr/bin/env bash
# Fill wheelhouse/ with every package the image installs for one variant, checked against the
# locks' hashes, so that `docker build` can install them with --no-index (for builds without
# index access).
#
#   container/make-wheelhouse.sh [cpu|gpu|gpu-cu12]
#
# Downloads go to wheelhouse/.variants/<variant>/ (kept out of the build context by
# .dockerignore) and are fetched again only when a lock changed. The chosen variant is then
# staged into wheelhouse/ itself as hard links: only its wheels travel with the build context
# (the CUDA wheels alone are 2.8 GB), and torch 2.13.0+cpu cannot stand in for the CUDA
# build's torch==2.13.0. wheelhouse/.variant names what is staged.
#
# Runs on the host with the host's pip configuration (index, certificates, find-links), so it
# must be a Linux x86-64 host with CPython 3.11, like the image. Source-only packages are kept
# as source: the image's builder stage compiles them, against the image's own Python.
set -euo pipefail
VARIANT="${1:-cpu}"
case "$VARIANT" in cpu|gpu|gpu-cu12) ;; *) echo "usage: make-wheelhouse.sh [cpu|gpu|gpu-cu12]" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")/.." && pwd)"
locks=("$here/requirements/build.lock" "$here/requirements/image-$VARIANT.lock" "$here/requirements/model.lock")
dest="$here/wheelhouse/.variants/$VARIANT"
stamp="$dest/.locks.sha256"

# The stamp's hashes are compared with this checkout's locks, whatever paths it names: a copy of
# .variants in another checkout is checked against that checkout's locks.
if [ "$(sha256sum "${locks[@]}" | cut -d' ' -f1)" != "$(cut -d' ' -f1 "$stamp" 2>/dev/null)" ]; then
  py="${PYTHON:-python3}"
  "$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
    echo "make-wheelhouse.sh needs CPython 3.11 (set PYTHON=...)" >&2; exit 1; }
  mkdir -p "$dest"
  for lock in "${locks[@]}"; do
    log="$(mktemp)"
    if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r "$lock" -d "$dest" >"$log" 2>&1; then
      grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"
      echo "pip download failed for ${lock#"$here"/}" >&2; exit 1
    fi
    rm -f "$log"
  done
  # A new file, not written in place: copies of .variants share their files as hard links.
  sha256sum "${locks[@]}" >"$stamp.new" && mv "$stamp.new" "$stamp"
fi

# Stage: replace whatever wheelhouse/ held with this variant's files.
find "$here/wheelhouse" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.zip' \) -delete
find "$dest" -maxdepth 1 -type f ! -name '.*' -exec cp -l -t "$here/wheelhouse" {} + 2>/dev/null \
  || find "$dest" -maxdepth 1 -type f ! -name '.*' -exec cp -t "$here/wheelhouse" {} +
echo "$VARIANT" >"$here/wheelhouse/.variant"
echo "wheelhouse ($VARIANT): $(find "$dest" -maxdepth 1 -type f ! -name '.*' | wc -l) files, $(du -sh "$dest" | cut -f1)"
