"""boto3 clients with bounded timeouts and retries: no AWS call may hang the worker.

AWS_ENDPOINT_URL (set by the local stack) is honoured by boto3 itself.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import boto3
from botocore.config import Config

# The services the worker and its actions call: a client for any other is a mistake the type checker shows.
Service = Literal["dynamodb", "s3", "secretsmanager", "sqs", "stepfunctions"]

CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4})


class AwsClients:
    """One client per service, shared by the worker's threads (clients are thread-safe once created)."""

    def __init__(self) -> None:
        self._session = boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # creating a client is not thread-safe

    def __call__(self, service: Service) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service, config=CLIENT_CONFIG)
            return self._clients[service]
