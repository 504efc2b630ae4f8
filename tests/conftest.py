"""Fixtures shared by the infra and e2e suites: the generated inventory and the deployment's secrets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "ansible" / "inventory" / "hosts.yml"
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))

# testinfra's ansible backend calls ansible-inventory: use the project's venv.
_VENV_BIN = str(ROOT / ".venv" / "bin")
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def inventory() -> dict[str, Any]:
    """The parsed inventory: {'all': {'vars': ..., 'children': {group: {'hosts': {name: vars}}}}}."""
    if not INVENTORY.exists():
        raise FileNotFoundError(f"{INVENTORY} is missing: run `make up` first")
    return yaml.safe_load(INVENTORY.read_text())


@pytest.fixture(scope="session")
def group_hosts(inventory: dict[str, Any]) -> Callable[[str], dict[str, dict[str, Any]]]:
    """group_hosts('kafka') -> {'kafka-1': {'correnteza_ip': ..., ...}, ...}."""

    def _hosts(group: str) -> dict[str, dict[str, Any]]:
        return inventory["all"]["children"].get(group, {}).get("hosts") or {}

    return _hosts


@pytest.fixture(scope="session")
def secret() -> Callable[[str], str]:
    """secret('cassandra_superuser_password') -> the generated value."""

    def _read(name: str) -> str:
        path = STATE / "secrets" / name
        if not path.exists():
            raise FileNotFoundError(f"secret {name} not found at {path}: run `make up` first")
        return path.read_text().strip()

    return _read
