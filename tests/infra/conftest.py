"""testinfra suites: they need the inventory that `make up` renders (fixtures are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

INVENTORY = Path(__file__).resolve().parents[2] / "ansible" / "inventory" / "hosts.yml"


def pytest_configure(config: pytest.Config) -> None:
    if not INVENTORY.exists():
        raise pytest.UsageError(f"{INVENTORY} is missing: run `make up` (it renders the inventory) first")
