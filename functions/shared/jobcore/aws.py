"""boto3 clients, created once per cold start by each function for the services it uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
_FIELDS = {"dynamodb": "ddb", "s3": "s3", "sqs": "sqs", "ecs": "ecs", "stepfunctions": "sfn"}


@dataclass(frozen=True)
class Clients:
    ddb: Any = None
    s3: Any = None
    sqs: Any = None
    ecs: Any = None
    sfn: Any = None

    @classmethod
    def create(cls, *services: str) -> Clients:
        return cls(**{_FIELDS[name]: boto3.client(name, config=_CONFIG) for name in services})  # type: ignore[arg-type]
