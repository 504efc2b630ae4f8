#!/usr/bin/env bash
# `make replay`: refill the stream from PostgreSQL after Kafka lost offsets it needed (REPLAY_SEED=...: one
# seed's users only). See scripts/pipeline.py (replay) and README.md (When Kafka lost offsets).
source "$(dirname "$0")/lib.sh"
exec "$VENV/bin/python" "$ROOT/scripts/pipeline.py" replay
