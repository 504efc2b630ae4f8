"""An in-memory stand-in for a boto3 S3 client, for unit tests of the archive's logic only (the real
object store is tested by tests/infra/test_objectstore.py and tests/e2e/test_archive.py): put_object,
get_object and a paginated list_objects_v2 of two keys per page, so listings cross pages."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import EndpointConnectionError


class MemoryPaginator:
    def __init__(self, store: MemoryS3) -> None:
        self.store = store

    def paginate(self, Bucket: str, Prefix: str = "") -> Iterator[dict[str, Any]]:
        keys = sorted(k for (b, k) in self.store.objects if b == Bucket and k.startswith(Prefix))
        self.store.pages = 0
        for i in range(0, len(keys), 2):
            self.store.pages += 1
            yield {
                "Contents": [
                    {"Key": k, "Size": len(self.store.objects[(Bucket, k)][0])} for k in keys[i : i + 2]
                ]
            }


class MemoryS3:
    def __init__(self, unreachable_puts: int = 0) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
        self.puts = 0
        self.pages = 0
        # the first N puts fail as if the store were down (after botocore's own retries)
        self.unreachable_puts = unreachable_puts

    def put_object(self, Bucket: str, Key: str, Body: bytes, Metadata: dict[str, str], **_: Any) -> dict:
        self.puts += 1
        if self.puts <= self.unreachable_puts:
            raise EndpointConnectionError(endpoint_url=f"http://127.0.0.1:1/{Bucket}/{Key}")
        self.objects[(Bucket, Key)] = (bytes(Body), dict(Metadata))
        return {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        body, metadata = self.objects[(Bucket, Key)]
        return {"Body": io.BytesIO(body), "Metadata": dict(metadata)}

    def get_paginator(self, name: str) -> MemoryPaginator:
        assert name == "list_objects_v2", name
        return MemoryPaginator(self)
