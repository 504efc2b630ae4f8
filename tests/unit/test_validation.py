"""Producer-side validation: keying on login.uuid, secrets dropped, postcode as a string."""

from __future__ import annotations

import copy
import json
import sys

from producer.source.generator import UserGenerator
from producer.validation import TOO_DEEP, key_problem, sanitize, strip_sensitive, validate_records

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


def test_a_string_jsonb_cannot_hold_rejects_that_record_only() -> None:
    """Defect 2: U+0000 or a lone surrogate anywhere (a value or a key) rejects its record with the
    field's path; the other records are accepted."""
    users = [a_user(i) for i in range(6)]
    users[1]["name"]["first"] = "Ana\u0000"
    users[2]["location"]["street"]["name"] = "Rua \ud800"
    users[3]["location"]["coordinates"] = {"latitude\u0000": "1.0"}
    users[4]["location"]["coordinates"]["latitude"] = float("nan")
    users[5]["extra"] = ["ok", {"deep": "x\udfff"}]
    checked = validate_records([a_user(9), *users])
    assert [u["login"]["uuid"] for u in checked.accepted] == [
        a_user(9)["login"]["uuid"],
        users[0]["login"]["uuid"],
    ]
    assert [(r.position, r.reason) for r in checked.rejected] == [
        (2, "name.first holds U+0000 (NUL) at character 3"),
        (3, "location.street.name holds a lone surrogate U+D800 at character 4"),
        (4, "a key of location.coordinates ('latitude\ufffd') holds U+0000 (NUL) at character 8"),
        (5, "location.coordinates.latitude is not a finite number (nan)"),
        (6, "extra[1].deep holds a lone surrogate U+DFFF at character 1"),
    ]
    # the rejected copies can be stored: the offending characters replaced, NaN as null
    for rejected in checked.rejected:
        text = json.dumps(rejected.raw, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
        assert "\\u0000" not in text
    assert checked.rejected[0].raw["name"]["first"] == "Ana\ufffd"
    assert not set(SECRETS) & set(checked.rejected[0].raw["login"])


def test_a_secret_holding_nul_is_dropped_not_rejected() -> None:
    """Only what is stored is checked: login.password is removed before, so it cannot reject the user."""
    user = a_user()
    user["login"]["password"] = "pass\u0000word"
    assert len(validate_records([user]).accepted) == 1


def test_a_reject_for_its_key_is_storable_too() -> None:
    user = a_user()
    user["login"]["uuid"] = "bad\u0000uuid"
    user["email"] = "\ud83d"
    rejected = validate_records([user]).rejected[0]
    assert rejected.reason == "login.uuid is not a valid UUID: 'bad\\x00uuid'"
    assert rejected.raw["login"]["uuid"] == "bad\ufffduuid" and rejected.raw["email"] == "\ufffd"


def test_a_record_nested_beyond_the_recursion_limit_is_rejected_alone() -> None:
    deep: dict = {}
    node = deep
    for _ in range(sys.getrecursionlimit() + 100):
        node["x"] = {}
        node = node["x"]
    user = a_user(1)
    user["extra"] = deep
    checked = validate_records([a_user(0), user, a_user(2)])
    assert len(checked.accepted) == 2
    assert [(r.position, r.reason, r.raw) for r in checked.rejected] == [(1, TOO_DEEP, None)]
