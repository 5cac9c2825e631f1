// The console's pages: read /api/overview or /api/export, render tables and a lateness chart
// (uPlot), and read again every 10 s. Plain script, no build step (README "Console").
"use strict";

const TOKEN_KEY = "spillway-token";
const REFRESH_MS = 10_000;
const params = new URLSearchParams(location.search);
const database = params.get("database") || "default";

// A link may carry a token in its fragment (never sent to a server): kept for the session, then dropped from the address.
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice("#token=".length)));
  history.replaceState(null, "", location.pathname + location.search);
}

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child === undefined || child === null ? "" : String(child)));
  return node;
}

async function getJson(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers });
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (res.status === 401 || res.status === 403) {
    $("auth").hidden = false;
    $("auth-error").textContent = body.error;
    throw new Error(body.error);
  }
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  $("auth").hidden = true;
  return body;
}

const seconds = (s) => (s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : n < 1 << 30 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / (1 << 30)).toFixed(2)} GiB`);
const time = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const exportLink = (name) => `/export?database=${encodeURIComponent(database)}&name=${encodeURIComponent(name)}`;

/** A table from rows: columns are [heading, cell(row) → text or node, class?]. */
function fillTable(table, columns, rows, empty) {
  table.replaceChildren(el("tr", {}, ...columns.map(([heading]) => el("th", {}, heading))));
  for (const row of rows) table.append(el("tr", {}, ...columns.map(([, cell, cls]) => el("td", { class: typeof cls === "function" ? cls(row) : cls }, cell(row)))));
  if (rows.length === 0) table.append(el("tr", {}, el("td", { class: "empty", colspan: String(columns.length) }, empty)));
  table.dataset.rows = String(rows.length);
}

/** The lateness chart: one series per export, points where runs committed. */
function drawChart(container, series) {
  const names = Object.keys(series);
  const points = names.reduce((n, name) => n + series[name].length, 0);
  container.dataset.points = String(points);
  container.dataset.series = names.join(",");
  container.dataset.max = String(Math.max(0, ...names.flatMap((name) => series[name].map((p) => p[1]))));
  container.replaceChildren();
  if (points === 0) {
    container.append(el("p", { class: "empty" }, "No run has exported records in the last 24 h."));
    return;
  }
  const aligned = uPlot.join(names.map((name) => [series[name].map((p) => p[0]), series[name].map((p) => p[1])]));
  const colors = ["#1f6feb", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];
  new uPlot(
    {
      width: Math.min(1100, container.clientWidth || 1000),
      height: 260,
      scales: { x: { time: true } },
      axes: [{}, { label: "seconds", values: (_, ticks) => ticks.map((t) => t.toFixed(1)) }],
      series: [{}, ...names.map((name, i) => ({ label: name, stroke: colors[i % colors.length], spanGaps: true, points: { show: true, size: 6 } }))],
    },
    aligned,
    container,
  );
}

const failureColumns = (withExport) => [
  ...(withExport ? [["export", (f) => el("a", { href: exportLink(f.export) }, f.export)]] : []),
  ["time", (f) => time(f.timestamp)],
  ["kind", (f) => f.kind],
  ["permanent", (f) => (f.permanent ? "yes" : "no")],
  ["details", (f) => f.details, "details"],
];

async function renderOverview() {
  $("database").value = database;
  const data = await getJson(`/api/overview?database=${encodeURIComponent(database)}`);
  $("generated").textContent = `as of ${time(data.generatedAt)}`;
  const maxLateness = Math.max(0, ...data.exports.filter((e) => e.enabled).map((e) => e.latenessSeconds));
  $("summary").replaceChildren(
    el("div", {}, el("b", { id: "export-count" }, data.exports.length), "exports"),
    el("div", {}, el("b", { id: "runs-in-flight" }, data.runsInFlight), "runs in flight"),
    el("div", {}, el("b", { id: "max-lateness" }, seconds(maxLateness)), "max lateness"),
  );
  fillTable(
    $("exports"),
    [
      ["export", (e) => el("a", { href: exportLink(e.name) }, e.name)],
      ["external table", (e) => e.externalTable],
      ["state", (e) => (e.running ? "running" : e.enabled ? "enabled" : "disabled")],
      ["last run", (e) => e.lastRunResult || "none yet", (e) => e.lastRunResult],
      ["last run time", (e) => time(e.lastRunTime)],
      ["exported to", (e) => time(e.exportedTo)],
      ["lateness", (e) => seconds(e.latenessSeconds), (e) => (e.latenessSeconds > 60 ? "num late" : "num")],
      ["records waiting", (e) => e.recordsWaiting, "num"],
    ],
    data.exports,
    "No continuous export in this database.",
  );
  drawChart($("chart"), data.lateness);
  fillTable($("failures"), failureColumns(true), data.failures, "No failure in the last 24 h.");
}

async function renderExport() {
  const name = params.get("name") || "";
  const data = await getJson(`/api/export?database=${encodeURIComponent(database)}&name=${encodeURIComponent(name)}`);
  const e = data.export;
  document.title = `Spillway console: ${e.name}`;
  $("title").textContent = `${database}.${e.name}`;
  $("generated").textContent = `as of ${time(data.generatedAt)}`;
  const fields = [
    ["external table", e.externalTable],
    ["query", `${e.query} (${e.queryLanguage})`],
    ["interval", e.interval],
    ["state", e.running ? "running" : e.enabled ? "enabled" : "disabled"],
    ["last run", e.lastRunResult || "none yet"],
    ["last run time", time(e.lastRunTime)],
    ["exported to", time(e.exportedTo)],
    ["lateness", seconds(e.latenessSeconds)],
    ["records waiting", e.recordsWaiting],
    ["start cursor", e.startCursor],
  ];
  $("details").replaceChildren(...fields.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: k === "query" ? "details" : undefined }, v))));
  drawChart($("chart"), { [e.name]: data.lateness });
  fillTable(
    $("runs"),
    [
      ["run", (r) => r.run, "num"],
      ["result", (r) => r.result, (r) => r.result],
      ["started", (r) => time(r.startedOn)],
      ["duration", (r) => `${r.durationMs} ms`, "num"],
      ["lateness", (r) => (r.latenessSeconds === null ? "" : seconds(r.latenessSeconds)), "num"],
      ["rows read", (r) => r.rowsRead, "num"],
      ["rows written", (r) => r.rowsWritten, "num"],
      ["bytes written", (r) => bytes(r.bytesWritten), "num"],
      ["CPU", (r) => `${r.cpuMs.toFixed(1)} ms`, "num"],
      ["peak memory", (r) => bytes(r.peakMemoryBytes), "num"],
      ["peak DuckDB", (r) => bytes(r.peakDuckdbMemoryBytes), "num"],
      ["parts", (r) => r.parts, "num"],
      ["phases", (r) => r.phases, "details"],
      ["details", (r) => r.details, "details"],
    ],
    data.runs,
    "No run in the last 24 h.",
  );
  fillTable(
    $("artifacts"),
    [
      ["time", (a) => time(a.timestamp)],
      ["path", (a) => a.path, "details"],
      ["records", (a) => a.records, "num"],
      ["size", (a) => bytes(a.bytes), "num"],
    ],
    data.artifacts,
    "No artifact yet.",
  );
  fillTable($("failures"), failureColumns(false), data.failures, "No failure.");
}

async function refresh() {
  const render = document.body.dataset.page === "export" ? renderExport : renderOverview;
  try {
    await render();
    document.body.dataset.state = "ready";
  } catch (err) {
    document.body.dataset.state = "error";
    document.body.dataset.error = err.message;
    if ($("auth").hidden) $("generated").textContent = `could not read: ${err.message}`;
  }
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  void refresh();
});
$("database-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  location.search = `?database=${encodeURIComponent($("database").value.trim() || "default")}`;
});

void refresh();
setInterval(() => void refresh(), REFRESH_MS);
