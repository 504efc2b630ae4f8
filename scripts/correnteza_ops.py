"""The operations client: how scripts/ and tests/e2e reach the running platform from the control node.

Everything that crosses components comes from two generated files, never from a literal here:
- the inventory `make up` renders (ansible/inventory/hosts.yml): the hosts of each group, their IPs, the SSH
  user and key;
- the contract site.yml renders (.state/contract.json, from `correnteza_contract` in
  ansible/group_vars/all/contract.yml): ports, topics, keyspace, tables, roles, Airflow names, paths.
Secrets are read from .state/secrets/<name>. Environment overrides: CORRENTEZA_STATE (the state folder),
CORRENTEZA_INVENTORY, CORRENTEZA_CONTRACT (the two files), AIRFLOW_API (the Airflow base URL).

Helpers: ssh() and psql() over SSH with the deployment key, cassandra_session() as the application role,
Kafka bootstrap/offsets, and Airflow, the REST client (token login, trigger/follow runs, task instances).
Heavy clients (cassandra-driver, confluent-kafka, requests) are imported only when used.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session
    from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))
INVENTORY = Path(os.environ.get("CORRENTEZA_INVENTORY", ROOT / "ansible" / "inventory" / "hosts.yml"))
CONTRACT = Path(os.environ.get("CORRENTEZA_CONTRACT", STATE / "contract.json"))
SECRETS = STATE / "secrets"
SSH_KEY = STATE / "ssh" / "id_ed25519"
# Where ssh() keeps its connection masters (one per host, reused for ControlPersist seconds).
SSH_CONTROL_DIR = Path("/tmp/correnteza-ssh")
SSH_CONTROL_PERSIST = "120s"

# The ingestion DAG (owned by dags/user_ingestion.py; a unit test checks that they agree). Used until the
# contract carries airflow.dag_ingestion, then the contract wins.
DAG_ID = "user_ingestion"
REPLAY_DAG_ID = "user_replay"
# The Airflow CLI wrapper the airflow role installs on its host (same environment as the units).
AIRFLOW_CLI = "/usr/local/bin/airflow"
# Airflow run states after which a run no longer changes.
FINAL_STATES = ("success", "failed")


class OpsError(RuntimeError):
    """The platform, or a file it generates, is not what the operations client needs."""


def _missing(path: Path, what: str) -> OpsError:
    return OpsError(f"{path} is missing ({what}): run `make up` first")


# --- the contract -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """Listener ports, on each host's own address."""

    zookeeper: int
    kafka: int
    cassandra: int
    postgresql: int
    spark_master: int
    spark_master_ui: int
    spark_worker_ui: int
    airflow_api: int
    source: int
    registry: int
    s3: int
    jmx_exporter: int
    jmx_exporter_driver: int
    node_exporter: int
    postgres_exporter: int
    prometheus: int
    alertmanager: int


@dataclass(frozen=True)
class KafkaNames:
    topic_users: str
    topic_dlq: str


@dataclass(frozen=True)
class CassandraNames:
    datacenter: str
    keyspace: str
    table_users: str
    table_dlq: str
    app_role: str
    superuser: str

    @property
    def users(self) -> str:
        """The users table, qualified by its keyspace."""
        return f"{self.keyspace}.{self.table_users}"

    @property
    def dlq(self) -> str:
        """The dead-letter table, qualified by its keyspace."""
        return f"{self.keyspace}.{self.table_dlq}"


@dataclass(frozen=True)
class PostgresNames:
    ingestion_db: str
    ingestion_role: str
    airflow_db: str
    airflow_db_role: str


@dataclass(frozen=True)
class AirflowNames:
    admin_user: str
    conn_postgres: str
    conn_kafka: str
    conn_cassandra: str
    conn_registry: str
    conn_s3: str
    conn_s3_reader: str
    settings_variable: str
    dag_ingestion: str = DAG_ID
    dag_replay: str = REPLAY_DAG_ID


@dataclass(frozen=True)
class RegistryNames:
    api_path: str
    writer_user: str
    reader_user: str
    compatibility: str
    db: str
    db_role: str


@dataclass(frozen=True)
class S3Names:
    bucket: str
    prefix: str
    region: str
    pipeline_identity: str
    reader_identity: str
    admin_identity: str


@dataclass(frozen=True)
class Contract:
    """The parsed .state/contract.json (paths is kept as a mapping: its keys grow with the roles)."""

    ports: Ports
    kafka: KafkaNames
    cassandra: CassandraNames
    postgres: PostgresNames
    airflow: AirflowNames
    registry: RegistryNames
    s3: S3Names
    paths: Mapping[str, str]
    source: Path


Section = TypeVar("Section")


def _section(cls: type[Section], data: Mapping[str, Any], name: str, source: Path) -> Section:
    """One section of the contract as its dataclass; unknown keys are ignored, missing ones named."""
    raw = data.get(name)
    if not isinstance(raw, Mapping):
        raise OpsError(f"{source}: no `{name}` section; run `make up` (or site.yml) to render it again")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = int(raw[f.name]) if f.type in (int, "int") else str(raw[f.name])
        elif f.default is dataclasses.MISSING:
            raise OpsError(f"{source}: `{name}.{f.name}` is missing; run `make up` to render it again")
    return cls(**values)


def parse_contract(data: Mapping[str, Any], source: Path) -> Contract:
    return Contract(
        ports=_section(Ports, data, "ports", source),
        kafka=_section(KafkaNames, data, "kafka", source),
        cassandra=_section(CassandraNames, data, "cassandra", source),
        postgres=_section(PostgresNames, data, "postgres", source),
        airflow=_section(AirflowNames, data, "airflow", source),
        registry=_section(RegistryNames, data, "registry", source),
        s3=_section(S3Names, data, "s3", source),
        paths={str(k): str(v) for k, v in (data.get("paths") or {}).items()},
        source=source,
    )


def load_contract(path: Path | None = None) -> Contract:
    path = path or CONTRACT
    if not path.exists():
        raise _missing(path, "site.yml renders it from correnteza_contract in ansible/group_vars/all")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise OpsError(f"{path} is not valid JSON ({e}): run `make up` to render it again") from e
    return parse_contract(data, path)


@functools.cache
def contract() -> Contract:
    """The contract, read once per process."""
    return load_contract()


# --- the inventory ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    name: str
    ip: str


@dataclass(frozen=True)
class Inventory:
    """The generated inventory: {'all': {'vars': ..., 'children': {group: {'hosts': {name: vars}}}}}."""

    data: Mapping[str, Any]
    source: Path

    @property
    def vars(self) -> Mapping[str, Any]:
        return self.data["all"].get("vars") or {}

    @property
    def groups(self) -> Mapping[str, Any]:
        return self.data["all"].get("children") or {}

    def host_vars(self, group: str) -> dict[str, dict[str, Any]]:
        """{'kafka-1': {'correnteza_ip': ..., ...}, ...}; {} for a group without hosts."""
        return dict((self.groups.get(group) or {}).get("hosts") or {})

    def hosts(self, group: str) -> list[Host]:
        """The hosts of a group, in inventory order; fails if it has none."""
        found = [Host(name, str(v["correnteza_ip"])) for name, v in self.host_vars(group).items()]
        if not found:
            raise OpsError(f"{self.source}: group {group!r} has no hosts")
        return found

    def ips(self, group: str) -> list[str]:
        return [h.ip for h in self.hosts(group)]

    def first(self, group: str) -> Host:
        return self.hosts(group)[0]

    @property
    def ssh_user(self) -> str:
        user = self.vars.get("ansible_user")
        if not user:
            raise OpsError(f"{self.source}: all.vars.ansible_user is not set; run `make up` again")
        return str(user)

    @property
    def ssh_key(self) -> Path:
        return Path(self.vars.get("ansible_ssh_private_key_file") or SSH_KEY)


def load_inventory(path: Path | None = None) -> Inventory:
    path = path or INVENTORY
    if not path.exists():
        raise _missing(path, "scripts/hosts.sh renders it from `terraform output inventory`")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, Mapping) or "all" not in data:
        raise OpsError(f"{path} has no `all` group: run `make up` to render it again")
    return Inventory(data, path)


@functools.cache
def inventory() -> Inventory:
    """The inventory, read once per process."""
    return load_inventory()


def ips(group: str) -> list[str]:
    """hosts of a group -> their IPs."""
    return inventory().ips(group)


# --- secrets, SSH, psql -----------------------------------------------------------------------------------


def secret(name: str) -> str:
    """secret('cassandra_app_password') -> the generated value."""
    path = SECRETS / name
    if not path.exists():
        raise OpsError(f"secret {name} not found at {path}: run `make up` first")
    return path.read_text().strip()


def ssh_args(ip: str) -> list[str]:
    """The ssh command line to a host, as the deployment user with the deployment key (a shared master
    connection per host keeps repeated commands cheap)."""
    inv = inventory()
    SSH_CONTROL_DIR.mkdir(mode=0o700, exist_ok=True)
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "LogLevel": "ERROR",
        "ConnectTimeout": "10",
        "ControlMaster": "auto",
        "ControlPersist": SSH_CONTROL_PERSIST,
        "ControlPath": str(SSH_CONTROL_DIR / "ops-%C"),
    }
    args = ["ssh", "-i", str(inv.ssh_key)]
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    return [*args, f"{inv.ssh_user}@{ip}"]


def ssh_run(ip: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a shell command on a host; the caller checks returncode."""
    return subprocess.run([*ssh_args(ip), command], capture_output=True, text=True, timeout=timeout)


def ssh(ip: str, command: str, timeout: float = 300) -> str:
    """Run a shell command on a host and return its stdout; fail with its stderr."""
    run = ssh_run(ip, command, timeout)
    if run.returncode != 0:
        detail = run.stderr.strip()[-2000:] or run.stdout.strip()[-2000:]
        raise OpsError(f"{command!r} on {ip} failed (exit {run.returncode}): {detail}")
    return run.stdout


# psql's field separator: the ASCII unit separator, which no value of the landing tables contains.
_PSQL_SEP = "\x1f"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def psql(sql: str, database: str | None = None, role: str | None = None) -> list[list[str]]:
    """Rows of one SQL statement in the ingestion database (as the ingestion role, the DAG's), run by psql on
    the postgres host over SSH; each row is a list of text fields, NULL as ''."""
    names = contract().postgres
    database = database or names.ingestion_db
    role = role or names.ingestion_role
    # Local connections are peer-authenticated as the postgres user only; SET ROLE drops to the app role.
    command = (
        f"sudo -u postgres psql -d {shlex.quote(database)} -AtqX -v ON_ERROR_STOP=1 "
        f"-F {shlex.quote(_PSQL_SEP)} -c {shlex.quote('SET ROLE ' + _ident(role))} -c {shlex.quote(sql)}"
    )
    out = ssh(inventory().first("postgres").ip, command)
    return [line.split(_PSQL_SEP) for line in out.splitlines() if line]


def psql_scalar(sql: str) -> int:
    """The first field of the first row of a query, as an int."""
    return int(psql(sql)[0][0])


def sql_literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


# --- Cassandra --------------------------------------------------------------------------------------------


def cassandra_cluster(superuser: bool = False) -> Cluster:
    """A driver Cluster on every Cassandra node, local to the contract's DC, as the application role (it may
    read and write the keyspace's rows) or, for schema changes, as the generated superuser. Statements run at
    LOCAL_QUORUM, as the stream writes: a node that just came back (hints not yet replayed) cannot make a
    read miss rows the cluster acknowledged."""
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy

    names = contract()
    if superuser:
        auth = PlainTextAuthProvider(names.cassandra.superuser, secret("cassandra_superuser_password"))
    else:
        auth = PlainTextAuthProvider(names.cassandra.app_role, secret("cassandra_app_password"))
    local_dc = DCAwareRoundRobinPolicy(local_dc=names.cassandra.datacenter)
    return Cluster(
        ips("cassandra"),
        port=names.ports.cassandra,
        auth_provider=auth,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: ExecutionProfile(
                load_balancing_policy=local_dc, consistency_level=ConsistencyLevel.LOCAL_QUORUM
            )
        },
        protocol_version=5,
    )


@contextmanager
def cassandra_session(superuser: bool = False) -> Iterator[Session]:
    """A connected session (see cassandra_cluster); the cluster is shut down on exit."""
    cluster = cassandra_cluster(superuser)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


# --- Kafka ------------------------------------------------------------------------------------------------


def kafka_bootstrap() -> str:
    """bootstrap.servers: every broker of the inventory on the contract's port."""
    port = contract().ports.kafka
    return ",".join(f"{ip}:{port}" for ip in ips("kafka"))


def kafka_consumer(servers: str | None = None, **conf: Any) -> Consumer:
    """A consumer in a fresh group that commits nothing (for reading offsets and ranges)."""
    from confluent_kafka import Consumer

    base = {
        "bootstrap.servers": servers or kafka_bootstrap(),
        "group.id": f"correnteza-ops-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    return Consumer({**base, **conf})


def watermarks(topic: str, servers: str | None = None) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} watermark offsets of a topic now."""
    from confluent_kafka import TopicPartition

    consumer = kafka_consumer(servers)
    try:
        meta = consumer.list_topics(topic, timeout=20).topics[topic]
        if meta.error is not None:
            raise OpsError(f"Kafka topic {topic}: {meta.error}")
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20) for p in meta.partitions
        }
    finally:
        consumer.close()


def partition_ends(topic: str, servers: str | None = None) -> dict[int, int]:
    """{partition: end offset} of a topic now."""
    return {p: high for p, (_, high) in watermarks(topic, servers).items()}


def end_offsets(topic: str, servers: str | None = None) -> int:
    """Sum of a topic's end offsets over its partitions (every message ever written)."""
    return sum(partition_ends(topic, servers).values())


def message_count(topic: str, servers: str | None = None) -> int:
    """Messages a topic holds now (end minus start offsets: retention may have removed the oldest)."""
    return sum(high - low for low, high in watermarks(topic, servers).values())


# --- the schema registry ----------------------------------------------------------------------------------

# The private CA's certificate on the control node (the secrets role makes it; it verifies TLS).
CA_CERT = SECRETS / "ca" / "ca.crt"


def registry_url() -> str:
    """The Confluent-compatible API of the registry, through its TLS proxy."""
    c = contract()
    return f"https://{inventory().first('registry').ip}:{c.ports.registry}{c.registry.api_path}"


def registry_credentials(writer: bool = False) -> tuple[str, str]:
    """(user, password) of the reader (default) or the writer."""
    names = contract().registry
    if writer:
        return names.writer_user, secret("registry_writer_password")
    return names.reader_user, secret("registry_reader_password")


def registry_request(
    method: str, path: str, writer: bool = False, anonymous: bool = False, **kwargs: Any
) -> Any:
    """One HTTP request to the registry's API (path relative to it): a requests.Response, never raised on
    status. The reader's credentials by default; writer=True for writes; anonymous=True sends none."""
    import requests

    if not CA_CERT.exists():
        raise _missing(CA_CERT, "the secrets role makes the private CA")
    auth = None if anonymous else registry_credentials(writer)
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json", **kwargs.pop("headers", {})}
    return requests.request(
        method,
        registry_url() + path,
        auth=auth,
        verify=str(CA_CERT),
        headers=headers,
        timeout=kwargs.pop("timeout", 30),
        **kwargs,
    )


def registry_client_conf(writer: bool = False) -> dict[str, str]:
    """confluent-kafka SchemaRegistryClient settings (TLS verified with the private CA)."""
    user, password = registry_credentials(writer)
    return {
        "url": registry_url(),
        "basic.auth.user.info": f"{user}:{password}",
        "ssl.ca.location": str(CA_CERT),
    }


def schema_file(subject: str, version: int | None = None) -> Path:
    """producer/schemas/<subject>/v<N>.avsc: the given version, or the highest."""
    folder = ROOT / "producer" / "schemas" / subject
    files = sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    if not files:
        raise OpsError(f"{folder}: no schema versions (v1.avsc ...)")
    if version is None:
        return files[-1]
    path = folder / f"v{version}.avsc"
    if not path.exists():
        raise OpsError(f"{path} does not exist")
    return path


@functools.cache
def _registry_client() -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(registry_client_conf())


def schema_id_of(value: bytes) -> int | None:
    """The registry id of a Confluent-framed value (magic byte 0, 4-byte id), or None for anything else."""
    if len(value) >= 5 and value[0] == 0:
        return int.from_bytes(value[1:5], "big")
    return None


# Subjects by TopicNameStrategy, as Ansible registers them. confluent-kafka's default (ASSOCIATED) asks the
# registry for the topic's associations first, an HTTPS round trip that Apicurio answers 404.
DESERIALIZER_CONFIG: dict[str, Any] = {"subject.name.strategy.type": "TOPIC"}


@functools.cache
def _value_deserializer(client: Any = None) -> Any:
    """One AvroDeserializer for every topic: it keeps the writer schemas it parsed, and the client the schemas
    it fetched, so a range of messages costs one registry request per schema id, not one per message."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    return AvroDeserializer(client or _registry_client(), conf=dict(DESERIALIZER_CONFIG))


def decode_value(value: bytes, topic: str, client: Any = None) -> dict[str, Any]:
    """A topic's message value as a dict: Avro (its writer schema fetched from the registry by id, read-only
    user) or, for messages written before the registry, JSON. `client` replaces the registry client."""
    if schema_id_of(value) is None:
        return json.loads(value)
    from confluent_kafka.serialization import MessageField, SerializationContext

    decoded = _value_deserializer(client)(value, SerializationContext(topic, MessageField.VALUE))
    return dict(decoded)


# --- the source -------------------------------------------------------------------------------------------


# --- the object store (S3) -------------------------------------------------------------------------------


def s3_endpoint() -> str:
    """The S3 API of the object store, on its host's private address."""
    return f"http://{inventory().first('objectstore').ip}:{contract().ports.s3}"


def s3_client(writer: bool = False, admin: bool = False) -> Any:
    """A boto3 S3 client as one of the store's identities (the contract's s3 section): the reader
    (read-only) by default, the pipeline's (writer) or the admin; the keys are the generated secrets
    s3_<identity>_access_key / _secret_key."""
    import boto3
    from botocore.config import Config

    names = contract().s3
    identity = names.admin_identity if admin else names.pipeline_identity if writer else names.reader_identity
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint(),
        region_name=contract().s3.region,
        aws_access_key_id=secret(f"s3_{identity}_access_key"),
        aws_secret_access_key=secret(f"s3_{identity}_secret_key"),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 3},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def archive_objects(prefix: str | None = None, client: Any = None) -> list[dict[str, Any]]:
    """Every object of the archive's bucket under prefix (default: the archive's prefix), paginated."""
    names = contract().s3
    client = client or s3_client()
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=names.bucket, Prefix=prefix if prefix is not None else f"{names.prefix}/"
    ):
        found.extend(page.get("Contents", []))
    return found


def archive_usage(client: Any = None) -> dict[str, tuple[int, int]]:
    """{day (the dt= partition): (objects, bytes)} of the archive."""
    usage: dict[str, tuple[int, int]] = {}
    for item in archive_objects(client=client):
        parts = [p for p in item["Key"].split("/") if p.startswith("dt=")]
        day = parts[0][3:] if parts else "(other)"
        count, size = usage.get(day, (0, 0))
        usage[day] = (count + 1, size + int(item["Size"]))
    return dict(sorted(usage.items()))


def source_url() -> str:
    """The randomuser-compatible source on its host."""
    return f"http://{inventory().first('source').ip}:{contract().ports.source}"


# --- Airflow ----------------------------------------------------------------------------------------------


def airflow_url() -> str:
    """The api-server on the airflow host's own address (where it listens), unless AIRFLOW_API says else."""
    return (
        os.environ.get("AIRFLOW_API")
        or f"http://{inventory().first('airflow').ip}:{contract().ports.airflow_api}"
    )


class AirflowError(OpsError):
    """An Airflow REST call or CLI command failed."""


class Airflow:
    """Airflow's REST API (v2) as the admin user, for one DAG: token login (again once on a 401), trigger and
    follow runs, read task instances. trigger_cli() triggers as an operator would, on the Airflow host."""

    def __init__(
        self,
        dag_id: str | None = None,
        base_url: str | None = None,
        user: str | None = None,
        timeout: float = 30,
    ) -> None:
        names = contract().airflow
        self.dag_id = dag_id or names.dag_ingestion
        self.base_url = (base_url or airflow_url()).rstrip("/")
        self.user = user or names.admin_user
        self.timeout = timeout
        self.headers: dict[str, str] = {}
        self._login()

    def _login(self) -> None:
        import requests

        # The generated secret, read at each login and never kept on the client.
        body = {"username": self.user, "password": secret("airflow_admin_password")}
        r = requests.post(f"{self.base_url}/auth/token", json=body, timeout=self.timeout)
        if not r.ok:
            detail = f"HTTP {r.status_code}: {r.text[:300]}"
            raise AirflowError(f"login to {self.base_url} as {self.user}: {detail}")
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call under /api/v2/dags/<dag_id>; JSON back."""
        import requests

        url = f"{self.base_url}/api/v2/dags/{self.dag_id}{path}"
        r = requests.request(method, url, headers=self.headers, timeout=self.timeout, **kwargs)
        if r.status_code == 401:  # the token expired: log in again once
            self._login()
            r = requests.request(method, url, headers=self.headers, timeout=self.timeout, **kwargs)
        if not r.ok:
            raise AirflowError(f"{method} {url}: HTTP {r.status_code}: {r.text[:500]}")
        return r.json()

    def paused(self) -> bool:
        return bool(self.call("GET", "")["is_paused"])

    def trigger(self, run_id: str, conf: Mapping[str, Any]) -> str:
        """Trigger a run through the REST API."""
        self.call("POST", "/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)})
        return run_id

    def trigger_cli(self, run_id: str, conf: Mapping[str, Any]) -> str:
        """Trigger a run with `airflow dags trigger` on the Airflow host (over SSH), as an operator would."""
        command = (
            f"sudo {AIRFLOW_CLI} dags trigger {shlex.quote(self.dag_id)} --run-id {shlex.quote(run_id)} "
            f"--conf {shlex.quote(json.dumps(dict(conf)))}"
        )
        host = inventory().first("airflow")
        out = ssh_run(host.ip, command)
        if out.returncode != 0:
            raise AirflowError(
                f"airflow dags trigger on {host.name} failed (exit {out.returncode}): "
                f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
            )
        return run_id

    def state(self, run_id: str) -> str:
        return str(self.call("GET", f"/dagRuns/{run_id}")["state"])

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        """{task_id: the task instance as the API returns it (state, try_number, start_date, end_date...)}."""
        tasks = self.call("GET", f"/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"]: t for t in tasks}

    def task_states(self, run_id: str) -> dict[str, str]:
        """{task_id: 'state (try n)'}: what to print when a run failed."""
        return {k: f"{t['state']} (try {t['try_number']})" for k, t in self.task_instances(run_id).items()}

    def wait(self, run_id: str, timeout: float = 600, interval: float = 5) -> str:
        """Poll a run until it is final; its final state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(run_id)
            if state in FINAL_STATES:
                return state
            if time.monotonic() > deadline:
                raise AirflowError(f"DAG run {run_id} not finished after {timeout:.0f} s (state {state})")
            time.sleep(interval)

    def task_log(self, run_id: str, task_id: str, try_number: int) -> str:
        """The text of one try of a task's log (the API's structured lines, their event and error parts)."""
        got = self.call(
            "GET",
            f"/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
        )
        content = got.get("content", "") if isinstance(got, Mapping) else got
        if isinstance(content, str):
            return content
        lines = []
        for line in content:
            lines.append(json.dumps(line, default=str) if isinstance(line, Mapping) else str(line))
        return "\n".join(lines)

    def clear_failed(self, run_id: str, task_ids: list[str]) -> None:
        """Clear these tasks of a run if they failed (Airflow runs them again), as an operator would."""
        body = {"dag_run_id": run_id, "task_ids": task_ids, "only_failed": True, "dry_run": False,
                "reset_dag_runs": True}  # fmt: skip
        self.call("POST", "/clearTaskInstances", json=body)

    def logs_hint(self) -> str:
        """Where a failed run's task logs are (paths.airflow_home of the contract, else under opt_dir)."""
        paths = contract().paths
        home = paths.get("airflow_home") or f"{paths.get('opt_dir', '')}/airflow"
        host = inventory().first("airflow").name
        return f"task logs under {home}/logs on {host}, or the UI at {self.base_url}"


# --- monitoring (Prometheus and Alertmanager on the monitor host) ------------------------------------------


def _get_json(url: str, timeout: float = 10.0) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.load(answer)


def prometheus_url() -> str:
    return f"http://{inventory().first('monitor').ip}:{contract().ports.prometheus}"


def alertmanager_url() -> str:
    return f"http://{inventory().first('monitor').ip}:{contract().ports.alertmanager}"


def prometheus_api(path: str, **params: str) -> Any:
    """GET Prometheus's HTTP API (/api/v1/<path>); its `data`, or OpsError with the server's error."""
    import urllib.parse

    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    answer = _get_json(f"{prometheus_url()}/api/v1/{path}{query}")
    if answer.get("status") != "success":
        raise OpsError(f"Prometheus /api/v1/{path}: {answer.get('errorType')}: {answer.get('error')}")
    return answer["data"]


def prometheus_query(expr: str) -> list[tuple[dict[str, str], float]]:
    """An instant query's vector: [(labels, value)]."""
    data = prometheus_api("query", query=expr)
    return [(dict(s["metric"]), float(s["value"][1])) for s in data["result"]]


def active_alerts(name: str | None = None) -> list[dict[str, Any]]:
    """Alerts Alertmanager holds as active (not silenced or inhibited), optionally of one alert name."""
    alerts = _get_json(f"{alertmanager_url()}/api/v2/alerts?active=true&silenced=false&inhibited=false")
    return [a for a in alerts if name is None or a["labels"].get("alertname") == name]
