// "/projects/{project}": the runs table. Rows are fetched a page at a time as they come
// into view (/runs:table, only the columns shown); the search box takes the query
// language and marks the parser's error position; grouping splits the rows into
// sections, each its own query (/runs:groups); running runs refresh every few seconds.
import { api, download } from "./api.js";
import { cellContent, column, defaultColumns, initPicker, loadKeys } from "./columns.js";
import { byId, emptyState, errorBox, fmtNum, fmtValue, h, toast } from "./dom.js";
import { VirtualGrid } from "./grid.js";

const PAGE = 100;
const FIRST = 50; // a search's first request: the rows in view, sooner (the rest follows)
const MAX_IN_FLIGHT = 3;
const MAX_PAGES = 80; // pages kept per section; the farthest from view go first
const LIVE_MS = 5000;

class Section {
  constructor({ query, label = null, count = 0, expanded = true }) {
    this.query = query;
    this.label = label;
    this.count = count;
    this.expanded = expanded;
    this.pages = new Map(); // page number -> {rows, stale}
    this.loading = new Set();
  }
  row(k) {
    const page = this.pages.get(Math.floor(k / PAGE));
    return page ? page.rows[k % PAGE] : undefined;
  }
}

export async function main({ project }) {
  const storeKey = `mltrail.runs:${project}`;
  const saved = JSON.parse(localStorage.getItem(storeKey) || "{}");
  const url = new URL(location.href);
  const state = {
    query: url.searchParams.get("q") || "",
    columns: saved.columns || null, // null until the first page suggests defaults
    widths: saved.widths || {},
    order: saved.order || null, // {id, desc}
    groupBy: saved.groupBy || "",
    selected: new Set(),
  };
  let sections = [];
  let starts = []; // item index where each section starts
  let total = 0;
  let generation = 0;
  let inFlight = 0;
  let visible = [0, 0];
  let firstPaint = false;
  let allRuns = null;

  const gridEl = byId("grid");
  const input = byId("query");
  const errorEl = byId("query-error");
  const grouped = () => Boolean(state.groupBy);
  input.value = state.query;

  const save = () => localStorage.setItem(storeKey, JSON.stringify({
    columns: state.columns, widths: state.widths, order: state.order, groupBy: state.groupBy,
  }));

  // -- layout: sections -> items ------------------------------------------------------------
  const layout = () => {
    starts = [];
    total = 0;
    for (const s of sections) {
      starts.push(total);
      total += (grouped() ? 1 : 0) + (s.expanded ? s.count : 0);
    }
    grid.setCount(total);
  };
  const locate = (i) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    const section = sections[lo];
    if (!section || starts.length !== sections.length) return { section: null, k: 0 }; // between layouts
    const k = i - starts[lo] - (grouped() ? 1 : 0);
    return { section, k };
  };

  // -- columns ------------------------------------------------------------------------------
  let cols = [];
  const dataColumns = () => (state.columns || []).filter((id) => id !== "name" && id !== "status");
  const setColumns = () => {
    cols = [{ id: "__select", label: "", width: 36, resizable: false },
      ...(state.columns || ["name", "status"]).map((id) => {
        const c = column(id, state.widths);
        if (state.order && state.order.id === id) c.sort = state.order.desc ? "descending" : "ascending";
        return c;
      })];
    grid.setColumns(cols);
  };

  // -- rows ---------------------------------------------------------------------------------
  const renderItem = (i, row) => {
    const { section, k } = locate(i);
    if (section && k < 0) {
      row.className = "grid-row group";
      row.setAttribute("aria-expanded", String(section.expanded));
      row.removeAttribute("aria-selected");
      row.replaceChildren(h("div", { class: "cell" }, section.label, " ",
        h("span", { class: "muted" }, `(${fmtNum(section.count)})`)));
      return;
    }
    row.removeAttribute("aria-expanded");
    const data = section && section.row(k);
    if (!data) {
      row.className = "grid-row placeholder";
      row.removeAttribute("aria-selected");
      row.replaceChildren(...cols.map(() => h("div", { class: "cell" })));
      return;
    }
    const selected = state.selected.has(data.id);
    row.className = "grid-row";
    row.setAttribute("aria-selected", String(selected));
    row.dataset.runId = data.id;
    row.replaceChildren(...cols.map((c) => {
      if (c.id === "__select") {
        return h("div", { class: "cell" }, h("input", {
          type: "checkbox", checked: selected, tabindex: "-1", "aria-label": `Select ${data.name || data.id}`,
          dataset: { select: data.id },
        }));
      }
      const content = cellContent(c, data);
      return h("div", { class: "cell" + (c.num ? " num" : ""), title: typeof content === "string" ? content : undefined }, content);
    }));
  };

  const grid = new VirtualGrid(gridEl, {
    rowHeight: 32,
    renderItem,
    onRange: (first, last) => {
      visible = [first, last];
      want();
    },
    onSort: (c) => {
      const current = state.order && state.order.id === c.id ? state.order : null;
      state.order = !current ? { id: c.id, desc: true } : current.desc ? { id: c.id, desc: false } : null;
      save();
      reload();
    },
    onResize: (c) => {
      state.widths[c.id] = c.width;
      save();
    },
    onSelectAll: (checked) => {
      for (const s of sections) for (const page of s.pages.values()) for (const r of page.rows) {
        if (checked) state.selected.add(r.id);
        else state.selected.delete(r.id);
      }
      selectionChanged();
    },
    onToggle: (i) => toggleItem(i),
    onActivate: (i, e) => {
      const { section, k } = locate(i);
      if (!section) return;
      if (k < 0) return toggleSection(section);
      const data = section.row(k);
      if (data) {
        const href = "/runs/" + encodeURIComponent(data.id);
        if (e.ctrlKey || e.metaKey) window.open(href, "_blank");
        else location.assign(href);
      }
    },
  });

  const toggleSection = (section) => {
    section.expanded = !section.expanded;
    layout();
  };
  const toggleItem = (i) => {
    const { section, k } = locate(i);
    if (!section) return;
    if (k < 0) return toggleSection(section);
    const data = section.row(k);
    if (!data) return;
    if (state.selected.has(data.id)) state.selected.delete(data.id);
    else state.selected.add(data.id);
    selectionChanged();
  };
  gridEl.addEventListener("click", (e) => {
    const box = e.target.closest("input[data-select]");
    if (box) {
      if (box.checked) state.selected.add(box.dataset.select);
      else state.selected.delete(box.dataset.select);
      selectionChanged();
      return;
    }
    const row = e.target.closest(".grid-row.group");
    if (row) toggleItem(Number(row.dataset.index));
  });

  const compareButton = byId("compare-button");
  const selectionChanged = () => {
    const n = state.selected.size;
    byId("selection-count").textContent = n ? `${fmtNum(n)} selected` : "";
    byId("clear-selection").hidden = n === 0;
    compareButton.disabled = n < 2;
    compareButton.textContent = n >= 2 ? `Compare ${n}` : "Compare";
    grid.invalidate();
  };
  byId("clear-selection").addEventListener("click", () => {
    state.selected.clear();
    if (grid.selectAll) grid.selectAll.checked = false;
    selectionChanged();
  });
  compareButton.addEventListener("click", () => {
    const ids = [...state.selected].slice(0, 100);
    location.assign(`/compare?project=${encodeURIComponent(project)}&runs=${ids.map(encodeURIComponent).join(",")}`);
  });

  // -- fetching pages -----------------------------------------------------------------------
  const orderBy = () => (state.order ? `${state.order.id} ${state.order.desc ? "desc" : "asc"}` : undefined);

  const want = () => {
    const needed = [];
    const [first, last] = visible;
    for (let i = first; i <= last && i < total; i++) {
      const { section, k } = locate(i);
      if (!section || k < 0) continue;
      const p = Math.floor(k / PAGE);
      const page = section.pages.get(p);
      const short = page && page.partial && k % PAGE >= page.rows.length;
      if ((!page || page.stale || short) && !section.loading.has(p) && !needed.some(([s, q]) => s === section && q === p)) {
        needed.push([section, p]);
      }
    }
    for (const [section, p] of needed) {
      if (inFlight >= MAX_IN_FLIGHT) break;
      fetchPage(section, p);
    }
  };

  const fetchPage = async (section, p, limit = PAGE) => {
    const gen = generation;
    section.loading.add(p);
    inFlight++;
    // no columns chosen yet: every param, metric and tag of the first page, to pick from
    const columns = state.columns === null ? ["created", "duration", "user"] : dataColumns();
    try {
      const body = await api("/runs:table", {
        params: {
          project, query: section.query || undefined, order_by: orderBy(), column: columns,
          all_columns: state.columns === null ? "true" : undefined, limit, offset: p * PAGE,
        },
      });
      if (gen !== generation) return false;
      const partial = limit < PAGE && body.rows.length === limit;
      section.pages.set(p, { rows: body.rows, stale: false, partial, at: Date.now() });
      evict(section);
      if (state.columns === null) {
        state.columns = defaultColumns(body.rows); // this page holds every cell: kept
        setColumns();
      }
      grid.invalidate();
      return true;
    } catch (err) {
      if (gen !== generation) return false;
      if (err.code === "query_syntax_error") showQueryError(err);
      else if (err.status !== 401) grid.showOverlay(errorBox(err, "Runs could not be read"));
      return false;
    } finally {
      section.loading.delete(p);
      inFlight--;
      if (gen === generation) want();
    }
  };

  const evict = (section) => {
    if (section.pages.size <= MAX_PAGES) return;
    const at = locate(visible[0]);
    const here = at.section === section ? Math.floor(Math.max(0, at.k) / PAGE) : 0;
    const far = [...section.pages.keys()].sort((a, b) => Math.abs(b - here) - Math.abs(a - here));
    for (const p of far.slice(0, section.pages.size - MAX_PAGES)) section.pages.delete(p);
  };

  // -- search -------------------------------------------------------------------------------
  const showQueryError = (err) => {
    const pos = Math.max(0, Math.min(err.position ?? 0, state.query.length));
    errorEl.replaceChildren(
      h("div", {}, h("strong", {}, "Query error: "), err.reason || err.message, ` (at position ${pos})`),
      h("pre", {}, state.query, "\n", h("span", { class: "caret", "aria-hidden": "true" }, " ".repeat(pos) + "^")),
    );
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    input.setSelectionRange(pos, pos);
    byId("run-count").textContent = "";
    byId("grid-status").textContent = "The query has an error.";
    grid.showOverlay(null);
    sections = [];
    layout();
  };
  const clearQueryError = () => {
    errorEl.hidden = true;
    input.removeAttribute("aria-invalid");
  };

  const statusText = () => {
    const n = sections.reduce((a, s) => a + s.count, 0);
    const more = !grouped() && sections.length && !sections[0].exact && n >= FIRST ? "+" : "";
    const of = allRuns !== null && state.query ? ` of ${fmtNum(allRuns)}` : "";
    const what = `${fmtNum(n)}${more}${of} run${n === 1 && !of ? "" : "s"}${state.query ? " match" : ""}`;
    byId("run-count").textContent = what;
    byId("grid-status").textContent = grouped() ? `${what} in ${sections.length} groups` : what;
    if (n === 0) {
      grid.showOverlay(state.query
        ? emptyState("No run matches this search", "Change the query, or clear it to see every run.")
        : emptyState("No runs in this project yet", "Runs appear here as they start:",
          `import mltrail\nrun = mltrail.init(project=${JSON.stringify(project)})`));
    } else {
      grid.showOverlay(null);
    }
  };

  const reload = async () => {
    const gen = ++generation;
    gridEl.dataset.generation = String(gen);
    clearQueryError();
    setColumns();
    const url = new URL(location.href);
    if (state.query) url.searchParams.set("q", state.query);
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    try {
      if (grouped()) {
        const body = await api("/runs:groups", { params: { project, query: state.query || undefined, by: state.groupBy } });
        if (gen !== generation) return;
        sections = body.groups.map((g, n) => new Section({
          query: g.query, label: `${body.by} = ${fmtValue(g.value)}`, count: g.count,
          expanded: body.groups.length === 1 && n === 0, // collapsed: the groups at a glance
        }));
        if (body.other.count) sections.push(new Section({ query: body.other.query, label: `${body.by}: other values`, count: body.other.count, expanded: false }));
        if (body.missing.count) sections.push(new Section({ query: body.missing.query, label: `${body.by}: not set`, count: body.missing.count, expanded: false }));
        for (const section of sections) section.exact = true;
      } else {
        // the first page and the count in parallel: the rows paint as soon as they are
        // here (a full page: "100+" until the count says how many)
        const section = new Section({ query: state.query });
        sections = [section];
        let shown = false;
        const counted = api("/runs:count", { params: { project, query: state.query || undefined } }).then(({ count }) => {
          if (gen !== generation) return;
          section.count = count;
          section.exact = true;
          if (!state.query) allRuns = count;
          if (shown) {
            layout();
            statusText();
          }
        }, (err) => {
          if (gen === generation && shown && err.status !== 401) byId("run-count").textContent = `count failed: ${err.message}`;
        });
        if (!(await fetchPage(section, 0, FIRST)) || gen !== generation) return;
        if (!section.exact) section.count = section.pages.get(0)?.rows.length ?? 0;
        shown = true;
        if (section.count === 0) await counted; // "no runs" only once the count agrees
      }
    } catch (err) {
      if (gen !== generation) return;
      if (err.code === "query_syntax_error") return showQueryError(err);
      if (err.status === 401) return;
      sections = [];
      layout();
      grid.showOverlay(errorBox(err, "Runs could not be read"));
      return;
    }
    if (gen !== generation) return;
    layout();
    statusText();
    grid.render();
    requestAnimationFrame(() => {
      gridEl.dataset.loaded = String(gen); // tests and the benchmark wait for this
      if (!firstPaint) {
        firstPaint = true;
        performance.mark("runs:first-rows");
      }
    });
    if (allRuns === null) api("/runs:count", { params: { project } }).then((b) => { allRuns = b.count; statusText(); }, () => {});
  };

  byId("search").addEventListener("submit", (e) => {
    e.preventDefault();
    state.query = input.value.trim();
    gridEl.scrollTop = 0;
    reload();
  });
  input.addEventListener("input", () => {
    if (input.getAttribute("aria-invalid")) clearQueryError();
  });

  // -- group by, export, live ---------------------------------------------------------------
  const groupSelect = byId("group-by");
  const fillGroupOptions = (keys) => {
    const options = [["", "nothing"]];
    for (const a of ["status", "user", "group", "job_type"]) options.push([a, a]);
    for (const kind of ["params", "tags", "system", "git", "env"]) for (const id of keys[kind] || []) options.push([id, id]);
    groupSelect.replaceChildren(...options.map(([v, label]) => h("option", { value: v, selected: v === state.groupBy }, label)));
  };
  if (state.groupBy) groupSelect.append(h("option", { value: state.groupBy, selected: true }, state.groupBy));
  groupSelect.addEventListener("change", () => {
    state.groupBy = groupSelect.value;
    save();
    gridEl.scrollTop = 0;
    reload();
  });

  byId("export-button").addEventListener("click", async () => {
    try {
      await download("/runs:export", {
        project, query: state.query || undefined, order_by: orderBy(),
        column: state.columns ? dataColumns() : undefined,
      }, `${project.replace(/[^\w.-]+/g, "_")}-runs.csv`);
    } catch (err) {
      toast(`Export failed: ${err.message}`, true);
    }
  });

  const live = byId("live");
  setInterval(async () => {
    if (!live.checked || document.hidden || !sections.length) return;
    const gen = generation;
    try {
      if (grouped()) return; // group counts are not refreshed live (each one is a count)
      const { count } = await api("/runs:count", { params: { project, query: state.query || undefined } });
      if (gen !== generation) return;
      if (count !== sections[0].count || !sections[0].exact) {
        sections[0].count = count;
        sections[0].exact = true;
        layout();
        statusText();
      }
      for (const page of sections[0].pages.values()) page.stale = true;
      want();
    } catch {
      /* the next tick tries again */
    }
  }, LIVE_MS);

  initPicker(project, state, () => {
    save();
    for (const s of sections) for (const page of s.pages.values()) page.stale = true;
    setColumns();
    want();
  });

  await reload();
  // the group-by choices need the project's keys: read them once the table is on screen
  setTimeout(() => loadKeys(project).then(fillGroupOptions, () => {}), 300);
}
