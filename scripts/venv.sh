#!/usr/bin/env bash
# The control node's Python tools (ansible, pytest-testinfra, linters) in a
# virtualenv built from locks/control.txt. The venv lives in the cache, keyed
# by the lock's hash, and .venv links to it: a fresh clone reuses it.
source "$(dirname "$0")/lib.sh"

need python3 "Python 3.11 is required on the control node"
py_ver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$py_ver" = "3.11" ] || die "python3 is $py_ver; the locks are for Python 3.11"

lock_hash=$(hash_of "$ROOT/locks/control.txt")
target="$CACHE/venv-control-$lock_hash"
if [ ! -x "$target/bin/ansible-playbook" ] || [ ! -f "$target/.complete" ]; then
  log "venv: installing locks/control.txt into $target"
  rm -rf "$target"
  python3 -m venv "$target"
  "$target/bin/pip" install -q --disable-pip-version-check -r "$ROOT/locks/control.txt" \
    || die "pip install -r locks/control.txt failed (PyPI unreachable?)"
  touch "$target/.complete"
else
  log "venv: $target is current (lock unchanged)"
fi
ln -sfn "$target" "$VENV"
