"""Run site.yml from the control node and read its PLAY RECAP (the changed=0 checks of infra and faults)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))
VENV = ROOT / ".venv"


@dataclass(frozen=True)
class SiteRun:
    returncode: int
    stdout: str
    log: Path
    # {host: changed count} from the PLAY RECAP, every host listed
    changed: dict[str, int]
    # "host: task" of every changed result, to make a failure readable
    changed_tasks: list[str]

    def tail(self) -> str:
        return self.stdout[-3000:]


def run_site(log_name: str, *args: str, timeout: float = 1800) -> SiteRun:
    """ansible-playbook ansible/site.yml [args]; the output kept in .state/<log_name>."""
    run = subprocess.run(
        [str(VENV / "bin" / "ansible-playbook"), "ansible/site.yml", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"),
    )
    log = STATE / log_name
    log.write_text(run.stdout + run.stderr)
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)
    tasks, current = [], ""
    for line in run.stdout.splitlines():
        if line.startswith("TASK ["):
            current = line[6 : line.find("]")]
        elif found := re.match(r"^changed: \[([^\]]+)\]", line):
            tasks.append(f"{found.group(1)}: {current}")
    return SiteRun(run.returncode, run.stdout, log, {h: int(c) for h, c in recap}, tasks)


def assert_changes_nothing(run: SiteRun) -> None:
    assert run.returncode == 0, run.tail()
    assert run.changed, f"no PLAY RECAP in the output; see {run.log}"
    changed = {h: c for h, c in run.changed.items() if c > 0}
    assert not changed, f"site.yml changed: {changed}; tasks: {run.changed_tasks[:20]}; see {run.log}"
