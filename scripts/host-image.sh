#!/usr/bin/env bash
# Build the host image: a debootstrap base (cached as a tarball), imported into
# Docker, then terraform/image/Dockerfile on top. Rebuilt only when its inputs
# change: the tag is a content hash. Prints the image tag on stdout.
source "$(dirname "$0")/lib.sh"

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_TAR="$CACHE/image/base-$SUITE.tar"
BASE_TAG="correnteza/base:$SUITE"
IMG_DIR="$ROOT/terraform/image"

if [ ! -s "$BASE_TAR" ]; then
  need debootstrap "apt-get install debootstrap"
  rootfs="$CACHE/image/rootfs.tmp"
  rm -rf "$rootfs"; mkdir -p "$rootfs"
  log "host image: debootstrap --variant=minbase $SUITE from $MIRROR (about 1 min)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $STATE/debootstrap.log"
  tar -C "$rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$rootfs"
fi

base_hash=$(sha256sum "$BASE_TAR" | cut -c1-12)
if ! docker image inspect "$BASE_TAG-$base_hash" >/dev/null 2>&1; then
  log "host image: importing the base rootfs as $BASE_TAG-$base_hash"
  docker import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_TAG-$base_hash" >/dev/null
fi

img_hash=$( (echo "$base_hash"; cat "$IMG_DIR"/Dockerfile "$IMG_DIR"/sources.list "$IMG_DIR"/sshd_config "$IMG_DIR"/ssh-hostkeys.service) | sha256sum | cut -c1-12)
HOST_TAG="correnteza/host:$img_hash"
if docker image inspect "$HOST_TAG" >/dev/null 2>&1; then
  log "host image: $HOST_TAG is current (inputs unchanged)"
else
  log "host image: building $HOST_TAG (log: $STATE/image-build.log)"
  DOCKER_BUILDKIT=0 docker build --label "$PROJECT_LABEL" --build-arg "BASE_IMAGE=$BASE_TAG-$base_hash" \
    -t "$HOST_TAG" "$IMG_DIR" >"$STATE/image-build.log" 2>&1 \
    || { tail -20 "$STATE/image-build.log" >&2; die "host image build failed; see $STATE/image-build.log"; }
fi
echo "$HOST_TAG"
