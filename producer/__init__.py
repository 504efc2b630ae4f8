"""Correnteza's producer: the randomuser client, the local randomuser-compatible source, validation,
the PostgreSQL landing (users_raw + outbox) and the Kafka publisher.

Keep this module import-free: the source host installs only Faker, not requests/psycopg2/confluent-kafka.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
