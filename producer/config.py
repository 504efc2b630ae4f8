"""Settings shared by the producer's modules (plain data; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

API_VERSION: Final = "1.4"
# The real API's per-request ceiling (documentation: "up to 5,000 generated users in one request").
MAX_RESULTS: Final = 5000
# Faults the local source answers with on demand (fault=...; producer/source/server.py documents each).
SOURCE_FAULTS: Final = ("error", "malformed", "truncated", "429", "5xx", "slow")
# The real API's highest page: past it (or below 0) randomuser.me silently answers page 1.
MAX_PAGE: Final = 10000
# Default cap on an answer's body. 5,000 users (the per-request ceiling) measure about 5.4 MB from the
# local source (~1.1 KB a user, format=json); the real API is alike. 64 MiB leaves more than 10x headroom
# (longer non-Latin fields, pretty-printed or extra fields) while bounding what a broken or hostile server
# can make the producer hold in memory (the decoded text and parsed objects are several times the bytes).
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
# randomuser's login fields that must never be stored or published.
SENSITIVE_LOGIN_FIELDS: Final = ("password", "salt", "md5", "sha1", "sha256")
# Nationalities of the real API 1.4.
NATIONALITIES: Final = (
    "AU",
    "BR",
    "CA",
    "CH",
    "DE",
    "DK",
    "ES",
    "FI",
    "FR",
    "GB",
    "IE",
    "IN",
    "IR",
    "MX",
    "NL",
    "NO",
    "NZ",
    "RS",
    "TR",
    "UA",
    "US",
)
REAL_URL: Final = "https://randomuser.me"
MODES: Final = ("local", "real", "auto")


@dataclass(frozen=True)
class ClientConfig:
    """How the randomuser client talks to an API (real or local)."""

    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # Attempts in all (1 = no retry).
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # Never sleep longer than this for a Retry-After header.
    retry_after_max: float = 60.0
    # The largest body accepted (after Content-Encoding is undone); a bigger answer is refused, not retried.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    user_agent: str = "correnteza-producer/0.1"
    extra_params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("connect_timeout and read_timeout must be > 0")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {self.max_body_bytes}")
