"""Uploading a browser session (Playwright storage state) for an account, as the worker loads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.outputs import OperatorError, Target


def session_key(account: str) -> str:
    return f"sessions/{account}/state.json"


def read_storage_state(path: Path) -> dict[str, Any]:
    """A Playwright storage state ({"cookies": [...], "origins": [...]}), as context.storage_state() saves."""
    try:
        state = json.loads(path.read_text())
    except OSError as error:
        raise OperatorError(f"cannot read {path}: {error.strerror}", exit_code=2) from error
    except json.JSONDecodeError as error:
        raise OperatorError(f"{path} is not JSON: {error.msg} at line {error.lineno}", exit_code=2) from error
    if not isinstance(state, dict) or not isinstance(state.get("cookies"), list):
        raise OperatorError(f"{path} is not a Playwright storage state (no \"cookies\" list)", exit_code=2)
    if not isinstance(state.setdefault("origins", []), list):
        raise OperatorError(f"{path}: \"origins\" must be a list", exit_code=2)
    for index, cookie in enumerate(state["cookies"]):
        if not isinstance(cookie, dict) or not {"name", "value", "domain"} <= cookie.keys():
            raise OperatorError(f"{path}: cookie {index} needs name, value and domain", exit_code=2)
    return state


def upload_session(target: Target, account: str, state: dict[str, Any], updated_by: str) -> str:
    """Store the state encrypted under the project key, then point SessionsTable at it."""
    if not account or len(account) > 256 or "/" in account or not account.isprintable():
        raise OperatorError(f"invalid account {account!r}: 1..256 printable characters, no '/'", exit_code=2)
    key = session_key(account)
    bucket = target.outputs["ArtifactsBucketName"]
    kms_key = target.outputs["KmsKeyArn"]
    try:
        target.client("s3").put_object(
            Bucket=bucket, Key=key, Body=json.dumps(state).encode(), ContentType="application/json",
            ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key,
        )
        target.client("dynamodb").put_item(TableName=target.outputs["SessionsTableName"], Item={
            "account": {"S": account}, "s3Key": {"S": key},
            "updatedAt": {"S": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"},
            "updatedBy": {"S": updated_by},
        })
    except ClientError as error:
        raise OperatorError(f"cannot store the session: {error.response['Error']['Message']}") from error
    return f"s3://{bucket}/{key}"
