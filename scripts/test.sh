#!/usr/bin/env bash
# `make test` and its phases, each timed:
#   lint -> unit -> tftest -> integration (make up once; testinfra; e2e; faults; make down)
# KEEP=1 leaves the platform up after the integration phase.
source "$(dirname "$0")/lib.sh"
T0=$SECONDS
REPORTS="$STATE/test-reports"
mkdir -p "$REPORTS"
TF=$(tf_bin)
export TF_CLI_CONFIG_FILE="$STATE/terraformrc"

tools() {
  "$ROOT/scripts/control-packages.sh"
  "$ROOT/scripts/venv.sh"
  "$ROOT/scripts/build-provider.sh"
}

# pytest_phase NAME ARGS...: pytest with a JUnit report; exit 5 (no tests) fails.
pytest_phase() {
  local name=$1; shift
  local rc=0
  (cd "$ROOT" && "$VENV/bin/pytest" -p no:cacheprovider --junitxml="$REPORTS/$name.xml" "$@") || rc=$?
  [ $rc -ne 5 ] || die "$name: pytest collected no tests"
  [ $rc -eq 0 ] || die "$name: pytest failed (exit $rc)"
}

lint() {
  (cd "$ROOT" && "$VENV/bin/ruff" check producer dags spark tests scripts && "$VENV/bin/ruff" format --check producer dags spark tests scripts)
  "$TF" fmt -check -recursive "$ROOT/terraform"
  "$TF" -chdir="$ROOT/terraform" init -input=false -backend=false -no-color >"$STATE/terraform-init-lint.log" 2>&1 \
    || { tail -20 "$STATE/terraform-init-lint.log" >&2; die "terraform init failed"; }
  "$TF" -chdir="$ROOT/terraform" validate -no-color
  (cd "$ROOT" && "$VENV/bin/yamllint" -s ansible .yamllint && "$VENV/bin/ansible-lint" -q ansible/site.yml ansible/roles)
}

unit() {
  # The DagBag import test runs in an Airflow venv built offline from the hosts wheelhouse.
  "$ROOT/scripts/wheelhouse.sh" hosts
  "$ROOT/scripts/airflow-test-venv.sh"
  # The stream's unit tests load spark-avro (from_avro/to_avro) into a local session.
  "$ROOT/scripts/fetch-jars.sh" spark-connectors
  CORRENTEZA_REQUIRE_AIRFLOW=1 CORRENTEZA_REQUIRE_PG=1 pytest_phase unit tests/unit
}

tftest() {
  "$TF" -chdir="$ROOT/terraform" init -input=false -backend=false -no-color >/dev/null
  "$TF" -chdir="$ROOT/terraform" test -no-color
}

integration() {
  local rc=0
  "$ROOT/scripts/up.sh" || rc=$?
  if [ $rc -eq 0 ]; then
    step "testinfra (tests/infra)" pytest_phase infra tests/infra || rc=$?
  fi
  if [ $rc -eq 0 ]; then
    step "end-to-end (tests/e2e)" pytest_phase e2e tests/e2e || rc=$?
  fi
  if [ $rc -eq 0 ]; then
    # -s: each case prints its steps as it goes (the phase takes a quarter of an hour)
    step "faults (tests/faults)" pytest_phase faults -s tests/faults || rc=$?
  fi
  if [ "${KEEP:-0}" != 1 ]; then
    step "down" "$ROOT/scripts/down.sh" || rc=$?
  fi
  return $rc
}

summary() {
  "$VENV/bin/python" - "$REPORTS" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for f in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    for s in ET.parse(f).getroot().iter("testsuite"):
        for k in t:
            t[k] += int(s.get(k, 0))
failed = t["failures"] + t["errors"]
print(f"tests: {t['tests'] - failed - t['skipped']} passed, {failed} failed, {t['skipped']} skipped")
PY
}

rm -f "$REPORTS"/*.xml
case "${1:-all}" in
  lint) step "tools" tools; step "lint" lint ;;
  unit) step "tools" tools; step "unit" unit ;;
  tftest) step "tools" tools; step "terraform test" tftest ;;
  infra) pytest_phase infra tests/infra ;;
  e2e) pytest_phase e2e tests/e2e ;;
  faults) pytest_phase faults -s tests/faults ;;
  all)
    step "tools (venv, provider)" tools
    # SeaweedFS's weed (~7 min to compile cold) builds in the background during lint, unit and terraform
    # test; the integration phase waits for it (a no-op when cached).
    log "seaweedfs: building weed in the background (log: $STATE/seaweedfs-build-bg.log)"
    "$ROOT/scripts/build-seaweedfs.sh" >"$STATE/seaweedfs-build-bg.log" 2>&1 &
    weed_pid=$!
    step "lint" lint
    step "unit" unit
    step "terraform test" tftest
    wait "$weed_pid" || { tail -5 "$STATE/seaweedfs-build-bg.log" >&2; die "the SeaweedFS build failed"; }
    cat "$STATE/seaweedfs-build-bg.log" >&2
    step "integration" integration
    log "make test: all phases passed in $((SECONDS - T0)) s"
    summary ;;
  *) die "usage: $0 all|lint|unit|tftest|infra|e2e|faults" ;;
esac
