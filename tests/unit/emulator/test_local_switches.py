"""The local stack's switches (src/browserjobs/emulator/README.md): LOCAL_PARAMETERS, LOCAL_IAM,
LOCAL_TASK_START_SECONDS and LOCAL_FAULTS are checked before anything starts, and what they say reaches
the stack."""

from __future__ import annotations

from typing import Any

import pytest

import browserjobs.testing.__main__ as entry
from browserjobs.emulator.deploy import ParameterError, check_overrides, parse_parameters, template_parameters

pytestmark = pytest.mark.unit


def test_parameters_are_read_as_sam_deploy_takes_overrides() -> None:
    assert parse_parameters("RateBurst=5 MaxConcurrentTasks=2") == {
        "RateBurst": "5",
        "MaxConcurrentTasks": "2",
    }
    assert parse_parameters("""ScheduledJobJson='{"a": 1}' AlertEmail=""") == {
        "ScheduledJobJson": '{"a": 1}',
        "AlertEmail": "",
    }
    assert parse_parameters("") == {} and parse_parameters(None) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [("RateBurst", "is not Key=Value"), ("=5", "is not Key=Value"), ("RateBurst='5", "does not parse")],
)
def test_parameters_that_do_not_parse_are_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_parameters(text)


def test_a_parameter_the_template_does_not_declare_is_refused_as_cloudformation_would() -> None:
    # CreateStack: "Parameters: [X] do not exist in the template" (ValidationError).
    declared = template_parameters()
    check_overrides({"RateBurst": "5"}, declared)
    with pytest.raises(ParameterError, match=r"\['RateBurts'\] do not exist in the template") as raised:
        check_overrides({"RateBurts": "5"}, declared)
    assert "RateBurst" in str(raised.value)  # the message lists what the template does take


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOCAL_PARAMETERS", "RateBurts=5", "do not exist in the template"),
        ("LOCAL_IAM", "sometimes", "LOCAL_IAM must be 'enforce' or 'off'"),
        ("LOCAL_TASK_START_SECONDS", "soon", "is not a number of seconds"),
        ("LOCAL_TASK_START_SECONDS", "-3", "is negative"),
        ("LOCAL_FAULTS", "runtask.capacty=0.1", "unknown fault 'runtask.capacty'"),
    ],
)
def test_a_wrong_switch_stops_serve_and_demo_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    started: list[str] = []
    monkeypatch.setattr(entry, "serve", lambda *args: started.append("serve") or 0)
    monkeypatch.setattr(entry, "demo", lambda *args: started.append("demo") or 0)
    monkeypatch.setenv(variable, value)
    for command in ("serve", "demo"):
        assert entry.main([command]) == 2
        assert message in capsys.readouterr().err
    assert started == []


def test_the_switches_reach_the_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received: dict[str, Any] = {}
    monkeypatch.setattr(entry, "demo", lambda port, parameters: received.update(parameters) or 0)
    monkeypatch.setenv("LOCAL_PARAMETERS", "RateBurst=5 TaskStartGraceSeconds=40")
    monkeypatch.setenv("LOCAL_TASK_START_SECONDS", "30")
    monkeypatch.setenv("LOCAL_FAULTS", "ddb.conflict=0.1")
    monkeypatch.setenv("LOCAL_IAM", "off")
    assert entry.main(["demo"]) == 0
    assert received == {"RateBurst": "5", "TaskStartGraceSeconds": "40"}
    said = capsys.readouterr().err
    assert "IAM and KMS not checked" in said and "task start 30s" in said and "ddb.conflict=0.1" in said
