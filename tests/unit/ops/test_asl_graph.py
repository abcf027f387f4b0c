"""The workflow graph layout, on the project's own state machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browserjobs.ops.asl_graph import END, START, edges_of, layout

pytestmark = pytest.mark.unit
DEFINITION = json.loads((Path(__file__).resolve().parents[3] / "statemachines" / "job.asl.json").read_text())


@pytest.fixture(scope="module")
def graph() -> dict:
    return layout(DEFINITION)


def test_every_state_is_drawn_once_between_start_and_end(graph):
    ids = [node["id"] for node in graph["nodes"]]
    assert sorted(ids) == sorted([START, END, *DEFINITION["States"]])
    boxes = {node["id"]: node for node in graph["nodes"]}
    assert boxes[START]["y"] < min(boxes[s]["y"] for s in DEFINITION["States"])
    assert boxes[END]["y"] > max(boxes[s]["y"] for s in DEFINITION["States"])


def test_no_two_boxes_overlap_and_all_fit_the_canvas(graph):
    nodes = graph["nodes"]
    for node in nodes:
        assert node["x"] >= 0 and node["x"] + node["width"] <= graph["width"]
        assert node["y"] >= 0 and node["y"] + node["height"] <= graph["height"]
    for index, a in enumerate(nodes):
        for b in nodes[index + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, (a["id"], b["id"])


def test_every_transition_of_the_definition_is_an_edge(graph):
    drawn = {(edge["source"], edge["target"], edge["kind"]) for edge in graph["edges"]}
    states = DEFINITION["States"]
    for name, state in states.items():
        if "Next" in state:
            assert (name, state["Next"], "next") in drawn
        for catch in state.get("Catch", []):
            assert (name, catch["Next"], "catch") in drawn
        for choice in state.get("Choices", []):
            assert (name, choice["Next"], "choice") in drawn
        if state["Type"] in ("Succeed", "Fail") or state.get("End"):
            assert (name, END, "end") in drawn


def test_loops_are_drawn_back_up_and_everything_else_flows_down(graph):
    boxes = {node["id"]: node for node in graph["nodes"]}
    back = [edge for edge in graph["edges"] if edge["back"]]
    assert back, "the lock-wait loop returns to CheckLock"
    assert any(edge["target"] == "CheckLock" for edge in back)
    for edge in graph["edges"]:
        source, target = boxes[edge["source"]], boxes[edge["target"]]
        if edge["back"]:
            assert target["y"] <= source["y"]
        else:
            assert target["y"] > source["y"], edge


def test_the_layout_is_deterministic(graph):
    assert layout(json.loads(json.dumps(DEFINITION))) == graph


def test_edges_to_unknown_states_are_ignored_and_unreachable_states_still_drawn():
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "Missing"}, "Orphan": {"Type": "Succeed"}},
    }
    assert (START, "A") in {(e.source, e.target) for e in edges_of(definition)}
    assert all(e.target != "Missing" for e in edges_of(definition))
    boxes = {node["id"]: node for node in layout(definition)["nodes"]}
    assert boxes["Orphan"]["y"] > boxes["A"]["y"]
