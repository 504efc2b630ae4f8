"""The local source's per-nationality quirks against what the real API 1.4 answers (public answers kept in
fixtures and issues, and RandomAPI/Randomuser.me-Node api/1.4), and every generated user through the
producer's validation and Avro record the way the pipeline takes it."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from typing import Any

import fastavro
import pytest

from producer.avro import latest_schema_file, read_schema, to_avro_record
from producer.config import NATIONALITIES
from producer.source.generator import RS_JE_STREETS, TIMEZONES, UserGenerator
from producer.validation import validate_records

# What the real API answers per nationality: the postcode's JSON type and text, id.name, id.value (None: a
# JSON null), phone and cell. Evidence in README.md ("What the local source reproduces").
REAL: dict[str, dict[str, Any]] = {
    "AU": dict(
        postcode=(int, r"[2-9]\d{2}|\d{4}"),
        id=("TFN", r"\d{9}"),
        phone=r"0\d-\d{4}-\d{4}",
        cell=r"04\d{2}-\d{3}-\d{3}",
    ),
    "BR": dict(
        postcode=(int, r"\d{5}"),
        id=("CPF", r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
        phone=r"\(\d{2}\) \d{4}-\d{4}",
        cell=r"\(\d{2}\) \d{4}-\d{4}",
    ),
    "CA": dict(
        postcode=(str, r"[A-Z]\d[A-Z] \d[A-Z]\d"),
        id=("SIN", r"\d{9}"),
        phone=r"[A-Z]\d{2} [A-Z]\d{2}-\d{4}",
        cell=r"[A-Z]\d{2} [A-Z]\d{2}-\d{4}",
    ),
    "CH": dict(
        postcode=(int, r"\d{4}"),
        id=("AVS", r"756\.\d{4}\.\d{4}\.\d{2}"),
        phone=r"07[5-9] \d{3} \d{2} \d{2}",
        cell=r"07[5-9] \d{3} \d{2} \d{2}",
    ),
    "DE": dict(
        postcode=(int, r"\d{5}"),
        id=("SVNR", r"\d{2} \d{6,7} \S \d{3}"),
        phone=r"0\d{3}-\d{7}",
        cell=r"017\d-\d{7}",
    ),
    "DK": dict(postcode=(int, r"\d{5}"), id=("CPR", r"\d{6,7}-\d{4}"), phone=r"\d{8}", cell=r"\d{8}"),
    "ES": dict(
        postcode=(int, r"\d{5}"),
        id=("DNI", r"\d{8}-[A-Z]"),
        phone=r"9\d{2}-\d{3}-\d{3}",
        cell=r"6\d{2}-\d{3}-\d{3}",
    ),
    "FI": dict(
        postcode=(int, r"\d{5}"),
        id=("HETU", r"NaNNA\d{3}undefined"),
        phone=r"0[2-9]-\d{3}-\d{3}",
        cell=r"04\d-\d{3}-\d{2}-\d{2}",
    ),
    "FR": dict(
        postcode=(int, r"\d{5}"),
        id=("INSEE", r"[12]\d{12,13} \d{2}"),
        phone=r"0[1-5](-\d{2}){4}",
        cell=r"06(-\d{2}){4}",
    ),
    "GB": dict(
        postcode=(str, r"[A-Z]{1,2}\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2}"),
        id=("NINO", r"[A-Z]{2} \d{2} \d{2} \d{2} [A-Z]"),
        phone=r"0[12][\d ]{9,12}",
        cell=r"07\d{3} \d{6}",
    ),
    "IE": dict(
        postcode=(int, r"\d{5}"), id=("PPS", r"\d{7}T"), phone=r"0[1-7]1-\d{3}-\d{4}", cell=r"081-\d{3}-\d{4}"
    ),
    "IN": dict(postcode=(int, r"\d{5}"), id=("UIDAI", r"\d{12}"), phone=r"[789]\d{9}", cell=r"[789]\d{9}"),
    "IR": dict(postcode=(int, r"\d{5}"), id=("", None), phone=r"0\d{2}-\d{8}", cell=r"09\d{2}-\d{3}-\d{4}"),
    "MX": dict(
        postcode=(int, r"\d{5}"),
        id=("NSS", r"\d{2} \d{2} \d{2} \d{4} \d"),
        phone=r"\(6\d{2}\) \d{3} \d{4}",
        cell=r"\(6\d{2}\) \d{3} \d{4}",
    ),
    "NL": dict(
        postcode=(str, r"[1-9]\d{3} [A-Z]{2}"),
        id=("BSN", r"\d{8}"),
        phone=r"\(0\d{2,3}\) \d{6,7}",
        cell=r"\(06\) \d{8}",
    ),
    "NO": dict(
        postcode=(str, r"\d{4}"), id=("FN", r"\d{10}[1-9]"), phone=r"[235678]\d{7}", cell=r"[49]\d{7}"
    ),
    "NZ": dict(
        postcode=(int, r"\d{5}"), id=("", None), phone=r"\(\d{3}\)-\d{3}-\d{4}", cell=r"\(\d{3}\)-\d{3}-\d{4}"
    ),
    "RS": dict(
        postcode=(int, r"\d{5}"),
        id=("SID", r"\d{9}"),
        phone=r"0[1-3]\d-\d{4}-\d{3}",
        cell=r"06\d-\d{4}-\d{3}",
    ),
    "TR": dict(
        postcode=(int, r"\d{5}"), id=("", None), phone=r"\(\d{3}\)-\d{3}-\d{4}", cell=r"\(\d{3}\)-\d{3}-\d{4}"
    ),
    "UA": dict(
        postcode=(int, r"\d{5}"),
        id=("", None),
        phone=r"\(0(66|67|68|96|97|98|99)\) [A-Z]\d{2}-\d{4}",
        cell=r"\(0(66|67|68|96|97|98|99)\) [A-Z]\d{2}-\d{4}",
    ),
    "US": dict(
        postcode=(int, r"\d{5}"),
        id=("SSN", r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}"),
        phone=r"\([2-9]\d{2}\) [2-9]\d{2}-\d{4}",
        cell=r"\([2-9]\d{2}\) [2-9]\d{2}-\d{4}",
    ),
}
PER_NAT = 80
META = {"batch_id": "batch-q", "fetched_at": "2026-11-26T12:00:00Z", "source": "local", "seed": "quirks"}


def served(nat: str | None, count: int, seed: str = "quirks") -> list[dict[str, Any]]:
    """Users as the server's JSON carries them (json round trip: ints stay ints, None becomes null)."""
    generator = UserGenerator()
    users = [generator.user(seed, 1, index, [nat] if nat else None) for index in range(count)]
    return json.loads(json.dumps(users, ensure_ascii=False))


def scripts(text: str) -> set[str]:
    """The scripts of text's letters (LATIN, CYRILLIC, ARABIC, ...), from their Unicode names."""
    return {unicodedata.name(ch).split()[0] for ch in text if ch.isalpha()}


def test_the_table_covers_every_nationality() -> None:
    assert set(REAL) == set(NATIONALITIES)


@pytest.mark.parametrize("nat", NATIONALITIES)
def test_json_types_and_formats_per_nationality(nat: str) -> None:
    want = REAL[nat]
    kind, pattern = want["postcode"]
    id_name, id_pattern = want["id"]
    users = list(served(nat, PER_NAT))
    assert len(users) == PER_NAT, f"{nat}: the source served {len(users)} users, asked for {PER_NAT}"
    for user in users:
        where = f"{nat} {user['login']['uuid']}"
        code = user["location"]["postcode"]
        assert type(code) is kind, where
        assert re.fullmatch(pattern, str(code)), (where, code)
        assert user["id"]["name"] == id_name, where
        if id_pattern is None:
            assert user["id"]["value"] is None, where
        else:
            assert isinstance(user["id"]["value"], str) and re.fullmatch(id_pattern, user["id"]["value"]), (
                where,
                user["id"]["value"],
            )
        assert re.fullmatch(want["phone"], user["phone"]), (where, user["phone"])
        assert re.fullmatch(want["cell"], user["cell"]), (where, user["cell"])
        number = user["location"]["street"]["number"]
        assert type(number) is int and 1 <= number <= 9999, (where, number)
        for axis in ("latitude", "longitude"):
            assert re.fullmatch(r"-?\d{1,3}\.\d{4}", user["location"]["coordinates"][axis]), where
        assert (
            user["location"]["timezone"]["offset"],
            user["location"]["timezone"]["description"],
        ) in TIMEZONES
        assert user["email"].isascii() and re.fullmatch(r"[a-z0-9.]+@example\.com", user["email"]), where


def test_timezones_are_the_api_table() -> None:
    offsets = [offset for offset, _ in TIMEZONES]
    assert len(offsets) == 31 and "+4:30" in offsets and "+5:45" in offsets and "0:00" in offsets
    assert all(re.fullmatch(r"[+-]?\d{1,2}:\d{2}", o) and not re.match(r"[+-]0", o) for o in offsets)


def test_norwegian_postcodes_are_strings_that_keep_leading_zeros() -> None:
    codes = [u["location"]["postcode"] for u in served("NO", 400)]
    assert all(isinstance(c, str) and len(c) == 4 for c in codes)
    assert any(c.startswith("0") for c in codes)


def test_australian_postcodes_may_have_three_digits() -> None:
    codes = [u["location"]["postcode"] for u in served("AU", 400)]
    assert any(c < 1000 for c in codes) and all(200 <= c <= 9999 for c in codes)


def test_ids_built_from_the_date_of_birth() -> None:
    for user in served("DK", 20):
        dob = user["dob"]["date"]
        assert user["id"]["value"].startswith(dob[8:10] + dob[5:7])
    for user in served("NO", 20):
        dob = user["dob"]["date"]
        assert user["id"]["value"][:6] == dob[8:10] + dob[5:7] + dob[2:4]
        male = int(user["id"]["value"][8]) % 2 == 1
        assert male == (user["gender"] == "male")
    for user in served("FR", 20):
        head, key = user["id"]["value"].split(" ")
        assert int(key) == 97 - int(head) % 97
        assert head[0] == ("1" if user["gender"] == "male" else "2")
    for user in served("DE", 20):
        assert user["id"]["value"].split(" ")[2] == user["name"]["last"][0]


def test_scripts_per_nationality() -> None:
    for user in served("IR", 30):
        for text in (user["name"]["first"], user["name"]["last"], user["location"]["city"]):
            assert scripts(text) == {"ARABIC"}, text
    for nat in ("UA", "IN", "RS", "TR", "NO", "DE"):
        for user in served(nat, 30):
            for text in (user["name"]["first"], user["name"]["last"], user["location"]["city"]):
                assert scripts(text) <= {"LATIN"}, (nat, text)


def test_serbian_streets_mix_scripts_and_brazilian_ones_trail_spaces() -> None:
    rs = [u["location"]["street"]["name"] for u in served("RS", 1500)]
    mixed = [s for s in rs if "\u0408" in s]
    assert mixed and all(scripts(s) == {"LATIN", "CYRILLIC"} for s in mixed)
    assert {s.strip() for s in mixed} <= {
        s.replace("lj", "l\u0408").replace("Lj", "L\u0408") for s in RS_JE_STREETS
    }
    assert any(s.endswith(" ") for s in rs)
    br = [u["location"]["street"]["name"] for u in served("BR", 100)]
    assert sum(s.endswith(" ") for s in br) > 40


def test_swiss_titles_are_french() -> None:
    titles = {(u["gender"], u["name"]["title"]) for u in served("CH", 60)}
    assert titles == {("male", "Monsieur"), ("female", "Madame"), ("female", "Mademoiselle")}


def _text(value: Any) -> str | None:
    """The Spark job's trim with blank -> null (as tests/e2e's expected_row)."""
    if value is None:
        return None
    trimmed = str(value).strip(" ")
    return trimmed or None


def test_every_generated_user_passes_validation_and_the_avro_record() -> None:
    users = served(None, 2000, seed="pipeline")
    assert {u["nat"] for u in users} == set(NATIONALITIES)
    result = validate_records(users)
    assert result.rejected == []
    assert len(result.accepted) == len(users)
    _, schema = read_schema(latest_schema_file("users_created-value"))
    parsed = fastavro.parse_schema(schema)
    for original, clean in zip(users, result.accepted, strict=True):
        record = to_avro_record(clean, META, schema)
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, record)
        back = fastavro.schemaless_reader(io.BytesIO(body.getvalue()), parsed)
        code = original["location"]["postcode"]
        # a postcode arrives as its JSON text: "0051" keeps its zeros, 410 becomes "410"
        assert back["location"]["postcode"] == str(code)
        assert _text(back["location"]["postcode"]) == _text(code)
        assert back["id"] == original["id"]
        assert back["name"] == {k: original["name"][k] for k in ("title", "first", "last")}
        assert back["location"]["street"] == original["location"]["street"]
        assert back["email"] == original["email"] and back["phone"] == original["phone"]


def expected_columns(user: dict[str, Any]) -> dict[str, Any]:
    """The columns tests/e2e's expected_row derives from a source user (the text ones)."""
    loc = user["location"]
    street = _text(" ".join(p for p in (_text(loc["street"]["number"]), _text(loc["street"]["name"])) if p))
    parts = (street, _text(loc["city"]), _text(loc["state"]), _text(loc["country"]))
    return {
        "id": user["login"]["uuid"].lower(),
        "first_name": _text(user["name"]["first"]),
        "last_name": _text(user["name"]["last"]),
        "address": _text(", ".join(p for p in parts if p)),
        "post_code": _text(loc["postcode"]),
        "email": user["email"],
        "phone": _text(user["phone"]),
        "nationality": user["nat"],
    }


def test_generated_users_pass_the_stream_validation_and_transform() -> None:
    """Every nationality's quirks through the Spark job (Avro in, created_users rows out), as in e2e."""
    from tests.unit.conftest_spark import USER_V1, FakeRegistry, confluent, kafka_rows, local_spark

    from correnteza_stream.decode import WriterSchemas, schema_ids  # isort: skip
    from correnteza_stream.transform import to_user_rows  # isort: skip
    from correnteza_stream.validate import parse, split, validate  # isort: skip

    mixed = [u for u in served("RS", 300, seed="stream-rs") if "\u0408" in u["location"]["street"]["name"]]
    users = served(None, 210, seed="stream") + mixed
    assert any("\u0408" in u["location"]["street"]["name"] for u in users)
    result = validate_records(users)
    assert result.rejected == []
    _, schema = read_schema(latest_schema_file("users_created-value"))
    values = [confluent(1, USER_V1, to_avro_record(clean, META, schema)) for clean in result.accepted]
    spark = local_spark()
    batch = kafka_rows(spark, values)
    writers = WriterSchemas(FakeRegistry()).resolve(spark, schema_ids(batch))
    valid, invalid = split(validate(parse(batch, writers)))
    assert invalid.count() == 0, [r["reason"] for r in invalid.collect()]
    rows = {row["id"]: row.asDict() for row in to_user_rows(valid).collect()}
    assert len(rows) == len(users)
    for user in users:
        want = expected_columns(user)
        got = {k: rows[want["id"]][k] for k in want}
        assert got == want, user["nat"]
