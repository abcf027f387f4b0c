"""Threads against moto, with each AWS request atomic as in AWS.

moto applies one request in steps: a conditional PutItem reads the item, then writes it; a
TransactWriteItems snapshots the tables, checks every item, writes, and restores the snapshot when a
condition fails; StartExecution looks for an execution of that name, then appends one. Threads calling
moto at once can interleave inside those steps (eight threads racing one conditional put had two
winners in about one race in 200 here), which AWS never allows. Tests that race threads therefore run
one request at a time: every race between requests (read, decide, write), the ones the code under
test must handle, is left as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from botocore.client import BaseClient


@contextmanager
def atomic_requests() -> Iterator[None]:
    lock = threading.RLock()
    send = BaseClient._make_api_call

    def one_at_a_time(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        with lock:
            return send(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", one_at_a_time):
        yield
