#!/usr/bin/env bash
# Ensure a Docker engine answers: use a running one, else install Debian's
# docker.io and start dockerd in the background, logging under .state/.
source "$(dirname "$0")/lib.sh"

if docker info >/dev/null 2>&1; then
  log "docker engine: already running ($(docker info -f '{{.ServerVersion}}'))"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "no Docker engine runs and dockerd is missing; installing docker.io needs root"
  command -v apt-get >/dev/null 2>&1 || die "no Docker engine runs, dockerd is missing and apt-get is not available to install docker.io"
  log "docker engine: installing Debian's docker.io (and debootstrap)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: Debian's package mirror is unreachable"
  apt-get install -y -qq docker.io debootstrap >"$STATE/apt-docker.log" 2>&1 \
    || die "apt-get install docker.io failed; see $STATE/apt-docker.log"
fi

log "docker engine: starting dockerd (log: $STATE/dockerd.log)"
# setsid: dockerd must outlive the make process that started it.
setsid nohup dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
for i in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker engine: up after ${i} s ($(docker info -f '{{.ServerVersion}}'), $(docker info -f '{{.Driver}}'))"
    exit 0
  fi
  sleep 1
done
tail -20 "$STATE/dockerd.log" >&2 || true
die "dockerd did not answer within 60 s; see $STATE/dockerd.log"
