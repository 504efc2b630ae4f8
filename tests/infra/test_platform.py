"""The platform as a whole: a second `terraform plan` is empty. (The second site.yml run, which must change
nothing, is the last case of the fault suite: after the first deploy and after every fault.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))

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


def test_contract_file_is_rendered_for_scripts_and_tests():
    contract = json.loads((STATE / "contract.json").read_text())
    assert contract["ports"]["kafka"] == 9092
    assert contract["ports"]["cassandra"] == 9042
    assert all(isinstance(port, int) for port in contract["ports"].values()), contract["ports"]
    assert contract["kafka"] == {"topic_users": "users_created", "topic_dlq": "users_created.dlq"}
    assert contract["cassandra"]["keyspace"] == "spark_streams"
    assert contract["cassandra"]["table_users"] == "created_users"
    assert contract["postgres"]["ingestion_db"] == "ingestion"
