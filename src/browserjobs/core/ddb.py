"""Plain Python values <-> DynamoDB attribute values, for the low-level client.

The client (not the resource layer) is used because the claim needs TransactWriteItems and the
cancellation reasons it returns, which come back in attribute-value form.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from botocore.exceptions import ClientError


@cache
def _serializer() -> TypeSerializer:
    # boto3.dynamodb imports boto3 and botocore's session (~200 ms): paid on the first call, not at import
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@cache
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """Decimals back to int/float, recursively, so values can go into JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def attr(value: Any) -> Mapping[str, Any]:
    return _serializer().serialize(_to_dynamo(value))


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: attr(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An item as Python values; numbers stay Decimal (exact) until `plain` is asked for."""
    if item is None:
        return None
    return {k: _deserializer().deserialize(v) for k, v in item.items()}


def expression_values(**values: Any) -> dict[str, Any]:
    return {f":{k}": attr(v) for k, v in values.items()}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def condition_failed_item(exc: ClientError) -> dict[str, Any] | None:
    """What a failed condition returned (ReturnValuesOnConditionCheckFailure=ALL_OLD), as Python values."""
    item = exc.response.get("Item")  # not in botocore's type of the error response: DynamoDB's alone
    return from_item(item) if isinstance(item, dict) else None
