"""Correnteza streaming job: Kafka users_created -> validation -> Cassandra spark_streams (+ dead letters).

Modules:
  schema     the explicit schema of a users_created message (randomuser user object + _meta)
  registry   a read-only client of the schema registry (driver only; standard library)
  decode     Confluent-framed Avro (writer schemas by id) or legacy JSON -> JSON text to parse
  validate   parse + validate: pure DataFrame -> DataFrame functions
  transform  valid records -> rows of spark_streams.created_users; invalid -> dead-letter rows
  config     the job's configuration (JSON file + CLI overrides)
  sink       the foreachBatch writer (Cassandra + Kafka dead-letter topic, Avro)

The job uses no Python UDFs: every expression runs in the JVM, so executors need no Python code.
"""
