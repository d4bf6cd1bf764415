// "/runs/{run_id}": overview (status, git with diff, command, hardware, packages, config,
// summary, editable tags and notes), charts of every metric, system metrics, the console
// log (followed live while the run runs), artifacts with previews, and lineage.
import { api, num } from "./api.js";
import { artifactsPanel } from "./artifacts.js";
import { ChartGroup, loadPlotly } from "./charts.js";
import {
  byId, fill, emptyState, errorBox, fmtBytes, fmtDate, fmtDuration, fmtNum, fmtValue, h, kv,
  statusBadge, table, tabs, toast,
} from "./dom.js";
import { lineageOf } from "./lineage.js";

const LOG_MAX = 2_000_000; // characters of console output kept on the page

function diffView(text) {
  const pre = h("pre", { class: "diffview mono", tabindex: "0", "aria-label": "Uncommitted changes" });
  for (const line of text.split("\n")) {
    let cls = "";
    if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") || line.startsWith("index ")) cls = "meta";
    else if (line.startsWith("+")) cls = "add";
    else if (line.startsWith("-")) cls = "del";
    else if (line.startsWith("@@")) cls = "hunk";
    pre.append(h("span", { class: cls }, line), "\n");
  }
  return pre;
}

function summaryOf(run) {
  const out = {};
  for (const [k, s] of Object.entries(run.metrics)) if (!k.startsWith("system/")) out[k] = num(s.last);
  return Object.assign(out, run.summary_overrides || {});
}

function filterableTable(title, rows, columns, empty) {
  const box = h("section", {}, h("h2", {}, title));
  if (!rows.length) {
    box.append(h("p", { class: "muted" }, empty));
    return box;
  }
  const holder = h("div", { class: "scroll-y" });
  const render = (q) => holder.replaceChildren(table(columns,
    rows.filter((r) => !q || String(r[0]).toLowerCase().includes(q.toLowerCase())), { caption: title }));
  if (rows.length > 15) {
    const id = `filter-${title.toLowerCase().replace(/\W+/g, "-")}`;
    box.append(h("div", { class: "toolbar" }, h("label", { for: id }, "Filter"),
      h("input", { id, type: "search", oninput: (e) => render(e.target.value) })));
  }
  render("");
  box.append(holder);
  return box;
}

function tagsEditor(run) {
  const chips = h("div", { class: "chips", "aria-label": "Tags" });
  const render = () => {
    chips.replaceChildren(...Object.entries(run.tags).map(([k, v]) => h("span", { class: "chip" },
      v ? `${k}=${v}` : k,
      h("button", { type: "button", "aria-label": `Remove tag ${k}`, title: "Remove", onclick: async () => {
        try {
          await api(`/runs/${encodeURIComponent(run.id)}/tags/${encodeURIComponent(k)}`, { method: "DELETE" });
          delete run.tags[k];
          render();
        } catch (err) {
          toast(`Tag not removed: ${err.message}`, true);
        }
      } }, "×"))));
    if (!Object.keys(run.tags).length) chips.append(h("span", { class: "muted" }, "No tags."));
  };
  render();
  const key = h("input", { id: "tag-key", type: "text", placeholder: "key", required: true });
  const value = h("input", { id: "tag-value", type: "text", placeholder: "value" });
  const form = h("form", { class: "form-row", "aria-label": "Add a tag" },
    h("div", { class: "field" }, h("label", { for: "tag-key" }, "Tag"), key),
    h("div", { class: "field" }, h("label", { for: "tag-value" }, "Value"), value),
    h("button", { type: "submit" }, "Add tag"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const k = key.value.trim();
    if (!k) return;
    try {
      await api(`/runs/${encodeURIComponent(run.id)}/tags`, { method: "POST", body: { tags: { [k]: value.value } } });
      run.tags[k] = value.value;
      key.value = "";
      value.value = "";
      render();
    } catch (err) {
      toast(`Tag not saved: ${err.message}`, true);
    }
  });
  return h("section", { class: "editable" }, h("h2", {}, "Tags"), chips, form);
}

function notesEditor(run) {
  const area = h("textarea", { id: "notes", rows: 4 });
  area.value = run.notes || "";
  const save = h("button", { type: "button", class: "primary" }, "Save notes");
  const state = h("span", { class: "muted small", role: "status" });
  save.addEventListener("click", async () => {
    try {
      await api(`/runs/${encodeURIComponent(run.id)}`, { method: "PATCH", body: { fields: { notes: area.value } } });
      run.notes = area.value;
      state.textContent = "Saved.";
    } catch (err) {
      state.textContent = "";
      toast(`Notes not saved: ${err.message}`, true);
    }
  });
  return h("section", { class: "editable" }, h("h2", {}, h("label", { for: "notes" }, "Notes")), area,
    h("div", { class: "toolbar" }, save, state));
}

function overview(run) {
  const m = run.metadata || {};
  const git = m.git || null;
  const code = m.code || {};
  const hw = m.hardware || {};
  const env = m.env || {};
  const cards = h("div", { class: "cards" });
  cards.append(h("div", { class: "card" }, h("h3", {}, "Run"), kv([
    ["Status", statusBadge(run.status)],
    ["Exit", run.exit_code !== null ? `${run.exit_code}${run.exit_reason ? ` (${run.exit_reason})` : ""}` : run.exit_reason],
    ["Started", fmtDate(run.started_at)],
    ["Ended", run.ended_at ? fmtDate(run.ended_at) : null],
    ["Duration", fmtDuration((run.ended_at ?? run.heartbeat_at ?? run.started_at) - run.started_at)],
    ["User", run.user], ["Group", run.group], ["Job type", run.job_type],
    ["Parent", run.parent_id ? h("a", { href: "/runs/" + encodeURIComponent(run.parent_id) }, run.parent_id) : null],
    ["Id", h("span", { class: "mono" }, run.id)],
  ])));
  cards.append(h("div", { class: "card" }, h("h3", {}, "Code"), Object.keys(code).length ? kv([
    ["Command", code.command ? h("code", {}, code.command) : null],
    ["Program", code.program], ["Module", code.module], ["Folder", code.cwd], ["Python", code.python_executable],
  ]) : h("p", { class: "muted" }, "Not captured.")));
  const gitCard = h("div", { class: "card" }, h("h3", {}, "Git"));
  if (git) {
    gitCard.append(kv([
      ["Commit", git.commit ? h("span", { class: "mono" }, String(git.commit).slice(0, 12)) : null],
      ["Branch", git.branch], ["Remote", git.remote],
      ["Changes", git.dirty === undefined ? null : git.dirty ? "uncommitted changes" : "clean"],
    ]));
    if (git.diff) {
      const lines = git.diff.split("\n").length;
      gitCard.append(h("details", {}, h("summary", {}, `Diff (${fmtNum(lines)} lines${git.diff_truncated ? ", truncated" : ""})`), diffView(git.diff)));
    }
  } else gitCard.append(h("p", { class: "muted" }, "Not a git checkout, or not captured."));
  cards.append(gitCard);
  const gpus = Array.isArray(hw.gpus) ? hw.gpus : [];
  cards.append(h("div", { class: "card" }, h("h3", {}, "Hardware"), Object.keys(hw).length ? kv([
    ["CPU", hw.cpu ? `${hw.cpu.model || "?"}${hw.cpu.logical ? ` · ${hw.cpu.logical} threads` : ""}` : null],
    ["Memory", hw.memory_total_bytes ? fmtBytes(hw.memory_total_bytes) : null],
    ["GPUs", gpus.length ? gpus.map((g) => g.name || fmtValue(g)).join(", ") : "none"],
  ]) : h("p", { class: "muted" }, "Not captured.")));
  if (Object.keys(env).length) {
    cards.append(h("div", { class: "card" }, h("h3", {}, "Environment"), kv([
      ["Python", env.python], ["OS", env.distribution || env.os], ["Host", env.hostname],
      ["Container", env.container], ["CI", env.ci], ["Slurm", env.slurm ? fmtValue(env.slurm) : null],
    ])));
  }
  const config = Object.entries(run.config).sort(([a], [b]) => a.localeCompare(b));
  const summary = Object.entries(summaryOf(run)).sort(([a], [b]) => a.localeCompare(b));
  const packages = Object.entries(m.packages || {}).sort(([a], [b]) => a.localeCompare(b));
  const pair = [{ label: "Key", value: (r) => h("span", { class: "mono" }, r[0]) }, { label: "Value", value: (r) => fmtValue(r[1]) }];
  const pkg = filterableTable("Packages", packages, [{ label: "Package", value: (r) => r[0] }, { label: "Version", value: (r) => r[1] }], "Not captured.");
  return [
    cards,
    h("div", { class: "cards", style: { marginTop: "12px" } }, h("div", { class: "card" }, tagsEditor(run)), h("div", { class: "card" }, notesEditor(run))),
    filterableTable("Config", config, pair, "No params logged."),
    filterableTable("Summary", summary, pair, "No metrics logged."),
    h("details", {}, h("summary", {}, `Packages (${packages.length})`), pkg),
  ];
}

function logsPanel(run, live) {
  const pre = byId("log");
  const follow = byId("log-follow");
  const status = byId("log-status");
  let after = 0;
  let size = 0;
  const poll = async () => {
    try {
      const chunks = await api(`/runs/${encodeURIComponent(run.id)}/logs`, { params: { after } });
      if (chunks.length) {
        const text = chunks.map((c) => c[1]).join("");
        after = chunks[chunks.length - 1][0];
        pre.append(text);
        size += text.length;
        if (size > LOG_MAX) {
          pre.textContent = pre.textContent.slice(-LOG_MAX / 2);
          size = pre.textContent.length;
        }
        if (follow.checked) pre.scrollTop = pre.scrollHeight;
      }
      if (!size) status.textContent = live() ? "Waiting for output…" : "No console output was captured.";
      else status.textContent = live() ? "Live: following the run's output." : "";
    } catch (err) {
      status.textContent = `Could not read the log: ${err.message}`;
    }
    if (live()) setTimeout(poll, 2000);
  };
  poll();
}

export async function main({ run: runId }) {
  const overviewPanel = byId("panel-overview");
  let run;
  // the tabs work at once; a panel is filled when the run is here
  let loaded;
  const ready = new Promise((resolve) => (loaded = resolve));
  const started = new Set();
  tabs(byId("tabs"), (tab) => ready.then((show) => show && show(tab)));
  try {
    run = await api(`/runs/${encodeURIComponent(runId)}`);
  } catch (err) {
    fill(overviewPanel, err.status === 404
      ? emptyState("No such run", `There is no run with id ${runId}.`)
      : errorBox(err, "The run could not be read"));
    loaded(null);
    return;
  }
  document.title = `${run.name} · mltrail`;
  const projectHref = "/projects/" + encodeURIComponent(run.project);
  byId("crumbs").replaceChildren(h("a", { href: "/" }, "Projects"), " / ", h("a", { href: projectHref }, run.project), " /");
  byId("heading").replaceChildren(run.name, " ", statusBadge(run.status));
  byId("subheading").replaceChildren(h("span", { class: "mono" }, run.id), ` · started ${fmtDate(run.started_at)}`,
    run.user ? ` by ${run.user}` : "");
  fill(overviewPanel, ...overview(run));
  // charts are one click away: evaluate Plotly.js (preloaded by the page) once idle
  if (Object.keys(run.metrics).length) requestIdleCallback(() => loadPlotly().catch(() => {}), { timeout: 3000 });

  const live = () => run.status === "running";
  const keys = Object.keys(run.metrics).sort();
  const metricKeys = keys.filter((k) => !k.startsWith("system/"));
  const systemKeys = keys.filter((k) => k.startsWith("system/"));
  const runs = [{ id: run.id, name: run.name }];
  let charts = null;
  loaded((tab) => {
    if (started.has(tab) || tab === "overview") return;
    started.add(tab);
    const panel = byId(`panel-${tab}`);
    if (tab === "charts") charts = new ChartGroup(panel, runs, metricKeys, { idPrefix: "metrics", xKeys: metricKeys });
    else if (tab === "system") new ChartGroup(panel, runs, systemKeys, { idPrefix: "system", emptyText: "No system metrics were sampled for this run." });
    else if (tab === "logs") logsPanel(run, live);
    else if (tab === "artifacts") {
      panel.append(h("p", { class: "loading" }, "Loading artifacts"));
      artifactsPanel(panel, run.id);
    } else if (tab === "lineage") {
      panel.replaceChildren(h("p", { class: "loading" }, "Loading lineage"));
      lineageOf(run.id).then((node) => panel.replaceChildren(
        h("p", { class: "muted" }, "Data flows left to right: the datasets and artifacts this run used, the run, what it logged and the model versions registered from it."),
        node));
    }
  });

  // a running run: status, metrics and charts follow it
  const refresh = async () => {
    if (!live() || document.hidden) return;
    try {
      const fresh = await api(`/runs/${encodeURIComponent(run.id)}`);
      const changed = fresh.status !== run.status;
      run = Object.assign(run, { status: fresh.status, metrics: fresh.metrics, ended_at: fresh.ended_at, heartbeat_at: fresh.heartbeat_at });
      if (changed) byId("heading").replaceChildren(run.name, " ", statusBadge(run.status));
      if (charts) charts.redrawAll(true);
    } catch {
      /* try again */
    }
  };
  if (live()) setInterval(refresh, 5000);
}
