"""The crash hook never writes a task token to its logs, whatever the log level and whatever the outcome.

A task token is a capability: whoever holds it may call SendTaskSuccess, SendTaskFailure or
SendTaskHeartbeat for that task until it closes (docs/SECURITY.md#task-tokens). The crash hook reads one
from every stopped task's overrides, so its log group must not become a place to read them from. The ECS
task state change event carries the overrides (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html),
so the event itself must not be logged either. The worst case is checked: every logger at DEBUG, as with
the template's LogLevel=DEBUG (staging) plus a Lambda ApplicationLogLevel of DEBUG, where botocore would
otherwise log each request body (the SendTaskFailure body is the token).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.conftest import EVENTS, load_event
from tests.unit.conftest import build_stack

pytestmark = pytest.mark.unit

STOPPED_EVENTS = sorted(p.stem for p in EVENTS.glob("crash-hook-*.json"))
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def token_of(sample: dict[str, Any]) -> str:
    for override in sample["detail"]["overrides"]["containerOverrides"]:
        for variable in override.get("environment", []):
            if variable["name"] == "TASK_TOKEN":
                return str(variable["value"])
    raise AssertionError("the sample event carries no TASK_TOKEN")


@pytest.fixture
def everything_at_debug(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Root and SDK loggers at DEBUG, Powertools at DEBUG: nothing is filtered by level."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
    saved = {name: logging.getLogger(name).level for name in SDK_LOGGERS}
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)  # inherit the root's DEBUG, as in a fresh runtime
    caplog.set_level(logging.DEBUG)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def assert_not_logged(
    token: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> str:
    out, err = capsys.readouterr()
    written = out + err + "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert written.strip(), "nothing was logged: the capture is not seeing the handler's logs"
    assert token not in written, "the task token reached the logs"
    assert '"containerOverrides"' not in written and "'containerOverrides'" not in written, (
        "the task's overrides (which hold the token) reached the logs"
    )
    return written


@pytest.mark.parametrize("name", STOPPED_EVENTS)
def test_the_sdk_request_does_not_log_the_token(
    name, everything_at_debug, monkeypatch, app, lambda_context, capsys, caplog
):
    """Through the SDK's real request path (moto in-process), where botocore logs request bodies at DEBUG."""
    sample = load_event(name)
    with mock_aws():
        build_stack(monkeypatch)
        crash_hook = app("crash_hook")

        result = crash_hook.lambda_handler(sample, lambda_context)

    assert result["callback"] in ("failed", "closed")  # moto 5.2.5 accepts an unknown token silently
    assert_not_logged(token_of(sample), capsys, caplog)


@pytest.mark.parametrize("name", STOPPED_EVENTS)
def test_a_failed_callback_is_logged_without_its_token(
    name, everything_at_debug, monkeypatch, app, lambda_context, capsys, caplog
):
    sample = load_event(name)
    with mock_aws():
        build_stack(monkeypatch)
        crash_hook = app("crash_hook")
        sent: list[str] = []
        monkeypatch.setattr(
            crash_hook.CLIENTS.sfn,
            "send_task_failure",
            lambda **kwargs: sent.append(kwargs["taskToken"]) or {},
        )

        result = crash_hook.lambda_handler(sample, lambda_context)

    assert result["callback"] == "failed" and sent == [token_of(sample)]
    written = assert_not_logged(token_of(sample), capsys, caplog)
    assert sample["detail"]["taskArn"] in written  # what operators need to find the task is still there


def test_an_unexpected_error_carries_no_token(
    everything_at_debug, monkeypatch, app, lambda_context, capsys, caplog
):
    sample = load_event(STOPPED_EVENTS[0])
    with mock_aws():
        build_stack(monkeypatch)
        crash_hook = app("crash_hook")

        def throttled(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendTaskFailure"
            )

        monkeypatch.setattr(crash_hook.CLIENTS.sfn, "send_task_failure", throttled)
        with pytest.raises(ClientError) as raised:
            crash_hook.lambda_handler(sample, lambda_context)

    assert token_of(sample) not in str(raised.value)  # the runtime logs the error message and its traceback
    capsys.readouterr()
