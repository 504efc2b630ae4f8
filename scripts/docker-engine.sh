#!/usr/bin/env bash
# Ensure a Docker engine answers: use a running one, else install Debian's
# docker.io and start dockerd in the background, logging under .state/.
source "$(dirname "$0")/lib.sh"

"$ROOT/scripts/control-packages.sh"

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
