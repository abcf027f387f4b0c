"""The workflow graph of an ASL definition, laid out for an SVG drawing.

A small layered layout (the Sugiyama idea, kept simple): back edges of loops are found by a depth-first
walk from StartAt, every state gets the rank of its longest path from the start over the remaining
edges, long edges get a dummy node per layer they cross, nodes within a layer are ordered by the mean
position of their neighbours (sweeping down and up), and back edges are drawn up the right margin.
Deterministic, so the picture does not jump between refreshes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

START, END = "__start__", "__end__"
NODE_WIDTH, NODE_HEIGHT, DUMMY_WIDTH = 176, 34, 12
X_GAP, EDGE_GAP, Y_GAP, MARGIN, BACK_EDGE_ROOM = 28, 10, 38, 24, 80
ORDERING_SWEEPS, PLACEMENT_SWEEPS = 6, 12


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
    rank = _ranks(nodes, states, [edge for edge in edges if edge not in back])
    level_of, chains = _chains(edges, back, rank)
    layers: dict[int, list[str]] = {}
    for node in level_of:  # definition order is the initial order within a layer
        layers.setdefault(level_of[node], []).append(node)
    _order(layers, chains)

    widths: dict[str, float] = {node: NODE_WIDTH if node in rank else DUMMY_WIDTH for node in level_of}
    boxes = _boxes(states, level_of, _place(layers, chains, widths), widths)
    widest = max(box["x"] + box["width"] for box in boxes.values()) - MARGIN
    width = widest + 2 * MARGIN + BACK_EDGE_ROOM
    height = max(rank.values()) * (NODE_HEIGHT + Y_GAP) + NODE_HEIGHT + 2 * MARGIN
    drawn = [
        _back_edge(edge, boxes, width, index)
        if edge in back
        else _forward_edge(edge, [boxes[node] for node in chains[index]])
        for index, edge in enumerate(edges)
    ]
    return {
        "nodes": [box for node, box in boxes.items() if node in rank],
        "edges": drawn,
        "width": width,
        "height": height,
    }


def _ranks(nodes: list[str], states: dict[str, Any], forward: list[Edge]) -> dict[str, int]:
    """Each node's layer: the longest path to it from the start; unreachable states below the rest."""
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
    return rank


def _chains(
    edges: list[Edge], back: set[Edge], rank: dict[str, int]
) -> tuple[dict[str, int], dict[int, list[str]]]:
    """The layer of every node, dummies included, and each forward edge's chain of nodes (by edge index).

    A long edge gets a dummy node in each layer it crosses, so it is routed between boxes, not through them.
    """
    level_of = dict(rank)
    chains: dict[int, list[str]] = {}
    for index, edge in enumerate(edges):
        if edge in back:
            continue
        # edges into one target share its dummies: they merge into one lane, as the console bundles them
        crossed = range(rank[edge.source] + 1, rank[edge.target])
        dummies = [f"__via_{edge.target}_{level}" for level in crossed]
        for level, dummy in enumerate(dummies, start=rank[edge.source] + 1):
            level_of[dummy] = level
        chains[index] = [edge.source, *dummies, edge.target]
    return level_of, chains


def _boxes(
    states: dict[str, Any], level_of: dict[str, int], centre: dict[str, float], widths: dict[str, float]
) -> dict[str, dict[str, Any]]:
    boxes: dict[str, dict[str, Any]] = {}
    for node, level in level_of.items():
        state = states.get(node, {})
        boxes[node] = {
            "id": node,
            "label": {START: "Start", END: "End"}.get(node, node),
            "type": state.get("Type", "Terminal" if node in (START, END) else "?"),
            "resource": state.get("Resource", ""),
            "x": centre[node] - widths[node] / 2,
            "y": MARGIN + level * (NODE_HEIGHT + Y_GAP),
            "width": widths[node],
            "height": NODE_HEIGHT,
        }
    return boxes


def _order(layers: dict[int, list[str]], chains: dict[int, list[str]]) -> None:
    """Order each layer by the mean position of its neighbours, sweeping down and up (fewer crossings)."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for chain in chains.values():
        for upper, lower in itertools.pairwise(chain):
            down.setdefault(upper, []).append(lower)
            up.setdefault(lower, []).append(upper)
    position = {node: float(i) for layer in layers.values() for i, node in enumerate(layer)}
    levels = sorted(layers)
    for sweep in range(ORDERING_SWEEPS):
        neighbours, order = (up, levels) if sweep % 2 == 0 else (down, levels[::-1])
        for level in order:
            layer = layers[level]

            def key(node: str, neighbours: dict[str, list[str]] = neighbours) -> float:
                near = [position[n] for n in neighbours.get(node, [])]
                return sum(near) / len(near) if near else position[node]

            layer.sort(key=key)
            position.update((node, float(i)) for i, node in enumerate(layer))


def _reachable(edges: list[Edge]) -> set[str]:
    seen, todo = {START}, [START]
    while todo:
        node = todo.pop()
        for edge in edges:
            if edge.source == node and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


def _place(
    layers: dict[int, list[str]], chains: dict[int, list[str]], widths: dict[str, float]
) -> dict[str, float]:
    """Centres of the nodes: each pulled towards its neighbours (straight chains), order and gaps kept."""
    neighbours: dict[str, list[str]] = {}
    for chain in chains.values():
        for upper, lower in itertools.pairwise(chain):
            neighbours.setdefault(upper, []).append(lower)
            neighbours.setdefault(lower, []).append(upper)

    def gap(left: str, right: str) -> float:  # edges may run close together; boxes need room
        return (widths[left] + widths[right]) / 2 + (
            X_GAP if min(widths[left], widths[right]) > DUMMY_WIDTH else EDGE_GAP
        )

    centre: dict[str, float] = {}
    for layer in layers.values():
        for index, node in enumerate(layer):
            centre[node] = centre[layer[index - 1]] + gap(layer[index - 1], node) if index else 0.0
    levels = sorted(layers)
    for sweep in range(PLACEMENT_SWEEPS):
        for level in levels if sweep % 2 == 0 else levels[::-1]:
            layer = layers[level]
            wanted = []
            for node in layer:
                near = [centre[n] for n in neighbours.get(node, [])]
                wanted.append(sum(near) / len(near) if near else centre[node])
            placed: list[float] = []
            for index, node in enumerate(layer):  # left to right, never closer than the gap
                lowest = placed[-1] + gap(layer[index - 1], node) if index else wanted[0]
                placed.append(max(wanted[index], lowest))
            shift = sum(w - p for w, p in zip(wanted, placed, strict=True)) / len(layer)
            centre.update((node, x + shift) for node, x in zip(layer, placed, strict=True))
    left = min(centre[node] - widths[node] / 2 for node in centre)
    return {node: round(x - left + MARGIN) for node, x in centre.items()}


def _edge(edge: Edge, back: bool, points: list[tuple[float, float]]) -> dict[str, Any]:
    return {
        "source": edge.source,
        "target": edge.target,
        "kind": edge.kind,
        "label": edge.label,
        "back": back,
        "points": [[round(x, 1), round(y, 1)] for x, y in points],
    }


def _forward_edge(edge: Edge, chain: list[dict[str, Any]]) -> dict[str, Any]:
    """Down from the source through the dummy boxes of its chain to the target, with square corners."""
    points: list[tuple[float, float]] = []
    for upper, lower in itertools.pairwise(chain):
        ux, uy = upper["x"] + upper["width"] / 2, upper["y"] + upper["height"]
        lx, ly = lower["x"] + lower["width"] / 2, lower["y"]
        middle = (uy + ly) / 2
        points += [(ux, uy), (ux, middle), (lx, middle), (lx, ly)]  # through a dummy: straight down
    return _edge(edge, False, points)


def _back_edge(edge: Edge, boxes: dict[str, dict[str, Any]], width: float, index: int) -> dict[str, Any]:
    """Down out of the source, along the gap below it, up a lane in the right margin, into the target's top.

    The horizontal runs stay in the gaps between layers, so a loop never crosses a box.
    """
    source, target = boxes[edge.source], boxes[edge.target]
    lane = width - BACK_EDGE_ROOM / 2 + (index % 4) * 10
    sx, sy = source["x"] + source["width"] * 0.75, source["y"] + source["height"]
    tx, ty = target["x"] + target["width"] * 0.75, target["y"]
    below, above = sy + Y_GAP / 3, ty - Y_GAP / 3
    return _edge(edge, True, [(sx, sy), (sx, below), (lane, below), (lane, above), (tx, above), (tx, ty)])
