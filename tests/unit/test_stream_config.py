"""The streaming job's settings: the crossing values are required in the file; tunables have defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.conftest_spark import STREAM_SETTINGS, stream_config

from correnteza_stream.config import REQUIRED_SETTINGS, ConfigError, StreamConfig, load  # isort: skip

CROSSING = (
    "kafka_bootstrap",
    "topic",
    "dlq_topic",
    "cassandra_hosts",
    "cassandra_port",
    "cassandra_local_dc",
    "cassandra_username",
    "cassandra_password_file",
    "keyspace",
    "table",
    "dlq_table",
    "checkpoint_dir",
    "app_name",
    "registry_url",
    "registry_username",
    "registry_password_file",
    "registry_ca_file",
)


def write(path: Path, settings: dict) -> Path:
    path.write_text("# Ansible managed\n" + json.dumps(settings, indent=2))
    return path


def test_the_crossing_values_are_required() -> None:
    assert REQUIRED_SETTINGS == CROSSING
    with pytest.raises(TypeError):
        StreamConfig()  # type: ignore[call-arg]


def test_the_stream_job_role_renders_every_setting() -> None:
    """The settings file (test data here) holds every field: the file, not Python, gives the values."""
    assert set(STREAM_SETTINGS) == {f for f in StreamConfig.__dataclass_fields__}


def test_load_reads_the_file_and_overrides(tmp_path: Path) -> None:
    file = write(tmp_path / "stream.json", STREAM_SETTINGS)
    config = load(["--config", str(file), "--shuffle-partitions", "2", "--topic", "other"])
    assert config.topic == "other"
    assert config.shuffle_partitions == 2
    assert config.cassandra_port == 9042
    assert config.keyspace == "spark_streams"
    assert config.public() == {**STREAM_SETTINGS, "topic": "other", "shuffle_partitions": 2}


def test_tunables_have_defaults(tmp_path: Path) -> None:
    file = write(tmp_path / "stream.json", {name: STREAM_SETTINGS[name] for name in CROSSING})
    config = load(["--config", str(file)])
    assert (config.trigger_interval, config.max_offsets_per_trigger, config.shuffle_partitions) == (
        "10 seconds",
        20000,
        4,
    )
    assert (config.cassandra_consistency, config.starting_offsets, config.master) == (
        "LOCAL_QUORUM",
        "earliest",
        "",
    )
    assert config.avro_max_length == 8 * 1024 * 1024
    assert config.fail_on_data_loss is True


@pytest.mark.parametrize(("given", "value"), [(True, True), (False, False), ("true", True), ("False", False)])
def test_fail_on_data_loss_reads_json_and_words(tmp_path: Path, given: object, value: bool) -> None:
    file = write(tmp_path / "stream.json", {**STREAM_SETTINGS, "fail_on_data_loss": given})
    assert load(["--config", str(file)]).fail_on_data_loss is value
    assert load(["--config", str(file), "--fail-on-data-loss", "false"]).fail_on_data_loss is False


def test_fail_on_data_loss_refuses_other_values(tmp_path: Path) -> None:
    file = write(tmp_path / "stream.json", {**STREAM_SETTINGS, "fail_on_data_loss": "sometimes"})
    with pytest.raises(ConfigError, match=r"fail_on_data_loss 'sometimes': expected bool"):
        load(["--config", str(file)])


def test_the_unit_does_not_restart_on_the_data_loss_exit_status() -> None:
    """stream_users.EXIT_DATA_LOSS is the role's stream_job_data_loss_exit_status (RestartPreventExitStatus
    in the unit)."""
    import stream_users
    import yaml

    role = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "stream_job"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert defaults["stream_job_data_loss_exit_status"] == stream_users.EXIT_DATA_LOSS
    unit = (role / "templates" / "correnteza-stream.service.j2").read_text()
    assert "RestartPreventExitStatus={{ stream_job_data_loss_exit_status }}" in unit
    assert defaults["stream_job_fail_on_data_loss"] is True


def test_data_loss_is_told_with_the_range_and_make_replay() -> None:
    import stream_users

    config = stream_config()
    error = (
        "[STREAM_FAILED] Query terminated with exception: Partition users_created-0's offset was changed "
        "from 120 to 300, some data may have been lost.\nSome data may have been lost because they are not "
        "available in Kafka any more"
    )
    assert stream_users.is_data_loss(error)
    assert not stream_users.is_data_loss("Connection refused")
    message = stream_users.data_loss_message(config, error)
    assert "offset was changed from 120 to 300" in message and "make replay" in message
    assert config.checkpoint_dir in message and config.topic in message
    # the executor's wording (a fetch below the log start), as Spark 3.5 reports it from a task
    fetched = (
        "Lost task 1.0 in stage 1.0: java.lang.IllegalStateException: Cannot fetch offset 448 (GroupId: g, "
        "TopicPartition: users_created-2).\nSome data may have been lost because they are not available in "
        "Kafka any more\nCaused by: OffsetOutOfRangeException: Fetch position {offset=448} is out of range "
        "for partition users_created-2"
    )
    assert stream_users.is_data_loss(fetched)
    message = stream_users.data_loss_message(config, fetched)
    assert "Cannot fetch offset 448" in message and "users_created-2" in message


def test_missing_keys_are_named_with_the_file(tmp_path: Path) -> None:
    settings = {k: v for k, v in STREAM_SETTINGS.items() if k not in ("topic", "cassandra_port", "table")}
    file = write(tmp_path / "stream.json", settings)
    want = f"config file {file}: missing required settings: topic, cassandra_port, table"
    with pytest.raises(ConfigError, match=re.escape(want) + "$"):
        load(["--config", str(file)])


def test_the_file_is_required(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        load([])
    with pytest.raises(ConfigError, match=r"config file .*nope\.json"):
        load(["--config", str(tmp_path / "nope.json")])


def test_unknown_and_badly_typed_settings(tmp_path: Path) -> None:
    file = write(tmp_path / "stream.json", {**STREAM_SETTINGS, "topik": "x"})
    with pytest.raises(ConfigError, match=r"unknown settings: topik"):
        load(["--config", str(file)])
    file = write(tmp_path / "stream.json", {**STREAM_SETTINGS, "cassandra_port": "ninety"})
    with pytest.raises(ConfigError, match=r"cassandra_port 'ninety': expected int"):
        load(["--config", str(file)])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trigger_interval": "soon"}, "trigger_interval"),
        ({"max_offsets_per_trigger": 0}, "max_offsets_per_trigger"),
        ({"shuffle_partitions": 0}, "shuffle_partitions"),
        ({"checkpoint_dir": "/tmp/x"}, "checkpoint_dir"),
        ({"checkpoint_dir": "relative"}, "checkpoint_dir"),
        ({"cassandra_port": 0}, "cassandra_port"),
        ({"keyspace": " "}, "keyspace is empty"),
        ({"dlq_table": ""}, "dlq_table is empty"),
        ({"registry_url": ""}, "registry_url is empty"),
        ({"registry_url": "http://127.0.0.1:8080/apis/ccompat/v7"}, "registry_url 'http://"),
        ({"registry_url": "127.0.0.1:8443"}, "registry_url"),
        ({"registry_ca_file": " "}, "registry_ca_file is empty"),
        ({"avro_max_length": 0}, "avro_max_length"),
    ],
)
def test_check_names_the_bad_setting(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stream_config(**changes).check()


def test_a_registry_url_with_credentials_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError, match="must not hold credentials") as caught:
        stream_config(registry_url="https://reader:s3cret@127.0.0.1:8443/apis/ccompat/v7").check()
    assert "s3cret" not in str(caught.value)


def test_the_registry_password_comes_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "registry_password"
    secret.write_text("r3ad-only\n")
    config = stream_config(registry_password_file=str(secret))
    assert config.registry_password() == "r3ad-only"
    assert "r3ad-only" not in str(config.public())
    with pytest.raises(ConfigError, match=r"registry_password_file .*nope"):
        stream_config(registry_password_file=str(tmp_path / "nope")).registry_password()
