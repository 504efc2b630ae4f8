# shellcheck shell=bash
# Shared helpers for Correnteza's scripts: paths, logging with timings, checks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# Caches that survive a fresh clone (built tools, images, jars, wheels).
CACHE="${CORRENTEZA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/correnteza}"
# Per-clone state: dockerd log, SSH key, secrets, generated files. Git-ignored.
STATE="${CORRENTEZA_STATE:-$ROOT/.state}"
export CACHE STATE
mkdir -p "$CACHE" "$STATE"

# Labels that mark every Docker object of the project.
PROJECT_LABEL="com.correnteza.project=correnteza"
export PROJECT_LABEL

_ts() { date +%H:%M:%S; }
log() { printf '[%s] %s\n' "$(_ts)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(_ts)" "$*" >&2; exit 1; }

# step NAME CMD...: run CMD, print start, end and duration.
step() {
  local name=$1; shift
  local t0=$SECONDS
  log "==> ${name}"
  "$@"
  log "<== ${name} done in $((SECONDS - t0)) s"
}

# hash_of FILE...: a short content hash of files (order-sensitive).
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"; }

# Terraform or OpenTofu, whichever is on PATH.
tf_bin() {
  if command -v terraform >/dev/null 2>&1; then echo terraform
  elif command -v tofu >/dev/null 2>&1; then echo tofu
  else die "neither terraform nor tofu (>= 1.6) is on PATH; install one of them"; fi
}

VENV="$ROOT/.venv"
export VENV
export PATH="$VENV/bin:$PATH"
