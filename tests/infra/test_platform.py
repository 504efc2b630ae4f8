"""The platform as a whole: a second `terraform plan` is empty, a second site.yml run changes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))
VENV = ROOT / ".venv"

# No hosts from testinfra: these tests drive the control node's tools.
testinfra_hosts: list[str] = []


def test_terraform_plan_is_empty():
    tf = shutil.which("terraform") or shutil.which("tofu")
    assert tf, "terraform or tofu must be on PATH"
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(STATE / "terraformrc"))
    run = subprocess.run(
        [tf, "-chdir=terraform", "plan", "-detailed-exitcode", "-input=false", "-no-color"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 0: no changes; 2: changes; 1: error.
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_second_ansible_run_changes_nothing():
    run = subprocess.run(
        [str(VENV / "bin" / "ansible-playbook"), "ansible/site.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"),
    )
    (STATE / "ansible-idempotence.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-3000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)
    assert recap, "no PLAY RECAP in the output"
    changed = {h: int(c) for h, c in recap if int(c) > 0}
    # Show which tasks changed, to make a failure readable.
    tasks = re.findall(r"^changed: \[([^\]]+)\].*$", run.stdout, re.M)
    assert not changed, (
        f"second run changed: {changed}; see {STATE / 'ansible-idempotence.log'} ({len(tasks)} results)"
    )


def test_contract_file_is_rendered_for_scripts_and_tests():
    contract = json.loads((STATE / "contract.json").read_text())
    assert contract["ports"]["kafka"] == 9092
    assert contract["ports"]["cassandra"] == 9042
    assert all(isinstance(port, int) for port in contract["ports"].values()), contract["ports"]
    assert contract["kafka"] == {"topic_users": "users_created", "topic_dlq": "users_created.dlq"}
    assert contract["cassandra"]["keyspace"] == "spark_streams"
    assert contract["cassandra"]["table_users"] == "created_users"
    assert contract["postgres"]["ingestion_db"] == "ingestion"
