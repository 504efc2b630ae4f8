#!/usr/bin/env bash
# The deployment's SSH key pair (ed25519), generated once per clone, git-ignored.
source "$(dirname "$0")/lib.sh"
key="$STATE/ssh/id_ed25519"
if [ ! -f "$key" ]; then
  mkdir -p "$STATE/ssh"; chmod 0700 "$STATE/ssh"
  ssh-keygen -q -t ed25519 -N '' -C "correnteza-deploy" -f "$key"
  log "ssh key: generated $key"
else
  log "ssh key: reusing $key"
fi
