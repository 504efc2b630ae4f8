"""Producer-side validation: keying on login.uuid, secrets dropped, postcode as a string."""

from __future__ import annotations

import copy
import json

from producer.source.generator import UserGenerator
from producer.validation import key_problem, sanitize, strip_sensitive, validate_records

SECRETS = ("password", "salt", "md5", "sha1", "sha256")


def a_user(index: int = 0) -> dict:
    return UserGenerator().user("validation", 1, index)


def test_sensitive_fields_dropped_and_input_untouched() -> None:
    user = a_user()
    original = copy.deepcopy(user)
    clean = sanitize(user)
    assert not set(SECRETS) & set(clean["login"])
    assert set(clean["login"]) == {"uuid", "username"}
    assert user == original
    dumped = json.dumps(clean)
    for secret in SECRETS:
        assert original["login"][secret] not in dumped


def test_postcode_number_becomes_string() -> None:
    user = a_user()
    user["location"]["postcode"] = 12345
    assert sanitize(user)["location"]["postcode"] == "12345"
    user["location"]["postcode"] = 4051.0
    assert sanitize(user)["location"]["postcode"] == "4051"
    user["location"]["postcode"] = "SW1A 1AA"
    assert sanitize(user)["location"]["postcode"] == "SW1A 1AA"


def test_uuid_is_canonical() -> None:
    user = a_user()
    user["login"]["uuid"] = user["login"]["uuid"].upper()
    assert sanitize(user)["login"]["uuid"] == user["login"]["uuid"].lower()


def test_rejects_with_reasons_and_positions() -> None:
    good = a_user(0)
    no_login = a_user(1)
    del no_login["login"]
    no_uuid = a_user(2)
    del no_uuid["login"]["uuid"]
    bad_uuid = a_user(3)
    bad_uuid["login"]["uuid"] = "not-a-uuid"
    int_uuid = a_user(4)
    int_uuid["login"]["uuid"] = 42
    checked = validate_records([good, "a string", no_login, no_uuid, bad_uuid, int_uuid, None])
    assert [u["login"]["uuid"] for u in checked.accepted] == [good["login"]["uuid"]]
    assert [(r.position, r.reason) for r in checked.rejected] == [
        (1, "not a JSON object (got str)"),
        (2, "missing login object"),
        (3, "missing login.uuid"),
        (4, "login.uuid is not a valid UUID: 'not-a-uuid'"),
        (5, "login.uuid is not a string (got int)"),
        (6, "not a JSON object (got NoneType)"),
    ]


def test_rejected_raw_has_no_secrets() -> None:
    user = a_user()
    user["login"]["uuid"] = "nope"
    rejected = validate_records([user]).rejected[0]
    assert rejected.raw["email"] == user["email"]
    assert not set(SECRETS) & set(rejected.raw["login"])


def test_content_problems_are_left_to_spark() -> None:
    user = a_user()
    del user["email"]
    user["gender"] = "unknown"
    checked = validate_records([user])
    assert len(checked.accepted) == 1 and checked.rejected == []


def test_key_problem_ok() -> None:
    assert key_problem(a_user()) is None


def test_strip_sensitive_leaves_non_objects() -> None:
    assert strip_sensitive([1, 2]) == [1, 2]
    assert strip_sensitive({"login": "x"}) == {"login": "x"}
