#!/usr/bin/env bash
# Everything the project needs on a fresh Debian 12 machine, idempotent (run it as often as you like):
#   - system packages: the Docker engine (docker.io), debootstrap (to make a base image where no
#     registry can be pulled from), docker-registry and apache2-utils (the tests' local registry),
#     and the shell-script linter the tests run
#   - a running Docker engine (started here when no init system runs it)
#   - .venv: the project's Python environment, installed from requirements/dev.lock (hash-checked)
# Needs root (or sudo) for the system part; skips what is already there.
#
#   scripts/setup.sh                 everything
#   scripts/setup.sh --python-only   only the .venv
#
# A failed install stops the script with pip's own message and a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# pip without its "WARNING: Location ..." lines; with pipefail the pipeline keeps pip's status.
quiet_pip() { .venv/bin/pip "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }

system_setup() {
  local packages=()
  command -v dockerd >/dev/null || packages+=(docker.io)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
  [ -x /usr/bin/docker-registry ] || packages+=(docker-registry)
  command -v htpasswd >/dev/null || packages+=(apache2-utils)
  command -v shellcheck >/dev/null || packages+=(shellcheck)
  if [ "${#packages[@]}" -gt 0 ]; then
    echo "installing system packages: ${packages[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "starting the Docker engine"
    as_root sh -c 'setsid dockerd >/var/log/sagebert-dockerd.log 2>&1 < /dev/null &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/sagebert-dockerd.log" >&2; exit 1; }
  fi
}

python_setup() {
  if [ ! -x .venv/bin/python ] || ! cmp -s requirements/dev.lock .venv/.dev.lock; then
    echo "installing the Python environment (.venv) from requirements/dev.lock"
    python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
    python3 -m venv .venv
    rm -f .venv/.dev.lock # recorded below, once the whole lock is installed
    quiet_pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.lock
    cp requirements/dev.lock .venv/.dev.lock
  fi
  quiet_pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  .venv/bin/python -c "import sagebert, torch, transformers" || { echo "the .venv is broken: rm -rf .venv and retry" >&2; exit 1; }
}

case "${1:-}" in
  "")
    system_setup
    python_setup
    echo "setup done: docker $(docker version --format '{{.Server.Version}}'), $(.venv/bin/python --version)" ;;
  --python-only)
    python_setup
    echo "setup done: $(.venv/bin/python --version)" ;;
  *) echo "usage: $0 [--python-only]" >&2; exit 2 ;;
esac
