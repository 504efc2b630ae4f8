#!/usr/bin/env bash
# `make bench`: figures and ratios per hop of the running platform (make up first).
source "$(dirname "$0")/lib.sh"
[ -f "$ROOT/ansible/inventory/hosts.yml" ] || die "no inventory: run make up first"
exec "$VENV/bin/python" "$ROOT/scripts/bench.py" "$@"
