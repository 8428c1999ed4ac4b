#!/bin/sh
# Install the Debian/Ubuntu packages one image stage needs, and nothing already present.
#   install-system-packages.sh builder   # a C compiler and Python 3.11 headers, and a headless JDK
#                                         # whose jdeps and jlink make the Java runtime that
#                                         # multi-model-server runs on (container/make-java-runtime.sh)
#   install-system-packages.sh runtime   # Python 3.11 if the base lacks it (CUDA bases); nothing
#                                         # on python:3.11-slim, whose final image gets its Java
#                                         # runtime from the builder
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
    packages="$packages gcc libc6-dev openjdk-17-jdk-headless"
    if ! have_python311 || ! have_python_headers; then packages="$packages python3.11-dev"; fi ;;
  runtime) ;;
  *) echo "usage: $0 builder|runtime" >&2; exit 64 ;;
esac
if [ -z "$packages" ]; then
  echo "nothing to install for the $stage stage"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# The JDK's post-install script links its man pages and fails where a slim base (Debian's -slim
# images, the stand-in) has no man directories.
mkdir -p /usr/share/man/man1
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $packages
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log
