"""Correnteza streaming job: the Kafka users topic -> the Cassandra users table (+ dead letters).

Run with spark-submit (the systemd unit of ansible/roles/stream_job), e.g.:
  spark-submit --master spark://<master>:<port> --jars <connector jars> stream_users.py --config stream.json
Settings: correnteza_stream.config (the JSON file, required, then --setting-name overrides).
The schema registry is needed at start (the latest schemas of the topics' subjects): when it cannot answer,
the job stops with the reason and systemd starts it again.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from correnteza_stream.config import ConfigError, StreamConfig, load
from correnteza_stream.decode import avro_limit_options
from correnteza_stream.registry import RegistryError, connect
from correnteza_stream.sink import BatchWriter
from pyspark import SparkConf, SparkContext
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

LOG = logging.getLogger("correnteza.stream")
# The exit status when Kafka no longer holds offsets the checkpoint needs (the unit does not restart on it).
EXIT_DATA_LOSS = 3
# How Spark's Kafka source words it (KafkaSourceProvider / KafkaMicroBatchStream, Spark 3.5).
DATA_LOSS_MARKERS = ("data may have been lost", "offset was changed from", "failOnDataLoss")
# The lines that say which partition and offsets: found at planning (changed from) or by an executor's fetch.
DATA_LOSS_DETAILS = ("offset was changed from", "Cannot fetch offset", "is out of range for partition")


EXECUTOR_JAVA_OPTIONS = "spark.executor.extraJavaOptions"


def executor_java_options(config: StreamConfig) -> str:
    """The executors' JVM options as spark-submit gives them, plus the Avro decoder's limits."""
    SparkContext._ensure_initialized()  # the JVM spark-submit started, whose properties SparkConf reads
    existing = SparkConf().get(EXECUTOR_JAVA_OPTIONS, "") or ""
    return avro_limit_options(config.avro_max_length, existing)


def build_session(config: StreamConfig) -> SparkSession:
    """A session with the Cassandra connection settings (the password is redacted in Spark's UI) and the
    executors' Avro limits."""
    builder = SparkSession.builder.appName(config.app_name)
    if config.master:
        builder = builder.master(config.master)
    return (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
        .config("spark.cassandra.connection.host", config.cassandra_hosts)
        .config("spark.cassandra.connection.port", str(config.cassandra_port))
        .config("spark.cassandra.connection.localDC", config.cassandra_local_dc)
        .config("spark.cassandra.auth.username", config.cassandra_username)
        .config("spark.cassandra.auth.password", config.cassandra_password())
        .config("spark.cassandra.output.consistency.level", config.cassandra_consistency)
        .config(EXECUTOR_JAVA_OPTIONS, executor_java_options(config))
        .getOrCreate()
    )


def read_topic(spark: SparkSession, config: StreamConfig) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka_bootstrap)
        .option("subscribe", config.topic)
        .option("startingOffsets", config.starting_offsets)
        .option("failOnDataLoss", "true" if config.fail_on_data_loss else "false")
        .option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
        .load()
    )


def start(spark: SparkSession, config: StreamConfig, writer: BatchWriter) -> StreamingQuery:
    return (
        read_topic(spark, config)
        .writeStream.queryName(config.app_name)
        .foreachBatch(writer)
        .option("checkpointLocation", config.checkpoint_dir)
        .trigger(processingTime=config.trigger_interval)
        .start()
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        config = load(argv)
        LOG.info("settings %s", config.public())
        registry = connect(config)
        spark = build_session(config)
        spark.sparkContext.setLogLevel("WARN")
        writer = BatchWriter.start(spark, config, registry)
    except (ConfigError, RegistryError) as error:
        LOG.error("cannot start: %s", error)
        return 1
    query = start(spark, config, writer)
    LOG.info("query %s started (id %s, run %s)", query.name, query.id, query.runId)
    try:
        query.awaitTermination()
    except StreamingQueryException as error:
        if not is_data_loss(str(error)):
            raise
        LOG.error(data_loss_message(config, str(error)))
        return EXIT_DATA_LOSS
    return 0


def is_data_loss(text: str) -> bool:
    return any(marker in text for marker in DATA_LOSS_MARKERS)


def data_loss_message(config: StreamConfig, error: str) -> str:
    """What an operator reads in the journal when offsets expired: what, where, and how to refill it."""
    lines = [line.strip() for line in error.splitlines()]
    details = list(dict.fromkeys(line[:300] for line in lines if any(d in line for d in DATA_LOSS_DETAILS)))
    first = "; ".join(details[:3]) or next(
        (line for line in lines if is_data_loss(line)), error.strip()[:300]
    )
    return (
        f"DATA LOSS: {config.topic} no longer holds offsets that checkpoint {config.checkpoint_dir} needs "
        f"(Kafka's retention expired them while the job was behind): {first} -- the job stops here rather "
        "than skip them. PostgreSQL still holds every user: run `make replay` on the control node (it moves "
        "the checkpoint aside, starts the job again and re-queues the users for publishing)."
    )


if __name__ == "__main__":
    sys.exit(main())
