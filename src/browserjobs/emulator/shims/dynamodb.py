"""DynamoDB: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import copy
import functools
import threading
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
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


# --- DynamoDB: a transaction backs up the items it writes, not its tables ----------------------------------
# moto's TransactWriteItems deep-copies every table it touches before writing, to restore it when the
# transaction is cancelled. The copy grows with the table: a jobs table of a few thousand records made each
# claim cost tens of milliseconds, under the lock above, so every other DynamoDB request waited. Here the
# tables are taken by reference and the transaction's own items (at most 100) are backed up and restored,
# with the table's stream cut back to where it was: a cancelled transaction leaves no change and no stream
# record, as before (and as DynamoDB: all or nothing).


class _TablesByReference:
    """`copy` as moto's backend module sees it: a Table is taken by reference (the transaction's backup
    stands in for the copy); anything else is deep-copied as before."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


@dataclass
class _TransactionBackup:
    items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]]
    streams: list[tuple[Any, int]]

    @classmethod
    def of(cls, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> _TransactionBackup:
        items, streams, tables = [], [], set()
        for entry in transact_items:
            try:
                op = next(iter(entry.values()))
                table = backend.tables[op["TableName"]]
                key = op["Item"] if "Item" in op else op["Key"]
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (AttributeError, KeyError, StopIteration, TypeError):
                continue  # moto refuses this entry before writing anything for it
            items.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            if table.name not in tables and table.stream_shard is not None:
                streams.append((table.stream_shard, len(table.stream_shard.items)))
            tables.add(table.name)
        return cls(items, streams)

    def restore(self) -> None:
        for table, hash_key, range_key, before in reversed(self.items):
            if range_key is None:
                table.items.pop(hash_key, None)
                if before is not None:
                    table.items[hash_key] = before
                continue
            ranged = table.items[hash_key]
            ranged.pop(range_key, None)
            if before is not None:
                ranged[range_key] = before
            elif not ranged:
                del table.items[hash_key]
        for shard, length in self.streams:
            del shard.items[length:]


def shim_transaction_backs_up_items() -> None:
    from moto.dynamodb import models as backend_module

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "backs_up_items", False):
        return

    @functools.wraps(original)
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        backup = _TransactionBackup.of(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            backup.restore()
            raise

    transact_write_items.backs_up_items = True  # type: ignore[attr-defined]
    backend_module.copy = _TablesByReference()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
