"""The workflow graph of an ASL definition: its states and transitions, for the inspector to draw.

This is the graph's structure only; the page lays it out (static/graph.js, with the Eclipse Layout Kernel).
Loop edges (back to a state already on the path from StartAt, e.g. retrying the claim) are found by a
depth-first walk, so the drawing can mark them whichever way the layout routes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

START, END = "__start__", "__end__"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # next | choice | default | catch | end
    label: str = ""


def edges_of(definition: dict[str, Any]) -> list[Edge]:
    states = definition.get("States", {})
    edges = [Edge(START, definition["StartAt"], "next")]
    for name, state in states.items():
        if "Next" in state:
            edges.append(Edge(name, state["Next"], "next"))
        for choice in state.get("Choices", []):
            if "Next" in choice:
                edges.append(Edge(name, choice["Next"], "choice", _choice_label(choice)))
        if "Default" in state:
            edges.append(Edge(name, state["Default"], "default", "default"))
        for catch in state.get("Catch", []):
            edges.append(Edge(name, catch["Next"], "catch", ", ".join(catch.get("ErrorEquals", []))))
        if state.get("End") or state.get("Type") in ("Succeed", "Fail"):
            edges.append(Edge(name, END, "end"))
    known = set(states) | {START, END}
    return [edge for edge in edges if edge.target in known]


# by suffix of the comparison's name (StringEquals, NumericGreaterThanEqualsPath, ...), longest first
_OPERATORS = (
    ("GreaterThanEquals", "≥"),
    ("LessThanEquals", "≤"),
    ("GreaterThan", ">"),
    ("LessThan", "<"),
    ("Equals", "="),
    ("Matches", "~"),
)
_RULE_KEYS = {"Variable", "Next", "Comment", "Assign", "Output"}


def _choice_label(choice: dict[str, Any]) -> str:
    """A Choice rule as a short label, e.g. `outcome = CLAIMED`, `has taskArn & not cause ~ States.*`."""
    if "Condition" in choice:  # JSONata
        return str(choice["Condition"]).strip("{}% ")
    if "And" in choice or "Or" in choice:
        joiner = " & " if "And" in choice else " | "
        rules = choice.get("And") or choice.get("Or") or []
        labels = [
            f"({_choice_label(rule)})" if {"And", "Or"} & set(rule) else _choice_label(rule) for rule in rules
        ]
        return joiner.join(labels)
    if "Not" in choice:
        return f"not {_choice_label(choice['Not'])}"
    field = _field(choice.get("Variable", ""))
    for key, value in choice.items():
        if key in _RULE_KEYS:
            continue
        if key == "IsPresent":
            return f"has {field}" if value else f"no {field}"
        if key.startswith("Is"):
            return f"{field} {key[2:].lower()}" if value else f"{field} not {key[2:].lower()}"
        name = key.removesuffix("Path")
        operator = next((op for suffix, op in _OPERATORS if name.endswith(suffix)), key)
        shown = _field(str(value)) if key.endswith("Path") else value if value != "" else '""'
        return f"{field} {operator} {shown}"
    return str(choice.get("Comment", ""))


def _field(path: str) -> str:
    """The readable end of a JSONPath: `$.lock.Item.jobId.S` -> `jobId`."""
    parts = [part for part in path.removeprefix("$").split(".") if part and part not in ("S", "N", "BOOL")]
    return parts[-1] if parts else path


def _back_edges(nodes: list[str], edges: list[Edge]) -> set[Edge]:
    children: dict[str, list[Edge]] = {node: [] for node in nodes}
    for edge in edges:
        children[edge.source].append(edge)
    back: set[Edge] = set()
    colour: dict[str, int] = {}  # 1 on the walk's path, 2 finished
    stack: list[tuple[str, int]] = [(START, 0)]
    colour[START] = 1
    while stack:
        node, index = stack.pop()
        if index < len(children[node]):
            stack.append((node, index + 1))
            edge = children[node][index]
            state = colour.get(edge.target, 0)
            if state == 1:
                back.add(edge)
            elif state == 0:
                colour[edge.target] = 1
                stack.append((edge.target, 0))
        else:
            colour[node] = 2
    return back


def graph(definition: dict[str, Any]) -> dict[str, Any]:
    """Nodes (Start, each state, End) and edges, in definition order (a stable layout between refreshes)."""
    states = definition.get("States", {})
    nodes = [START, *states, END]
    edges = edges_of(definition)
    loops = _back_edges(nodes, edges)
    return {
        "nodes": [
            {
                "id": node,
                "label": {START: "Start", END: "End"}.get(node, node),
                "type": states.get(node, {}).get("Type", "Terminal" if node in (START, END) else "?"),
                "resource": states.get(node, {}).get("Resource", ""),
            }
            for node in nodes
        ],
        "edges": [
            {
                "id": f"e{index}",
                "source": edge.source,
                "target": edge.target,
                "kind": edge.kind,
                "label": edge.label,
                "loop": edge in loops,
            }
            for index, edge in enumerate(edges)
        ],
    }
