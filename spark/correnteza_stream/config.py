"""The job's configuration: a JSON settings file (--config, rendered by Ansible's stream_job role) with
CLI overrides.

Lines of the file that start with '#' are comments (Ansible writes its "managed" header there). The
values that cross components (brokers, topics, Cassandra hosts/port/data centre/role, keyspace, tables,
the checkpoint, the schema registry's URL, user, password file and CA file) have no default here: the file
must give them (REQUIRED_SETTINGS), else the job stops
with an error naming the file and the missing keys. Only tunables have defaults.

The Cassandra and registry passwords are never part of the configuration: only the paths of the files that
hold them.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TRIGGER_PATTERN = re.compile(r"^\d+ (second|seconds|minute|minutes)$")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the setting."""


@dataclass(frozen=True)
class StreamConfig:
    """Every setting of the job (the deployed values: ansible/roles/stream_job)."""

    # Required: what other components define (the contract, the inventory).
    kafka_bootstrap: str
    topic: str
    dlq_topic: str
    cassandra_hosts: str
    cassandra_port: int
    cassandra_local_dc: str
    cassandra_username: str
    cassandra_password_file: str
    keyspace: str
    table: str
    dlq_table: str
    checkpoint_dir: str
    # The application's name in the Spark master (the stream_job role's health check looks it up).
    app_name: str
    # The schema registry (read-only user): the Confluent-compatible API base, e.g.
    # https://<host>:<port>/apis/ccompat/v7, verified with registry_ca_file.
    registry_url: str
    registry_username: str
    registry_password_file: str
    registry_ca_file: str
    # Tunables.
    cassandra_consistency: str = "LOCAL_QUORUM"
    trigger_interval: str = "10 seconds"
    max_offsets_per_trigger: int = 20000
    starting_offsets: str = "earliest"
    # Offsets the checkpoint holds that Kafka no longer has (retention expired them during a long outage)
    # stop the job with exit status EXIT_DATA_LOSS, naming the range and `make replay` (which refills it from
    # PostgreSQL); false only skips them with Spark's warning.
    fail_on_data_loss: bool = True
    master: str = ""  # empty: spark-submit's --master decides
    shuffle_partitions: int = 4
    # Upper bound of one Avro string or bytes length, and of one array or map's item count, that the
    # executors' Avro decoder accepts (org.apache.avro.limits.*): a corrupt length in a value is then a
    # not_avro dead letter instead of an allocation that kills the executor. Above Kafka's message size.
    avro_max_length: int = 8 * 1024 * 1024

    def check(self) -> StreamConfig:
        """Raises ConfigError naming the first bad setting; returns self."""
        if not TRIGGER_PATTERN.match(self.trigger_interval):
            raise ConfigError(f"trigger_interval {self.trigger_interval!r}: expected e.g. '10 seconds'")
        if self.max_offsets_per_trigger <= 0:
            raise ConfigError(f"max_offsets_per_trigger {self.max_offsets_per_trigger}: must be > 0")
        if self.shuffle_partitions <= 0:
            raise ConfigError(f"shuffle_partitions {self.shuffle_partitions}: must be > 0")
        if not 0 < self.cassandra_port < 65536:
            raise ConfigError(f"cassandra_port {self.cassandra_port}: must be within 1..65535")
        if self.avro_max_length <= 0:
            raise ConfigError(f"avro_max_length {self.avro_max_length}: must be > 0")
        checkpoint = Path(self.checkpoint_dir)
        if not checkpoint.is_absolute() or checkpoint.resolve().is_relative_to("/tmp"):
            raise ConfigError(f"checkpoint_dir {self.checkpoint_dir!r}: must be absolute and not under /tmp")
        for name in REQUIRED_SETTINGS:
            if not str(getattr(self, name)).strip():
                raise ConfigError(f"{name} is empty")
        registry = urlsplit(self.registry_url)
        if "@" in registry.netloc:  # the value is not repeated: it may hold a password
            raise ConfigError("registry_url: must not hold credentials (registry_password_file gives them)")
        if registry.scheme != "https" or not registry.hostname:
            raise ConfigError(f"registry_url {self.registry_url!r}: expected https://<host>:<port>/<path>")
        return self

    def _secret(self, setting: str) -> str:
        path = getattr(self, setting)
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{setting} {path}: {error}") from error

    def cassandra_password(self) -> str:
        """The password from cassandra_password_file (never logged)."""
        return self._secret("cassandra_password_file")

    def registry_password(self) -> str:
        """The registry user's password from registry_password_file (never logged)."""
        return self._secret("registry_password_file")

    def public(self) -> dict[str, Any]:
        """The settings, safe to log (they hold no secret)."""
        return asdict(self)


# The settings without a default, in declaration order.
REQUIRED_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in fields(StreamConfig) if f.default is MISSING and f.default_factory is MISSING
)


def as_bool(value: Any) -> bool:
    """true/false from JSON or the command line (a bool, or the words true and false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{value!r} is not true or false")


as_bool.__name__ = "bool"


def _field_types() -> dict[str, Any]:
    kinds = {"int": int, "bool": as_bool}
    return {f.name: kinds.get(str(getattr(f.type, "__name__", f.type)), str) for f in fields(StreamConfig)}


def from_mapping(values: dict[str, Any], source: str = "settings") -> StreamConfig:
    """A config from ``values`` (None values ignored). Unknown keys are an error (typos must not pass), and so
    are missing required ones; ``source`` (e.g. the file) names where they should have been."""
    types = _field_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"{source}: unknown settings: {', '.join(unknown)}")
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        try:
            typed[name] = types[name](value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: {name} {value!r}: expected {types[name].__name__}") from error
    missing = [name for name in REQUIRED_SETTINGS if name not in typed]
    if missing:
        raise ConfigError(f"{source}: missing required settings: {', '.join(missing)}")
    return StreamConfig(**typed)


def read_json_with_comments(path: Path) -> dict[str, Any]:
    """A JSON object from a file whose lines starting with '#' are comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    document = json.loads("\n".join(line for line in lines if not line.lstrip().startswith("#")))
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path}: expected a JSON object")
    return document


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Correnteza: Kafka users topic -> Cassandra")
    parser.add_argument("--config", required=True, help="JSON settings file (rendered by Ansible)")
    for name, kind in _field_types().items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    return parser


def load(argv: list[str] | None = None) -> StreamConfig:
    """The JSON file given by --config, then --setting-name overrides; checked."""
    args = vars(argument_parser().parse_args(argv))
    file = Path(args.pop("config"))
    try:
        document = read_json_with_comments(file)
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"config file {file}: {error}") from error
    overrides = {name: value for name, value in args.items() if value is not None}
    return from_mapping({**document, **overrides}, source=f"config file {file}").check()
