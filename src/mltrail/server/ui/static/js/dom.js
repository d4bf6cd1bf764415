// Small DOM helpers and formatting shared by every page.

/** h("a", {href, class: "x", onclick}, "text", child) -> element (text is never HTML). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && !key.startsWith("aria") && key !== "list" && key !== "for") el[key] = value;
    else el.setAttribute(key === "for" ? "for" : key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** Replace an element's children (null, undefined and false are left out). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const byId = (id) => document.getElementById(id);

export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// -- formatting --------------------------------------------------------------------------

const intFmt = new Intl.NumberFormat("en-US");

export function fmtNum(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "string") {
    if (v === "NaN" || v === "Infinity" || v === "-Infinity") return v;
    return v;
  }
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return intFmt.format(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

export function fmtValue(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return fmtNum(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function fmtDate(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtAgo(ts) {
  if (!ts) return "";
  const s = Date.now() / 1000 - ts;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || s === "") return "";
  s = Number(s);
  if (!Number.isFinite(s)) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  n = Number(n);
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

/** A colour per run id, the same on every page and every visit (FNV-1a hash -> palette). */
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#7f7f7f", "#3366cc", "#dc3912", "#109618", "#990099", "#0099c6", "#dd4477",
  "#66aa00", "#b82e2e", "#316395", "#994499", "#22aa99", "#aaaa11", "#6633cc", "#e67300",
];
export function colorFor(id) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return PALETTE[hash % PALETTE.length];
}

// -- states ------------------------------------------------------------------------------

export function errorBox(err, what) {
  const box = h("div", { class: "error-box", role: "alert" },
    h("strong", {}, what ? `${what}: ` : ""), err.message || String(err));
  if (err.hint) box.append(h("div", { class: "hint" }, err.hint));
  return box;
}

export function emptyState(title, text, code) {
  return h("div", { class: "empty" }, h("h2", {}, title), text ? h("p", {}, text) : null,
    code ? h("pre", {}, code) : null);
}

export function toast(message, bad = false) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: "toast" + (bad ? " bad" : "") }, message);
  box.append(el);
  setTimeout(() => el.remove(), bad ? 8000 : 3500);
}

/** Key/value list (<dl>) from [[label, value-or-node], ...], skipping empty values. */
export function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(h("dt", {}, label), h("dd", {}, value instanceof Node ? value : fmtValue(value)));
  }
  return dl;
}

/** A simple table: columns [{label, value: (row) => node|text, num}], rows. */
export function table(columns, rows, { caption, rowClass } = {}) {
  const t = h("table", { class: "data" });
  if (caption) t.append(h("caption", { class: "sr-only" }, caption));
  t.append(h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : "" }, c.label)))));
  const body = h("tbody");
  for (const row of rows) {
    const tr = h("tr", { class: rowClass ? rowClass(row) : "" });
    for (const c of columns) {
      const v = c.value(row);
      tr.append(h("td", { class: c.num ? "num" : "" }, v instanceof Node ? v : fmtValue(v)));
    }
    body.append(tr);
  }
  t.append(body);
  return t;
}

/** Tabs: role=tablist buttons with data-tab, panels "panel-<tab>"; arrow keys move. */
export function tabs(list, onShow) {
  const buttons = [...list.querySelectorAll('[role="tab"]')];
  const show = (btn, focus) => {
    for (const b of buttons) {
      const on = b === btn;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      document.getElementById(b.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) btn.focus();
    history.replaceState(null, "", "#" + btn.dataset.tab);
    onShow(btn.dataset.tab);
  };
  list.addEventListener("click", (e) => {
    const btn = e.target.closest('[role="tab"]');
    if (btn) show(btn, false);
  });
  list.addEventListener("keydown", (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (e.key === "ArrowRight") j = (i + 1) % buttons.length;
    else if (e.key === "ArrowLeft") j = (i - 1 + buttons.length) % buttons.length;
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = buttons.length - 1;
    if (j !== null) {
      e.preventDefault();
      show(buttons[j], true);
    }
  });
  const start = buttons.find((b) => "#" + b.dataset.tab === location.hash) || buttons[0];
  show(start, false);
  return (tab) => show(buttons.find((b) => b.dataset.tab === tab), false);
}

/** The responses of several API calls, or null with an error (or `missing` on a 404) shown. */
export async function loadAll(box, calls, what, missing) {
  try {
    return await Promise.all(calls);
  } catch (err) {
    fill(box, err.status === 404 && missing ? missing : errorBox(err, `${what} could not be read`));
    return null;
  } finally {
    box.removeAttribute("aria-busy");
  }
}

/** A list page: the items in a table filtered by name as the user types in `filter`. */
export async function listPage({ box, filter, load, what, empty, name, columns }) {
  const loaded = await loadAll(box, [load], what);
  if (!loaded) return;
  const [items] = loaded;
  if (!items.length) {
    fill(box, empty);
    return;
  }
  const render = (q) => {
    const rows = items.filter((item) => name(item).toLowerCase().includes(q.toLowerCase()));
    fill(box, rows.length ? table(columns, rows, { caption: what }) : emptyState("Nothing matches", `No name contains “${q}”.`));
  };
  render("");
  filter.addEventListener("input", (e) => render(e.target.value));
}
