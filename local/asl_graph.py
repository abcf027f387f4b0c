"""The workflow graph of an ASL definition, laid out for an SVG drawing.

A small layered layout (the Sugiyama idea, kept simple): back edges of loops are found by a depth-first
walk from StartAt, every state gets the rank of its longest path from the start over the remaining
edges, states within a rank are ordered by the mean position of their parents (a few sweeps), and
back edges are drawn around the side. Deterministic, so the picture does not jump between refreshes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

START, END = "__start__", "__end__"
NODE_WIDTH, NODE_HEIGHT = 200, 40
X_GAP, Y_GAP, MARGIN = 40, 44, 30


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


def _choice_label(choice: dict[str, Any]) -> str:
    """A short label for a Choice rule: its variable and comparison, or the JSONata condition."""
    if "Condition" in choice:
        return str(choice["Condition"])[:40]
    variable = choice.get("Variable", "")
    for key, value in choice.items():
        if key not in ("Variable", "Next", "Comment", "Assign", "Output"):
            return f"{variable} {key} {value}"[:40] if not isinstance(value, (list, dict)) else key
    return choice.get("Comment", "")[:40]


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


def layout(definition: dict[str, Any]) -> dict[str, Any]:
    """Nodes with x/y boxes and edges with SVG path points, ready to draw."""
    states = definition.get("States", {})
    nodes = [START, *states, END]
    edges = edges_of(definition)
    back = _back_edges(nodes, edges)
    forward = [edge for edge in edges if edge not in back]

    rank = {node: 0 for node in nodes}
    for _ in range(len(nodes)):  # longest path by relaxation: the forward graph is acyclic
        changed = False
        for edge in forward:
            if rank[edge.target] < rank[edge.source] + 1:
                rank[edge.target], changed = rank[edge.source] + 1, True
        if not changed:
            break
    reachable = _reachable(forward)
    deepest = max((rank[node] for node in states if node in reachable), default=0)
    for node in states:
        if node not in reachable:  # states no path reaches are still drawn, below the rest
            rank[node] = deepest + 1
    rank[END] = max(rank[node] for node in nodes if node != END) + 1

    layers: dict[int, list[str]] = {}
    for node in nodes:  # definition order is the initial order within a layer
        layers.setdefault(rank[node], []).append(node)
    parents: dict[str, list[str]] = {node: [] for node in nodes}
    for edge in forward:
        parents[edge.target].append(edge.source)
    position: dict[str, float] = {}
    for _ in range(4):
        for level in sorted(layers):
            for index, node in enumerate(layers[level]):
                placed = [position[p] for p in parents[node] if p in position]
                position[node] = sum(placed) / len(placed) if placed else float(index)
            layers[level].sort(key=lambda n: position[n])
            for index, node in enumerate(layers[level]):
                position[node] = index + position[node] * 0.001  # keep order, break ties stably

    widest = max(len(layer) for layer in layers.values())
    width = widest * NODE_WIDTH + (widest - 1) * X_GAP + 2 * MARGIN + 120  # room for loop edges
    boxes: dict[str, dict[str, Any]] = {}
    for level, layer in layers.items():
        layer_width = len(layer) * NODE_WIDTH + (len(layer) - 1) * X_GAP
        left = MARGIN + (widest * NODE_WIDTH + (widest - 1) * X_GAP - layer_width) / 2
        for index, node in enumerate(layer):
            state = states.get(node, {})
            boxes[node] = {
                "id": node,
                "label": {START: "Start", END: "End"}.get(node, node),
                "type": state.get("Type", "Terminal" if node in (START, END) else "?"),
                "resource": state.get("Resource", ""),
                "x": left + index * (NODE_WIDTH + X_GAP),
                "y": MARGIN + level * (NODE_HEIGHT + Y_GAP),
                "width": NODE_WIDTH,
                "height": NODE_HEIGHT,
            }
    height = (max(rank.values()) + 1) * (NODE_HEIGHT + Y_GAP) + 2 * MARGIN
    drawn = [_edge_path(edge, boxes, edge in back, width, i) for i, edge in enumerate(edges)]
    return {"nodes": list(boxes.values()), "edges": drawn, "width": width, "height": height}


def _reachable(edges: list[Edge]) -> set[str]:
    seen, todo = {START}, [START]
    while todo:
        node = todo.pop()
        for edge in edges:
            if edge.source == node and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


def _edge_path(edge: Edge, boxes: dict[str, dict[str, Any]], is_back: bool, width: float,
               index: int) -> dict[str, Any]:
    source, target = boxes[edge.source], boxes[edge.target]
    sx, sy = source["x"] + source["width"] / 2, source["y"] + source["height"]
    tx, ty = target["x"] + target["width"] / 2, target["y"]
    if is_back:
        # out of the source's right side, up the margin, into the target's right side
        lane = width - 40 - (index % 4) * 12
        sx, sy = source["x"] + source["width"], source["y"] + source["height"] / 2
        tx, ty = target["x"] + target["width"], target["y"] + target["height"] / 2
        points = [(sx, sy), (lane, sy), (lane, ty), (tx, ty)]
    else:
        middle = (sy + ty) / 2
        points = [(sx, sy), (sx, middle), (tx, middle), (tx, ty)]
    return {
        "source": edge.source, "target": edge.target, "kind": edge.kind, "label": edge.label,
        "back": is_back, "points": [[round(x, 1), round(y, 1)] for x, y in points],
    }
