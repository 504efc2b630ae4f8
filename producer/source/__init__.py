"""A randomuser.me-compatible HTTP source (API 1.4 shape) with faults on demand.

Run: python -m producer.source --host 0.0.0.0 --port PORT --rate-limit 50
Needs only the standard library and Faker.
"""

from producer.source.generator import UserGenerator
from producer.source.server import SourceSettings, make_server

__all__ = ["SourceSettings", "UserGenerator", "make_server"]
