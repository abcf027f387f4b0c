// Draws the workflow laid out by the server (src/browserjobs/ops/asl_graph.py) as SVG, coloured by state status.
// Every label is set with textContent: state names come from the definition and are not trusted.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function pathOf(points) {
  // straight segments: the layout already makes them orthogonal
  return points.map((p, i) => (i ? "L" : "M") + p[0] + " " + p[1]).join(" ");
}

// graph: {nodes, edges, width, height}; status: {state: STATUS}; transitions: [[from, to], ...]
// scale: 1 draws at full size; fitting a large workflow into its column uses a smaller one
function drawGraph(graph, status, transitions, selected, onSelect, scale) {
  const svg = svgEl("svg", {
    class: "workflow", width: Math.round(graph.width * scale), height: Math.round(graph.height * scale),
    viewBox: `0 0 ${graph.width} ${graph.height}`, role: "img", "aria-label": "workflow graph",
  });
  const defs = svgEl("defs");
  for (const id of ["arrow", "arrow-taken"]) {  // sized in user units: a thick edge keeps a normal head
    const marker = svgEl("marker", {
      id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, orient: "auto",
      markerUnits: "userSpaceOnUse",
    });
    marker.appendChild(svgEl("path", { d: "M0 0 L10 5 L0 10 z" }));
    defs.appendChild(marker);
  }
  svg.appendChild(defs);

  const taken = new Set(transitions.map(([a, b]) => a + "\u0000" + b));
  const edges = svgEl("g", { class: "edges" });
  for (const edge of graph.edges) {
    const isTaken = taken.has(edge.source + "\u0000" + edge.target);
    const path = svgEl("path", {
      d: pathOf(edge.points), "marker-end": isTaken ? "url(#arrow-taken)" : "url(#arrow)",
      class: `edge ${edge.kind}${isTaken ? " taken" : ""}`,
      "data-source": edge.source, "data-target": edge.target, "data-taken": isTaken,
    });
    const title = svgEl("title");
    title.textContent = `${edge.source} → ${edge.target}${edge.label ? " (" + edge.label + ")" : ""}`;
    path.appendChild(title);
    edges.appendChild(path);
  }
  svg.appendChild(edges);

  const nodes = svgEl("g", { class: "nodes" });
  for (const node of graph.nodes) {
    const terminal = node.type === "Terminal";
    const state = status[node.id] || "NOT_VISITED";
    const group = svgEl("g", {
      class: `node st-${state}${terminal ? " terminal" : ""}${node.id === selected ? " selected" : ""}`,
      "data-state": node.id, "data-status": state, tabindex: 0,
    });
    const width = terminal ? 90 : node.width;
    const x = terminal ? node.x + (node.width - width) / 2 : node.x;
    group.appendChild(svgEl("rect", {
      x, y: node.y, width, height: node.height, rx: terminal ? node.height / 2 : 6,
    }));
    const label = svgEl("text", { x: node.x + node.width / 2, y: node.y + node.height / 2 });
    label.textContent = shorten(node.label, 28);
    group.appendChild(label);
    const title = svgEl("title");
    title.textContent = `${node.label} (${node.type}${node.resource ? ": " + node.resource : ""}) ${state}`;
    group.appendChild(title);
    if (!terminal) {
      group.addEventListener("click", () => onSelect(node.id));
      group.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(node.id); });
    }
    nodes.appendChild(group);
  }
  svg.appendChild(nodes);
  return svg;
}

window.drawGraph = drawGraph;
