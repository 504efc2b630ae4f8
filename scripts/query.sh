#!/usr/bin/env bash
# `make query`: counts at each hop (SEED=... narrows them to one seed) and a few rows from Cassandra.
source "$(dirname "$0")/lib.sh"
exec "$VENV/bin/python" "$ROOT/scripts/pipeline.py" query
