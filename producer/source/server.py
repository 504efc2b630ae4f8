"""The HTTP side of the source: randomuser's URL shape and parameters, a rate limit, faults on demand.

GET /api/ or /api/1.4/ with results, seed, page, nat, inc, exc, format=json (as randomuser.me 1.4).
Faults (parameters the real API ignores):
  fault=error       200 with an {"error": ...} body, like randomuser.me's own failures
  fault=malformed   200 with truncated JSON
  fault=truncated   200 whose body stops halfway through its Content-Length (the connection is closed)
  fault=429         429 with Retry-After: 1, like the rate limit
  fault=5xx         503
  fault=slow        answers after delay=<seconds> (default 5, capped by max_delay)
  fault=a,b,...     a sequence: the k-th request with the same query string gets the k-th fault (cycling)
  fault_times=N     the faults hit only the first N requests with the same query string (then normal answers)
  bad=K             K records miss bad_field (dotted path; default email; login.uuid makes them un-keyable)
GET /health answers {"status": "ok"}. Past rate_limit requests/s the API answers 429 with Retry-After.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from random import Random
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from producer.config import API_VERSION, MAX_RESULTS, NATIONALITIES, SOURCE_FAULTS
from producer.source.generator import FIELDS, UserGenerator

log = logging.getLogger("producer.source")

API_PATHS: Final = frozenset({"/api", "/api/", f"/api/{API_VERSION}", f"/api/{API_VERSION}/"})
ERROR_TEXT: Final = "Uh oh, something has gone wrong. Please tweet us @randomapi about the issue. Thank you."
FAULTS: Final = SOURCE_FAULTS
DEFAULT_SLOW_DELAY: Final = 5.0


@dataclass(frozen=True)
class SourceSettings:
    rate_limit: float | None = 50.0  # requests per second on the API paths; None: unlimited
    max_delay: float = 30.0  # cap of fault=slow


class TokenBucket:
    """rate tokens per second, burst of max(1, rate)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 if a request may pass, else seconds until it could."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


@dataclass(frozen=True)
class Query:
    results: int
    seed: str
    page: int
    nats: tuple[str, ...] | None
    fields: tuple[str, ...]
    fmt: str
    faults: tuple[str, ...]
    fault_times: int | None
    delay: float
    bad: int
    bad_field: str
    adjusted: str | None  # why results was changed (like the real API, out-of-range asks answer 1 user)


def last(params: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = params.get(name)
    return values[-1] if values else default


def as_int(text: str | None, default: int) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return default


def as_float(text: str | None, default: float) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def split_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def parse_query(raw: str, max_delay: float) -> Query:
    """The API's parameters, sanitized as randomuser.me 1.4 does (invalid values fall back to defaults)."""
    params = parse_qs(raw, keep_blank_values=True)
    asked = last(params, "results")
    results = as_int(asked, 1)
    adjusted = None
    if asked is not None and (results < 0 or results > MAX_RESULTS or str(results) != asked.strip()):
        adjusted = f"results={asked!r} is outside 0..{MAX_RESULTS}: answering 1 user, as randomuser.me does"
        results = 1
    page = as_int(last(params, "page"), 1)
    if page < 0 or page > 10000:
        page = 1
    nats = tuple(n.upper() for n in split_list(last(params, "nat") or last(params, "nationality")))
    valid_nats = nats if nats and all(n in NATIONALITIES for n in nats) else None
    inc = [f.lower() for f in split_list(last(params, "inc"))] or list(FIELDS)
    exc = {f.lower() for f in split_list(last(params, "exc"))}
    fields = tuple(f for f in FIELDS if f in inc and f not in exc)
    fault = last(params, "fault")
    times = last(params, "fault_times")
    return Query(
        results=results,
        seed=last(params, "seed") or secrets.token_hex(8),
        page=page,
        nats=valid_nats,
        fields=fields,
        fmt=(last(params, "format") or last(params, "fmt") or "json").lower(),
        faults=tuple(f.lower() for f in split_list(fault)),
        fault_times=as_int(times, 0) if times is not None else None,
        delay=min(max(0.0, as_float(last(params, "delay"), DEFAULT_SLOW_DELAY)), max_delay),
        bad=max(0, as_int(last(params, "bad"), 0)),
        bad_field=last(params, "bad_field") or "email",
        adjusted=adjusted,
    )


def remove_path(record: dict[str, Any], dotted: str) -> None:
    """Delete record[a][b]... for "a.b"; missing parents are ignored."""
    *parents, leaf = dotted.split(".")
    node: Any = record
    for name in parents:
        node = node.get(name) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def spoil(users: list[dict[str, Any]], query: Query) -> list[int]:
    """Remove query.bad_field from query.bad users chosen deterministically; their positions."""
    count = min(query.bad, len(users))
    positions = sorted(Random(f"bad|{query.seed}|{query.page}").sample(range(len(users)), count))
    for position in positions:
        remove_path(users[position], query.bad_field)
    return positions


class SourceServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], settings: SourceSettings) -> None:
        super().__init__(address, SourceHandler)
        self.settings = settings
        self.generator = UserGenerator()
        self.generator.warm_up()
        self.bucket = TokenBucket(settings.rate_limit) if settings.rate_limit else None
        self.fault_hits: Counter[str] = Counter()
        self.fault_lock = threading.Lock()

    def fault_for(self, query_string: str, faults: tuple[str, ...], times: int | None) -> str | None:
        """The fault this request gets: the k-th request with this query string gets faults[k-1] (cycling),
        none past fault_times requests."""
        if not faults:
            return None
        with self.fault_lock:
            self.fault_hits[query_string] += 1
            hit = self.fault_hits[query_string]
        if times is not None and hit > times:
            return None
        return faults[(hit - 1) % len(faults)]


class SourceHandler(BaseHTTPRequestHandler):
    server: SourceServer
    protocol_version = "HTTP/1.1"
    server_version = "correnteza-source/0.1"

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's own lines: replaced by _log
        return

    def _log(self, status: int, size: int, started: float, note: str = "") -> None:
        log.info(
            '%s "GET %s" %d %d %.1fms%s',
            self.client_address[0],
            self.path,
            status,
            size,
            (time.monotonic() - started) * 1000,
            f" {note}" if note else "",
        )

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> int:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        return len(body)

    @staticmethod
    def _json(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    def do_GET(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        try:
            status, size, note = self._route(split.path, split.query)
        except (BrokenPipeError, ConnectionResetError):
            status, size, note = 499, 0, "client went away"
        self._log(status, size, started, note)

    def _route(self, path: str, query_string: str) -> tuple[int, int, str]:
        if path == "/health":
            return 200, self._send(200, self._json({"status": "ok", "version": API_VERSION})), ""
        if path not in API_PATHS:
            return 404, self._send(404, self._json({"error": f"no such path: {path}"})), ""
        if self.server.bucket is not None:
            wait = self.server.bucket.take()
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                body = self._json(
                    {"error": f"rate limit of {self.server.settings.rate_limit:g} requests/s exceeded"}
                )
                return 429, self._send(429, body, {"Retry-After": retry}), f"retry-after={retry}"
        query = parse_query(query_string, self.server.settings.max_delay)
        if query.fmt != "json":
            body = self._json({"error": f"format={query.fmt} is not supported by this source (json only)"})
            return 400, self._send(400, body), ""
        unknown = [f for f in query.faults if f not in FAULTS]
        if unknown:
            body = self._json({"error": f"unknown fault={','.join(unknown)} (known: {', '.join(FAULTS)})"})
            return 400, self._send(400, body), ""
        return self._answer(query, self.server.fault_for(query_string, query.faults, query.fault_times))

    def _answer(self, query: Query, fault: str | None) -> tuple[int, int, str]:
        if fault == "5xx":
            body = self._json({"error": "service unavailable (fault=5xx)"})
            return 503, self._send(503, body, {"Retry-After": "1"}), "fault=5xx"
        if fault == "429":
            body = self._json({"error": "rate limit exceeded (fault=429)"})
            return 429, self._send(429, body, {"Retry-After": "1"}), "fault=429"
        if fault == "error":
            return 200, self._send(200, self._json({"error": ERROR_TEXT})), "fault=error"
        if fault == "slow":
            time.sleep(query.delay)
        users = self.server.generator.page(query.seed, query.page, query.results, query.nats, query.fields)
        spoiled = spoil(users, query) if query.bad else []
        info = {"seed": query.seed, "results": query.results, "page": query.page, "version": API_VERSION}
        body = self._json({"results": users, "info": info})
        notes = [f"results={query.results}"]
        headers: dict[str, str] = {}
        if query.adjusted:
            headers["X-Correnteza-Note"] = query.adjusted
            notes.append(query.adjusted)
        if spoiled:
            notes.append(f"bad={len(spoiled)} without {query.bad_field}")
        if fault == "slow":
            notes.append(f"fault=slow delay={query.delay:g}s")
        if fault == "malformed":
            body = body[: max(1, len(body) // 2)]
            notes.append("fault=malformed")
        if fault == "truncated":
            return 200, self._send_truncated(body, headers), " ".join([*notes, "fault=truncated"])
        return 200, self._send(200, body, headers), " ".join(notes)

    def _send_truncated(self, body: bytes, headers: dict[str, str]) -> int:
        """Declare the whole body, send half of it, close the connection (a dropped answer)."""
        half = body[: max(1, len(body) // 2)]
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(half)
        self.wfile.flush()
        self.close_connection = True
        return len(half)


def make_server(host: str, port: int, settings: SourceSettings | None = None) -> SourceServer:
    """A bound server (port 0: an ephemeral port, see server.server_address); call serve_forever()."""
    return SourceServer((host, port), settings or SourceSettings())
