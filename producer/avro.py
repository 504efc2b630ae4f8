"""The Avro contract of the producer: schema files, the record shape, the registry-backed serializer.

Schemas are versioned files producer/schemas/<subject>/v<N>.avsc (the highest N is the one written with);
Ansible registers the same files in the Schema Registry. The serializer never registers: it looks the
file's schema up by content under its subject (TopicNameStrategy: "<topic>-value") and writes the
Confluent wire format (0x00, the 4-byte schema id, the Avro binary body).

to_avro_record fits a landed user into the schema's shape without judging its content: undeclared keys
are dropped (login's secrets are never declared), missing ones take the field's default, scalars are
coerced where the meaning is kept (a numeric postcode becomes its text) and nulled where it is not. A
record whose content is wrong still serializes, so the stream's validation judges it and sends it to
the dead-letter table with a reason. Only what the schema requires (login.uuid, _meta) can fail here.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

SCHEMAS_DIR: Final = Path(__file__).resolve().parent / "schemas"
VERSION_FILE: Final = re.compile(r"^v(?P<version>[1-9][0-9]*)\.avsc$")
# The serializer reads the registry only: no registration, the schema of the file looked up by content,
# under the subject TopicNameStrategy names (confluent-kafka's default, ASSOCIATED, would first ask the
# registry for the topic's associations, which Apicurio does not keep).
SERIALIZER_CONFIG: Final = {
    "auto.register.schemas": False,
    "use.latest.version": False,
    "normalize.schemas": False,
    "subject.name.strategy.type": "TOPIC",
}
INT_RANGE: Final = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
PRIMITIVES: Final = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))

ValueSerializer = Callable[[Mapping[str, Any], str], bytes]


class SchemaFileError(LookupError):
    """No schema file for a subject, or one that is not a JSON object; the message names the path."""


class _NoMatch:
    """A value that does not fit a type (distinct from None, which fits a null)."""


NO_MATCH: Final = _NoMatch()


def value_subject(topic: str) -> str:
    """The subject of a topic's values under TopicNameStrategy."""
    return f"{topic}-value"


def schema_versions(subject: str, schemas_dir: Path = SCHEMAS_DIR) -> dict[int, Path]:
    """{N: path} of the v<N>.avsc files of `subject` (other files are ignored)."""
    directory = schemas_dir / subject
    if not directory.is_dir():
        return {}
    found: dict[int, Path] = {}
    for path in directory.iterdir():
        match = VERSION_FILE.match(path.name)
        if match and path.is_file():
            found[int(match["version"])] = path
    return found


def latest_schema_file(subject: str, schemas_dir: Path = SCHEMAS_DIR) -> Path:
    """The highest v<N>.avsc of `subject`: the version the producer writes with."""
    versions = schema_versions(subject, schemas_dir)
    if not versions:
        raise SchemaFileError(f"no schema file v<N>.avsc for subject {subject!r} in {schemas_dir / subject}")
    return versions[max(versions)]


def read_schema(path: Path) -> tuple[str, dict[str, Any]]:
    """(the file's text as it is, for the registry lookup; its JSON, for to_avro_record)."""
    text = path.read_text(encoding="utf-8")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaFileError(f"{path} is not JSON: {err}") from err
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaFileError(f"{path} is not an Avro record schema")
    return text, parsed


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _namespace(schema: Mapping[str, Any], enclosing: str | None) -> str | None:
    """The namespace the names inside a named type resolve in."""
    full = _full_name(str(schema["name"]), schema.get("namespace") or enclosing)
    return full.rpartition(".")[0] or None


class _Shaper:
    """Walks one schema (JSON) along a value; its named types are collected first, for the references."""

    def __init__(self, schema: Any) -> None:
        self.named: dict[str, Mapping[str, Any]] = {}
        # the required fields (neither nullable nor defaulted) that got no usable value, as dotted paths
        self.missing: list[str] = []
        self._path: list[str] = []
        self._collect(schema, None)

    def _collect(self, schema: Any, namespace: str | None) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, Mapping):
            return
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed") and isinstance(schema.get("name"), str):
            self.named[_full_name(schema["name"], schema.get("namespace") or namespace)] = schema
            namespace = _namespace(schema, namespace)
        for field in schema.get("fields", ()) if kind == "record" else ():
            self._collect(field.get("type"), namespace)
        for key in ("items", "values"):
            if kind in ("array", "map") and key in schema:
                self._collect(schema[key], namespace)
        if isinstance(kind, (list, Mapping)):
            self._collect(kind, namespace)

    def resolve(self, name: str, namespace: str | None) -> Mapping[str, Any]:
        for candidate in (_full_name(name, namespace), name):
            if candidate in self.named:
                return self.named[candidate]
        raise SchemaFileError(f"the schema references an undefined type {name!r}")

    def shape(self, value: Any, schema: Any, namespace: str | None, exact: bool = False) -> Any:
        """value in the shape of `schema`, or NO_MATCH. exact: no coercion (the first pass of a union)."""
        if isinstance(schema, list):
            return self._union(value, schema, namespace)
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return _primitive(value, schema, exact)
            return self.shape(value, self.resolve(schema, namespace), namespace, exact)
        kind = schema.get("type")
        if kind in PRIMITIVES:  # {"type": "string", "logicalType": ...}: the underlying type
            return _primitive(value, kind, exact)
        if kind == "record":
            if not isinstance(value, Mapping):
                return NO_MATCH
            return self._record(value, schema, _namespace(schema, namespace))
        if kind == "enum":
            return value if isinstance(value, str) and value in schema.get("symbols", ()) else NO_MATCH
        if kind == "fixed":
            return value if isinstance(value, bytes) and len(value) == schema.get("size") else NO_MATCH
        if kind == "array":
            if not isinstance(value, list):
                return NO_MATCH
            return [self._or_none(item, schema["items"], namespace) for item in value]
        if kind == "map":
            if not isinstance(value, Mapping):
                return NO_MATCH
            return {str(k): self._or_none(v, schema["values"], namespace) for k, v in value.items()}
        return self.shape(value, kind, namespace, exact)  # {"type": <a union or a name>}

    def _or_none(self, value: Any, schema: Any, namespace: str | None) -> Any:
        shaped = self.shape(value, schema, namespace)
        return None if shaped is NO_MATCH else shaped

    def _union(self, value: Any, branches: list[Any], namespace: str | None) -> Any:
        """The first branch the value fits as it is, else the first it can be coerced to, else null."""
        if value is None:
            return None if "null" in branches else NO_MATCH
        others = [branch for branch in branches if branch != "null"]
        for exact in (True, False):
            for branch in others:
                shaped = self.shape(value, branch, namespace, exact)
                if shaped is not NO_MATCH:
                    return shaped
        return None if "null" in branches else NO_MATCH

    def _record(self, value: Mapping[str, Any], schema: Mapping[str, Any], namespace: str | None) -> dict:
        """The declared fields only: a missing one takes its default (None without one), as does an
        unusable value of a field that cannot be null."""
        record: dict[str, Any] = {}
        for field in schema.get("fields", ()):
            name = field["name"]
            self._path.append(name)
            shaped = self._or_none(value[name], field["type"], namespace) if name in value else None
            if shaped is None and "default" in field and (name not in value or not _nullable(field["type"])):
                shaped = copy.deepcopy(field["default"])
            if shaped is None and not _nullable(field["type"]):
                self.missing.append(".".join(self._path))
            record[name] = shaped
            self._path.pop()
        return record


def _nullable(schema: Any) -> bool:
    if isinstance(schema, list):
        return "null" in schema
    if isinstance(schema, Mapping):
        return schema.get("type") == "null"
    return schema == "null"


def _json_text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def _integer(value: Any, kind: str, exact: bool) -> Any:
    if isinstance(value, bool):
        return NO_MATCH
    if isinstance(value, int):
        number = value
    elif exact:
        return NO_MATCH
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                as_float = float(value.strip())
            except ValueError:
                return NO_MATCH
            if not (math.isfinite(as_float) and as_float.is_integer()):
                return NO_MATCH
            number = int(as_float)
    else:
        return NO_MATCH
    low, high = INT_RANGE[kind]
    return number if low <= number <= high else NO_MATCH


def _primitive(value: Any, kind: str, exact: bool) -> Any:
    """value as the Avro primitive `kind`, or NO_MATCH (strings take any JSON value as its text)."""
    if kind == "null":
        return None if value is None else NO_MATCH
    if value is None:
        return NO_MATCH
    if kind == "string":
        if isinstance(value, str):
            return value
        return NO_MATCH if exact else _json_text(value)
    if kind in INT_RANGE:
        return _integer(value, kind, exact)
    if kind in ("float", "double"):
        if isinstance(value, bool):
            return NO_MATCH
        if isinstance(value, float) or (isinstance(value, int) and not exact):
            return float(value)
        if isinstance(value, str) and not exact:
            try:
                return float(value.strip())
            except ValueError:
                return NO_MATCH
        return NO_MATCH
    if kind == "boolean":
        return value if isinstance(value, bool) else NO_MATCH
    if kind == "bytes":
        if isinstance(value, bytes):
            return value
        return NO_MATCH if exact or not isinstance(value, str) else value.encode("utf-8")
    return NO_MATCH


def to_avro_record(payload: Mapping[str, Any], meta: Mapping[str, Any], schema: Mapping[str, Any]) -> dict:
    """The landed user plus _meta in exactly the shape of `schema` (a record schema's JSON).

    Raises ValueError naming the fields the schema requires (no null, no default) that are missing or
    unusable, e.g. login.uuid: such a record could not be serialized.
    """
    shaper = _Shaper(schema)
    shaped = shaper.shape({**payload, "_meta": dict(meta)}, schema, None)
    if shaped is NO_MATCH or not isinstance(shaped, dict):
        raise ValueError("the schema is not an Avro record schema")
    if shaper.missing:
        raise ValueError(f"required by the schema, missing or unusable: {', '.join(shaper.missing)}")
    return shaped


def registry_client(registry_conf: Mapping[str, Any]) -> Any:
    """A SchemaRegistryClient (a mock one for a "mock://" url, as confluent-kafka does)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient.new_client(dict(registry_conf))


class SchemaNotRegisteredError(LookupError):
    """The registry does not hold the producer's schema under its subject (or refused the lookup)."""


def lookup_schema_id(registry: Any, subject: str, schema_str: str, url: str) -> int:
    """The id the registry gives `schema_str` under `subject` (a lookup by content; nothing is written)."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        # the text as the serializer sends it (confluent-kafka strips the surrounding whitespace)
        found = registry.lookup_schema(subject, Schema(schema_str.strip(), schema_type="AVRO"))
    except SchemaRegistryError as err:
        raise SchemaNotRegisteredError(
            f"schema registry {url}: the producer's schema is not available under subject {subject!r} "
            f"(HTTP {err.http_status_code}, code {err.error_code}: {err.error_message}); "
            "the registry's schemas are registered by Ansible, the producer never registers"
        ) from err
    return int(found.schema_id)


def make_value_serializer(
    registry_conf: Mapping[str, Any],
    subject: str,
    schema_str: str,
    client: Any = None,
) -> ValueSerializer:
    """callable(record, topic) -> Confluent-framed Avro bytes of `schema_str`, registered under `subject`.

    The schema is looked up here, once (by content, never registered): a schema the registry lacks fails
    now, naming the subject, before any message. `client` replaces the SchemaRegistryClient built from
    registry_conf (tests pass confluent-kafka's MockSchemaRegistryClient).
    """
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    registry = client if client is not None else registry_client(registry_conf)
    schema_id = lookup_schema_id(registry, subject, schema_str, str(registry_conf.get("url", "?")))
    log.info("writing %s with schema id %d", subject, schema_id)
    serializer = AvroSerializer(registry, schema_str, conf=dict(SERIALIZER_CONFIG))

    def serialize(record: Mapping[str, Any], topic: str) -> bytes:
        if value_subject(topic) != subject:
            raise ValueError(f"topic {topic!r} writes subject {value_subject(topic)!r}, not {subject!r}")
        data = serializer(dict(record), SerializationContext(topic, MessageField.VALUE))
        if data is None:
            raise ValueError("the serializer returned no bytes")
        return data

    return serialize
