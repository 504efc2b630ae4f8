"""Explicit schema of a users_created message value.

The value is the randomuser.me user object (sanitized: login.password/salt/md5/sha1/sha256 removed by the
producer) plus a top-level ``_meta`` object. Every leaf that the job reads as text is a StringType so that
numbers (e.g. a numeric postcode) are kept as their JSON text instead of failing the parse. Timestamps are
read as strings and typed in the job, so an unparseable date is a validation reason, not a lost record.
"""

from __future__ import annotations

from pyspark.sql.types import StringType, StructField, StructType

CORRUPT_COLUMN = "_corrupt_record"


def _struct(*fields: StructField) -> StructType:
    return StructType(list(fields))


def _str(name: str) -> StructField:
    return StructField(name, StringType(), True)


NAME = _struct(_str("title"), _str("first"), _str("last"))
STREET = _struct(_str("number"), _str("name"))
COORDINATES = _struct(_str("latitude"), _str("longitude"))
TIMEZONE = _struct(_str("offset"), _str("description"))
LOCATION = _struct(
    StructField("street", STREET, True),
    _str("city"),
    _str("state"),
    _str("country"),
    _str("postcode"),
    StructField("coordinates", COORDINATES, True),
    StructField("timezone", TIMEZONE, True),
)
LOGIN = _struct(_str("uuid"), _str("username"))
DATED = _struct(_str("date"), _str("age"))  # age is unused (the job computes it): never a parse failure
ID = _struct(_str("name"), _str("value"))
PICTURE = _struct(_str("large"), _str("medium"), _str("thumbnail"))
META = _struct(_str("batch_id"), _str("fetched_at"), _str("source"), _str("seed"))

USER_SCHEMA = _struct(
    _str("gender"),
    StructField("name", NAME, True),
    StructField("location", LOCATION, True),
    _str("email"),
    StructField("login", LOGIN, True),
    StructField("dob", DATED, True),
    StructField("registered", DATED, True),
    _str("phone"),
    _str("cell"),
    StructField("id", ID, True),
    StructField("picture", PICTURE, True),
    _str("nat"),
    StructField("_meta", META, True),
)

# The parse schema adds the column in which from_json (PERMISSIVE) keeps a record it could not parse.
PARSE_SCHEMA = StructType([*USER_SCHEMA.fields, _str(CORRUPT_COLUMN)])
