"""Example site action: log in with a form, or reuse the account's stored session while it is valid.

The job names the account in `session`; the worker loads that account's stored session before this
runs and saves it after, so the next job for the account finds itself logged in and skips the form.
Credentials come from Secrets Manager (a JSON secret {"username": ..., "password": ...}), never from
params: params end up in the job record and the execution history.

    {"action": "form_login", "session": "acme-ops",
     "params": {"checkUrl": "https://app.example.com/account", "loggedInSelector": "#account-name",
                "loginUrl": "https://app.example.com/login", "usernameSelector": "#username",
                "passwordSelector": "#password", "submitSelector": "button[type=submit]",
                "credentialsSecretId": "browserjobs/acme-ops"}}

Result data: {"login": {"sessionReused": true|false, "url": <page after login>}}.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import ClientError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from browserjobs.worker.action_context import DEFAULT_STEP_TIMEOUT_MS, ActionContext
from browserjobs.worker.actions.browse import run_steps
from browserjobs.worker.errors import ErrorName, JobFailure

DEFAULT_CHECK_TIMEOUT_MS = 5_000


async def run(ctx: ActionContext, params: dict[str, Any]) -> None:
    if not ctx.session_account:
        raise JobFailure(
            ErrorName.INVALID_PARAMS,
            "form_login needs the job's `session` (the account), "
            "or the login would be lost when the job ends",
        )
    timeout_ms = params.get("timeoutMs", DEFAULT_STEP_TIMEOUT_MS)
    if await _session_valid(ctx, params, timeout_ms):
        ctx.data["login"] = {"sessionReused": True, "url": ctx.page.url}
        return
    username, password = await asyncio.to_thread(
        _credentials, ctx.aws("secretsmanager"), params["credentialsSecretId"]
    )
    ctx.redact(password)
    await run_steps(
        ctx,
        [
            {"goto": {"url": params["loginUrl"], "timeoutMs": timeout_ms}},
            {"fill": {"selector": params["usernameSelector"], "value": username, "timeoutMs": timeout_ms}},
            {"fill": {"selector": params["passwordSelector"], "value": password, "timeoutMs": timeout_ms}},
            {"click": {"selector": params["submitSelector"], "timeoutMs": timeout_ms}},
        ],
    )

    async def confirm() -> None:
        try:
            await ctx.page.wait_for_selector(params["loggedInSelector"], state="visible", timeout=timeout_ms)
        except PlaywrightTimeoutError:
            raise JobFailure(
                ErrorName.SITE_CLIENT_ERROR,
                f"login failed: {params['loggedInSelector']} not visible "
                f"{timeout_ms} ms after submitting the form",
            ) from None

    await ctx.step("confirm_login", confirm, timeout_ms)
    ctx.data["login"] = {"sessionReused": False, "url": ctx.page.url}


async def _session_valid(ctx: ActionContext, params: dict[str, Any], timeout_ms: int) -> bool:
    """Open checkUrl: the logged-in marker appears there only while the stored session still works."""
    check_timeout_ms = params.get("checkTimeoutMs", DEFAULT_CHECK_TIMEOUT_MS)
    valid = False

    async def check() -> None:
        nonlocal valid
        await ctx.page.goto(params["checkUrl"], timeout=timeout_ms)
        try:
            await ctx.page.wait_for_selector(
                params["loggedInSelector"], state="visible", timeout=check_timeout_ms
            )
            valid = True
        except PlaywrightTimeoutError:
            valid = False

    # A site may answer 401/403 to a logged-out visitor: that is an answer here, not a failure.
    await ctx.step("check_session", check, timeout_ms + check_timeout_ms, check_http=False)
    return valid


def _credentials(secrets: Any, secret_id: str) -> tuple[str, str]:
    try:
        secret = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        return secret["username"], secret["password"]
    except ClientError as error:
        raise JobFailure(
            ErrorName.WORKER_ERROR, f"cannot read credentials {secret_id}: {error.response['Error']['Code']}"
        ) from None
    except (KeyError, TypeError, ValueError):
        raise JobFailure(
            ErrorName.WORKER_ERROR,
            f"credentials {secret_id} must be a JSON secret with username and password",
        ) from None
