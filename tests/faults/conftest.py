"""Fault-suite fixtures: the e2e fixtures (Airflow, PostgreSQL, Cassandra, Kafka, the stream host) as they
are; a healthy platform before and after each case; the cases' figures in the terminal summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import airflow, cassandra, kafka_servers, postgres, source_url, stream_host  # noqa: F401
from tests.faults.faults import RESULTS, wait_healthy


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS:
        terminalreporter.section("fault cases")
        for result in RESULTS:
            terminalreporter.write_line(result.line())


@pytest.fixture(autouse=True)
def healthy_before_and_after() -> Iterator[None]:
    """Each case starts from a healthy platform and leaves it healthy (nothing left behind)."""
    wait_healthy()
    yield
    wait_healthy()
