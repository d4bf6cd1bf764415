// Columns of the runs table: names are fields of the query language (params.lr,
// metrics.loss, max(metrics.acc), tags.team, system.cpu.model, status, ...), so a column
// can be sorted, filtered and grouped by the same name. The picker lists the keys the
// server found in the project's latest runs (/runs:keys) and takes any other field by name.
import { api } from "./api.js";
import { byId, clear, fill, errorBox, fmtDate, fmtDuration, fmtNum, fmtValue, h, statusBadge } from "./dom.js";

export const ATTRIBUTE_LABELS = {
  name: "Name", status: "Status", created: "Created", started: "Started", ended: "Ended",
  duration: "Duration", user: "User", group: "Group", job_type: "Job type", parent: "Parent",
  notes: "Notes", exit_code: "Exit code", project: "Project", id: "Id",
};
const WIDTHS = { name: 220, status: 112, created: 140, started: 140, ended: 140, duration: 110, id: 120 };
const KINDS = ["attributes", "params", "metrics", "tags", "system", "git", "env", "metadata"];

export function kindOf(id) {
  const m = /^(?:(?:min|max|count|last)\()?([a-z]+)\./.exec(id);
  return m ? m[1] : "attributes";
}

export function column(id, widths = {}) {
  const kind = kindOf(id);
  let label = ATTRIBUTE_LABELS[id] || id;
  if (kind !== "attributes") label = id.replace(/^([a-z]+\()?[a-z]+\./, "$1").replace(/`/g, "");
  return {
    id, kind, label, title: id, sortable: true,
    width: widths[id] || WIDTHS[id] || (kind === "metrics" ? 120 : 130),
    num: kind === "metrics" || ["created", "duration", "exit_code"].includes(id),
  };
}

/** The cell of a row for a column, as a node or text. */
export function cellContent(col, row) {
  const id = col.id;
  if (id === "name") return h("a", { href: "/runs/" + encodeURIComponent(row.id), tabindex: "-1" }, row.name || row.id);
  if (id === "status") return statusBadge(row.status);
  const v = row.cells ? row.cells[id] : undefined;
  if (v === undefined || v === null) return "";
  if (["created", "started", "ended"].includes(id)) return fmtDate(v);
  if (id === "duration") return fmtDuration(v);
  if (col.kind === "metrics") return fmtNum(v);
  return fmtValue(v);
}

/** Default columns from the first page of runs: attributes, then a few params and metrics. */
export function defaultColumns(rows) {
  const params = new Set();
  const metrics = new Set();
  for (const row of rows.slice(0, 50)) {
    for (const key of Object.keys(row.cells || {})) {
      if (key.startsWith("params.")) params.add(key);
      else if (key.startsWith("metrics.") && !key.startsWith("metrics.system/") && !key.startsWith("metrics.`system/")) metrics.add(key);
    }
  }
  return ["name", "status", "created", "duration", "user",
    ...[...params].slice(0, 5), ...[...metrics].slice(0, 5)];
}

let keysPromise = null;

/** The project's keys by kind (cached per page). */
export function loadKeys(project) {
  keysPromise ||= api("/runs:keys", { params: { project } }).catch((err) => {
    keysPromise = null;
    throw err;
  });
  return keysPromise;
}

/** The column picker dialog: `state.columns` changes, then `onChange()`. */
export function initPicker(project, state, onChange) {
  const dialog = byId("columns-dialog");
  const body = byId("columns-body");
  const filter = byId("columns-filter");
  const addInput = byId("column-add");
  let keys = null;

  const render = () => {
    if (!keys) return;
    const q = filter.value.trim().toLowerCase();
    clear(body);
    let shown = 0;
    for (const kind of KINDS) {
      const ids = (keys[kind] || []).filter((id) => id !== "id" && id.toLowerCase().includes(q));
      if (!ids.length) continue;
      shown += ids.length;
      const list = h("div", { class: "picker-list", role: "group", "aria-labelledby": `picker-${kind}` });
      for (const id of ids.slice(0, 400)) {
        const box = h("input", { type: "checkbox", checked: state.columns.includes(id), value: id });
        box.addEventListener("change", () => {
          if (box.checked) state.columns.push(id);
          else state.columns = state.columns.filter((c) => c !== id);
          onChange();
        });
        list.append(h("label", { title: id }, box, kind === "attributes" ? ATTRIBUTE_LABELS[id] || id : id));
      }
      body.append(h("div", { class: "picker-group" }, h("h3", { id: `picker-${kind}` }, kind), list));
    }
    if (!shown) body.append(h("p", { class: "muted" }, "No key matches."));
  };

  byId("columns-button").addEventListener("click", async () => {
    dialog.showModal();
    filter.focus();
    if (keys) return render();
    try {
      keys = await loadKeys(project);
      render();
    } catch (err) {
      fill(body, errorBox(err, "Keys could not be read"));
    }
  });
  filter.addEventListener("input", render);

  const add = async () => {
    const id = addInput.value.trim();
    if (!id) return;
    try {  // the server says whether it is a field (and canonicalises it)
      await api("/runs:table", { params: { project, column: id, limit: 1 } });
    } catch (err) {
      body.prepend(errorBox(err, `Not a column: ${id}`));
      return;
    }
    if (!state.columns.includes(id)) state.columns.push(id);
    addInput.value = "";
    onChange();
    render();
  };
  byId("column-add-button").addEventListener("click", add);
  addInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      add();
    }
  });
}
