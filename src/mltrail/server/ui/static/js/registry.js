// The registry: "/models" (every model), "/models/{name}" (versions, aliases, approvals,
// audit trail, lineage) and "/models/{name}/versions/{ref}" (stage and alias changes,
// model card, signature, metadata, lineage from the dataset to the deployment alias).
import { api } from "./api.js";
import {
  byId, emptyState, fmtAgo, fmtDate, fmtValue, h, kv, listPage, loadAll, table, toast, fill,
} from "./dom.js";
import { lineageOf } from "./lineage.js";

const enc = encodeURIComponent;
const versionHref = (model, v) => `/models/${enc(model)}/versions/${v}`;

function stageBadge(stage) {
  return h("span", { class: `badge plain stage-${stage}` }, stage);
}

function aliasChips(model, aliases) {
  const entries = Array.isArray(aliases) ? aliases.map((a) => [a, null]) : Object.entries(aliases || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h("span", { class: "chips" }, entries.map(([alias, v]) => h("span", { class: "chip" },
    v === null ? alias : h("a", { href: versionHref(model, v) }, `${alias} → v${v}`), " ")));
}

/** A small, safe Markdown subset for model cards: headings, lists, code, bold, italics, links. */
export function markdown(text) {
  const root = h("div", { class: "markdown" });
  const inline = (s) => {
    const out = [];
    const re = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*]+\*|\[[^\]]+\]\((https?:\/\/[^)\s]+)\))/g;
    let last = 0;
    for (const m of s.matchAll(re)) {
      out.push(s.slice(last, m.index));
      const t = m[0];
      if (t.startsWith("`")) out.push(h("code", {}, t.slice(1, -1)));
      else if (t.startsWith("**")) out.push(h("strong", {}, t.slice(2, -2)));
      else if (t.startsWith("*")) out.push(h("em", {}, t.slice(1, -1)));
      else out.push(h("a", { href: m[2], rel: "noopener noreferrer" }, t.slice(1, t.indexOf("]"))));
      last = m.index + t.length;
    }
    out.push(s.slice(last));
    return out;
  };
  const lines = text.split("\n");
  let list = null;
  let para = [];
  const flush = () => {
    if (para.length) root.append(h("p", {}, inline(para.join(" "))));
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      flush();
      list = null;
      const code = [];
      while (++i < lines.length && !lines[i].startsWith("```")) code.push(lines[i]);
      root.append(h("pre", {}, h("code", {}, code.join("\n"))));
      continue;
    }
    if (line.trim().startsWith("|")) { // a table: header, separator, rows
      flush();
      list = null;
      const rows = [];
      for (; i < lines.length && lines[i].trim().startsWith("|"); i++) {
        const cells = lines[i].trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
        if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
      }
      i--;
      const [head, ...rest] = rows;
      root.append(h("table", { class: "data" },
        head.some(Boolean) ? h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c))))) : null,
        h("tbody", {}, rest.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c))))))));
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)/.exec(line);
    const item = /^\s*[-*]\s+(.*)/.exec(line);
    if (heading) {
      flush();
      list = null;
      root.append(h(`h${Math.min(4, heading[1].length + 1)}`, {}, inline(heading[2])));
    } else if (item) {
      flush();
      if (!list) root.append((list = h("ul")));
      list.append(h("li", {}, inline(item[1])));
    } else if (!line.trim()) {
      flush();
      list = null;
    } else {
      list = null;
      para.push(line.trim());
    }
  }
  flush();
  return root;
}

function events(list) {
  if (!list.length) return h("p", { class: "muted" }, "No events.");
  return h("div", { class: "scroll-y" }, table([
    { label: "When", value: (e) => h("span", { title: fmtDate(e.at) }, fmtAgo(e.at)) },
    { label: "Action", value: (e) => h("span", { class: "mono" }, e.action) },
    { label: "Version", value: (e) => (e.version ? `v${e.version}` : "") },
    { label: "What", value: (e) => [e.target, e.from_value || e.to_value ? `${e.from_value ?? "∅"} → ${e.to_value ?? "∅"}` : ""].filter(Boolean).join(": ") },
    { label: "By", value: (e) => e.actor || "" },
    { label: "Reason", value: (e) => e.reason || "" },
  ], [...list].reverse(), { caption: "Audit trail" }));
}

function approvalsTable(approvals, reload) {
  const pending = approvals.filter((a) => a.status === "pending");
  if (!pending.length) return h("p", { class: "muted" }, "No pending approvals.");
  const decide = (a, ok) => async () => {
    try {
      await api(`/registry/approvals/${a.id}/${ok ? "approve" : "reject"}`, { method: "POST", body: { reason: null } });
      toast(ok ? "Approved." : "Rejected.");
      reload();
    } catch (err) {
      toast(err.message, true);
    }
  };
  return table([
    { label: "Version", value: (a) => h("a", { href: versionHref(a.model, a.version) }, `v${a.version}`) },
    { label: "Change", value: (a) => `${a.kind} → ${a.target}` },
    { label: "Asked by", value: (a) => `${a.requested_by || "?"}, ${fmtAgo(a.requested_at)}` },
    { label: "Reason", value: (a) => a.reason || "" },
    { label: "", value: (a) => h("span", { class: "chips" },
      h("button", { type: "button", onclick: decide(a, true) }, "Approve"),
      h("button", { type: "button", class: "danger", onclick: decide(a, false) }, "Reject")) },
  ], pending, { caption: "Pending approvals" });
}

// -- pages ------------------------------------------------------------------------------------

function modelsPage() {
  return listPage({
    box: byId("models"), filter: byId("model-filter"), load: api("/models"), what: "Registered models",
    name: (m) => m.name,
    empty: emptyState("No registered models", "Register a model artifact a run logged:",
      'client = mltrail.Client()\nclient.register_model("model:latest", "my-model")'),
    columns: [
      { label: "Model", value: (m) => h("a", { href: `/models/${enc(m.name)}` }, m.name) },
      { label: "Latest", value: (m) => (m.latest_version ? h("a", { href: versionHref(m.name, m.latest_version) }, `v${m.latest_version}`) : "—") },
      { label: "Aliases", value: (m) => aliasChips(m.name, m.aliases) },
      { label: "Owner", value: (m) => m.owner || "" },
      { label: "Description", value: (m) => m.description },
      { label: "Updated", value: (m) => fmtAgo(m.updated_at) },
    ],
  });
}

async function modelPage({ model: name }) {
  const box = byId("model");
  const load = async () => {
    const loaded = await loadAll(box, [
      api(`/models/${enc(name)}`), api(`/models/${enc(name)}/versions`),
      api("/registry/events", { params: { model: name } }),
      api("/registry/approvals", { params: { model: name } }),
    ], "The model", emptyState("No such model", `Nothing is registered as ${name}.`));
    if (!loaded) return;
    const [model, versions, history, approvals] = loaded;
    byId("subheading").textContent = [model.description, model.owner && `owner ${model.owner}`, `${model.scheme} labels`].filter(Boolean).join(" · ");
    const lineageBox = h("div", {}, h("p", { class: "loading" }, "Loading lineage"));
    fill(box, 
      h("div", { class: "toolbar" }, h("strong", {}, "Aliases"), aliasChips(name, model.aliases)),
      h("h2", {}, "Versions"),
      versions.length ? table([
        { label: "Version", value: (v) => h("a", { href: versionHref(name, v.version) }, `v${v.version}`) },
        { label: "Label", value: (v) => h("span", { class: "mono" }, v.label) },
        { label: "Stage", value: (v) => stageBadge(v.stage) },
        { label: "Aliases", value: (v) => aliasChips(name, v.aliases) },
        { label: "Source run", value: (v) => (v.run_id ? h("a", { href: "/runs/" + enc(v.run_id) }, v.run_id) : "") },
        { label: "Signed", value: (v) => (v.signed ? "yes" : "no") },
        { label: "Metadata", value: (v) => (v.validation_errors.length ? h("span", { class: "badge status-failed" }, `${v.validation_errors.length} problems`) : "valid") },
        { label: "Created", value: (v) => `${fmtAgo(v.created_at)}${v.created_by ? ` by ${v.created_by}` : ""}` },
      ], [...versions].reverse(), { caption: "Versions" }) : h("p", { class: "muted" }, "No versions yet."),
      h("h2", {}, "Pending approvals"), approvalsTable(approvals, load),
      h("h2", {}, "Lineage"), lineageBox,
      h("h2", {}, "Audit trail"), events(history));
    const shown = versions.find((v) => v.stage === "production") || versions[versions.length - 1];
    if (shown) {
      lineageOf(`${name}@${shown.version}`, { extra: deploymentNodes(shown) }).then((node) =>
        lineageBox.replaceChildren(h("p", { class: "muted" }, `Version v${shown.version}: from its data to its stage and aliases.`), node));
    } else lineageBox.replaceChildren(h("p", { class: "muted" }, "No versions yet."));
  };
  await load();
}

/** Stage and alias nodes after a model version: the end of the lineage. */
function deploymentNodes(version) {
  return (graph, focus) => {
    const marks = [...(version.stage ? [["stage", version.stage]] : []), ...version.aliases.map((a) => ["alias", a])];
    for (const [kind, value] of marks) {
      const key = graph.node({ kind: "alias", id: `${kind}:${value}`, label: value, href: `/models/${enc(version.model)}` });
      graph.edge(focus, key);
    }
  };
}

function signatureView(sig) {
  if (!sig) return h("p", { class: "muted" }, "No signature: register with an input example (input_example=...) to record one.");
  const part = (title, spec) => {
    if (!spec) return h("div", {}, h("h3", {}, title), h("p", { class: "muted" }, "—"));
    if (Array.isArray(spec.columns)) {
      return h("div", {}, h("h3", {}, `${title} (table)`), table([
        { label: "Column", value: (c) => c.name ?? "" }, { label: "Type", value: (c) => c.type },
        { label: "Nullable", value: (c) => (c.nullable ? "yes" : "no") },
      ], spec.columns, { caption: title }));
    }
    return h("div", {}, h("h3", {}, title), kv([["Kind", spec.kind], ["Type", spec.type],
      ["Shape", spec.shape ? `[${spec.shape.join(", ")}]` : null], ["Nullable", spec.nullable === undefined ? null : String(spec.nullable)],
      ["Tensors", spec.tensors ? fmtValue(spec.tensors) : null]]));
  };
  return h("div", { class: "cards" }, h("div", { class: "card" }, part("Inputs", sig.inputs)), h("div", { class: "card" }, part("Outputs", sig.outputs)));
}

async function versionPage({ model: name, ref }) {
  const box = byId("version");
  const load = async () => {
    const loaded = await loadAll(box, [
      api(`/models/${enc(name)}/versions/${enc(ref)}`), api("/registry/policy"),
      api(`/models/${enc(name)}/versions/${enc(ref)}/card`),
      api("/registry/events", { params: { model: name } }),
    ], "The version", emptyState("No such version", `${name} has no version ${ref}.`));
    if (!loaded) return;
    const [v, policy, card, history] = loaded;
    byId("heading").replaceChildren(`${name} `, h("span", { class: "mono" }, `v${v.version}`), " ", stageBadge(v.stage));
    byId("subheading").textContent = `label ${v.label}${v.aliases.length ? ` · aliases ${v.aliases.join(", ")}` : ""}`;
    document.title = `${name} v${v.version} · mltrail`;

    // promote and alias forms
    const stages = policy.stages || ["development", "staging", "production", "archived"];
    const stageSel = h("select", { id: "promote-stage" }, stages.map((s) => h("option", { value: s, selected: s === v.stage }, s)));
    const reason = h("input", { id: "promote-reason", type: "text", placeholder: "why (recorded in the audit trail)" });
    const promoteForm = h("form", { class: "form-row", id: "promote-form", "aria-label": "Change the stage" },
      h("div", { class: "field" }, h("label", { for: "promote-stage" }, "Stage"), stageSel),
      h("div", { class: "field", style: { flex: "1" } }, h("label", { for: "promote-reason" }, "Reason"), reason),
      h("button", { type: "submit", class: "primary" }, "Promote"));
    promoteForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const out = await api(`/models/${enc(name)}/versions/${v.version}/stage`, {
          method: "POST", body: { stage: stageSel.value, reason: reason.value || null },
        });
        toast(out.approval ? `Approval requested: a second person must approve ${stageSel.value}.` : `v${v.version} is now in ${out.version.stage}.`);
        await load();
      } catch (err) {
        toast(`Not promoted: ${err.message}`, true);
      }
    });
    const aliasInput = h("input", { id: "alias-name", type: "text", placeholder: "champion", required: true });
    const aliasForm = h("form", { class: "form-row", "aria-label": "Set an alias" },
      h("div", { class: "field" }, h("label", { for: "alias-name" }, "Alias"), aliasInput),
      h("button", { type: "submit" }, "Point at this version"));
    aliasForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const out = await api(`/models/${enc(name)}/aliases/${enc(aliasInput.value.trim())}`, { method: "PUT", body: { version: v.version, reason: null } });
        toast(out.approval ? "Approval requested for the alias." : `Alias ${aliasInput.value} → v${v.version}.`);
        await load();
      } catch (err) {
        toast(`Alias not set: ${err.message}`, true);
      }
    });

    // model card: shown, editable
    const cardView = h("div", { id: "model-card" }, card.card ? markdown(card.card) : h("p", { class: "muted" }, "No model card yet."));
    const cardEdit = h("textarea", { id: "card-text", rows: 10, "aria-label": "Model card (Markdown)" });
    cardEdit.value = card.card || "";
    const cardSave = h("button", { type: "button" }, "Save card");
    cardSave.addEventListener("click", async () => {
      try {
        await api(`/models/${enc(name)}/versions/${v.version}/card`, { method: "PUT", body: { text: cardEdit.value, reason: null } });
        cardView.replaceChildren(markdown(cardEdit.value));
        toast("Model card saved.");
      } catch (err) {
        toast(`Card not saved: ${err.message}`, true);
      }
    });

    const lineageBox = h("div", {}, h("p", { class: "loading" }, "Loading lineage"));
    const meta = Object.entries(v.metadata || {}).filter(([k]) => k !== "signature");
    fill(box, 
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("h3", {}, "Version"), kv([
          ["Label", h("span", { class: "mono" }, v.label)], ["Stage", stageBadge(v.stage)],
          ["Aliases", aliasChips(name, v.aliases)], ["Artifact", h("span", { class: "mono" }, v.artifact)],
          ["Source run", v.run_id ? h("a", { href: "/runs/" + enc(v.run_id) }, v.run_id) : null],
          ["Created", `${fmtDate(v.created_at)}${v.created_by ? ` by ${v.created_by}` : ""}`],
          ["Signed", v.signed ? `yes (key ${v.signing_key_id})` : "no"], ["Description", v.description],
        ])),
        h("div", { class: "card" }, h("h3", {}, "Change the stage"), promoteForm, h("h3", {}, "Aliases"), aliasForm)),
      v.validation_errors.length ? h("div", { class: "error-box" }, h("strong", {}, "Metadata problems: "),
        h("ul", {}, v.validation_errors.map((e) => h("li", {}, e)))) : null,
      h("h2", {}, "Lineage"), lineageBox,
      h("h2", {}, "Model card"), cardView, h("details", {}, h("summary", {}, "Edit the card"), cardEdit, h("div", { class: "toolbar" }, cardSave)),
      h("h2", {}, "Signature"), signatureView(v.signature),
      v.input_example !== null && v.input_example !== undefined ? h("details", {}, h("summary", {}, "Input example"), h("pre", { class: "mono" }, JSON.stringify(v.input_example, null, 2))) : null,
      h("h2", {}, "Metadata"), meta.length ? table([{ label: "Key", value: (r) => h("span", { class: "mono" }, r[0]) }, { label: "Value", value: (r) => fmtValue(r[1]) }], meta, { caption: "Metadata" }) : h("p", { class: "muted" }, "None."),
      h("h2", {}, "History"), events(history.filter((e) => e.version === v.version)));
    lineageOf(`${name}@${v.version}`, { extra: deploymentNodes(v) }).then((node) => lineageBox.replaceChildren(node));
  };
  await load();
}

export async function main(data) {
  const page = document.body.dataset.page;
  if (page === "models") return modelsPage();
  if (page === "model") return modelPage(data);
  return versionPage(data);
}
