"""The `spark` role: a standalone cluster from the pinned pyspark, with the connector jars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import testinfra
import yaml

from tests.infra.listeners import JMX_EXPORTER_PORT, scrape

# The driver side runs on the master; per-daemon checks reach every Spark host by name.
testinfra_hosts = ["ansible://spark_master"]

INVENTORY = Path(__file__).resolve().parents[2] / "ansible" / "inventory" / "hosts.yml"

VENV = "/opt/correnteza/spark-venv"
SPARK_HOME = f"{VENV}/lib/python3.11/site-packages/pyspark"
JARS = "/opt/correnteza/spark-jars"
# Classes the streaming job needs from the connector jars.
CONNECTOR_CLASSES = (
    "org.apache.spark.sql.kafka010.KafkaSourceProvider",
    "org.apache.kafka.clients.producer.KafkaProducer",
    "org.apache.commons.pool2.impl.GenericKeyedObjectPool",
    "com.datastax.spark.connector.cql.CassandraConnector",
    "org.apache.spark.sql.cassandra.DefaultSource",
)
JOB = """
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("correnteza-infra-test").getOrCreate()
sc = spark.sparkContext
classes = {classes!r}
loader = sc._jvm.java.lang.Thread.currentThread().getContextClassLoader()
for name in classes:
    sc._jvm.java.lang.Class.forName(name, False, loader)


def executor_sees(_):
    import socket
    yield socket.gethostname()


total = sc.parallelize(range(1, 1001), 4).sum()
hosts = sorted(set(sc.parallelize(range(8), 8).mapPartitions(executor_sees).collect()))
print("RESULT", total, ",".join(hosts))
spark.stop()
"""


def _group(name: str) -> dict[str, dict]:
    inventory = yaml.safe_load(INVENTORY.read_text())
    return inventory["all"]["children"].get(name, {}).get("hosts") or {}


MASTERS = _group("spark_master")
WORKERS = _group("spark_worker")
# (host name, unit, ports) for every Spark daemon in the inventory.
# Each daemon's JVM also runs Prometheus's JMX exporter agent (JMX_EXPORTER_PORT).
DAEMONS = [(name, "spark-master", (7077, 8080, JMX_EXPORTER_PORT)) for name in sorted(MASTERS)] + [
    (name, "spark-worker", (8081, JMX_EXPORTER_PORT)) for name in sorted(WORKERS)
]
ALL_HOSTS = sorted({*MASTERS, *WORKERS})


def on(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=str(INVENTORY))


@pytest.fixture(scope="module")
def master_ip():
    return next(iter(MASTERS.values()))["correnteza_ip"]


@pytest.mark.parametrize(("name", "unit"), [(n, u) for n, u, _ in DAEMONS])
def test_unit_running_and_enabled(name, unit):
    svc = on(name).service(unit)
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize(("name", "port"), [(n, p) for n, _, ports in DAEMONS for p in ports])
def test_ports_listen_on_the_private_ip_only(name, port):
    remote = on(name)
    ip = {**MASTERS, **WORKERS}[name]["correnteza_ip"]
    assert remote.socket(f"tcp://{ip}:{port}").is_listening
    assert not remote.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not remote.socket(f"tcp://127.0.0.1:{port}").is_listening


@pytest.mark.parametrize("name", [n for n, _, _ in DAEMONS])
def test_daemons_run_as_spark(name):
    java = [p for p in on(name).process.filter(comm="java") if "org.apache.spark.deploy" in p.args]
    assert java, "no Spark daemon process"
    assert {p.user for p in java} == {"spark"}


@pytest.mark.parametrize("name", ALL_HOSTS)
def test_pinned_pyspark(name):
    out = on(name).check_output(f"{VENV}/bin/python -c 'import pyspark; print(pyspark.__version__)'")
    assert out == "3.5.7"


@pytest.mark.parametrize("name", ALL_HOSTS)
def test_connector_jars(name):
    remote = on(name)
    names = remote.check_output(f"ls {JARS}").split()
    assert "spark-sql-kafka-0-10_2.12-3.5.7.jar" in names
    assert "spark-cassandra-connector_2.12-3.5.1.jar" in names
    assert "spark-token-provider-kafka-0-10_2.12-3.5.7.jar" in names
    assert any(n.startswith("kafka-clients-") for n in names)
    assert any(n.startswith("commons-pool2-") for n in names)
    # Nothing that pyspark already ships (Scala runtime, slf4j) is duplicated.
    bundled = set(remote.check_output(f"ls {SPARK_HOME}/jars").split())
    assert not bundled & set(names)
    assert not [n for n in names if n.startswith(("scala-library", "slf4j-api"))]


def test_every_worker_alive_in_the_master(host, master_ip):
    status = json.loads(host.check_output(f"curl -sf http://{master_ip}:8080/json/"))
    assert status["status"] == "ALIVE"
    alive = {w["host"] for w in status["workers"] if w["state"] == "ALIVE"}
    assert alive == {hv["correnteza_ip"] for hv in WORKERS.values()}


def test_jmx_exporter_of_the_master_counts_the_alive_workers():
    series = scrape(on(next(iter(MASTERS))), JMX_EXPORTER_PORT)
    assert [value for _, value in series["spark_master_aliveworkers"]] == [float(len(WORKERS))]


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_jmx_exporter_of_a_worker_reports_its_cores(name):
    series = scrape(on(name), JMX_EXPORTER_PORT)
    used = sum(value for _, value in series["spark_worker_coresused"])
    free = sum(value for _, value in series["spark_worker_coresfree"])
    assert used + free >= 1


def test_job_on_the_cluster_returns_the_right_answer(host, master_ip):
    job = JOB.format(classes=CONNECTOR_CLASSES)
    path = "/tmp/correnteza_infra_test_job.py"
    host.check_output(f"cat > {path} <<'EOF'\n{job}\nEOF\nchmod 0644 {path}")
    result = host.run(
        f"cd /tmp && sudo -u spark timeout 300 {SPARK_HOME}/bin/spark-submit "
        f"--master spark://{master_ip}:7077 --conf spark.cores.max=2 {path}"
    )
    assert result.rc == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    _, total, hosts = line.split()
    assert int(total) == sum(range(1, 1001))
    assert set(hosts.split(",")) <= set(WORKERS)
