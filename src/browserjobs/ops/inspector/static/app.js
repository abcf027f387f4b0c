// The inspector page: executions, one execution (graph, states, events, job, artifacts), the DLQ.
// The DOM is built with textContent only, never innerHTML: job data and errors are untrusted.
"use strict";

const view = document.getElementById("view");
const banner = document.getElementById("banner");
const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
const MIN_SCALE = 0.55;  // below this the state names stop being readable: scroll instead
let timer = null;
let routeToken = 0;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(typeof child === "string" || typeof child === "number"
      ? document.createTextNode(String(child)) : child);
  }
  return node;
}

function badge(status) {
  return el("span", { className: `badge s-${status || "NONE"}`, "data-status": status || "" }, status || "—");
}

function json(value) {
  if (value === undefined || value === null) return el("pre", { className: "muted" }, "—");
  let text = value;
  if (typeof value === "string") {
    try { text = JSON.stringify(JSON.parse(value), null, 2); } catch (_) { text = value; }
  } else {
    text = JSON.stringify(value, null, 2);
  }
  return el("pre", {}, text);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function clock(iso) {
  return iso ? new Date(iso).toISOString().slice(11, 23) : "";
}

function duration(ms) {
  if (ms === null || ms === undefined) return "…";
  if (ms < 10000) return `${ms} ms`;
  if (ms < 600000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}

function showError(message) {
  banner.hidden = !message;
  banner.textContent = message || "";
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok && !(options && options.acceptError)) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function poll(seconds, render) {
  clearTimeout(timer);
  const token = routeToken;
  const tick = async () => {
    if (token !== routeToken) return;
    let again = false;
    try {
      again = await render();
      showError("");
    } catch (error) {
      showError(error.message);
      again = true;
    }
    if (again && token === routeToken) timer = setTimeout(tick, seconds * 1000);
  };
  tick();
}

function replace(node) {
  view.replaceChildren(node);
}

// -- executions list -----------------------------------------------------------------------------
function executionsView(params) {
  const status = params.get("status") || "";
  const filters = el("div", { className: "filters" },
    [["", "All"], ...STATUSES.map((s) => [s, s.replace("_", " ").toLowerCase()])].map(([value, label]) =>
      el("a", { href: value ? `#/?status=${value}` : "#/", className: value === status ? "active" : "",
                "data-filter": value || "ALL" }, label)));
  const search = el("input", { type: "search", placeholder: "jobId or execution ARN", id: "find-job" });
  const form = el("form", { onsubmit: (e) => {
    e.preventDefault();
    if (search.value.trim()) location.hash = `#/execution/${encodeURIComponent(search.value.trim())}`;
  } }, search, " ", el("button", { type: "submit" }, "Open"));
  const body = el("tbody");
  const table = el("table", { id: "executions" },
    el("thead", {}, el("tr", {}, ["Name", "Status", "Started", "Stopped", "Duration"].map((h) => el("th", {}, h)))),
    body);
  replace(el("section", {}, el("h1", {}, "Executions"),
    el("div", { className: "toolbar" }, filters, form), el("div", { className: "card" }, table)));
  poll(3, async () => {
    const rows = await api(`/api/executions${status ? "?status=" + encodeURIComponent(status) : ""}`);
    body.replaceChildren(...rows.map((x) => el("tr", { "data-name": x.name },
      el("td", {}, el("a", { href: `#/execution/${encodeURIComponent(x.executionArn)}` }, x.name)),
      el("td", {}, badge(x.status)), el("td", {}, when(x.startDate)), el("td", {}, when(x.stopDate)),
      el("td", {}, x.stopDate ? duration(new Date(x.stopDate) - new Date(x.startDate)) : "…"))));
    if (!rows.length) body.appendChild(el("tr", {}, el("td", { colspan: 5, className: "muted" }, "No executions.")));
    return true;
  });
}

// -- one execution -------------------------------------------------------------------------------
function stateDetails(run, execution) {
  if (!run) {
    return el("div", {}, el("h2", {}, "Execution"),
      el("table", { className: "kv" }, el("tbody", {},
        el("tr", {}, el("td", {}, "status"), el("td", {}, badge(execution.status))),
        execution.error ? el("tr", {}, el("td", {}, "error"), el("td", { className: "error" }, execution.error)) : null)),
      execution.cause ? [el("h2", {}, "Cause"), json(execution.cause)] : null,
      el("h2", {}, "Input"), json(execution.input), el("h2", {}, "Output"), json(execution.output));
  }
  return el("div", { id: "state-details", "data-state": run.name },
    el("h2", {}, run.name),
    el("table", { className: "kv" }, el("tbody", {},
      el("tr", {}, el("td", {}, "type"), el("td", {}, run.type)),
      el("tr", {}, el("td", {}, "status"), el("td", {}, badge(run.status))),
      el("tr", {}, el("td", {}, "entered"), el("td", {}, when(run.entered_at))),
      el("tr", {}, el("td", {}, "duration"), el("td", {}, duration(run.duration_ms))),
      run.retries ? el("tr", {}, el("td", {}, "retries"), el("td", {}, run.retries)) : null,
      run.error ? el("tr", {}, el("td", {}, "error"), el("td", { className: "error" }, run.error)) : null)),
    run.cause ? [el("h2", {}, "Cause"), json(run.cause)] : null,
    el("h2", {}, "Input"), json(run.input), el("h2", {}, "Output"), json(run.output));
}

function eventsTable(events) {
  return el("table", { id: "events" },
    el("thead", {}, el("tr", {}, ["#", "Type", "State", "Elapsed", "Time (UTC)", "Detail"].map((h) => el("th", {}, h)))),
    el("tbody", {}, events.map((e) => {
      const details = Object.entries(e).find(([k, v]) => k.endsWith("EventDetails") && v) || [null, {}];
      const d = details[1];
      const text = d.error ? `${d.error}: ${d.cause || ""}` : (d.resource ? `${d.resourceType}:${d.resource}` : "");
      return el("tr", { "data-type": e.type, className: /Failed|TimedOut|Aborted/.test(e.type) ? "error" : "" },
        el("td", {}, e.id), el("td", {}, e.type), el("td", {}, e.state || ""),
        el("td", {}, duration(e.elapsed_ms)), el("td", {}, clock(e.timestamp)), el("td", { className: "wrap" }, text));
    })));
}

function jobPanel(detail, files) {
  const job = detail.job;
  return el("div", { id: "job" },
    el("h2", {}, "Job record ", job ? badge(job.status) : el("span", { className: "muted" }, "(none)")),
    json(job),
    el("h2", {}, "What it holds or waits for: lock, rate bucket, site breaker"),
    job && job.waitReason ? el("p", { id: "wait-reason" }, `waiting: ${job.waitReason}`,
      job.waitReason === "BREAKER_OPEN" && detail.breaker
        ? ` (breaker of ${detail.breaker.siteKey} ${detail.breaker.state}, open until ${detail.breaker.openUntil || "—"})` : "") : null,
    el("div", { id: "lock-state" }, json({ lock: detail.lock, bucket: detail.bucket, breaker: detail.breaker })),
    evidence(files),
    detail.result ? [el("h2", {}, "Result"), el("div", { id: "result" }, json(detail.result))] : null);
}

// -- a job's evidence: its files grouped by kind (docs/CONTRACTS.md, Worker: artifacts) ------------
const KIND_TITLES = [["trace", "Trace"], ["failure-screenshot", "Failure screenshot"], ["screenshot", "Screenshots"],
  ["console", "Console"], ["network", "Network"], ["pdf", "PDFs"], ["download", "Downloads"], ["file", "Files"],
  ["result", "Result file"]];
const TABLE_ROWS = 200;

function fileLink(a) {
  return el("a", { href: a.url, "data-name": a.name }, a.name.replace(/^artifacts\//, ""));
}

function traceEntry(a, viewer) {
  if (!viewer.available) {
    return el("li", {}, fileLink(a), ` (${a.size} bytes) `,
      el("span", { className: "muted trace-how" }, `No trace viewer here: ${viewer.howTo}`));
  }
  const trace = new URL(a.url, location.origin).href;  // the viewer's service worker fetches it, same origin
  return el("li", {}, el("a", { className: "button open-trace", target: "_blank", rel: "noopener",
    href: `/trace-viewer/index.html?trace=${encodeURIComponent(trace)}` }, "Open trace"), " ", fileLink(a),
    ` (${a.size} bytes)`);
}

// console.json and network.json: arrays of flat records, shown as a table (text only); anything else as JSON
function recordsView(a) {
  const box = el("div", { className: "records", "data-kind": a.kind }, el("p", { className: "muted" }, "Loading…"));
  fetch(a.url).then((r) => r.json()).then((value) => {
    const rows = Array.isArray(value) ? value : (value && (value.entries || value.messages || value.requests));
    if (!Array.isArray(rows) || !rows.every((r) => r && typeof r === "object" && !Array.isArray(r))) {
      box.replaceChildren(json(value));
      return;
    }
    const columns = [...new Set(rows.slice(0, 50).flatMap((r) => Object.keys(r)))].slice(0, 8);
    const cell = (v) => (v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
    box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
      el("tbody", {}, rows.slice(0, TABLE_ROWS).map((r) => el("tr", {}, columns.map((c) =>
        el("td", { className: "wrap" }, cell(r[c]))))))),
      ...(rows.length > TABLE_ROWS ? [el("p", { className: "muted" }, `first ${TABLE_ROWS} of ${rows.length}`)] : []));
  }).catch((error) => box.replaceChildren(el("p", { className: "error" }, `${a.name}: ${error.message}`)));
  return box;
}

function evidence(files) {
  const { artifacts, traceViewer } = files;
  const groups = KIND_TITLES.map(([kind, title]) => [kind, title, artifacts.filter((a) => a.kind === kind)])
    .filter(([, , list]) => list.length);
  return el("div", { id: "artifacts" }, el("h2", {}, `Artifacts (${artifacts.length})`),
    groups.map(([kind, title, list]) => el("section", { className: "kind", "data-kind": kind },
      el("h3", {}, title),
      kind === "trace" ? el("ul", {}, list.map((a) => traceEntry(a, traceViewer)))
        : kind === "failure-screenshot" || kind === "screenshot"
          ? el("div", { className: "artifacts" }, list.map((a) => el("figure", {},
            el("a", { href: a.url }, el("img", { src: a.url, alt: a.name, "data-key": a.key })),
            el("figcaption", {}, a.name))))
          : kind === "console" || kind === "network" ? list.flatMap((a) => [fileLink(a), recordsView(a)])
            : el("ul", {}, list.map((a) => el("li", {}, fileLink(a), ` (${a.size} bytes, ${a.content_type})`))))));
}

function executionView(id) {
  let selected = null;
  let fit = true;
  let last = null;
  const header = el("div");
  const graphBox = el("div", { className: "card graph-wrap", id: "graph" });
  const side = el("div", { className: "card", id: "details" });
  const eventsBox = el("div", { className: "card" }, el("p", { className: "muted" }, "Loading the history…"));
  const jobBox = el("div", { className: "card" }, el("p", { className: "muted" }, "Loading the job…"));
  replace(el("section", {}, header, el("div", { className: "grid wide-left" }, graphBox, side),
    el("div", { className: "grid" }, eventsBox, jobBox)));

  const legend = el("div", { className: "legend" }, [["SUCCEEDED", "ok"], ["FAILED", "bad"], ["CAUGHT", "caught"],
    ["RUNNING", "run"], ["NOT_VISITED", "idle"]].map(([s, v]) =>
    el("span", {}, el("i", { className: `s-${s === "NOT_VISITED" ? "x" : s}` }), s.replace("_", " ").toLowerCase())));

  function render() {
    const { execution, laid, stateStatus, transitions, states } = last;
    const runOf = (name) => [...states].reverse().find((r) => r.name === name);
    const stop = execution.stopDate ? new Date(execution.stopDate) : new Date();
    header.replaceChildren(
      el("h1", {}, execution.name, " ", badge(execution.status)),
      el("p", { className: "muted" }, `${execution.executionArn} · started ${when(execution.startDate)} · `,
        `${execution.stopDate ? "took" : "running for"} ${duration(stop - new Date(execution.startDate))}`));
    const room = graphBox.clientWidth - 30;
    const scale = fit && laid.width > room ? Math.max(MIN_SCALE, room / laid.width) : 1;
    const zoom = el("button", { type: "button", id: "zoom", onclick: () => { fit = !fit; render(); } },
      fit ? "Actual size" : "Fit");
    graphBox.replaceChildren(el("div", { className: "graph-tools" }, legend, zoom),
      drawGraph(laid, stateStatus, transitions, selected, (name) => {
        selected = name;
        render();
      }, scale));
    side.replaceChildren(stateDetails(selected ? runOf(selected) || { name: selected, type: "", status: "NOT_VISITED" } : null, execution));
    eventsBox.replaceChildren(el("h2", {}, `Events (${last.events.length})`), eventsTable(last.events));
  }

  poll(2, async () => {
    const detail = await api(`/api/executions/${encodeURIComponent(id)}`);
    last = { ...detail, laid: await layoutGraph(detail.graph) };
    if (selected === null) {
      const failed = last.states.filter((r) => r.status === "FAILED");
      selected = failed.length ? failed[failed.length - 1].name : null;
    }
    render();
    const jobId = last.execution.name;
    try {
      const [detail, files] = await Promise.all([api(`/api/jobs/${encodeURIComponent(jobId)}`),
        api(`/api/jobs/${encodeURIComponent(jobId)}/artifacts`)]);
      jobBox.replaceChildren(jobPanel(detail, files));
    } catch (error) {
      jobBox.replaceChildren(el("h2", {}, "Job record"), el("p", { className: "muted" }, error.message));
    }
    return !TERMINAL.has(last.execution.status);  // live while it runs, one last render when it ends
  });
}

// -- dead letters --------------------------------------------------------------------------------
function dlqView() {
  const body = el("tbody");
  const note = el("p", { id: "redrive-result", className: "muted" });
  replace(el("section", {}, el("h1", {}, "Dead letters"), note, el("div", { className: "card" },
    el("table", { id: "dlq" }, el("thead", {}, el("tr", {},
      ["Message", "Job", "Status", "Error", "Cause", "Failed at", ""].map((h) => el("th", {}, h)))), body))));

  async function redrive(letter, button) {
    button.disabled = true;
    note.textContent = `Redriving ${letter.jobId}…`;
    const result = await api("/api/dlq/redrive", {
      method: "POST", acceptError: true,
      headers: { "Content-Type": "application/json", "X-Inspector": "1" },
      body: JSON.stringify({ messageId: letter.messageId }),
    });
    note.replaceChildren(result.error
      ? el("span", { className: "error" }, `Redrive failed: ${result.error}`)
      : el("span", {}, `Redriven as `, el("a", { href: `#/execution/${encodeURIComponent(result.newJobId)}`,
        id: "redriven-job" }, result.newJobId)));
    await load();
  }

  async function load() {
    const letters = await api("/api/dlq");
    body.replaceChildren(...letters.map((m) => {
      const button = el("button", { type: "button", "data-message": m.messageId }, "Redrive");
      button.addEventListener("click", () => redrive(m, button).catch((e) => showError(e.message)));
      const error = m.error || {};
      return el("tr", { "data-message": m.messageId },
        el("td", {}, m.messageId),
        el("td", {}, m.jobId ? el("a", { href: `#/execution/${encodeURIComponent(m.jobId)}` }, m.jobId)
          : el("span", { className: "error" }, "no jobId")),
        el("td", {}, badge(m.status)), el("td", {}, error.Error || ""),
        el("td", { className: "wrap" }, error.Cause || m.rawBody || ""), el("td", {}, m.failedAt || ""),
        el("td", {}, m.jobId ? button : ""));
    }));
    if (!letters.length) body.appendChild(el("tr", {}, el("td", { colspan: 7, className: "muted" }, "The DLQ is empty.")));
    return true;
  }
  poll(10, load);
}

// -- routing -------------------------------------------------------------------------------------
function route() {
  routeToken += 1;
  clearTimeout(timer);
  showError("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  if (path.startsWith("/execution/")) executionView(decodeURIComponent(path.slice("/execution/".length)));
  else if (path === "/dlq") dlqView();
  else executionsView(new URLSearchParams(query || ""));
}

window.addEventListener("hashchange", route);
api("/api/config").then((c) => {
  document.getElementById("target").textContent = `${c.stack} · ${c.endpoint} · ${c.region}`;
}).catch((e) => showError(e.message));
route();
