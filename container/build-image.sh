#!/usr/bin/env bash
# Build the sagebert image the way this project's machines and CI need it, and print its tag.
#
#   container/build-image.sh [TAG]            # default TAG: sagebert:dev
#
# Environment:
#   VARIANT=cpu|gpu|gpu-cu12   CPU torch (default), CUDA 13 torch (driver >= 580), or CUDA 12
#                        torch (2.10.0, CUDA 12.8: drivers 525 to 579, e.g. batch transform's 535)
#   BASE_IMAGE=...       the base; default python:3.11-slim-bookworm (cpu),
#                        nvidia/cuda:13.0.1-base-ubuntu22.04 (gpu) or nvidia/cuda:12.8.1-base-ubuntu22.04
#                        (gpu-cu12): the CUDA libraries themselves come with the torch wheels; the
#                        base brings the CUDA user-space setup
#   WHEELHOUSE=auto|yes|no   install from a wheelhouse made on the host (container/make-wheelhouse.sh)
#                        instead of the index. auto: yes when the default base cannot be pulled,
#                        i.e. on a machine without registry or index access inside builds.
#   DOCKER_BUILD_ARGS    extra arguments for docker build (e.g. --no-cache)
#
# When the default CPU base cannot be pulled, a stand-in is made with debootstrap
# (container/make-standin-base.sh) and used instead.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-sagebert:dev}"
VARIANT="${VARIANT:-cpu}"
WHEELHOUSE="${WHEELHOUSE:-auto}"
# The stand-in's tag carries a hash of the script that makes it: a changed recipe makes a new base.
STANDIN="sagebert/standin-python:3.11-bookworm-$(sha256sum container/make-standin-base.sh | cut -c1-12)"

case "$VARIANT" in
  cpu) default_base=python:3.11-slim-bookworm ;;
  gpu) default_base=nvidia/cuda:13.0.1-base-ubuntu22.04 ;;
  gpu-cu12) default_base=nvidia/cuda:12.8.1-base-ubuntu22.04 ;;
  *) echo "VARIANT must be cpu, gpu or gpu-cu12, not '$VARIANT'" >&2; exit 2 ;;
esac
if ! { command -v docker >/dev/null && docker info >/dev/null 2>&1; }; then
  echo "no Docker engine answers: install Docker and start it (dockerd), then retry" >&2; exit 1; fi

base="${BASE_IMAGE:-$default_base}"
if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
  if [ -n "${BASE_IMAGE:-}" ] || [ "$VARIANT" != cpu ]; then
    echo "cannot pull the base image $base: pull it, or choose another with BASE_IMAGE=..." >&2; exit 1
  fi
  echo "cannot pull $base: using a local stand-in ($STANDIN)"
  container/make-standin-base.sh "$STANDIN"
  base="$STANDIN"
  [ "$WHEELHOUSE" = auto ] && WHEELHOUSE=yes
fi
[ "$WHEELHOUSE" = auto ] && WHEELHOUSE=no
use_wheelhouse=0
if [ "$WHEELHOUSE" = yes ]; then
  container/make-wheelhouse.sh "$VARIANT"   # downloads only when a lock changed
  use_wheelhouse=1
fi

version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)"
revision="$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
# --network host: apt inside the build needs it where the default bridge has no outbound route.
read -ra extra <<<"${DOCKER_BUILD_ARGS:-}"
docker build --network host -t "$TAG" \
  --build-arg BASE_IMAGE="$base" --build-arg VARIANT="$VARIANT" --build-arg USE_WHEELHOUSE="$use_wheelhouse" \
  --build-arg VERSION="$version" --build-arg GIT_REVISION="$revision" \
  "${extra[@]}" .
echo "built $TAG ($VARIANT, base $base, revision $revision)"
