#!/usr/bin/env bash
# CI's container stage: builds this checkout's five CPU images and runs the container tests
# (tests/containers, marker `containers`) against them.
#
#   scripts/ci-containers.sh        (from .ci/run after `make test`; TAG defaults to `ci`)
#
# Engine: a Docker engine when `docker info` answers; otherwise rootful podman with its Docker
# API (docs/containers.md). Debian's podman, runc, debootstrap and the dnsname CNI plugin are
# installed when missing, which needs root and Debian's mirror. Images are always rebuilt (the
# layer cache keeps that short when little changed), so the tests never run against images of
# an older commit; dangling layers of earlier builds are pruned afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
export TAG=${TAG:-ci}
# the dnsname CNI plugin resolves network aliases (nats, inference, ...) inside containers: without it
# (podman installed with --no-install-recommends on a fresh machine) every service waits on "nats" forever
# catatonit is the init of the pause image podman builds locally for pods (`podman kube play`,
# tests/containers/test_kube_play.py): without it no pod starts
PODMAN_PACKAGES=(podman runc debootstrap uidmap golang-github-containernetworking-plugin-dnsname catatonit)

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  export ENGINE=docker
else
  export ENGINE=podman
  missing=()
  for package in "${PODMAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "container tests need a Docker engine or rootful podman; missing: ${missing[*]} (run as root)" >&2
      exit 1
    fi
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

start=$(date +%s)
bash scripts/build-images.sh
echo "images built in $(($(date +%s) - start)) s"
if [ "$ENGINE" = podman ]; then podman image prune -f >/dev/null; fi
TW_REQUIRE_CONTAINERS=1 .venv/bin/python -m pytest -m containers tests/containers -q -s
