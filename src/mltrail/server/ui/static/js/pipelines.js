// "/pipelines[?project=P][&run=ID]": the runs `mltrail repro` recorded (job_type
// "pipeline-stage"), grouped by stage: the latest run of each with its status, duration
// and age; and the lineage (upstream and downstream, as on a run's page) of one run.
import { api } from "./api.js";
import { byId, emptyState, fill, fmtAgo, fmtDate, fmtDuration, fmtNum, h, loadAll, statusBadge, table } from "./dom.js";
import { lineageOf } from "./lineage.js";

const LIMIT = 1000; // stage runs read (newest first)

/** Stages from the runs (newest first): per project and stage name, its runs. */
function stagesOf(rows) {
  const stages = new Map();
  for (const row of rows) {
    const key = `${row.project}\n${row.name}`;
    if (!stages.has(key)) stages.set(key, { project: row.project, name: row.name, latest: row, count: 0 });
    stages.get(key).count++;
  }
  // projects by name, stages in the order their latest runs started (the pipeline's order)
  return [...stages.values()].sort((a, b) => a.project.localeCompare(b.project)
    || (a.latest.cells.created ?? 0) - (b.latest.cells.created ?? 0));
}

export async function main() {
  const params = new URLSearchParams(location.search);
  const project = params.get("project") || "";
  const box = byId("pipelines");
  const select = byId("pipeline-project");
  const loaded = await loadAll(box, [
    api("/runs:table", {
      params: { project: project || undefined, query: "job_type = 'pipeline-stage'", column: ["created", "duration"], limit: LIMIT },
    }),
    api("/projects").catch(() => []),
  ], "Pipeline runs");
  if (!loaded) return;
  const [{ rows }, projects] = loaded;
  for (const p of projects) select.append(h("option", { value: p.project.name, selected: p.project.name === project }, p.project.name));
  if (project && !projects.some((p) => p.project.name === project)) select.append(h("option", { value: project, selected: true }, project));
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.search = select.value ? "?project=" + encodeURIComponent(select.value) : "";
    location.assign(url);
  });
  if (!rows.length) {
    fill(box, emptyState("No pipeline runs yet",
      `${project ? `Project ${project} has none. ` : ""}Describe stages (cmd, deps, outs) in mltrail.yaml, then run them: each stage that runs is recorded here.`,
      "mltrail repro"));
    return;
  }
  const stages = stagesOf(rows);
  byId("subheading").textContent = `${stages.length} stages, ${rows.length}${rows.length === LIMIT ? "+" : ""} stage runs${project ? ` in ${project}` : ""}.`;
  const chosen = params.get("run") || [...rows].sort((a, b) => (b.cells.created ?? 0) - (a.cells.created ?? 0))[0].id;
  const lineageBox = h("div", { id: "pipeline-lineage", "aria-live": "polite" });
  const lineageHead = h("h2", { id: "h-lineage" }, "Lineage");
  const buttons = [];
  const show = async (run) => {
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.run === run.id));
    lineageHead.textContent = `Lineage of ${run.name} (${run.id})`;
    fill(lineageBox, h("p", { class: "loading" }, "Loading lineage"));
    const graph = await lineageOf(run.id);
    fill(lineageBox, h("p", {}, h("a", { href: "/runs/" + encodeURIComponent(run.id) }, "Open the run"),
      " · upstream stages and inputs on the left, what it produced on the right"), graph);
    lineageBox.dataset.run = run.id;
  };
  const choose = (run) => {
    const url = new URL(location.href);
    url.searchParams.set("run", run.id);
    history.replaceState(null, "", url);
    return show(run);
  };
  const columns = [
    { label: "Stage", value: (s) => h("strong", { class: "mono" }, s.name) },
    project ? null : { label: "Project", value: (s) => h("a", { href: "/pipelines?project=" + encodeURIComponent(s.project) }, s.project) },
    { label: "Status", value: (s) => statusBadge(s.latest.status) },
    { label: "Duration", num: true, value: (s) => fmtDuration(s.latest.cells.duration) },
    { label: "When", value: (s) => h("span", { title: fmtDate(s.latest.cells.created) }, fmtAgo(s.latest.cells.created)) },
    { label: "Runs", num: true, value: (s) => fmtNum(s.count) },
    { label: "Latest run", value: (s) => h("a", { href: "/runs/" + encodeURIComponent(s.latest.id), class: "mono" }, s.latest.id) },
    { label: "Lineage", value: (s) => {
      const b = h("button", { type: "button", "aria-pressed": "false", dataset: { run: s.latest.id },
        "aria-label": `Show the lineage of ${s.name}`, onclick: () => choose(s.latest) }, "Show");
      buttons.push(b);
      return b;
    } },
  ].filter(Boolean);
  fill(box,
    h("section", { "aria-label": "Stages" }, table(columns, stages, { caption: "Pipeline stages, latest run of each" })),
    h("section", { "aria-labelledby": "h-lineage" }, lineageHead, lineageBox));
  const first = rows.find((r) => r.id === chosen) || { id: chosen, name: chosen };
  await show(first);
  box.dataset.loaded = "true";
}
