#!/usr/bin/env bash
# A throwaway venv with Airflow (locks/hosts.txt, installed offline from the
# hosts wheelhouse) used only by tests/unit/test_dag.py to import the DAGs.
# Idempotent: keyed by the lock's hash; rebuilt only when the lock changes.
#   scripts/airflow-test-venv.sh          (prints the venv's python path last)
source "$(dirname "$0")/lib.sh"

lock="$ROOT/locks/hosts.txt"
wheels="$CACHE/wheelhouse/hosts"
target="$CACHE/venv-airflow-test"
stamp=$(hash_of "$lock")

[ -f "$wheels/.stamp" ] || die "the hosts wheelhouse is missing ($wheels): run scripts/wheelhouse.sh hosts first"

if [ -x "$target/bin/python" ] && [ -f "$target/.complete" ] && [ "$(cat "$target/.complete")" = "$stamp" ]; then
  log "airflow-test-venv: $target is current (lock unchanged)"
else
  t0=$SECONDS
  log "airflow-test-venv: installing locks/hosts.txt into $target (offline, from $wheels)"
  rm -rf "$target"
  python3 -m venv "$target"
  "$target/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$wheels" -r "$lock" \
    || die "offline pip install of locks/hosts.txt into $target failed"
  echo "$stamp" >"$target/.complete"
  log "airflow-test-venv: ready in $((SECONDS - t0)) s"
fi
echo "$target/bin/python"
