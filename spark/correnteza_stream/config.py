"""The job's configuration: a JSON file (default /etc/correnteza/stream.json) with CLI overrides.

Lines of the file that start with '#' are comments (Ansible writes its "managed" header there).

The Cassandra password is never part of the configuration: only the path of the file that holds it.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = "/etc/correnteza/stream.json"
TRIGGER_PATTERN = re.compile(r"^\d+ (second|seconds|minute|minutes)$")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the setting."""


@dataclass(frozen=True)
class StreamConfig:
    """Every setting of the job (see the role ansible/roles/pipeline for the deployed values)."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic: str = "users_created"
    dlq_topic: str = "users_created.dlq"
    cassandra_hosts: str = "127.0.0.1"
    cassandra_port: int = 9042
    cassandra_local_dc: str = "dc1"
    cassandra_username: str = "correnteza"
    cassandra_password_file: str = "/etc/correnteza/cassandra_app_password"
    cassandra_consistency: str = "LOCAL_QUORUM"
    keyspace: str = "spark_streams"
    table: str = "created_users"
    dlq_table: str = "created_users_dlq"
    checkpoint_dir: str = "/data/spark/checkpoints/users_created"
    trigger_interval: str = "10 seconds"
    max_offsets_per_trigger: int = 20000
    starting_offsets: str = "earliest"
    master: str = ""  # empty: spark-submit's --master decides
    app_name: str = "correnteza-stream-users"
    shuffle_partitions: int = 4

    def check(self) -> StreamConfig:
        """Raises ConfigError naming the first bad setting; returns self."""
        if not TRIGGER_PATTERN.match(self.trigger_interval):
            raise ConfigError(f"trigger_interval {self.trigger_interval!r}: expected e.g. '10 seconds'")
        if self.max_offsets_per_trigger <= 0:
            raise ConfigError(f"max_offsets_per_trigger {self.max_offsets_per_trigger}: must be > 0")
        if self.shuffle_partitions <= 0:
            raise ConfigError(f"shuffle_partitions {self.shuffle_partitions}: must be > 0")
        checkpoint = Path(self.checkpoint_dir)
        if not checkpoint.is_absolute() or checkpoint.resolve().is_relative_to("/tmp"):
            raise ConfigError(f"checkpoint_dir {self.checkpoint_dir!r}: must be absolute and not under /tmp")
        for name in ("kafka_bootstrap", "topic", "dlq_topic", "cassandra_hosts", "keyspace"):
            if not str(getattr(self, name)).strip():
                raise ConfigError(f"{name} is empty")
        return self

    def cassandra_password(self) -> str:
        """The password from cassandra_password_file (never logged)."""
        try:
            return Path(self.cassandra_password_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"cassandra_password_file {self.cassandra_password_file}: {error}") from error

    def public(self) -> dict[str, Any]:
        """The settings, safe to log (they hold no secret)."""
        return asdict(self)


def _field_types() -> dict[str, type]:
    return {f.name: (int if f.type in ("int", int) else str) for f in fields(StreamConfig)}


def from_mapping(values: dict[str, Any], base: StreamConfig | None = None) -> StreamConfig:
    """Overlay known keys of ``values`` on ``base``; unknown keys are an error (typos must not pass)."""
    types = _field_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    typed = {name: types[name](value) for name, value in values.items() if value is not None}
    return replace(base or StreamConfig(), **typed)


def read_json_with_comments(path: Path) -> dict[str, Any]:
    """A JSON object from a file whose lines starting with '#' are comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    document = json.loads("\n".join(line for line in lines if not line.lstrip().startswith("#")))
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path}: expected a JSON object")
    return document


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Correnteza: users_created -> Cassandra spark_streams")
    parser.add_argument("--config", default=None, help=f"JSON settings file (default {DEFAULT_CONFIG_PATH})")
    for name, kind in _field_types().items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    return parser


def load(argv: list[str] | None = None) -> StreamConfig:
    """Defaults <- the JSON file (if present, or required when --config is given) <- CLI overrides."""
    args = vars(argument_parser().parse_args(argv))
    path = args.pop("config")
    config = StreamConfig()
    file = Path(path or DEFAULT_CONFIG_PATH)
    if path is not None or file.exists():
        try:
            config = from_mapping(read_json_with_comments(file), config)
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"config file {file}: {error}") from error
    return from_mapping(args, config).check()
