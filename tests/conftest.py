"""Fixtures shared by the infra and e2e suites: the generated inventory and the deployment's secrets, read
through the operations client (scripts/correnteza_ops.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import correnteza_ops as ops
import pytest

# testinfra's ansible backend calls ansible-inventory: use the project's venv.
_VENV_BIN = str(ops.ROOT / ".venv" / "bin")
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def inventory() -> dict[str, Any]:
    """The parsed inventory: {'all': {'vars': ..., 'children': {group: {'hosts': {name: vars}}}}}."""
    return dict(ops.inventory().data)


@pytest.fixture(scope="session")
def group_hosts() -> Callable[[str], dict[str, dict[str, Any]]]:
    """group_hosts('kafka') -> {'kafka-1': {'correnteza_ip': ..., ...}, ...}."""
    return ops.inventory().host_vars


@pytest.fixture(scope="session")
def secret() -> Callable[[str], str]:
    """secret('cassandra_superuser_password') -> the generated value."""
    return ops.secret
