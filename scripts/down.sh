#!/usr/bin/env bash
# `make down`: destroy hosts and network; PURGE=1 also volumes, images and caches.
source "$(dirname "$0")/lib.sh"
if ! docker info >/dev/null 2>&1; then
  log "down: no Docker engine answers; starting it to clean up"
  "$ROOT/scripts/docker-engine.sh"
fi
step "hosts down" "$ROOT/scripts/hosts.sh" down
if [ "${PURGE:-0}" = 1 ]; then
  vols=$(docker volume ls -q --filter "label=com.correnteza.project=correnteza")
  [ -z "$vols" ] || { log "purge: removing volumes: $vols"; docker volume rm $vols >/dev/null; }
  # by name, newest first: the host image is built on the base image, which cannot go before it
  imgs=$(docker images --filter "reference=correnteza/*" --format '{{.CreatedAt}}|{{.Repository}}:{{.Tag}}' | sort -r | cut -d'|' -f2)
  [ -z "$imgs" ] || { log "purge: removing images: $(echo $imgs)"; docker rmi $imgs >/dev/null; }
  log "purge: removing caches $CACHE and state $STATE"
  rm -rf "$CACHE" "$STATE" "$ROOT/terraform/.terraform" "$ROOT/terraform/terraform.tfstate"* "$ROOT/terraform/generated.auto.tfvars.json"
fi
if [ -f "$STATE/dockerd.pid" ] && [ "${KEEP_ENGINE:-0}" != 1 ]; then
  pid=$(cat "$STATE/dockerd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    log "down: stopping the dockerd that make up started (pid $pid)"
    kill "$pid"; for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$STATE/dockerd.pid"
fi
if docker info >/dev/null 2>&1; then
  left=$(docker ps -aq --filter "label=com.correnteza.project=correnteza" | wc -l)
  log "down: done; project containers left: $left"
else
  log "down: done; the Docker engine is stopped"
fi
