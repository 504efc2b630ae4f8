"""Per-record validation at the producer: what cannot be keyed or landed is rejected with a reason.

The producer only checks what it needs (an object with a valid login.uuid, the key); content checks
(names, e-mail, dates, gender, nat) belong to the Spark job (the contract's "Validation split").
Sanitizing removes randomuser's login.password/salt/md5/sha1/sha256 and turns location.postcode into a
string, before anything is stored.

A record PostgreSQL's jsonb cannot store is rejected alone, with the path of the offending field, before
landing (one such record would otherwise fail the whole batch's transaction): a string or a key holding
U+0000 or a lone surrogate (U+D800..U+DFFF, which no UTF-8 text can hold), or a number that is not finite
(NaN, Infinity: Python's json reads them, JSON and jsonb do not). A rejected record's raw copy has those
replaced (U+FFFD, null), so the reject itself can be stored.
"""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from producer.config import SENSITIVE_LOGIN_FIELDS

# What a PostgreSQL text or jsonb value cannot hold: NUL, and UTF-16 surrogates (not encodable in UTF-8).
UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
TOO_DEEP = "nested too deeply to check and store (Python's recursion limit); raw copy not kept"


@dataclass(frozen=True)
class Rejected:
    """A record the producer cannot key or land: its position in the answer, why, and the (sanitized) raw."""

    position: int
    reason: str
    raw: Any


@dataclass(frozen=True)
class Validated:
    accepted: list[dict[str, Any]]
    rejected: list[Rejected]


def strip_sensitive(record: Any) -> Any:
    """A deep copy of record without login's secrets (anything else is left as is)."""
    clean = copy.deepcopy(record)
    if isinstance(clean, dict) and isinstance(clean.get("login"), dict):
        for name in SENSITIVE_LOGIN_FIELDS:
            clean["login"].pop(name, None)
    return clean


def _postcode_to_str(record: dict[str, Any]) -> None:
    location = record.get("location")
    if isinstance(location, dict) and "postcode" in location:
        value = location["postcode"]
        if value is None:
            return
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        location["postcode"] = str(value)


def key_problem(record: Any) -> str | None:
    """Why record cannot be keyed, or None when login.uuid is a valid UUID."""
    if not isinstance(record, dict):
        return f"not a JSON object (got {type(record).__name__})"
    login = record.get("login")
    if not isinstance(login, dict):
        return "missing login object"
    if "uuid" not in login:
        return "missing login.uuid"
    value = login["uuid"]
    if not isinstance(value, str):
        return f"login.uuid is not a string (got {type(value).__name__})"
    try:
        uuid.UUID(value)
    except ValueError:
        return f"login.uuid is not a valid UUID: {value[:64]!r}"
    return None


def _char_problem(text: str) -> str | None:
    found = UNSTORABLE_CHARS.search(text)
    if found is None:
        return None
    char = found.group()
    what = "U+0000 (NUL)" if char == "\x00" else f"a lone surrogate U+{ord(char):04X}"
    return f"holds {what} at character {found.start()}"


def _path(parent: str, name: str) -> str:
    shown = UNSTORABLE_CHARS.sub(REPLACEMENT, name)
    return f"{parent}.{shown}" if parent else shown


def _unstorable(node: Any, path: str) -> Iterator[str]:
    """Why parts of node cannot be stored in jsonb, each with its field path (a.b[2].c)."""
    where = path or "the record"
    if isinstance(node, str):
        problem = _char_problem(node)
        if problem:
            yield f"{where} {problem}"
    elif isinstance(node, float) and not math.isfinite(node):
        yield f"{where} is not a finite number ({node!r})"
    elif isinstance(node, dict):
        for key, value in node.items():
            key_text = str(key)
            problem = _char_problem(key_text)
            if problem:
                yield f"a key of {where} ({_path('', key_text)!r}) {problem}"
            yield from _unstorable(value, _path(path, key_text))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _unstorable(value, f"{path}[{index}]")


def storage_problem(record: Any) -> str | None:
    """Why record cannot be stored in PostgreSQL's jsonb (the first offending field), or None."""
    return next(_unstorable(record, ""), None)


def storable(node: Any) -> Any:
    """A copy of node that jsonb can hold: U+0000 and lone surrogates -> U+FFFD, NaN/Infinity -> null."""
    if isinstance(node, str):
        return UNSTORABLE_CHARS.sub(REPLACEMENT, node)
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        return {storable(str(key)): storable(value) for key, value in node.items()}
    if isinstance(node, list):
        return [storable(value) for value in node]
    return node


def sanitize(record: dict[str, Any]) -> dict[str, Any]:
    """The record as stored and published: secrets dropped, postcode a string, uuid canonical."""
    clean = strip_sensitive(record)
    _postcode_to_str(clean)
    clean["login"]["uuid"] = str(uuid.UUID(clean["login"]["uuid"]))
    return clean


def validate_records(records: Iterable[Any]) -> Validated:
    """Split an API answer's results into sanitized accepted users and rejected records with reasons."""
    accepted: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for position, record in enumerate(records):
        try:
            problem = key_problem(record)
            if problem is None:
                clean = sanitize(record)
                problem = storage_problem(clean)
                if problem is None:
                    accepted.append(clean)
                    continue
            rejected.append(Rejected(position, problem, storable(strip_sensitive(record))))
        except RecursionError:  # copying or walking it needs more stack than Python has: this record only
            rejected.append(Rejected(position, TOO_DEEP, None))
    return Validated(accepted=accepted, rejected=rejected)


def user_id(record: dict[str, Any]) -> str:
    """The key of a sanitized record."""
    return str(record["login"]["uuid"])
