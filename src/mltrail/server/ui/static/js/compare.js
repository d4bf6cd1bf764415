// "/compare?project=P&runs=a,b,...": runs side by side (differing values highlighted),
// their metrics overlaid, parallel coordinates over chosen params and metrics, and a
// scatter of one field against another. Every run keeps its colour (hash of its id).
import { api, num } from "./api.js";
import { ChartGroup, loadPlotly } from "./charts.js";
import { byId, fill, colorFor, emptyState, errorBox, fmtDuration, fmtValue, h, statusBadge } from "./dom.js";
import { themeColors } from "./theme.js";

const MAX_RUNS = 100;

function quote(s) {
  return "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

function same(values) {
  const texts = values.map((v) => (v === undefined || v === null ? "" : JSON.stringify(v)));
  return texts.every((t) => t === texts[0]);
}

function checkboxList(name, keys, chosen, onChange) {
  const box = h("fieldset", { class: "card" }, h("legend", {}, name));
  const list = h("div", { class: "picker-list" });
  for (const key of keys) {
    const input = h("input", { type: "checkbox", value: key, checked: chosen.includes(key) });
    input.addEventListener("change", () => {
      const now = [...list.querySelectorAll("input:checked")].map((i) => i.value);
      onChange(now);
    });
    list.append(h("label", { title: key }, input, key));
  }
  box.append(list);
  return box;
}

export async function main() {
  const params = new URLSearchParams(location.search);
  const project = params.get("project") || undefined;
  const ids = (params.get("runs") || "").split(",").map((s) => s.trim()).filter(Boolean).slice(0, MAX_RUNS);
  const box = byId("compare");
  if (project) {
    byId("crumbs").replaceChildren(h("a", { href: "/" }, "Projects"), " / ",
      h("a", { href: "/projects/" + encodeURIComponent(project) }, project), " /");
  }
  if (ids.length < 1) {
    fill(box, emptyState("No runs to compare", "Select two or more runs in a project's table, then press Compare."));
    return;
  }
  let rows;
  try {
    const body = await api("/runs:table", {
      params: {
        project, query: `id in (${ids.map(quote).join(", ")})`, all_columns: "true",
        column: ["created", "duration", "user"], limit: ids.length,
      },
    });
    rows = body.rows;
  } catch (err) {
    fill(box, errorBox(err, "The runs could not be read"));
    return;
  }
  const order = new Map(ids.map((id, i) => [id, i]));
  rows.sort((a, b) => order.get(a.id) - order.get(b.id));
  if (!rows.length) {
    fill(box, emptyState("None of these runs exist", "They may have been deleted."));
    return;
  }
  byId("subheading").textContent = `${rows.length} runs`;
  const runs = rows.map((r) => ({ id: r.id, name: r.name || r.id }));
  const keysOf = (prefix) => [...new Set(rows.flatMap((r) => Object.keys(r.cells).filter((k) => k.startsWith(prefix))))].sort();
  const paramKeys = keysOf("params.");
  const metricKeys = keysOf("metrics.");
  const tagKeys = keysOf("tags.");
  const chartKeys = metricKeys.map((k) => k.slice("metrics.".length).replace(/^`|`$/g, "")).filter((k) => !k.startsWith("system/"));

  // -- side by side -----------------------------------------------------------------------
  const removeRun = (id) => {
    const rest = ids.filter((x) => x !== id);
    const url = new URL(location.href);
    url.searchParams.set("runs", rest.join(","));
    location.assign(url);
  };
  const head = h("tr", {}, h("th", { scope: "col" }, "Field"), rows.map((r) => h("th", { scope: "col" },
    h("span", { class: "swatch", style: { background: colorFor(r.id) } }),
    h("a", { href: "/runs/" + encodeURIComponent(r.id) }, r.name || r.id), " ",
    h("button", { class: "link", type: "button", "aria-label": `Remove ${r.name} from the comparison`, title: "Remove", onclick: () => removeRun(r.id) }, "×"))));
  const body = h("tbody");
  const fields = [
    ["status", (r) => statusBadge(r.status), (r) => r.status],
    ["duration", (r) => fmtDuration(r.cells.duration), (r) => r.cells.duration],
    ["user", (r) => r.cells.user || "", (r) => r.cells.user],
    ...[...paramKeys, ...metricKeys.filter((k) => !k.includes("system/")), ...tagKeys].map((k) => [k, (r) => fmtValue(r.cells[k]), (r) => r.cells[k]]),
  ];
  let differing = 0;
  for (const [label, show, value] of fields) {
    const diff = !same(rows.map(value)) && label !== "duration";
    if (diff) differing++;
    body.append(h("tr", { class: diff ? "diff" : "", dataset: { same: String(!diff) } },
      h("th", { scope: "row", class: "mono" }, label), rows.map((r) => h("td", {}, show(r)))));
  }
  const onlyDiff = h("input", { id: "only-diff", type: "checkbox" });
  onlyDiff.addEventListener("change", () => {
    for (const tr of body.querySelectorAll('tr[data-same="true"]')) tr.hidden = onlyDiff.checked;
  });
  const sideBySide = h("section", {},
    h("h2", {}, "Side by side"),
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, onlyDiff, "Only what differs"),
      h("span", { class: "muted small" }, `${differing} fields differ (highlighted)`)),
    h("div", { class: "scroll-x scroll-y", style: { maxHeight: "420px" } },
      h("table", { class: "data", id: "compare-table" }, h("caption", { class: "sr-only" }, "Runs side by side"), h("thead", {}, head), body)));

  // -- charts ------------------------------------------------------------------------------
  let chosenCharts = chartKeys.slice(0, 6);
  const chartsBox = h("div", { id: "compare-charts" });
  const drawCharts = () => new ChartGroup(chartsBox, runs, chosenCharts, { idPrefix: "compare", xKeys: chartKeys });
  const chartSection = h("section", {}, h("h2", {}, "Metrics"),
    chartKeys.length > 6 ? checkboxList("Charts", chartKeys, chosenCharts, (now) => { chosenCharts = now; drawCharts(); }) : null,
    chartsBox);

  // -- parallel coordinates and scatter ----------------------------------------------------
  const numeric = (k) => rows.some((r) => typeof num(r.cells[k]) === "number");
  const varying = (k) => !same(rows.map((r) => r.cells[k]));
  const dims = [...paramKeys, ...metricKeys.filter((k) => !k.includes("system/"))];
  let chosenDims = [...paramKeys.filter(varying).slice(0, 5), ...metricKeys.filter((k) => !k.includes("system/")).filter(varying).slice(0, 2)];
  if (chosenDims.length < 2) chosenDims = dims.slice(0, 4);
  const metricChoices = metricKeys.filter((k) => !k.includes("system/"));
  let colorBy = metricChoices[0] || null;
  const parcoordsPlot = h("div", { id: "parcoords", style: { height: "420px" }, role: "img", "aria-label": "Parallel coordinates" });
  const colorSelect = h("select", { id: "parcoords-color" }, metricChoices.map((k) => h("option", { value: k, selected: k === colorBy }, k)));
  colorSelect.addEventListener("change", () => {
    colorBy = colorSelect.value;
    drawParcoords();
  });
  const drawParcoords = async () => {
    const Plotly = await loadPlotly();
    const c = themeColors();
    const dimensions = chosenDims.map((k) => {
      const values = rows.map((r) => num(r.cells[k]));
      if (numeric(k)) return { label: k.replace(/^[a-z]+\./, ""), values: values.map((v) => (typeof v === "number" ? v : NaN)) };
      const cats = [...new Set(values.map((v) => fmtValue(v)))].sort();
      return { label: k.replace(/^[a-z]+\./, ""), values: values.map((v) => cats.indexOf(fmtValue(v))), tickvals: cats.map((_, i) => i), ticktext: cats };
    });
    const colors = colorBy ? rows.map((r) => num(r.cells[colorBy])) : rows.map((_, i) => i);
    await Plotly.react(parcoordsPlot, [{
      type: "parcoords", dimensions,
      line: { color: colors, colorscale: "Viridis", showscale: Boolean(colorBy), colorbar: { title: { text: colorBy || "" } } },
    }], {
      margin: { l: 60, r: 60, t: 40, b: 20 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: c.fg, size: 11 },
    }, { displaylogo: false, responsive: true });
    parcoordsPlot.dataset.state = "drawn";
  };
  const parcoordsSection = h("section", {}, h("h2", {}, "Parallel coordinates"),
    h("details", {}, h("summary", {}, `Axes (${chosenDims.length} of ${dims.length})`),
      checkboxList("Axes", dims, chosenDims, (now) => { chosenDims = now; drawParcoords(); })),
    metricChoices.length ? h("div", { class: "toolbar" }, h("label", { for: "parcoords-color" }, "Colour by"), colorSelect) : null,
    parcoordsPlot);

  const scatterPlot = h("div", { id: "scatter", style: { height: "380px" }, role: "img", "aria-label": "Scatter plot" });
  const axisSelect = (id, value) => h("select", { id }, dims.map((k) => h("option", { value: k, selected: k === value }, k)));
  const xSel = axisSelect("scatter-x", paramKeys.find(varying) || dims[0]);
  const ySel = axisSelect("scatter-y", metricChoices[0] || dims[1] || dims[0]);
  const drawScatter = async () => {
    const Plotly = await loadPlotly();
    const c = themeColors();
    const axis = { gridcolor: c.border, zerolinecolor: c.border, title: { text: "" } };
    await Plotly.react(scatterPlot, [{
      type: "scatter", mode: "markers",
      x: rows.map((r) => { const v = num(r.cells[xSel.value]); return typeof v === "number" ? v : fmtValue(v); }),
      y: rows.map((r) => { const v = num(r.cells[ySel.value]); return typeof v === "number" ? v : fmtValue(v); }),
      text: rows.map((r) => r.name), marker: { size: 10, color: rows.map((r) => colorFor(r.id)) },
      hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>",
    }], {
      margin: { l: 60, r: 20, t: 10, b: 50 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: c.fg, size: 11 },
      xaxis: { ...axis, title: { text: xSel.value } }, yaxis: { ...axis, title: { text: ySel.value } },
    }, { displaylogo: false, responsive: true });
    scatterPlot.dataset.state = "drawn";
  };
  xSel.addEventListener("change", drawScatter);
  ySel.addEventListener("change", drawScatter);
  const scatterSection = h("section", {}, h("h2", {}, "Scatter"),
    h("div", { class: "toolbar" }, h("label", { for: "scatter-x" }, "X"), xSel, h("label", { for: "scatter-y" }, "Y"), ySel),
    scatterPlot);

  fill(box, sideBySide, chartSection, dims.length >= 2 ? parcoordsSection : null, dims.length ? scatterSection : null);
  drawCharts();
  // the plots below the charts are drawn when they come into view (the charts go first)
  const plots = [
    [parcoordsPlot, drawParcoords, dims.length >= 2],
    [scatterPlot, drawScatter, dims.length > 0],
  ];
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      seen.unobserve(e.target);
      const [, draw] = plots.find(([el]) => el === e.target);
      draw().catch((err) => e.target.replaceChildren(errorBox(err, "Plot failed")));
    }
  }, { rootMargin: "100px" });
  for (const [el, , show] of plots) if (show) seen.observe(el);
  document.addEventListener("themechange", () => {
    for (const [el, draw, show] of plots) if (show && el.dataset.state === "drawn") draw();
  });
  requestAnimationFrame(() => performance.mark("compare:table"));
}
