"""The static scanners: each custom checkov check on passing and failing snippets, and `make lint` clean.

checkov, bandit and cfn-lint-serverless live in .venv-scan (checkov pins an older boto3 than .venv), so
they run as subprocesses; the venv is made by the Makefile's own rule when it is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

SCAN_VENV = ROOT / ".venv-scan"
CUSTOM_CHECKS = ROOT / ".checkov" / "checks"
CUSTOM_CHECK_IDS = ("CKV_BJ_1", "CKV_BJ_2", "CKV_BJ_3", "CKV_BJ_4", "CKV_BJ_5", "CKV_BJ_6")


def _tail(run: subprocess.CompletedProcess[str], lines: int = 80) -> str:
    return "\n".join((run.stdout + run.stderr).splitlines()[-lines:])


@pytest.fixture(scope="module")
def scan_bin() -> Path:
    made = subprocess.run(
        ["make", "--no-print-directory", ".venv-scan/.installed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if made.returncode != 0:
        if not (SCAN_VENV / "bin" / "checkov").exists():
            pytest.skip(f".venv-scan does not exist and cannot be created here:\n{_tail(made)}")
        pytest.fail(f".venv-scan exists but does not match requirements-scan.txt:\n{_tail(made)}")
    return SCAN_VENV / "bin"


def _custom_check_results(scan_bin: Path, template_path: Path) -> dict[tuple[str, str], str]:
    """(check id, logical id) -> "passed" | "failed" for the custom checks on one CloudFormation file."""
    run = subprocess.run(
        [
            str(scan_bin / "checkov"),
            "--skip-download",
            "--framework",
            "cloudformation",
            "--external-checks-dir",
            str(CUSTOM_CHECKS),
            "--check",
            ",".join(CUSTOM_CHECK_IDS),
            "--output",
            "json",
            "--file",
            str(template_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode in (0, 1), f"checkov could not scan {template_path}:\n{_tail(run)}"
    report = json.loads(run.stdout)
    results = report.get("results", {})
    outcomes = {}
    for outcome in ("passed", "failed"):
        for result in results.get(f"{outcome}_checks", []):
            outcomes[(result["check_id"], result["resource"].split(".", 1)[1])] = outcome
    return outcomes


# ---------------------------------------------------------------- snippets

LOGS_ALL = {
    "Level": "ALL",
    "IncludeExecutionData": True,
    "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["Logs", "Arn"]}}}],
}
HARDENED_CONTAINER: dict[str, Any] = {
    "Name": "worker",
    "Image": "worker:1",
    "User": "1000",
    "ReadonlyRootFilesystem": True,
    "LinuxParameters": {"InitProcessEnabled": True, "Capabilities": {"Drop": ["ALL"]}},
}


def _state_machine(**properties: Any) -> dict[str, Any]:
    base = {"RoleArn": "arn:aws:iam::123456789012:role/machine", "DefinitionString": "{}"}
    return {"Type": "AWS::StepFunctions::StateMachine", "Properties": {**base, **properties}}


def _task(*containers: dict[str, Any]) -> dict[str, Any]:
    properties = {"RequiresCompatibilities": ["FARGATE"], "Cpu": "1024", "Memory": "2048"}
    if containers:
        properties["ContainerDefinitions"] = list(containers)
    return {"Type": "AWS::ECS::TaskDefinition", "Properties": properties}


def _container(**changes: Any) -> dict[str, Any]:
    return {**HARDENED_CONTAINER, "Name": "sidecar", **changes}


def _linux(**changes: Any) -> dict[str, Any]:
    return {**HARDENED_CONTAINER["LinuxParameters"], **changes}


SNIPPETS = {
    "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
    "HardenedMachine": _state_machine(LoggingConfiguration=LOGS_ALL, TracingConfiguration={"Enabled": True}),
    "TracingAsString": _state_machine(
        LoggingConfiguration=LOGS_ALL, TracingConfiguration={"Enabled": "true"}
    ),
    "ErrorsOnly": _state_machine(LoggingConfiguration={**LOGS_ALL, "Level": "ERROR"}),
    "NoLogDestination": _state_machine(LoggingConfiguration={**LOGS_ALL, "Destinations": []}),
    "NoLogging": _state_machine(TracingConfiguration={"Enabled": True}),
    "TracingOff": _state_machine(LoggingConfiguration=LOGS_ALL, TracingConfiguration={"Enabled": False}),
    "HardenedTask": _task(HARDENED_CONTAINER, _container(User="1000:1000")),
    "NoContainers": _task(),
    "WritableRoot": _task(HARDENED_CONTAINER, _container(ReadonlyRootFilesystem=False)),
    "RootUser": _task(_container(User="root")),
    "RootUid": _task(_container(User="0:0")),
    "ImageUser": _task({key: v for key, v in HARDENED_CONTAINER.items() if key != "User"}),
    "NoInit": _task(_container(LinuxParameters=_linux(InitProcessEnabled=False))),
    "CapabilitiesKept": _task(_container(LinuxParameters=_linux(Capabilities={"Drop": ["NET_RAW"]}))),
    "CapabilityAdded": _task(
        _container(LinuxParameters=_linux(Capabilities={"Drop": ["ALL"], "Add": ["SYS_PTRACE"]}))
    ),
}

EXPECTED = [
    ("CKV_BJ_1", "HardenedMachine", "passed"),
    ("CKV_BJ_1", "ErrorsOnly", "failed"),
    ("CKV_BJ_1", "NoLogDestination", "failed"),
    ("CKV_BJ_1", "NoLogging", "failed"),
    ("CKV_BJ_2", "HardenedMachine", "passed"),
    ("CKV_BJ_2", "TracingAsString", "passed"),
    ("CKV_BJ_2", "TracingOff", "failed"),
    ("CKV_BJ_2", "ErrorsOnly", "failed"),
    ("CKV_BJ_3", "HardenedTask", "passed"),
    ("CKV_BJ_3", "WritableRoot", "failed"),
    ("CKV_BJ_3", "NoContainers", "failed"),
    ("CKV_BJ_4", "HardenedTask", "passed"),
    ("CKV_BJ_4", "RootUser", "failed"),
    ("CKV_BJ_4", "RootUid", "failed"),
    ("CKV_BJ_4", "ImageUser", "failed"),
    ("CKV_BJ_5", "HardenedTask", "passed"),
    ("CKV_BJ_5", "NoInit", "failed"),
    ("CKV_BJ_6", "HardenedTask", "passed"),
    ("CKV_BJ_6", "CapabilitiesKept", "failed"),
    ("CKV_BJ_6", "CapabilityAdded", "failed"),
]


@pytest.fixture(scope="module")
def snippet_results(scan_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    path = tmp_path_factory.mktemp("checkov") / "snippets.json"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": SNIPPETS}))
    return _custom_check_results(scan_bin, path)


@pytest.mark.parametrize(("check_id", "logical_id", "outcome"), EXPECTED)
def test_custom_check_on_snippet(
    snippet_results: dict[tuple[str, str], str], check_id: str, logical_id: str, outcome: str
) -> None:
    assert (check_id, logical_id) in snippet_results, f"{check_id} did not run on {logical_id}: not loaded?"
    assert snippet_results[(check_id, logical_id)] == outcome


def test_every_custom_check_has_a_passing_and_a_failing_snippet() -> None:
    for check_id in CUSTOM_CHECK_IDS:
        assert {outcome for cid, _, outcome in EXPECTED if cid == check_id} == {"passed", "failed"}, check_id


def test_the_deployed_template_passes_every_custom_check(scan_bin: Path, tmp_path: Path) -> None:
    deployed = tmp_path / "template.json"
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), ".checkov/translate.py", "template.yaml", str(deployed)],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    results = _custom_check_results(scan_bin, deployed)
    assert results == {
        **{(check_id, "JobStateMachine"): "passed" for check_id in ("CKV_BJ_1", "CKV_BJ_2")},
        **{
            (check_id, definition): "passed"
            for check_id in CUSTOM_CHECK_IDS[2:]
            for definition in ("TaskDefinition", "PoolTaskDefinition")
        },
    }


def test_make_lint_ends_with_no_findings(scan_bin: Path) -> None:
    run = subprocess.run(
        ["make", "--no-print-directory", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=280
    )
    assert run.returncode == 0, f"make lint reported findings:\n{_tail(run)}"
    for framework in ("cloudformation", "dockerfile"):
        assert f"{framework} scan results" in run.stdout, f"checkov did not scan the {framework} files"
    assert re.search(r"Failed checks: [1-9]", run.stdout) is None
