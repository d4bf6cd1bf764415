// "/sweeps[?project=P]": the sweeps with their search, state, trials and best value;
// "/sweeps/ID": one sweep (GET /sweeps/ID/report, what `mltrail sweep show` reads): its
// trials ranked by the metric, the best configuration, parameter importance, parallel
// coordinates and the metric over trials, its configuration, and stop/resume. Both
// refresh every few seconds while a sweep runs.
import { api, num } from "./api.js";
import { loadPlotly } from "./charts.js";
import {
  byId, emptyState, fill, fmtAgo, fmtDate, fmtDuration, fmtNum, fmtValue, h, kv, loadAll,
  statusBadge, table, toast,
} from "./dom.js";
import { themeColors } from "./theme.js";

const REFRESH_MS = 3000;
const EMPTY_HELP = "Describe the search in a YAML file (W&B's sweep format), create the sweep, then start agents:";
const EMPTY_CODE = "mltrail sweep config.yaml\nmltrail agent SWEEP_ID";

const sweepHref = (id) => "/sweeps/" + encodeURIComponent(id);
const runHref = (id) => "/runs/" + encodeURIComponent(id);
const isLive = (s) => s.state === "running" || (s.counts.running || 0) > 0;
const goalOf = (s) => (s.metric ? `${s.metric} (${s.goal})` : "no metric");

/** Calls `load` every few seconds while `more()` holds (skipped while the tab is hidden). */
function refresher(load, more, status) {
  let timer = 0;
  const schedule = () => {
    clearTimeout(timer);
    const on = more();
    if (status) status.textContent = on ? "Live: refreshing every 3 s" : "";
    if (!on) return;
    timer = setTimeout(async () => {
      if (!document.hidden) {
        try {
          await load();
        } catch (err) {
          console.warn("refresh failed:", err);
        }
      }
      schedule();
    }, REFRESH_MS);
  };
  return schedule;
}

function trialCounts(s) {
  const c = s.counts || {};
  const failed = (c.failed || 0) + (c.crashed || 0);
  const all = Object.entries(c).map(([k, n]) => `${n} ${k}`).join(", ") || "none yet";
  return h("span", { title: all }, `${c.finished || 0} done · ${c.running || 0} running · ${failed} failed`);
}

/** {a: {b: 1}} -> {"a.b": 1} (as `mltrail sweep show` names nested parameters). */
function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) flatten(v, prefix + k + ".", out);
    else out[prefix + k] = v;
  }
  return out;
}

// -- YAML for the configuration view (JSON-compatible values only) --------------------------

const PLAIN = /^[A-Za-z_/][\w ./@:-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function yamlScalar(v) {
  if (Array.isArray(v)) return "[]";
  if (v && typeof v === "object") return "{}";
  if (typeof v === "string") return PLAIN.test(v) && !RESERVED.test(v) && !v.endsWith(" ") && !v.includes(": ") ? v : JSON.stringify(v);
  return v === undefined ? "null" : JSON.stringify(v);
}

const nested = (v) => v !== null && typeof v === "object" && Object.keys(v).length > 0;

export function toYaml(value, indent = "") {
  const lines = [];
  if (Array.isArray(value)) {
    for (const v of value) {
      if (!nested(v)) lines.push(`${indent}- ${yamlScalar(v)}`);
      else {
        const [first, ...rest] = toYaml(v, indent + "  ");
        lines.push(`${indent}- ${first.trimStart()}`, ...rest);
      }
    }
    return lines;
  }
  for (const [k, v] of Object.entries(value)) {
    if (nested(v)) lines.push(`${indent}${yamlScalar(k)}:`, ...toYaml(v, indent + "  "));
    else lines.push(`${indent}${yamlScalar(k)}: ${yamlScalar(v)}`);
  }
  return lines;
}

// -- the list --------------------------------------------------------------------------------

async function listPage() {
  const box = byId("sweeps");
  const filter = byId("sweep-filter");
  const project = new URLSearchParams(location.search).get("project") || undefined;
  if (project) byId("subheading").textContent = `Sweeps of project ${project}.`;
  const best = new Map(); // sweep id -> best trial (null: none yet)
  let sweeps = [];
  const columns = [
    { label: "Sweep", value: (s) => h("span", {}, h("a", { href: sweepHref(s.id) }, s.name), " ", h("span", { class: "muted small mono" }, s.id)) },
    { label: "Project", value: (s) => h("a", { href: "/sweeps?project=" + encodeURIComponent(s.project) }, s.project) },
    { label: "Method", value: (s) => s.method },
    { label: "Metric", value: (s) => goalOf(s) },
    { label: "State", value: (s) => statusBadge(s.state) },
    { label: "Trials", value: trialCounts },
    { label: "Best", num: true, value: (s) => (best.has(s.id) ? fmtNum(num(best.get(s.id)?.value ?? "")) : "…") },
    { label: "Created", value: (s) => h("span", { title: fmtDate(s.created_at) }, fmtAgo(s.created_at)) },
  ];
  const render = () => {
    if (!sweeps.length) {
      fill(box, emptyState("No sweeps yet", project ? `Project ${project} has no sweeps. ${EMPTY_HELP}` : EMPTY_HELP, EMPTY_CODE));
      return;
    }
    const q = filter.value.trim().toLowerCase();
    const rows = sweeps.filter((s) => [s.name, s.id, s.project].some((t) => (t || "").toLowerCase().includes(q)));
    fill(box, rows.length ? table(columns, rows, { caption: "Sweeps" }) : emptyState("Nothing matches", `No sweep name, id or project contains “${q}”.`));
  };
  const readBest = (list) => Promise.all(list.map((s) =>
    api(`/sweeps/${encodeURIComponent(s.id)}/report`).then((r) => best.set(s.id, r.best), () => best.set(s.id, null))));
  const load = async () => {
    sweeps = await api("/sweeps", { params: { project } });
    render();
    await readBest(sweeps.filter((s) => !best.has(s.id) || isLive(s)));
    render();
  };
  const first = await loadAll(box, [api("/sweeps", { params: { project } })], "Sweeps");
  if (!first) return;
  [sweeps] = first;
  render();
  filter.addEventListener("input", render);
  const schedule = refresher(load, () => sweeps.some(isLive));
  await readBest(sweeps);
  render();
  box.dataset.loaded = "true";
  schedule();
}

// -- one sweep -------------------------------------------------------------------------------

function plotLayout(extra) {
  const c = themeColors();
  const axis = { gridcolor: c.border, zerolinecolor: c.border };
  return {
    margin: { l: 60, r: 30, t: 30, b: 50 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: c.fg, size: 11 }, xaxis: { ...axis }, yaxis: { ...axis }, ...extra,
  };
}

/** Parallel coordinates: one axis per searched parameter, the metric last (and colour). */
async function drawParcoords(el, report) {
  const { sweep } = report;
  const scored = report.trials.filter((t) => typeof num(t.value) === "number" && Number.isFinite(num(t.value)));
  if (!scored.length) {
    fill(el, emptyState("Nothing to plot yet", "The chart appears with the first trial that reports the metric."));
    el.dataset.state = "empty";
    return;
  }
  const Plotly = await loadPlotly();
  const flat = scored.map((t) => flatten(t.params));
  const dimensions = report.searched.map((key) => {
    const values = flat.map((f) => f[key]);
    if (values.every((v) => typeof v === "number")) return { label: key, values };
    const cats = [...new Set(values.map(fmtValue))].sort();
    return { label: key, values: values.map((v) => cats.indexOf(fmtValue(v))), tickvals: cats.map((_, i) => i), ticktext: cats };
  });
  const values = scored.map((t) => num(t.value));
  dimensions.push({ label: sweep.metric || "value", values });
  if (el.dataset.state !== "drawn") el.replaceChildren(); // a drawn plot is updated in place
  await Plotly.react(el, [{
    type: "parcoords", dimensions,
    line: { color: values, colorscale: "Viridis", reversescale: sweep.goal === "minimize", showscale: true },
  }], plotLayout({ margin: { l: 60, r: 60, t: 40, b: 20 } }), { displaylogo: false, responsive: true });
  el.dataset.state = "drawn";
}

/** The metric of each trial by trial number, and the best so far. */
async function drawProgress(el, report) {
  const { sweep } = report;
  const scored = report.trials.filter((t) => typeof num(t.value) === "number" && Number.isFinite(num(t.value)))
    .sort((a, b) => a.number - b.number);
  if (!scored.length) {
    fill(el, emptyState("Nothing to plot yet", "The chart appears with the first trial that reports the metric."));
    el.dataset.state = "empty";
    return;
  }
  const Plotly = await loadPlotly();
  const c = themeColors();
  const better = sweep.goal === "maximize" ? Math.max : Math.min;
  let best = null;
  const bestSoFar = scored.map((t) => (best = best === null ? num(t.value) : better(best, num(t.value))));
  const x = scored.map((t) => t.number);
  if (el.dataset.state !== "drawn") el.replaceChildren(); // a drawn plot is updated in place
  await Plotly.react(el, [
    { type: "scatter", mode: "markers", name: "trial", x, y: scored.map((t) => num(t.value)),
      text: scored.map((t) => `trial ${t.number} (${t.status})`), marker: { size: 9, color: c.accent },
      hovertemplate: "%{text}<br>%{y}<extra></extra>" },
    { type: "scatter", mode: "lines", name: "best so far", x, y: bestSoFar, line: { shape: "hv", color: c.muted, dash: "dot" } },
  ], plotLayout({
    xaxis: { gridcolor: c.border, zerolinecolor: c.border, title: { text: "trial" }, dtick: 1 },
    yaxis: { gridcolor: c.border, zerolinecolor: c.border, title: { text: sweep.metric || "value" } },
    legend: { orientation: "h", y: 1.12 },
  }), { displaylogo: false, responsive: true });
  el.dataset.state = "drawn";
}

function trialsTable(report) {
  const { sweep, trials, searched } = report;
  if (!trials.length) return emptyState("No trials yet", "Start an agent to run the first one:", `mltrail agent ${sweep.id}`);
  const now = Date.now() / 1000;
  const columns = [
    { label: "Rank", num: true, value: (t) => (t.rank === null ? "–" : String(t.rank)) },
    { label: "#", num: true, value: (t) => String(t.number) },
    { label: "Run", value: (t) => (t.run_id ? h("a", { href: runHref(t.run_id), class: "mono" }, t.run_id) : "") },
    { label: "Status", value: (t) => statusBadge(t.status) },
    { label: sweep.metric || "value", num: true, value: (t) => fmtNum(num(t.value)) },
    ...searched.map((key) => ({ label: key, num: true, value: (t) => fmtValue(flatten(t.params)[key]) })),
    { label: "Duration", num: true, value: (t) => (t.started_at ? fmtDuration((t.ended_at || (t.status === "running" ? now : t.heartbeat_at) || now) - t.started_at) : "") },
  ];
  return h("div", { class: "scroll-x" }, table(columns, trials, {
    caption: `Trials ranked by ${goalOf(sweep)}`,
    rowClass: (t) => (report.best && t.number === report.best.number ? "best" : ""),
  }));
}

function bestBox(report) {
  const { best } = report;
  if (!best) return emptyState("No best trial yet", "It is the finished trial with the best value of the metric.");
  return h("div", {},
    h("p", {}, `Trial ${best.number}, `, h("a", { href: runHref(best.run_id) }, `run ${best.run_id}`), ": ",
      h("strong", {}, `${report.sweep.metric || "value"} = ${fmtNum(num(best.value))}`)),
    kv(Object.entries(flatten(best.params)).map(([k, v]) => [k, fmtValue(v)])));
}

function importanceTable(report) {
  if (!report.importance.length) return h("p", { class: "muted" }, "Needs at least 3 finished trials whose parameters vary.");
  return h("div", { class: "scroll-x" }, table([
    { label: "Parameter", value: (w) => h("span", { class: "mono" }, w.param) },
    { label: "Importance", value: (w) => h("span", { class: "importance" },
      h("meter", { min: 0, max: 1, value: w.importance, "aria-label": `importance of ${w.param}` }), " ", w.importance.toFixed(2)) },
    { label: "Correlation", num: true, value: (w) => (w.correlation === null ? "–" : (w.correlation > 0 ? "+" : "") + w.correlation.toFixed(2)) },
  ], report.importance, { caption: "Parameter importance" }));
}

function configView(sweep) {
  const text = { yaml: toYaml(sweep.config).join("\n") + "\n", json: JSON.stringify(sweep.config, null, 2) + "\n" };
  const pre = h("pre", { id: "sweep-config", class: "config", tabindex: "0", "aria-label": "Configuration" }, text.yaml);
  const buttons = ["yaml", "json"].map((fmt) => h("button", {
    type: "button", "aria-pressed": String(fmt === "yaml"), dataset: { format: fmt },
    onclick: () => {
      pre.textContent = text[fmt];
      for (const b of buttons) b.setAttribute("aria-pressed", String(b === buttons.find((x) => x.dataset.format === fmt)));
    },
  }, fmt.toUpperCase()));
  return h("div", {}, h("div", { class: "toolbar", role: "group", "aria-label": "Format" }, buttons), pre);
}

async function sweepPage({ sweep: id }) {
  const box = byId("sweep");
  const button = byId("sweep-state");
  const path = `/sweeps/${encodeURIComponent(id)}`;
  const loaded = await loadAll(box, [api(path + "/report")], "The sweep",
    emptyState("No such sweep", `There is no sweep ${id} (or you may not read it).`));
  if (!loaded) return;
  let [report] = loaded;
  const { sweep } = report;
  document.title = `${sweep.name} · mltrail`;
  byId("heading").textContent = sweep.name;
  byId("crumbs").replaceChildren(h("a", { href: "/sweeps" }, "Sweeps"), " / ",
    h("a", { href: "/sweeps?project=" + encodeURIComponent(sweep.project) }, sweep.project), " /");
  byId("subheading").replaceChildren(`${sweep.method} search · ${goalOf(sweep)} · project `,
    h("a", { href: "/projects/" + encodeURIComponent(sweep.project) }, sweep.project));

  const summary = h("div", { id: "sweep-summary" });
  const bestEl = h("div", { id: "sweep-best" });
  const importanceEl = h("div", { id: "sweep-importance" });
  const trialsEl = h("div", { id: "sweep-trials" });
  const parcoords = h("div", { id: "sweep-parcoords", class: "plot", role: "img", "aria-label": "Parallel coordinates of the parameters and the metric" });
  const progress = h("div", { id: "sweep-progress", class: "plot", role: "img", "aria-label": "The metric over trials" });
  fill(box,
    h("div", { class: "cards" },
      h("section", { class: "card", "aria-labelledby": "h-summary" }, h("h2", { id: "h-summary" }, "Summary"), summary),
      h("section", { class: "card", "aria-labelledby": "h-best" }, h("h2", { id: "h-best" }, "Best configuration"), bestEl),
      h("section", { class: "card", "aria-labelledby": "h-importance" }, h("h2", { id: "h-importance" }, "Parameter importance"), importanceEl)),
    h("section", { "aria-labelledby": "h-trials" }, h("h2", { id: "h-trials" }, "Trials"), trialsEl),
    h("section", { "aria-labelledby": "h-charts" }, h("h2", { id: "h-charts" }, "Charts"),
      h("div", { class: "charts" }, parcoords, progress)),
    h("section", { "aria-labelledby": "h-config" }, h("h2", { id: "h-config" }, "Configuration"), configView(sweep)));

  const agentCommand = sweep.config.program ? `mltrail agent ${sweep.id}` : `mltrail.agent("${sweep.id}", function=train)`;
  const render = async () => {
    const s = report.sweep;
    fill(summary, kv([
      ["State", statusBadge(s.state)], ["Trials", trialCounts(s)], ["Id", h("span", { class: "mono" }, s.id)],
      ["Created", `${fmtDate(s.created_at)}${s.created_by ? " by " + s.created_by : ""}`],
      ["Run cap", s.run_cap], ["Agents", h("code", {}, agentCommand)],
    ]));
    fill(bestEl, bestBox(report));
    fill(importanceEl, importanceTable(report));
    fill(trialsEl, trialsTable(report));
    const stop = s.state === "running";
    button.hidden = !(stop || s.state === "stopped" || s.state === "canceled");
    button.textContent = stop ? "Stop sweep" : "Resume sweep";
    button.className = stop ? "danger" : "primary";
    button.title = stop ? "No new trials start; running ones finish" : "Agents take new trials again";
    await Promise.all([drawParcoords(parcoords, report), drawProgress(progress, report)].map((p) =>
      p.catch((err) => console.warn("plot failed:", err))));
  };
  const load = async () => {
    report = await api(path + "/report");
    await render();
  };
  const schedule = refresher(load, () => isLive(report.sweep), byId("sweep-live"));
  button.addEventListener("click", async () => {
    const state = report.sweep.state === "running" ? "stopped" : "running";
    button.disabled = true;
    try {
      await api(path + "/state", { method: "POST", body: { state } });
      toast(state === "running" ? "Sweep resumed" : "Sweep stopped: running trials finish, no new ones start");
      await load();
      schedule();
    } catch (err) {
      toast(`Could not ${state === "running" ? "resume" : "stop"} the sweep: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  });
  document.addEventListener("themechange", () => render());
  await render();
  box.dataset.loaded = "true";
  schedule();
}

export function main(data) {
  return data.page === "sweep" ? sweepPage(data) : listPage();
}
