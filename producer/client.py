"""The randomuser.me client (API 1.4): real HTTP with timeouts and retries.

Retries (exponential backoff with jitter) cover network errors, timeouts, a body cut short while it is read
(ChunkedEncodingError, ContentDecodingError, a connection reset), HTTP 429 and 5xx (Retry-After honoured in
both of its forms, delta-seconds and HTTP-date, capped by retry_after_max), the API's 200 answer with an
{"error": ...} body, and malformed answers: invalid UTF-8, malformed JSON, JSON nested deeper than MAX_DEPTH,
an empty `results` although users were asked for, and an `info` that contradicts the request (see
check_answer). After the last attempt the error names the URL and what was wrong.

The body is read streamed and capped (ClientConfig.max_body_bytes): a bigger answer is refused at once with
ResponseTooLarge and is not retried (the same query would answer the same size; retrying would only download
up to max_attempts times the cap). The body is always decoded as UTF-8, whatever charset Content-Type names
or omits (RFC 8259: JSON exchanged between systems is UTF-8); requests would decode text/* without a charset
as ISO-8859-1 and turn non-Latin names into mojibake.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlencode

import requests

from producer.config import API_VERSION, MAX_PAGE, MAX_RESULTS, ClientConfig

log = logging.getLogger(__name__)

# Deepest nesting of arrays and objects accepted in a body. A real answer is 5 deep (body, results, user,
# location, street); deeper JSON is refused before the producer's own recursive code (copy.deepcopy in
# validation, ~330 levels) or json itself (~1000 levels) can hit Python's recursion limit.
MAX_DEPTH: Final = 32
READ_CHUNK: Final = 64 * 1024
# Errors requests raises while a streamed body is read: a cut chunked encoding or Content-Length (and a
# connection reset: ChunkedEncodingError), an undecodable gzip/deflate body, a read timeout or a broken TLS
# stream (both ConnectionError there).
BODY_READ_ERRORS: Final = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.ConnectionError,
    requests.Timeout,
)


class RandomUserError(RuntimeError):
    """The API could not give a usable answer (after retries)."""


class ApiErrorBody(RandomUserError):
    """The API answered {"error": "..."}."""


class MalformedResponse(RandomUserError):
    """The answer is not the JSON shape the API documents."""


class ContradictoryAnswer(MalformedResponse):
    """The answer is well-formed but not what was asked: an empty `results`, or `info` naming another
    seed, page, count or version (retried like malformed JSON)."""


class TruncatedBody(RandomUserError):
    """The body could not be read to its end (connection broken or reset, undecodable encoding)."""


class ResponseTooLarge(RandomUserError):
    """The body is bigger than ClientConfig.max_body_bytes (refused, not retried)."""


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
    """Query parameters; refuses results outside 1..5000 and page outside 1..10000 (the real API silently
    answers 1 user, or page 1, there)."""
    if not isinstance(results, int) or isinstance(results, bool) or not 1 <= results <= MAX_RESULTS:
        raise ValueError(
            f"results must be an integer between 1 and {MAX_RESULTS} (the API's cap), got {results!r}"
        )
    params: dict[str, str] = {"results": str(results), "format": "json"}
    if seed:
        params["seed"] = str(seed)
    if page is not None:
        if not 1 <= page <= MAX_PAGE:
            raise ValueError(
                f"page must be between 1 and {MAX_PAGE} (past it the API answers page 1), got {page}"
            )
        params["page"] = str(page)
    if nat:
        params["nat"] = ",".join(n.strip().upper() for n in nat)
    if inc:
        params["inc"] = ",".join(inc)
    if exc:
        params["exc"] = ",".join(exc)
    params.update(extra or {})
    return params


def utc_now() -> datetime:
    """The clock an HTTP-date Retry-After counts from (one place, so tests can fix it)."""
    return datetime.now(UTC)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, None if absent or unparsable.

    Both forms of RFC 9110 section 10.2.3: delta-seconds ("120") and an HTTP-date ("Wed, 21 Oct 2015
    07:28:00 GMT", also the obsolete RFC 850 and asctime forms), which counts from `now` (default: the
    clock). Never negative: a date in the past means no wait. The cap is the client's (retry_after_max).
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return seconds_until(text, now or utc_now())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def seconds_until(http_date: str, now: datetime) -> float | None:
    """Seconds from `now` to an HTTP-date (GMT), at least 0; None if it is not a date."""
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # the asctime form carries no zone; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def read_body(response: requests.Response, url: str, limit: int) -> bytes:
    """The whole body, streamed; ResponseTooLarge past `limit` bytes, TruncatedBody if it breaks off."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(
            f"answer from {url} declares {int(declared):,} bytes (Content-Length), over the cap of "
            f"{limit:,} bytes (max_body_bytes): refused unread, not retried"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(
                    f"answer from {url} is over the cap of {limit:,} bytes (max_body_bytes): refused "
                    f"after {size:,} bytes without reading the rest, not retried"
                )
            chunks.append(chunk)
    except BODY_READ_ERRORS as err:
        raise TruncatedBody(
            f"body of {url} cut short after {size:,} bytes: {type(err).__name__}: {err}"
        ) from err
    return b"".join(chunks)


def decode_body(url: str, raw: bytes) -> str:
    """The body as UTF-8 (a leading byte order mark is dropped); MalformedResponse if it is not UTF-8."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedResponse(
            f"body of {url} is not valid UTF-8 (JSON must be): {err.reason} at byte {err.start} of "
            f"{len(raw)} (bytes there: {raw[err.start : err.start + 8]!r})"
        ) from err


def depth_problem(body: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why body nests too deeply (arrays and objects), or None; iterative, so any depth is safe to check."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return f"JSON nested deeper than {limit} levels (a real answer is 5 deep)"
                stack.append((child, depth + 1))
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
    except RecursionError as err:
        raise MalformedResponse(
            f"malformed JSON from {url}: nested too deeply to parse ({err}; body of {len(text)} chars "
            f"starts {text[:40]!r})"
        ) from None
    if not isinstance(body, dict):
        raise MalformedResponse(
            f"unexpected JSON from {url}: top level is {type(body).__name__}, not an object"
        )
    problem = depth_problem(body)
    if problem:
        raise MalformedResponse(f"unexpected JSON from {url}: {problem}")
    if "error" in body:
        raise ApiErrorBody(f"API error from {url}: {body['error']!r}")
    results = body.get("results")
    if not isinstance(results, list):
        raise MalformedResponse(f"unexpected JSON from {url}: no 'results' list (keys: {sorted(body)[:10]})")
    info = body.get("info")
    return results, info if isinstance(info, dict) else {}


def as_count(value: Any) -> int | None:
    """An integer from a JSON number or decimal string (never a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def seed_matches(asked: str, answered: Any) -> bool:
    """Whether info.seed is the asked seed. The real API (1.4) echoes it, but appends the nationality's
    two-character index when it picks a single nationality itself (an 18-character seed, lego)."""
    if not isinstance(answered, str):
        return False
    if answered == asked:
        return True
    suffix = answered[len(asked) :]
    return answered.startswith(asked) and len(suffix) == 2 and all(c in "0123456789abcdef-" for c in suffix)


def shown(value: Any, width: int = 80) -> str:
    """A value as it appears in a message: repr, cut to `width` characters."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 3]}..."


def contradictions(params: Mapping[str, str], info: Mapping[str, Any]) -> list[str]:
    """Where info disagrees with what the request named (a field the answer leaves out is no contradiction:
    noinfo drops info altogether)."""
    problems: list[str] = []
    for name in ("results", "page"):
        asked = as_count(params.get(name))
        if asked is not None and name in info and as_count(info[name]) != asked:
            problems.append(f"info.{name} is {shown(info[name])}, asked {name}={asked}")
    seed = params.get("seed")
    if seed and "seed" in info and not seed_matches(seed, info["seed"]):
        problems.append(f"info.seed is {shown(info['seed'])}, asked seed={shown(seed)}")
    if "version" in info and info["version"] != API_VERSION:
        problems.append(f"info.version is {shown(info['version'])}, asked /api/{API_VERSION}/")
    return problems


def check_answer(url: str, params: Mapping[str, str], results: list[Any], info: Mapping[str, Any]) -> None:
    """ContradictoryAnswer if results is empty although users were asked for, or info contradicts params."""
    asked = as_count(params.get("results"))
    if not results and asked:
        raise ContradictoryAnswer(
            f"empty 'results' from {url}: asked for {asked} user(s) (info: {shown(dict(info), 200)})"
        )
    problems = contradictions(params, info)
    if problems:
        raise ContradictoryAnswer(f"answer from {url} contradicts the request: {'; '.join(problems)}")


def final_error(err: Exception, attempts: int) -> RandomUserError:
    """The error raised after the last attempt: same kind for API/JSON/body problems, RandomUserError
    otherwise."""
    kept = (ApiErrorBody, MalformedResponse, TruncatedBody)
    kind = type(err) if isinstance(err, kept) else RandomUserError
    return kind(f"{err} (gave up after {attempts} attempts)")


def first_bytes(response: requests.Response, count: int = 200) -> str:
    """The start of an error answer's body, for the message (never the whole body; never raises)."""
    try:
        head = next(response.iter_content(chunk_size=count), b"")
    except BODY_READ_ERRORS:
        return ""
    return head[:count].decode("utf-8", errors="replace")


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
        with self.session.get(url, params=params, timeout=timeout, stream=True) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise RetryableStatus(
                    f"HTTP {response.status_code} from {full}",
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            if response.status_code != 200:
                raise RandomUserError(f"HTTP {response.status_code} from {full}: {first_bytes(response)!r}")
            raw = read_body(response, full, self.config.max_body_bytes)
        results, info = parse_answer(full, decode_body(full, raw))
        check_answer(full, params, results, info)
        return results, info

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
            except (ApiErrorBody, MalformedResponse, TruncatedBody) as err:
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
