#!/usr/bin/env bash
# Make a local stand-in for the public base image, for machines that cannot pull from a registry.
#
#   container/make-standin-base.sh [TAG]      # default TAG: sagebert/standin-python:3.11-bookworm
#
# It is Debian bookworm (the distribution python:3.11-slim-bookworm is built on) with Debian's
# Python 3.11 and venv, made with debootstrap from the Debian mirror and imported into Docker.
# Slimmed the way Debian's own -slim images are: no documentation (copyright files stay), man
# pages, info pages or translations, now and (through dpkg's path-exclude) for every package a
# later build stage installs; no apt lists or downloaded archives.
# Needs root, debootstrap and a running Docker engine. Does nothing if TAG already exists
# (build-image.sh names the tag after this script's content, so a change here makes a new one).
set -euo pipefail
TAG="${1:-sagebert/standin-python:3.11-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "stand-in base $TAG already exists"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }

rootfs="$(mktemp -d /tmp/sagebert-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm into $rootfs (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$MIRROR" >/tmp/sagebert-debootstrap.log 2>&1 || {
  tail -20 /tmp/sagebert-debootstrap.log >&2; exit 1; }
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/sagebert-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/usr/share/lintian/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$TAG" >/dev/null
echo "made stand-in base $TAG"
