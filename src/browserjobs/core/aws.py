"""boto3 clients for the services each function uses: created on first use, then kept for the cold start.

Creating a client loads its service model (tens of milliseconds each); a function that names four services
but touches one or two per invocation creates only those, and a cold start pays for none before its first
call needs them.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

Service = Literal["dynamodb", "s3", "sqs", "ecs", "stepfunctions"]
_SERVICES: dict[str, Service] = {
    "ddb": "dynamodb",
    "s3": "s3",
    "sqs": "sqs",
    "ecs": "ecs",
    "sfn": "stepfunctions",
}
_FIELDS: dict[str, str] = {service: field for field, service in _SERVICES.items()}


class Clients:
    """`Clients.create("dynamodb", "s3")`; or `Clients(ddb=..., s3=...)` with clients made elsewhere."""

    def __init__(self, services: frozenset[str] = frozenset(), **given: Any):
        unknown = set(given) - set(_SERVICES)
        if unknown:
            raise TypeError(f"unknown clients: {', '.join(sorted(unknown))}")
        self._services = services | {field for field, client in given.items() if client is not None}
        self.__dict__.update(given)  # cached_property looks here first

    @classmethod
    def create(cls, *services: str) -> Clients:
        return cls(frozenset(_FIELDS[name] for name in services))

    def _client(self, field: str) -> Any:
        if field not in self._services:
            return None
        # boto3 and botocore.config cost ~200 ms to import: paid by the first call that needs a client
        import boto3
        from botocore.config import Config

        return boto3.client(_SERVICES[field], config=Config(retries={"mode": "standard", "max_attempts": 5}))

    @cached_property
    def ddb(self) -> Any:
        return self._client("ddb")

    @cached_property
    def s3(self) -> Any:
        return self._client("s3")

    @cached_property
    def sqs(self) -> Any:
        return self._client("sqs")

    @cached_property
    def ecs(self) -> Any:
        return self._client("ecs")

    @cached_property
    def sfn(self) -> Any:
        return self._client("sfn")
