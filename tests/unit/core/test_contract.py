"""browserjobs.core.contract against the workflow and the code: every error name the workflow handles or
ends with is in the contract, every name in the contract is raised by something, and no code spells one
out instead of importing it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from browserjobs.core.claim import ClaimContention, SiteUnavailable
from browserjobs.core.cleanup import HANDLED_EXECUTION_STATUSES, failure_from_execution
from browserjobs.core.contract import (
    COMPLETION_FIELDS,
    FINAL_EXECUTION_STATUSES,
    FINAL_JOB_STATUSES,
    JOB_EVENT_DETAIL_TYPES,
    TOKEN_CLOSED,
    ErrorName,
    ExecutionStatus,
    JobStatus,
)
from browserjobs.worker.errors import WORKER_ERRORS, ExitCode
from tests.conftest import ROOT
from tests.unit.template.test_template import SERVICE_ERROR

ASL = json.loads((ROOT / "statemachines" / "job.asl.json").read_text())


def _states(states: dict) -> list[dict]:
    found = []
    for state in states.values():
        found.append(state)
        for branch in state.get("Branches", []):
            found += _states(branch["States"])
    return found


def _handled_by_workflow() -> set[str]:
    names = set()
    for state in _states(ASL["States"]):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            names |= {name for name in rule["ErrorEquals"] if not SERVICE_ERROR.match(name)}
    return names


def _ended_with_by_workflow() -> set[str]:
    """Fail states' errors and the errors Pass states record for the job (LockWaitTimedOut, ...)."""
    names = set()
    for state in _states(ASL["States"]):
        if state.get("Type") == "Fail" and "Error" in state:
            names.add(state["Error"])
        if state.get("Type") == "Pass" and isinstance(state.get("Parameters", {}).get("Error"), str):
            names.add(state["Parameters"]["Error"])
    return names


def test_every_error_the_workflow_handles_or_ends_with_is_in_the_contract():
    names = _handled_by_workflow() | _ended_with_by_workflow()

    assert names, "the workflow names no error of its own"
    assert names <= {str(e) for e in ErrorName}, names - {str(e) for e in ErrorName}


def test_every_error_in_the_contract_is_raised_by_something():
    worker = set(ExitCode.BY_ERROR)
    crash_hook = {ErrorName.WORKER_CRASHED, ErrorName.WORKER_INTERRUPTED}
    claim = {ClaimContention.__name__, SiteUnavailable.__name__}  # a Lambda's error: its exception's class
    cleanup = {
        failure_from_execution({"status": status, "executionArn": "arn"}).error
        for status in HANDLED_EXECUTION_STATUSES
    } | {ErrorName.LEASE_EXPIRED}
    raised = {str(name) for name in worker | crash_hook | claim | cleanup | _ended_with_by_workflow()}

    assert raised == {str(e) for e in ErrorName}


def test_result_json_accepts_every_error_the_worker_reports():
    schema = json.loads((ROOT / "src/browserjobs/core/schemas/result.schema.json").read_text())
    enum = schema["properties"]["error"]["properties"]["Error"]["enum"]
    assert sorted(enum) == sorted(str(e) for e in WORKER_ERRORS) == sorted(str(e) for e in ExitCode.BY_ERROR)


def test_statuses_are_the_services_and_the_records():
    assert {s.value for s in FINAL_EXECUTION_STATUSES} == {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
    assert ExecutionStatus.RUNNING not in FINAL_EXECUTION_STATUSES
    assert JobStatus.RUNNING not in FINAL_JOB_STATUSES and JobStatus.WAITING not in FINAL_JOB_STATUSES
    assert {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"} == TOKEN_CLOSED


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def test_no_code_spells_out_an_error_name():
    names = {str(e) for e in ErrorName} - {ClaimContention.__name__, SiteUnavailable.__name__}
    contract = ROOT / "src" / "browserjobs" / "core" / "contract.py"
    spelled = {
        str(path.relative_to(ROOT)): sorted(found)
        for folder in (ROOT / "src", ROOT / "functions")
        for path in folder.rglob("*.py")
        if path != contract and (found := _string_constants(path) & names)
    }
    assert not spelled, f"import these from browserjobs.core.contract: {spelled}"


def _status_writes() -> list[str]:
    """The UpdateExpression of every job record write in the workflow that sets a status."""
    return re.findall(r'"UpdateExpression": "(SET #status = [^"]*)"', json.dumps(ASL))


def _expression_values(state: dict) -> list[dict]:
    """The ExpressionAttributeValues of a state's DynamoDB writes (in a transaction or not)."""
    parameters = state.get("Parameters", {})
    writes = [item.get("Update", {}) for item in parameters.get("TransactItems", [])] + [parameters]
    return [write["ExpressionAttributeValues"] for write in writes if "ExpressionAttributeValues" in write]


def test_every_final_status_the_workflow_writes_carries_its_event_detail_type():
    # The pipe reads the record's eventType as the completion event's detail-type (docs/CONTRACTS.md).
    final_writes = [w for w in _status_writes() if ":waiting" not in w]
    assert final_writes and all("eventType = :event" in w for w in final_writes), final_writes
    # ... and its completion map, whose fields the event's detail names one by one (a missing one would
    # leave the pipe's input template a path to nothing).
    assert all("completion = :completion" in w for w in final_writes), final_writes
    maps = [
        values[":completion"]["M"]
        for state in _states(ASL["States"])
        for values in _expression_values(state)
        if ":completion" in values
    ]
    assert len(maps) == len(final_writes) and all(sorted(m) == sorted(COMPLETION_FIELDS) for m in maps)
    marks = {
        state["Result"]["status"]: state["Result"]["eventType"]
        for state in _states(ASL["States"])
        if state.get("Type") == "Pass" and state.get("ResultPath") == "$.ending"
    }
    assert marks == {s: JOB_EVENT_DETAIL_TYPES[s] for s in ("FAILED", "TIMED_OUT", "INTERRUPTED")}
    literal = set(re.findall(r'":event": \{"S": "([^"]+)"\}', json.dumps(ASL)))
    assert literal == {JOB_EVENT_DETAIL_TYPES[s] for s in ("SUCCEEDED", "REJECTED")}
    assert set(JOB_EVENT_DETAIL_TYPES) == FINAL_JOB_STATUSES
