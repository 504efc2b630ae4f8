#!/usr/bin/env bash
# Debian packages the control node needs, installed once when missing:
# the Docker engine, debootstrap (base image), rsync (Ansible synchronize) and
# PostgreSQL 15's server binaries (a throwaway database for the unit tests).
source "$(dirname "$0")/lib.sh"

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; installing them needs root (apt-get install ${missing[*]})"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available to install them"
  log "control node: installing Debian's ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: Debian's package mirror is unreachable"
  apt-get install -y -qq "${missing[@]}" >"$STATE/apt-control.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed; see $STATE/apt-control.log"
fi

