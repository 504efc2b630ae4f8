#!/usr/bin/env bash
# `make replay`: refill the stream from PostgreSQL after Kafka lost offsets it needed (REPLAY_SEED=...: one
# seed's users only). See scripts/pipeline.py (replay) and README.md (When Kafka lost offsets).
# `make archive-replay` (scripts/replay.sh archive): land archived answers of the bronze archive again
# through the user_replay DAG (RUN_ID=..., or DATE_FROM/DATE_TO=YYYY-MM-DD; DRY_RUN=1 only reads and checks).
source "$(dirname "$0")/lib.sh"
case "${1:-postgres}" in
  postgres) exec "$VENV/bin/python" "$ROOT/scripts/pipeline.py" replay ;;
  archive) exec "$VENV/bin/python" "$ROOT/scripts/pipeline.py" archive-replay ;;
  *) die "usage: $0 [postgres|archive]" ;;
esac
