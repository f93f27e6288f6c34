#!/usr/bin/env bash
# Builds the service images (tracewheel/<service>:$TAG), one at a time, at low priority.
#
#   scripts/build-images.sh [--base] [--gpu] [SERVICE...]     (default: every CPU image)
#
# SERVICE is inference, mcp-gateway, agent, dataset or trainer; --gpu adds inference-gpu and
# trainer-gpu (GPU variants: gigabytes of CUDA wheels); --base (re)builds the local base image.
#
# Engine: a Docker engine when `docker info` answers, else podman (rootful, runc; see
# docs/containers.md). With podman and no BASE_IMAGE given, the base image is built locally
# (debootstrap from Debian's mirror, `podman import`), since no registry can be pulled from;
# it also trusts this machine's extra CA certificates (/usr/local/share/ca-certificates) so
# pip inside the build reaches PyPI through a TLS-intercepting egress.
#
# Environment: TAG (dev), ENGINE (docker|podman), BASE_IMAGE, WHEELS_DIR (a local wheelhouse,
# default /opt/wheels when it holds the CPU torch wheel: mounted into podman builds, which then
# skip the PyTorch index), CONTEXT_REF (build from `git archive REF` instead of the working tree,
# e.g. HEAD, to leave uncommitted edits out), TIMINGS (a file that gets "image seconds" lines),
# EXTRA_BUILD_ARGS (more build options, e.g. --no-cache).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TAG=${TAG:-dev}
LOCAL_BASE=localhost/tracewheel-base:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CPU_IMAGES=(inference mcp-gateway agent dataset trainer)

build_base=false
images=()
for arg in "$@"; do
  case "$arg" in
    --base) build_base=true ;;
    --gpu) images+=(inference-gpu trainer-gpu) ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) images+=("$arg") ;;
  esac
done
if [ ${#images[@]} -eq 0 ] && ! $build_base; then images=("${CPU_IMAGES[@]}"); fi

if [ -z "${ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=podman; fi
fi
if [ "$ENGINE" = podman ]; then
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/scripts/podman-containers.conf}
fi

base_image_exists() { "$ENGINE" image inspect "$LOCAL_BASE" >/dev/null 2>&1; }

make_local_base() {
  local rootfs
  rootfs=$(mktemp -d /var/tmp/tracewheel-rootfs.XXXXXX)
  echo "base: debootstrap bookworm into $rootfs"
  nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$DEBIAN_MIRROR" >/dev/null
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
  fi
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
  rm -rf "$rootfs"
  echo "base: $LOCAL_BASE"
}

if [ "$ENGINE" = podman ] && [ -z "${BASE_IMAGE:-}" ]; then
  if $build_base || ! base_image_exists; then make_local_base; fi
  BASE_IMAGE=$LOCAL_BASE
elif $build_base; then
  echo "--base builds the podman base image; with $ENGINE, set BASE_IMAGE or use the Dockerfiles' default" >&2
fi

CONTEXT=$ROOT
if [ -n "${CONTEXT_REF:-}" ]; then
  CONTEXT=$(mktemp -d /var/tmp/tracewheel-context.XXXXXX)
  trap 'rm -rf "$CONTEXT"' EXIT
  git archive "$CONTEXT_REF" | tar -x -C "$CONTEXT"
fi

build_args=(--build-arg "BASE_IMAGE=${BASE_IMAGE:-}")
[ -z "${BASE_IMAGE:-}" ] && build_args=()
WHEELS_DIR=${WHEELS_DIR:-}
if [ -z "$WHEELS_DIR" ] && compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then WHEELS_DIR=/opt/wheels; fi
if [ "$ENGINE" = podman ] && [ -n "$WHEELS_DIR" ]; then
  build_args+=(--volume "$WHEELS_DIR:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels --build-arg TORCH_INDEX_URL=)
fi
[ "$ENGINE" = podman ] && build_args+=(--format docker)  # OCI images drop HEALTHCHECK

dockerfile_of() {
  case "$1" in
    inference-gpu) echo services/inference/Dockerfile.gpu ;;
    trainer-gpu) echo services/trainer/Dockerfile.gpu ;;
    inference | mcp-gateway | agent | dataset | trainer) echo "services/$1/Dockerfile" ;;
    *) echo "unknown image $1 (inference, mcp-gateway, agent, dataset, trainer, inference-gpu, trainer-gpu)" >&2; return 1 ;;
  esac
}

for image in "${images[@]}"; do
  dockerfile=$(dockerfile_of "$image")
  gpu_args=()
  # the GPU variants take CUDA torch from PyPI: no CPU wheelhouse, no CPU index
  [[ "$image" == *-gpu ]] && gpu_args=(--build-arg PIP_FIND_LINKS= --build-arg TORCH_INDEX_URL=)
  echo "building tracewheel/$image:$TAG from $dockerfile (${BASE_IMAGE:-default base})"
  start=$(date +%s)
  # shellcheck disable=SC2086 # EXTRA_BUILD_ARGS is a list of options
  nice -n 10 "$ENGINE" build "${build_args[@]}" "${gpu_args[@]}" ${EXTRA_BUILD_ARGS:-} -f "$CONTEXT/$dockerfile" \
    -t "tracewheel/$image:$TAG" "$CONTEXT"
  seconds=$(($(date +%s) - start))
  echo "built tracewheel/$image:$TAG in ${seconds}s"
  if [ -n "${TIMINGS:-}" ]; then echo "$image $seconds" >>"$TIMINGS"; fi
done
