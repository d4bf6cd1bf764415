// A run's artifacts: what it used and logged, each version's files, and a preview of a
// file: images, CSV/TSV tables, JSON (pretty), text; anything else can be downloaded.
import { api } from "./api.js";
import { byId, fill, emptyState, errorBox, fmtBytes, h, table } from "./dom.js";

const PREVIEW_MAX = 5 * 1024 * 1024;
const IMAGE = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", svg: "image/svg+xml", bmp: "image/bmp" };
const TEXT = new Set(["txt", "md", "py", "yaml", "yml", "toml", "cfg", "ini", "log", "sh", "js", "ts", "xml", "html", "rst", "jsonl", "ndjson", "out", "err", "r", "sql", "lock", "gitignore", "dvc", "mltrail", ""]);

function ext(path) {
  const name = path.split("/").pop();
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/** The bytes of an object: through the server, or from S3 with a presigned URL. */
async function fetchObject(oid) {
  const where = await api(`/objects/${oid}/location`);
  if (where.url) {
    const res = await fetch(where.url);
    if (!res.ok) throw new Error(`the object store answered HTTP ${res.status}`);
    return res.blob();
  }
  const res = await api(`/objects/${oid}`, { raw: true });
  return res.blob();
}

/** A CSV line parser that knows quotes (RFC 4180), enough for a preview. */
export function parseCsv(text, sep = ",", maxRows = 500) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      if (rows.length >= maxRows) return rows;
    } else field += c;
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

async function preview(entry, box) {
  fill(box, h("p", { class: "loading" }, `Loading ${entry.path}`));
  const kind = ext(entry.path);
  const download = async () => {
    const blob = await fetchObject(entry.oid);
    const a = h("a", { href: URL.createObjectURL(blob), download: entry.path.split("/").pop() });
    document.body.append(a);
    a.click();
    a.remove();
  };
  const head = h("div", { class: "toolbar" }, h("strong", { class: "mono" }, entry.path),
    h("span", { class: "muted" }, fmtBytes(entry.size)), h("span", { class: "grow" }),
    h("button", { type: "button", onclick: download }, "Download"));
  if (entry.ref && !entry.oid) {
    fill(box, head, h("p", {}, `A reference: the file stays at ${entry.ref}.`));
    return;
  }
  if (entry.size > PREVIEW_MAX) {
    fill(box, head, h("p", { class: "muted" }, "Too big to preview here; download it."));
    return;
  }
  try {
    const blob = await fetchObject(entry.oid);
    let body;
    if (IMAGE[kind]) {
      const img = h("img", { alt: entry.path, src: URL.createObjectURL(new Blob([blob], { type: IMAGE[kind] })) });
      body = img;
    } else if (kind === "csv" || kind === "tsv") {
      const rows = parseCsv(await blob.text(), kind === "tsv" ? "\t" : ",");
      const [header, ...rest] = rows.length ? rows : [[]];
      body = h("div", { class: "scroll-x" }, table(header.map((label, i) => ({ label, value: (r) => r[i] ?? "" })), rest, { caption: entry.path }),
        rows.length >= 500 ? h("p", { class: "muted small" }, "First 500 rows.") : null);
    } else if (kind === "json") {
      const text = await blob.text();
      let pretty = text;
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* not valid JSON: show it as it is */
      }
      body = h("pre", { class: "mono" }, pretty);
    } else {
      const bytes = new Uint8Array(await blob.slice(0, 8192).arrayBuffer());
      if (TEXT.has(kind) || !bytes.includes(0)) body = h("pre", { class: "mono" }, await blob.text());
      else body = h("p", { class: "muted" }, `A binary file of ${fmtBytes(entry.size)}.`);
    }
    fill(box, head, body);
    box.dataset.previewed = entry.path;
  } catch (err) {
    fill(box, head, errorBox(err, "Preview failed"));
  }
}

async function showVersion(version, box) {
  fill(box, h("p", { class: "loading" }, `Loading ${version.name}:v${version.version}`));
  let entries;
  try {
    entries = await api(`/artifacts/${encodeURIComponent(version.name)}/versions/v${version.version}/manifest`, { params: { project: version.project } });
  } catch (err) {
    fill(box, errorBox(err, "Files could not be read"));
    return;
  }
  const view = h("div", { class: "preview", id: "artifact-preview", "aria-live": "polite" },
    h("p", { class: "muted" }, "Choose a file to preview it."));
  const list = h("ul", { class: "filelist", "aria-label": `Files of ${version.name}:v${version.version}` });
  for (const entry of entries) {
    const btn = h("button", { type: "button" }, h("span", { class: "mono" }, entry.path), h("span", { class: "muted small" }, fmtBytes(entry.size)));
    btn.addEventListener("click", () => {
      for (const b of list.querySelectorAll("button")) b.removeAttribute("aria-current");
      btn.setAttribute("aria-current", "true");
      preview(entry, view);
    });
    list.append(h("li", {}, btn));
  }
  fill(box, h("h3", {}, `${version.type} ${version.name}:v${version.version}`,
    version.aliases.length ? h("span", { class: "muted" }, ` [${version.aliases.join(", ")}]`) : null),
  h("div", { class: "browser" }, entries.length ? list : h("p", { class: "muted" }, "No files."), view));
}

export async function artifactsPanel(panel, runId) {
  let edges;
  try {
    edges = await api(`/runs/${encodeURIComponent(runId)}/artifacts`);
  } catch (err) {
    fill(panel, errorBox(err, "Artifacts could not be read"));
    return;
  }
  if (!edges.in.length && !edges.out.length) {
    fill(panel, emptyState("No artifacts", "This run logged and used no artifacts.",
      'run.log_artifact("model/", type="model")'));
    return;
  }
  const files = h("div", { id: "artifact-files" });
  const versionTable = (versions, caption) => table([
    { label: "Artifact", value: (v) => h("button", { class: "link", type: "button", onclick: () => showVersion(v, files) }, `${v.name}:v${v.version}`) },
    { label: "Type", value: (v) => v.type },
    { label: "Files", value: (v) => v.file_count, num: true },
    { label: "Size", value: (v) => fmtBytes(v.size), num: true },
    { label: "Aliases", value: (v) => v.aliases.join(", ") },
  ], versions, { caption });
  fill(panel, 
    h("h2", {}, "Logged by this run"), edges.out.length ? versionTable(edges.out, "Logged") : h("p", { class: "muted" }, "Nothing."),
    h("h2", {}, "Used by this run"), edges.in.length ? versionTable(edges.in, "Used") : h("p", { class: "muted" }, "Nothing."),
    files);
  const first = edges.out[0] || edges.in[0];
  if (first) showVersion(first, files);
  return byId("artifact-files");
}
