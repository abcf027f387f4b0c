"""Browser sessions per account: Playwright storage state in S3 (SSE-KMS), indexed by SessionsTable.

Upload cookies for an account (e.g. exported from a logged-in browser):
    python -m browserjobs.core.sessions upload --account ACCOUNT --cookies cookies.json
with ARTIFACTS_BUCKET, SESSIONS_TABLE and KMS_KEY_ID set (and AWS_ENDPOINT_URL for the local stack).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.core.clock import SystemClock, iso_ms
from browserjobs.core.config import ConfigError, Settings
from browserjobs.core.ddb import attr, error_code, from_item, to_item

logger = logging.getLogger(__name__)

SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None", "no_restriction": "None", "unspecified": "Lax"}
MAX_ACCOUNT_CHARS = 256


def session_key(account: str) -> str:
    return f"sessions/{account}/state.json"


def check_account(account: str) -> str:
    if (
        not account
        or len(account) > MAX_ACCOUNT_CHARS
        or any(c in account for c in "/\\")
        or any(c.isspace() for c in account)
    ):
        raise ValueError(
            f"invalid account {account!r}: 1..{MAX_ACCOUNT_CHARS} characters, no slashes or spaces"
        )
    return account


def normalise_cookies(raw: Any) -> list[dict[str, Any]]:
    """Cookies as Playwright stores them, from a cookie list, a storage state or an extension export."""
    cookies = raw.get("cookies") if isinstance(raw, dict) else raw
    if not isinstance(cookies, list):
        raise ValueError('expected a list of cookies or an object with a "cookies" list')
    normalised = []
    for index, cookie in enumerate(cookies):
        if (
            not isinstance(cookie, dict)
            or not all(isinstance(cookie.get(k), str) for k in ("name", "value"))
            or not cookie.get("domain")
        ):
            raise ValueError(f"cookie {index}: needs string name and value, and a domain")
        same_site = str(cookie.get("sameSite") or "lax").lower()
        if same_site not in SAME_SITE:
            raise ValueError(f"cookie {index} ({cookie['name']}): unknown sameSite {cookie['sameSite']!r}")
        expires = cookie.get("expires", cookie.get("expirationDate", -1))
        normalised.append(
            {
                "name": cookie["name"],
                "value": cookie["value"],
                "domain": str(cookie["domain"]),
                "path": str(cookie.get("path") or "/"),
                "expires": float(expires) if expires is not None and not cookie.get("session") else -1,
                "httpOnly": bool(cookie.get("httpOnly", False)),
                "secure": bool(cookie.get("secure", False)),
                "sameSite": SAME_SITE[same_site],
            }
        )
    return normalised


class SessionStore:
    def __init__(self, *, s3: Any, ddb: Any, bucket: str, table: str, kms_key_id: str) -> None:
        self._s3, self._ddb = s3, ddb
        self._bucket, self._table, self._kms_key_id = bucket, table, kms_key_id

    def load(self, account: str) -> dict[str, Any] | None:
        """The stored storage state, or None when the account has none yet."""
        item = from_item(
            self._ddb.get_item(
                TableName=self._table, Key={"account": attr(check_account(account))}, ConsistentRead=True
            ).get("Item")
        )
        if item is None:
            return None
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=item["s3Key"])["Body"].read()
        except ClientError as error:
            if error_code(error) not in {"NoSuchKey", "404"}:
                raise
            logger.warning(
                "session of %s is indexed but %s is gone: starting without one", account, item["s3Key"]
            )
            return None
        try:
            state = json.loads(body)
        except ValueError:
            state = None
        if not isinstance(state, dict) or not isinstance(state.get("cookies"), list):
            raise ValueError(f"{item['s3Key']} is not a Playwright storage state")
        return state

    def save(self, account: str, state: Mapping[str, Any], updated_by: str) -> str:
        key = session_key(check_account(account))
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(state).encode(),
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self._kms_key_id,
        )
        self._ddb.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "account": account,
                    "s3Key": key,
                    "updatedAt": iso_ms(SystemClock().now_ms()),
                    "updatedBy": updated_by,
                }
            ),
        )
        return f"s3://{self._bucket}/{key}"

    def upload_cookies(self, account: str, cookies: Any, updated_by: str) -> str:
        """Set the account's cookies; its stored local storage (origins), if any, is kept."""
        normalised = normalise_cookies(cookies)
        existing = self.load(account) or {}
        return self.save(account, {"cookies": normalised, "origins": existing.get("origins", [])}, updated_by)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m browserjobs.core.sessions", description="Manage stored browser sessions."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="store cookies for an account (replaces its cookies)")
    upload.add_argument("--account", required=True)
    upload.add_argument("--cookies", required=True, type=Path, help="JSON: a cookie list or a storage state")
    upload.add_argument("--updated-by", default="cli")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env().require("artifacts_bucket", "sessions_table")
        if not os.environ.get("KMS_KEY_ID"):
            raise ConfigError("missing environment variables: KMS_KEY_ID")
        store = SessionStore(
            s3=boto3.client("s3"),
            ddb=boto3.client("dynamodb"),
            bucket=settings.artifacts_bucket,
            table=settings.sessions_table,
            kms_key_id=os.environ["KMS_KEY_ID"],
        )
        uri = store.upload_cookies(args.account, json.loads(args.cookies.read_text()), args.updated_by)
    except (ConfigError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: cannot store the session: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"account": args.account, "uri": uri}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
