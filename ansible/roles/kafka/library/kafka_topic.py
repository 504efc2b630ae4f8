#!/usr/bin/python
"""Ansible module: create or alter a Kafka topic through Kafka's own CLI classes."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: kafka_topic
short_description: Create a Kafka topic, grow its partitions and set its configs
description:
  - Describes the topic with org.apache.kafka.tools.TopicCommand; creates it when missing; raises the
    partition count when lower than asked; sets topic configs whose effective value differs
    (kafka.admin.ConfigCommand).
  - Reports changed only when something was created or altered. Partitions never shrink; a different
    replication factor is reported as a warning (changing it needs a partition reassignment).
options:
  name: {description: Topic name., type: str, required: true}
  partitions: {description: Partition count., type: int, required: true}
  replication_factor: {description: Replication factor at creation., type: int, required: true}
  configs: {description: Topic configs (name -> value)., type: dict, default: {}}
  bootstrap_server: {description: host:port of a broker., type: str, required: true}
  run_class: {description: Script running a class with Kafka's classpath., type: path, required: true}
"""

HEADER = re.compile(
    r"^Topic:\s*(?P<name>\S+)\s+TopicId:.*?PartitionCount:\s*(?P<partitions>\d+)"
    r"\s+ReplicationFactor:\s*(?P<rf>\d+)\s+Configs:\s*(?P<configs>.*)$"
)


def run(module: AnsibleModule, main_class: str, args: list[str]) -> str:
    """Run a Kafka CLI class; fail the module on a non-zero exit."""
    cmd = [
        module.params["run_class"],
        main_class,
        "--bootstrap-server",
        module.params["bootstrap_server"],
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0:
        module.fail_json(
            msg=f"{main_class} failed (rc {proc.returncode})", cmd=cmd, stdout=proc.stdout, stderr=proc.stderr
        )
    return proc.stdout


def parse_configs(text: str) -> dict[str, str]:
    """'a=1,b=2' -> {'a': '1', 'b': '2'}."""
    pairs = (item.split("=", 1) for item in text.strip().split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def describe(module: AnsibleModule, name: str) -> dict[str, Any] | None:
    """The topic's partition count, replication factor and non-default configs, or None when missing."""
    out = run(module, "org.apache.kafka.tools.TopicCommand", ["--describe", "--if-exists", "--topic", name])
    for line in out.splitlines():
        match = HEADER.match(line.strip())
        if match and match.group("name") == name:
            return {
                "partitions": int(match.group("partitions")),
                "replication_factor": int(match.group("rf")),
                "configs": parse_configs(match.group("configs")),
            }
    return None


def create(module: AnsibleModule, name: str, configs: dict[str, str]) -> None:
    args = [
        "--create",
        "--if-not-exists",
        "--topic",
        name,
        "--partitions",
        str(module.params["partitions"]),
        "--replication-factor",
        str(module.params["replication_factor"]),
    ]
    for key, value in sorted(configs.items()):
        args += ["--config", f"{key}={value}"]
    run(module, "org.apache.kafka.tools.TopicCommand", args)


def alter_configs(module: AnsibleModule, name: str, configs: dict[str, str]) -> None:
    pairs = ",".join(f"{key}={value}" for key, value in sorted(configs.items()))
    run(
        module,
        "kafka.admin.ConfigCommand",
        ["--entity-type", "topics", "--entity-name", name, "--alter", "--add-config", pairs],
    )


def ensure(module: AnsibleModule) -> dict[str, Any]:
    """Bring the topic to the asked state; return the module result."""
    name: str = module.params["name"]
    wanted = {str(key): str(value) for key, value in (module.params["configs"] or {}).items()}
    current = describe(module, name)
    if current is None:
        if not module.check_mode:
            create(module, name, wanted)
        return {"changed": True, "actions": ["created"], "topic": name}
    actions: list[str] = []
    warnings: list[str] = []
    if module.params["partitions"] < current["partitions"]:
        module.fail_json(
            msg=f"topic {name} has {current['partitions']} partitions; Kafka cannot shrink it to "
            f"{module.params['partitions']}"
        )
    if module.params["partitions"] > current["partitions"]:
        actions.append(f"partitions {current['partitions']} -> {module.params['partitions']}")
        if not module.check_mode:
            run(
                module,
                "org.apache.kafka.tools.TopicCommand",
                ["--alter", "--topic", name, "--partitions", str(module.params["partitions"])],
            )
    if module.params["replication_factor"] != current["replication_factor"]:
        warnings.append(
            f"topic {name} has replication factor {current['replication_factor']}, not "
            f"{module.params['replication_factor']}; change it with a partition reassignment"
        )
    differing = {key: value for key, value in wanted.items() if current["configs"].get(key) != value}
    if differing:
        actions.append("configs " + ",".join(sorted(differing)))
        if not module.check_mode:
            alter_configs(module, name, differing)
    result: dict[str, Any] = {"changed": bool(actions), "actions": actions, "topic": name, "before": current}
    if warnings:
        result["warnings"] = warnings
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "partitions": {"type": "int", "required": True},
            "replication_factor": {"type": "int", "required": True},
            "configs": {"type": "dict", "default": {}},
            "bootstrap_server": {"type": "str", "required": True},
            "run_class": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    module.exit_json(**ensure(module))


if __name__ == "__main__":
    main()
