"""DynamoDB: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import functools
import threading

from moto.dynamodb.responses import DynamoHandler

# --- DynamoDB: each request is atomic --------------------------------------------------------------------
# moto serves requests on concurrent threads without isolating them: a TransactWriteItems snapshots the
# tables it touches and, when a condition fails, restores the snapshot, wiping out whatever other requests
# wrote meanwhile (a claim, a released lock, a job's final status); a conditional write reads, then writes.
# DynamoDB applies every request atomically: here the DynamoDB handler serves one request at a time.

_dynamodb_request_lock = threading.RLock()


def shim_dynamodb_atomic_requests() -> None:
    original_call_action = DynamoHandler.call_action

    @functools.wraps(original_call_action)
    def call_action(self):
        with _dynamodb_request_lock:
            return original_call_action(self)

    DynamoHandler.call_action = call_action
