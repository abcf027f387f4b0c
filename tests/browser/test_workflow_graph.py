"""The whole workflow (statemachines/job.asl.json) drawn by the inspector at its default window size."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from browserjobs.ops.inspector.server import InspectorServer, running
from browserjobs.ops.outputs import Target
from tests.browser.pages import SHOTS, node
from tests.cli.operator_stack import OperatorStack, sample_job, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.allow_hosts(["127.0.0.1", "localhost", "::1"])]
ROOT = Path(__file__).resolve().parents[2]
DEFINITION = (ROOT / "statemachines" / "job.asl.json").read_text()
TOLERANCE = 0.5  # px: a route may touch its own box's border, never cross a box's inside

GEOMETRY = """svg => {
  const boxes = [...svg.querySelectorAll("g.node")].map((g) => {
    const r = g.querySelector("rect");
    return { id: g.dataset.state, x: +r.getAttribute("x"), y: +r.getAttribute("y"),
             width: +r.getAttribute("width"), height: +r.getAttribute("height") };
  });
  const edges = [...svg.querySelectorAll("path.edge")].map((p) => ({
    source: p.dataset.source, target: p.dataset.target, kind: p.dataset.kind,
    taken: p.dataset.taken === "true", cls: p.getAttribute("class"),
    stroke: getComputedStyle(p).stroke, dash: getComputedStyle(p).strokeDasharray,
    points: p.getAttribute("d").split(/[ML]/).filter((s) => s.trim())
      .map((s) => s.trim().split(/\\s+/).map(Number)),
  }));
  const view = svg.getBoundingClientRect();
  return { boxes, edges, shown: { width: view.width, height: view.height },
           column: svg.parentElement.clientWidth, layout: svg.viewBox.baseVal.width };
}"""


@pytest.fixture(scope="module")
def inspector(stack: OperatorStack) -> Iterator[InspectorServer]:
    with running(Target(stack.name, stack.url)) as server:
        yield server


def run_the_real_workflow(stack: OperatorStack) -> str:
    """An execution of the real definition in moto: its first task cannot reach a table and is caught,
    so it ends FAILED down the failure path, which the page highlights."""
    sfn = stack.client("stepfunctions")
    role = stack.client("iam").create_role(
        RoleName=f"real-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}"
    )
    machine = sfn.create_state_machine(
        name=f"real-{uuid.uuid4().hex[:6]}", definition=DEFINITION, roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]
    job = sample_job("acct-graph")
    arn = sfn.start_execution(stateMachineArn=machine, name=job["jobId"], input=json.dumps(job))[
        "executionArn"
    ]
    wait_for_status(stack, arn, {"FAILED", "SUCCEEDED", "TIMED_OUT", "ABORTED"})
    return arn


def crosses(segment: tuple[list[float], list[float]], box: dict) -> bool:
    """Whether an axis-parallel segment passes through the inside of a box."""
    (x1, y1), (x2, y2) = segment
    left, right = box["x"] + TOLERANCE, box["x"] + box["width"] - TOLERANCE
    top, bottom = box["y"] + TOLERANCE, box["y"] + box["height"] - TOLERANCE
    assert x1 == x2 or y1 == y2, f"not orthogonal: {segment}"
    return min(x1, x2) < right and max(x1, x2) > left and min(y1, y2) < bottom and max(y1, y2) > top


def test_the_whole_workflow_is_laid_out_readably(stack, inspector, page: Page):
    arn = run_the_real_workflow(stack)
    page.goto(f"{inspector.url}#/execution/{quote(arn, safe='')}")  # the page fixture: the default viewport
    states = json.loads(DEFINITION)["States"]
    expect(page.locator("svg.workflow g.node")).to_have_count(len(states) + 2)
    expect(node(page, "CheckLock")).not_to_have_attribute("data-status", "NOT_VISITED")
    geometry = page.locator("svg.workflow").evaluate(GEOMETRY)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("svg.workflow").screenshot(path=SHOTS / "whole-workflow-graph.png")
    assert {box["id"] for box in geometry["boxes"]} == {*states, "__start__", "__end__"}

    boxes = geometry["boxes"]
    for edge in geometry["edges"]:
        for segment in zip(edge["points"], edge["points"][1:], strict=False):
            hit = [box["id"] for box in boxes if crosses(segment, box)]
            assert not hit, f"{edge['source']} -> {edge['target']} crosses {hit}"
    for a in boxes:
        for b in boxes:
            if a["id"] < b["id"]:
                overlap = crosses(([a["x"], a["y"] + 1], [a["x"] + a["width"], a["y"] + 1]), b)
                assert not overlap or a["y"] + a["height"] <= b["y"], f"{a['id']} overlaps {b['id']}"

    catches = [e for e in geometry["edges"] if e["kind"] == "catch"]
    normal = next(e for e in geometry["edges"] if e["kind"] == "next" and not e["taken"])
    assert catches and all("catch" in e["cls"] for e in catches)
    assert {e["dash"] for e in catches if not e["taken"]} != {normal["dash"]}
    assert {e["stroke"] for e in catches if not e["taken"]} == {"rgb(212, 134, 42)"} != {normal["stroke"]}
    labels = page.locator("svg.workflow g.edge-label.catch text")
    expect(labels.first).to_be_visible()
    assert "States.ALL" in labels.all_text_contents()
    choice_labels = page.locator("svg.workflow g.edge-label.choice, svg.workflow g.edge-label.default")
    assert choice_labels.count() >= 10
    loops = page.locator("svg.workflow path.edge.loop")
    assert {(e.get_attribute("data-source"), e.get_attribute("data-target")) for e in loops.all()} >= {
        ("ClampBackoff", "CheckLock"),
        ("GiveBackClaim", "Claim"),
    }

    taken = [e for e in geometry["edges"] if e["taken"]]
    assert taken and all("taken" in e["cls"] for e in taken)
    took = {(e["source"], e["target"], e["kind"]) for e in taken}
    assert ("__start__", "CheckLock", "next") in took
    # the definition's tables do not exist here: CheckLock's error is caught, and its catch edge is the path
    expect(node(page, "CheckLock")).to_have_attribute("data-status", "CAUGHT")
    assert ("CheckLock", "MarkFailed", "catch") in took and ("CheckLock", "LockFound", "next") not in took
    visited = page.locator('svg.workflow g.node:not([data-status="NOT_VISITED"])')
    assert visited.count() >= 3

    # fitted into its column at the default window size, and still readable (state names at >= 55 %)
    assert geometry["shown"]["width"] <= geometry["column"]
    assert geometry["shown"]["width"] / geometry["layout"] >= 0.55
    font = page.locator("svg.workflow g.node text").first.evaluate("t => t.getBoundingClientRect().height")
    assert font >= 7
