#!/usr/bin/env bash
# `make up`: every step from a bare machine to a running pipeline, each timed.
#   scripts/up.sh          everything
#   scripts/up.sh deploy   only ansible-playbook ansible/site.yml
source "$(dirname "$0")/lib.sh"
T0=$SECONDS

preflight() {
  local free_gb
  free_gb=$(df -Pk "$ROOT" | awk 'NR==2 {print int($4/1024/1024)}')
  [ "$free_gb" -ge 15 ] || die "only ${free_gb} GiB free on $(df -P "$ROOT" | awk 'NR==2 {print $6}'); make up needs 15 GiB (images, jars, wheels, volumes)"
  need python3 "Python 3.11"
  need java "OpenJDK 17 (apt-get install openjdk-17-jdk-headless)"
  need mvn "Maven (apt-get install maven) fetches the service jars"
  need go "Go builds the Terraform docker provider and SeaweedFS"
  tf_bin >/dev/null
  log "preflight: ${free_gb} GiB free, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB memory, $($(tf_bin) version | head -1)"
}

artifacts() {
  "$ROOT/scripts/fetch-jars.sh" kafka cassandra spark-connectors registry jmx-exporter
  "$ROOT/scripts/wheelhouse.sh" hosts spark cassandra registry
  # SeaweedFS's weed for the objectstore role (cached by pin; about 7 min the first time).
  "$ROOT/scripts/build-seaweedfs.sh"
}

deploy() {
  local log_file="$STATE/ansible-site.log"
  log "ansible: ansible-playbook ansible/site.yml (log: $log_file)"
  # The profile_roles callback prints each role's time; the recap shows changed= per host.
  (cd "$ROOT" && ANSIBLE_FORCE_COLOR=0 "$VENV/bin/ansible-playbook" ansible/site.yml "$@") 2>&1 \
    | tee "$log_file" | grep --line-buffered -E '^(PLAY |PLAY RECAP|[a-z0-9-]+ +: ok=|fatal:|failed:|ERROR|[a-z_]+ -+ [0-9.]+s$|total -+)' \
    || true
  grep -qE 'failed=[1-9]|unreachable=[1-9]' "$log_file" && die "ansible-playbook failed; see $log_file"
  grep -q 'PLAY RECAP' "$log_file" || die "ansible-playbook did not finish; see $log_file"
}

# The UIs Terraform publishes on 127.0.0.1 (inventory all.vars.correnteza_published_ports).
published_uis() {
  "$VENV/bin/python" - "$ROOT/ansible/inventory/hosts.yml" "$STATE/contract.json" <<'PY'
import json, sys, yaml
published = yaml.safe_load(open(sys.argv[1]))["all"]["vars"].get("correnteza_published_ports", {})
contract = json.load(open(sys.argv[2]))
names = {"airflow_api": "Airflow UI", "spark_master_ui": "Spark UI", "spark_driver_ui": "Stream UI"}
for port, label in names.items():
    if port in published:
        extra = f"  user {contract['airflow']['admin_user']}, password in .state/secrets/airflow_admin_password" if port == "airflow_api" else ""
        print(f"  {label + ':':11s} http://127.0.0.1:{published[port]}{extra}")
PY
}

summary() {
  local uis
  uis=$(published_uis)
  cat >&2 <<EOM
[$(_ts)] make up: done in $((SECONDS - T0)) s
  hosts:      $( TF_CLI_CONFIG_FILE="$STATE/terraformrc" "$(tf_bin)" -chdir="$ROOT/terraform" output -json hosts | "$VENV/bin/python" -c 'import json,sys; print(", ".join(n + " " + h["ip"] for n,h in sorted(json.load(sys.stdin).items())))')
  ssh:        ssh -i $STATE/ssh/id_ed25519 deploy@<ip>   (or: .venv/bin/ansible <group> -m ping)
  secrets:    $STATE/secrets/ (one file per secret, mode 0600)
$uis
EOM
}

case "${1:-all}" in
  deploy)
    step "ansible site.yml" deploy ;;
  all)
    step "preflight" preflight
    step "docker engine" "$ROOT/scripts/docker-engine.sh"
    step "python tools (venv from locks/control.txt)" "$ROOT/scripts/venv.sh"
    step "terraform provider" "$ROOT/scripts/build-provider.sh"
    step "ssh key" "$ROOT/scripts/ssh-key.sh"
    step "artifacts (jars, wheelhouses)" artifacts
    step "hosts (image, terraform apply, inventory, ssh)" "$ROOT/scripts/hosts.sh" up
    step "ansible site.yml" deploy
    summary ;;
  *) die "usage: $0 [deploy]" ;;
esac
