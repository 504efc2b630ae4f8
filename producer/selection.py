"""Which randomuser API to use: local (the platform's source host), real (randomuser.me) or auto.

auto probes the real API with a short timeout and falls back to the local source; the choice is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests

from producer.client import api_url
from producer.config import MODES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceChoice:
    name: str  # "local" | "real" (the Kafka message's _meta.source)
    url: str
    reason: str


def probe(real_url: str, timeout: float) -> str | None:
    """None if the real API answers a 1-user request with JSON results, else what went wrong."""
    try:
        response = requests.get(api_url(real_url), params={"results": "1"}, timeout=timeout)
    except requests.RequestException as err:
        return f"{type(err).__name__}: {err}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "answer is not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "answer has no results list"
    return None


def select_source(mode: str, local_url: str, real_url: str, probe_timeout: float = 3.0) -> SourceChoice:
    """Decide and log which API the run uses."""
    mode = (mode or "local").strip().lower()
    if mode not in MODES:
        raise ValueError(f"randomuser_mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "real":
        choice = SourceChoice("real", real_url, "forced by randomuser_mode=real")
    elif mode == "local":
        choice = SourceChoice("local", local_url, "forced by randomuser_mode=local")
    else:
        problem = probe(real_url, probe_timeout)
        if problem is None:
            choice = SourceChoice("real", real_url, f"randomuser_mode=auto and {real_url} answered")
        else:
            choice = SourceChoice(
                "local", local_url, f"{real_url} unreachable ({problem}); randomuser_mode=auto"
            )
    if choice.name == "local":
        log.info("using the local randomuser-compatible source at %s (%s)", choice.url, choice.reason)
    else:
        log.info("using the real randomuser API at %s (%s)", choice.url, choice.reason)
    return choice
