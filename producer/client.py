"""The randomuser.me client (API 1.4): real HTTP with timeouts and retries.

Retries (exponential backoff with jitter) cover network errors, timeouts, HTTP 429 (Retry-After honoured),
5xx, the API's 200 answer with an {"error": ...} body and malformed JSON. After the last attempt the error
names the URL and what was wrong.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from producer.config import API_VERSION, MAX_RESULTS, ClientConfig

log = logging.getLogger(__name__)


class RandomUserError(RuntimeError):
    """The API could not give a usable answer (after retries)."""


class ApiErrorBody(RandomUserError):
    """The API answered {"error": "..."}."""


class MalformedResponse(RandomUserError):
    """The answer is not the JSON shape the API documents."""


class RetryableStatus(RandomUserError):
    """HTTP 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answer:
    url: str
    results: list[Any]
    info: dict[str, Any]
    attempts: int
    seconds: float


def api_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/api/{API_VERSION}/"


def build_params(
    results: int,
    seed: str | None = None,
    page: int | None = None,
    nat: Sequence[str] | None = None,
    inc: Sequence[str] | None = None,
    exc: Sequence[str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Query parameters; refuses results outside 1..5000 (the real API silently answers 1 user)."""
    if not isinstance(results, int) or isinstance(results, bool) or not 1 <= results <= MAX_RESULTS:
        raise ValueError(
            f"results must be an integer between 1 and {MAX_RESULTS} (the API's cap), got {results!r}"
        )
    params: dict[str, str] = {"results": str(results), "format": "json"}
    if seed:
        params["seed"] = str(seed)
    if page is not None:
        if page < 1:
            raise ValueError(f"page must be >= 1, got {page}")
        params["page"] = str(page)
    if nat:
        params["nat"] = ",".join(n.strip().upper() for n in nat)
    if inc:
        params["inc"] = ",".join(inc)
    if exc:
        params["exc"] = ",".join(exc)
    params.update(extra or {})
    return params


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None if absent or unparsable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def parse_answer(url: str, text: str) -> tuple[list[Any], dict[str, Any]]:
    """(results, info) from a body, or ApiErrorBody / MalformedResponse naming the URL."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise MalformedResponse(
            f"malformed JSON from {url}: {err.msg} at line {err.lineno} column {err.colno} "
            f"(char {err.pos} of {len(text)}; body starts {text[:80]!r})"
        ) from err
    if not isinstance(body, dict):
        raise MalformedResponse(
            f"unexpected JSON from {url}: top level is {type(body).__name__}, not an object"
        )
    if "error" in body:
        raise ApiErrorBody(f"API error from {url}: {body['error']!r}")
    results = body.get("results")
    if not isinstance(results, list):
        raise MalformedResponse(f"unexpected JSON from {url}: no 'results' list (keys: {sorted(body)[:10]})")
    info = body.get("info")
    return results, info if isinstance(info, dict) else {}


def final_error(err: Exception, attempts: int) -> RandomUserError:
    """The error raised after the last attempt: same kind for API/JSON problems, RandomUserError otherwise."""
    kind = type(err) if isinstance(err, (ApiErrorBody, MalformedResponse)) else RandomUserError
    return kind(f"{err} (gave up after {attempts} attempts)")


class RandomUserClient:
    """GET <base>/api/1.4/ with retries. `sleep` and `rng` are injectable for tests."""

    def __init__(
        self,
        config: ClientConfig,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", config.user_agent)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.config.retry_after_max)
        cap = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return cap * self.rng.uniform(0.5, 1.0)

    def _attempt(self, url: str, params: Mapping[str, str]) -> tuple[list[Any], dict[str, Any]]:
        timeout = (self.config.connect_timeout, self.config.read_timeout)
        full = f"{url}?{urlencode(params)}"
        response = self.session.get(url, params=params, timeout=timeout)
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableStatus(
                f"HTTP {response.status_code} from {full}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code != 200:
            raise RandomUserError(f"HTTP {response.status_code} from {full}: {response.text[:200]!r}")
        return parse_answer(full, response.text)

    def get(self, **kwargs: Any) -> Answer:
        """Fetch one page of users; kwargs as build_params (results, seed, page, nat, inc, exc, extra)."""
        extra = {**self.config.extra_params, **(kwargs.pop("extra", None) or {})}
        params = build_params(extra=extra, **kwargs)
        url = api_url(self.config.base_url)
        started = time.monotonic()
        last: Exception | None = None
        for attempt in range(1, self.config.max_attempts + 1):
            retry_after: float | None = None
            try:
                results, info = self._attempt(url, params)
                answer = Answer(url, results, info, attempt, time.monotonic() - started)
                self._check_count(answer, int(params["results"]))
                return answer
            except RetryableStatus as err:
                last, retry_after = err, err.retry_after
            except (ApiErrorBody, MalformedResponse) as err:
                last = err
            except (requests.ConnectionError, requests.Timeout) as err:
                last = RandomUserError(f"{type(err).__name__} calling {url}: {err}")
            if attempt < self.config.max_attempts:
                delay = self.backoff(attempt, retry_after)
                log.warning(
                    "attempt %d/%d failed: %s; retrying in %.2f s",
                    attempt,
                    self.config.max_attempts,
                    last,
                    delay,
                )
                self.sleep(delay)
        if last is None:  # unreachable: max_attempts >= 1
            raise RandomUserError(f"no attempt made on {url}")
        raise final_error(last, self.config.max_attempts)

    @staticmethod
    def _check_count(answer: Answer, asked: int) -> None:
        if len(answer.results) != asked:
            log.warning("asked %s for %d users, got %d", answer.url, asked, len(answer.results))
