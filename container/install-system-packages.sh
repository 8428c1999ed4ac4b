#!/bin/sh
# Install the Debian/Ubuntu packages one image stage needs, and nothing already present.
#   install-system-packages.sh builder   # a C compiler and Python 3.11 headers (builder stage only)
#   install-system-packages.sh runtime   # Python 3.11 if the base lacks it (CUDA bases), and a
#                                         # headless Java runtime for multi-model-server
set -eu
stage="$1"
packages=""
have_python311() { command -v python3.11 >/dev/null 2>&1; }
have_python_headers() {
  python3.11 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
if ! have_python311; then
  packages="$packages python3.11 python3.11-venv ca-certificates"
fi
case "$stage" in
  builder)
    packages="$packages gcc libc6-dev"
    if ! have_python311 || ! have_python_headers; then packages="$packages python3.11-dev"; fi ;;
  runtime)
    packages="$packages openjdk-17-jre-headless" ;;
  *) echo "usage: $0 builder|runtime" >&2; exit 64 ;;
esac
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $packages
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*
