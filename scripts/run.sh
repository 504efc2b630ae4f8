#!/usr/bin/env bash
# `make run`: trigger one DAG run (N users in BATCHES batches, seed SEED) and follow it hop by hop.
source "$(dirname "$0")/lib.sh"
exec "$VENV/bin/python" "$ROOT/scripts/pipeline.py" run
