// Draws the workflow (its structure: src/browserjobs/ops/asl_graph.py) as SVG, coloured by state status.
// The layout is the Eclipse Layout Kernel's layered algorithm with orthogonal edge routing (vendor/elk.bundled.js):
// layers top to bottom, edges routed around the boxes, labels placed by the layout.
// Every label is set with textContent: state names come from the definition and are not trusted.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_WIDTH = 176;
const NODE_HEIGHT = 34;
const TERMINAL_WIDTH = 90;
const LABEL_CHARS = 22;  // the whole label is the edge's tooltip
const LABEL_CHAR_WIDTH = 5.6;  // 10px system-ui, a little generous: a label never overflows its room
const LABEL_HEIGHT = 14;
const ELK_OPTIONS = {
  "elk.algorithm": "layered",
  "elk.direction": "DOWN",
  "elk.edgeRouting": "ORTHOGONAL",
  "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",  // definition order: a stable picture
  "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",  // narrower than the default for this workflow
  "elk.layered.mergeEdges": "true",  // edges into one state share its entry, as the console bundles them
  "elk.layered.spacing.nodeNodeBetweenLayers": "36",
  "elk.layered.spacing.edgeNodeBetweenLayers": "14",
  "elk.layered.spacing.edgeEdgeBetweenLayers": "8",
  "elk.spacing.nodeNode": "28",
  "elk.spacing.edgeNode": "14",
  "elk.spacing.edgeEdge": "8",
  "elk.spacing.edgeLabel": "3",
  "elk.padding": "[top=16,left=16,bottom=16,right=16]",
};
const layouts = new Map();  // the definition's JSON -> its layout: refreshes only recolour
const elk = new ELK();

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

// graph: {nodes, edges} from the API -> a promise of {nodes, edges, width, height} with positions and routes
function layoutGraph(graph) {
  const key = JSON.stringify(graph);
  if (!layouts.has(key)) {
    const input = {
      id: "workflow", layoutOptions: ELK_OPTIONS,
      children: graph.nodes.map((n) => ({ id: n.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
      // a loop goes in reversed, so the layers follow the flow from Start; it is drawn back the right way
      edges: graph.edges.map((e) => {
        const text = shorten(e.label, LABEL_CHARS);
        const [from, to] = e.loop ? [e.target, e.source] : [e.source, e.target];
        return { id: e.id, sources: [from], targets: [to],
          labels: text ? [{ text, width: text.length * LABEL_CHAR_WIDTH + 6, height: LABEL_HEIGHT,
            // by the state it leaves (a reversed loop's head): fewer layers than labels mid-edge
            layoutOptions: { "elk.edgeLabels.placement": e.loop ? "HEAD" : "TAIL" } }] : [] };
      }),
    };
    layouts.set(key, elk.layout(input).then((laid) => {
      const boxes = new Map(laid.children.map((c) => [c.id, c]));
      const routes = new Map(laid.edges.map((e) => [e.id, e]));
      return {
        width: laid.width, height: laid.height,
        nodes: graph.nodes.map((n) => ({ ...n, ...pick(boxes.get(n.id), "x", "y", "width", "height") })),
        edges: graph.edges.map((e) => {
          const route = routes.get(e.id);
          const s = route.sections[0];
          const label = route.labels[0];
          const points = [s.startPoint, ...(s.bendPoints || []), s.endPoint].map((p) => [round(p.x), round(p.y)]);
          return { ...e, points: e.loop ? points.reverse() : points,
            labelBox: label ? pick(label, "x", "y", "width", "height", "text") : null };
        }),
      };
    }));
  }
  return layouts.get(key);
}

function round(value) {  // the layout's float noise would make a straight segment look slanted
  return Math.round(value * 10) / 10;
}

function pick(object, ...names) {
  return Object.fromEntries(names.map((n) => [n, object[n]]));
}

function pathOf(points) {
  return points.map((p, i) => (i ? "L" : "M") + p[0] + " " + p[1]).join(" ");
}

// laid: layoutGraph's result; status: {state: STATUS}; transitions: [[from, to], ...] the execution took
// scale: 1 draws at full size; fitting a large workflow into its column uses a smaller one
function drawGraph(laid, status, transitions, selected, onSelect, scale) {
  const svg = svgEl("svg", {
    class: "workflow", width: Math.round(laid.width * scale), height: Math.round(laid.height * scale),
    viewBox: `0 0 ${laid.width} ${laid.height}`, role: "img", "aria-label": "workflow graph",
  });
  const defs = svgEl("defs");
  for (const id of ["arrow", "arrow-taken", "arrow-catch"]) {  // in user units: a thick edge keeps a normal head
    const marker = svgEl("marker", {
      id, class: id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto",
      markerUnits: "userSpaceOnUse",
    });
    marker.appendChild(svgEl("path", { d: "M0 0 L10 5 L0 10 z" }));
    defs.appendChild(marker);
  }
  svg.appendChild(defs);

  const pairOf = (e) => e.source + "\u0000" + e.target;
  const taken = new Set(transitions.map(([source, target]) => pairOf({ source, target })));
  const parallel = new Map();  // a state can reach the same next state by its Next and by a Catch
  for (const e of laid.edges) parallel.set(pairOf(e), (parallel.get(pairOf(e)) || 0) + 1);
  // of two such edges the catch was taken if the source's error was caught, the other one if not
  const tookEdge = (e) => taken.has(pairOf(e))
    && (parallel.get(pairOf(e)) === 1 || (status[e.source] === "CAUGHT") === (e.kind === "catch"));
  const edges = svgEl("g", { class: "edges" });
  const labels = svgEl("g", { class: "edge-labels" });
  for (const edge of laid.edges) {
    const isTaken = tookEdge(edge);
    const marker = isTaken ? "arrow-taken" : edge.kind === "catch" ? "arrow-catch" : "arrow";
    const path = svgEl("path", {
      d: pathOf(edge.points), "marker-end": `url(#${marker})`,
      class: `edge ${edge.kind}${edge.loop ? " loop" : ""}${isTaken ? " taken" : ""}`,
      "data-source": edge.source, "data-target": edge.target, "data-taken": isTaken, "data-kind": edge.kind,
    });
    const title = svgEl("title");
    title.textContent = `${edge.source} → ${edge.target}${edge.label ? " (" + edge.label + ")" : ""}`;
    path.appendChild(title);
    edges.appendChild(path);
    if (edge.labelBox) {
      const box = edge.labelBox;
      const group = svgEl("g", { class: `edge-label ${edge.kind}${isTaken ? " taken" : ""}` });
      group.appendChild(svgEl("rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: 3 }));
      const text = svgEl("text", { x: box.x + box.width / 2, y: box.y + box.height / 2 });
      text.textContent = box.text;
      group.appendChild(text);
      group.appendChild(title.cloneNode(true));
      labels.appendChild(group);
    }
  }
  svg.appendChild(edges);

  const nodes = svgEl("g", { class: "nodes" });
  for (const node of laid.nodes) {
    const terminal = node.type === "Terminal";
    const state = status[node.id] || "NOT_VISITED";
    const group = svgEl("g", {
      class: `node st-${state}${terminal ? " terminal" : ""}${node.id === selected ? " selected" : ""}`,
      "data-state": node.id, "data-status": state, tabindex: 0,
    });
    const width = terminal ? TERMINAL_WIDTH : node.width;
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
  svg.appendChild(labels);  // above the edges and boxes: a label is never hidden by a line
  return svg;
}

window.layoutGraph = layoutGraph;
window.drawGraph = drawGraph;
