#!/usr/bin/env bash
# Build a wheelhouse for the hosts (Debian 12, CPython 3.11) from a lock, once:
#   scripts/wheelhouse.sh LOCK...   (hosts, spark: locks/LOCK.txt)
# Hosts install from it offline: pip install --no-index --find-links.
# Rebuilt only when the lock changes.
source "$(dirname "$0")/lib.sh"
for lock in "$@"; do
  file="$ROOT/locks/$lock.txt"
  [ -f "$file" ] || die "no lock named '$lock' (expected $file)"
  out="$CACHE/wheelhouse/$lock"
  stamp=$(hash_of "$file")
  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    log "wheelhouse: $lock is current ($(find "$out" -name '*.whl' | wc -l) wheels)"
    continue
  fi
  t0=$SECONDS
  # The control node is Debian 12 with CPython 3.11 like the hosts, so wheels
  # built here (sdists such as pyspark's included) install there unchanged.
  log "wheelhouse: building wheels for locks/$lock.txt"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  "$VENV/bin/pip" wheel -q --disable-pip-version-check -r "$file" -w "$out.tmp" \
      >"$STATE/wheelhouse-$lock.log" 2>&1 \
    || { tail -20 "$STATE/wheelhouse-$lock.log" >&2; die "pip wheel of locks/$lock.txt failed; see $STATE/wheelhouse-$lock.log"; }
  echo "$stamp" >"$out.tmp/.stamp"
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "wheelhouse: $lock: $(find "$out" -name '*.whl' | wc -l) wheels, $(du -sh "$out" | cut -f1) in $((SECONDS - t0)) s"
done
