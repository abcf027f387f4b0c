"""The workflow graph's structure, on the project's own state machine (its layout: tests/browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browserjobs.ops.asl_graph import END, START, edges_of, graph

pytestmark = pytest.mark.unit
DEFINITION = json.loads((Path(__file__).resolve().parents[3] / "statemachines" / "job.asl.json").read_text())


@pytest.fixture(scope="module")
def workflow() -> dict:
    return graph(DEFINITION)


def test_every_state_is_a_node_once_between_start_and_end(workflow):
    ids = [node["id"] for node in workflow["nodes"]]
    assert ids == [START, *DEFINITION["States"], END]  # definition order: a stable layout
    types = {node["id"]: node["type"] for node in workflow["nodes"]}
    assert types[START] == types[END] == "Terminal" and types["Claim"] == "Task"


def test_every_transition_of_the_definition_is_an_edge(workflow):
    drawn = {(edge["source"], edge["target"], edge["kind"]) for edge in workflow["edges"]}
    assert len({edge["id"] for edge in workflow["edges"]}) == len(workflow["edges"])
    for name, state in DEFINITION["States"].items():
        if "Next" in state:
            assert (name, state["Next"], "next") in drawn
        for catch in state.get("Catch", []):
            assert (name, catch["Next"], "catch") in drawn
        for choice in state.get("Choices", []):
            assert (name, choice["Next"], "choice") in drawn
        if state["Type"] in ("Succeed", "Fail") or state.get("End"):
            assert (name, END, "end") in drawn


def test_catch_edges_are_labelled_with_their_errors(workflow):
    labels = {(e["source"], e["label"]) for e in workflow["edges"] if e["kind"] == "catch"}
    assert ("Claim", "States.ALL") in labels
    assert any(source == "RunBrowserTask" and "Site.RateLimited" in label for source, label in labels)
    assert all(e["label"] for e in workflow["edges"] if e["kind"] in ("choice", "default"))


def test_loops_are_flagged_and_the_rest_is_acyclic(workflow):
    loops = {(e["source"], e["target"]) for e in workflow["edges"] if e["loop"]}
    assert {("ClampBackoff", "CheckLock"), ("GiveBackClaim", "Claim"), ("WaitForCapacity", "Claim")} <= loops
    forward = [e for e in workflow["edges"] if not e["loop"]]
    order: list[str] = []  # a topological order exists only without cycles
    incoming = {node["id"]: 0 for node in workflow["nodes"]}
    for edge in forward:
        incoming[edge["target"]] += 1
    ready = [node for node, count in incoming.items() if count == 0]
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in forward:
            if edge["source"] == node:
                incoming[edge["target"]] -= 1
                if incoming[edge["target"]] == 0:
                    ready.append(edge["target"])
    assert len(order) == len(workflow["nodes"])


def test_the_graph_is_deterministic(workflow):
    assert graph(json.loads(json.dumps(DEFINITION))) == workflow


def test_edges_to_unknown_states_are_ignored():
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "Missing"}, "Orphan": {"Type": "Succeed"}},
    }
    assert (START, "A") in {(e.source, e.target) for e in edges_of(definition)}
    assert all(e.target != "Missing" for e in edges_of(definition))
    assert [node["id"] for node in graph(definition)["nodes"]] == [START, "A", "Orphan", END]


def test_choice_rules_read_as_short_conditions(workflow):
    labels = {(e["source"], e["target"]): e["label"] for e in workflow["edges"] if e["kind"] == "choice"}
    assert labels[("ClaimOutcome", "RunBrowserTask")] == "outcome = CLAIMED"
    assert labels[("LockWaitExhausted", "LockWaitTimedOut")] == "attempt ≥ maxAttempts"
    assert labels[("ReservedErrorName", "RenameReservedError")] == "Error ~ States.*"
    assert labels[("ConflictPolicy", "RecordInterruption")] == (
        "onConflict = interrupt & (not has interruptedJobId | not interruptedJobId = jobId)"
    )
