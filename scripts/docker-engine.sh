#!/usr/bin/env bash
# Ensure a Docker engine answers: use a running one, else install Debian's
# docker.io and start dockerd in the background, logging under .state/.
source "$(dirname "$0")/lib.sh"

# Control-node packages from Debian: the engine, debootstrap for the base image,
# rsync for Ansible's synchronize.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; installing them needs root (apt-get install ${missing[*]})"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available to install them"
  log "control node: installing Debian's ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: Debian's package mirror is unreachable"
  apt-get install -y -qq "${missing[@]}" >"$STATE/apt-control.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed; see $STATE/apt-control.log"
fi

if docker info >/dev/null 2>&1; then
  log "docker engine: already running ($(docker info -f '{{.ServerVersion}}'))"
  exit 0
fi

log "docker engine: starting dockerd (log: $STATE/dockerd.log)"
# setsid: dockerd must outlive the make process that started it.
setsid nohup dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
echo $! >"$STATE/dockerd.pid"
for i in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker engine: up after ${i} s ($(docker info -f '{{.ServerVersion}}'), $(docker info -f '{{.Driver}}'))"
    exit 0
  fi
  sleep 1
done
tail -20 "$STATE/dockerd.log" >&2 || true
die "dockerd did not answer within 60 s; see $STATE/dockerd.log"
