#!/usr/bin/env bash
# Build the nmbrs-sync image from deploy/container/Containerfile with podman, buildah or docker (the first
# found; CONTAINER_TOOL overrides). Run from anywhere; the build context is the repository root.
#
#   deploy/container/build.sh                      # FROM docker.io/library/python:3.11-slim-bookworm
#   deploy/container/build.sh --tag registry.example.nl/nmbrs-sync:0.1.0
#   deploy/container/build.sh --base registry.example.nl/mirror/python:3.11-slim-bookworm
#   BUILDAH_ISOLATION=chroot deploy/container/build.sh --debootstrap-base --ca-bundle /etc/ssl/certs/ca-certificates.crt
#
# --debootstrap-base: where no container registry is reachable, but Debian's mirror is, the base is made
#   here instead (as root, with debootstrap and buildah): Debian bookworm minbase with Debian's python3
#   (3.11), python3-venv and ca-certificates, tagged localhost/python:3.11-slim-bookworm-debootstrap, made once.
# --ca-bundle FILE: behind a TLS-inspecting proxy, the CA bundle pip must trust in the builder stage
#   (bind-mounted, podman and buildah only; it does not end up in the image).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$ROOT/pyproject.toml")
TAG="localhost/nmbrs-sync:$VERSION"
BASE=""
CA_BUNDLE=""
DEBOOTSTRAP_BASE=localhost/python:3.11-slim-bookworm-debootstrap
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=${2:?--tag needs a name}; shift 2 ;;
    --base) BASE=${2:?--base needs an image}; shift 2 ;;
    --ca-bundle) CA_BUNDLE=$(realpath "${2:?--ca-bundle needs a file}"); shift 2 ;;
    --debootstrap-base) BASE=$DEBOOTSTRAP_BASE; shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

TOOL=${CONTAINER_TOOL:-}
if [ -z "$TOOL" ]; then
  for candidate in podman buildah docker; do
    command -v "$candidate" >/dev/null && { TOOL=$candidate; break; }
  done
fi
[ -n "$TOOL" ] || die "no podman, buildah or docker (Debian: apt-get install buildah)"

make_debootstrap_base() {
  buildah inspect --type image "$DEBOOTSTRAP_BASE" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "--debootstrap-base runs as root (debootstrap, buildah mount)"
  command -v debootstrap >/dev/null && command -v buildah >/dev/null \
    || die "--debootstrap-base needs debootstrap and buildah (apt-get install debootstrap buildah)"
  local work container mount
  work=$(mktemp -d /var/tmp/nmbrs-sync-base.XXXXXX)
  WORK=$work
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs" \
    "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  # What python:*-slim leaves out too: package lists and downloaded packages.
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb
  container=$(buildah from scratch)
  mount=$(buildah mount "$container")
  cp -a "$work/rootfs/." "$mount/"  # cp -a: keeps the owners and modes a copy into the image would reset
  buildah unmount "$container" >/dev/null
  buildah config --env LANG=C.UTF-8 --cmd python3 "$container"
  buildah commit -q "$container" "$DEBOOTSTRAP_BASE" >/dev/null
  buildah rm "$container" >/dev/null
}
WORK=""
trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT  # the debootstrap rootfs, also when a step failed

[ "$BASE" = "$DEBOOTSTRAP_BASE" ] && make_debootstrap_base

args=(-f "$ROOT/deploy/container/Containerfile" -t "$TAG" --build-arg "VERSION=$VERSION")
[ -n "$BASE" ] && args+=(--build-arg "PYTHON_IMAGE=$BASE")
if [ -n "$CA_BUNDLE" ]; then
  [ "$TOOL" = docker ] && die "--ca-bundle needs podman or buildah (docker build has no bind mounts)"
  args+=(-v "$CA_BUNDLE:/run/build-ca.crt:ro" --build-arg REQUESTS_CA_BUNDLE=/run/build-ca.crt)
fi
case "$TOOL" in
  buildah) buildah bud "${args[@]}" "$ROOT" ;;
  *) "$TOOL" build "${args[@]}" "$ROOT" ;;
esac
echo "built $TAG"
