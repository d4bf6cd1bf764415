// Line charts of metric series (Plotly.js from the installed plotly package, no CDN).
// The server reduces every series to about `points` points with each point's min/max
// (GET /runs/{id}/series); zooming asks for the visible step range only, so detail
// appears as you zoom. Controls: x axis (step, wall time, relative time, any metric),
// EMA smoothing, log scale, min/max band. A run's colour comes from a hash of its id.
import { api, num } from "./api.js";
import { colorFor, emptyState, errorBox, fmtNum, h } from "./dom.js";
import { themeColors } from "./theme.js";

let plotly = null;

/** Plotly.js, loaded once per page (a plain script: it is not an ES module). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  plotly ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = document.body.dataset.static + "/vendor/plotly.min.js";
    script.onload = () => {
      performance.mark("plotly:loaded");
      resolve(window.Plotly);
    };
    script.onerror = () => {
      plotly = null;
      reject(new Error("Plotly.js could not be loaded: install the server extra (pip install 'mltrail[server]')"));
    };
    document.head.append(script);
  });
  return plotly;
}

function decode(s) {
  const values = s.values.map(num);
  return {
    key: s.key, count: s.count, inRange: s.in_range, steps: s.steps, values,
    times: s.times.map(num), lo: s.lo.map(num), hi: s.hi.map(num),
    reduced: s.in_range > s.steps.length, x: s.x ? s.x.map(num) : null,
  };
}

/** Batches the series requests made in one tick: one request per run and options. */
class SeriesLoader {
  constructor() {
    this.queue = new Map();
    this.timer = 0;
  }
  get(runId, key, opts) {
    const sig = JSON.stringify([runId, opts.points, opts.stepMin ?? null, opts.stepMax ?? null, opts.xKey ?? null]);
    let batch = this.queue.get(sig);
    if (!batch) this.queue.set(sig, (batch = { runId, opts, keys: new Map() }));
    let entry = batch.keys.get(key);
    if (!entry) {
      entry = {};
      entry.promise = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
      batch.keys.set(key, entry);
    }
    this.timer ||= setTimeout(() => this.flush(), 0);
    return entry.promise;
  }
  flush() {
    this.timer = 0;
    const batches = [...this.queue.values()];
    this.queue.clear();
    for (const { runId, opts, keys } of batches) {
      const all = [...keys.keys()];
      for (let i = 0; i < all.length; i += 32) {
        const chunk = all.slice(i, i + 32);
        api(`/runs/${encodeURIComponent(runId)}/series`, {
          params: { key: chunk, points: opts.points, step_min: opts.stepMin, step_max: opts.stepMax, x_key: opts.xKey },
        }).then((body) => {
          for (const s of body.series) keys.get(s.key)?.resolve(decode(s));
        }, (err) => {
          for (const k of chunk) keys.get(k).reject(err);
        });
      }
    }
  }
}

export const loader = new SeriesLoader();

/** TensorBoard's debiased exponential moving average (weight 0..1). */
export function ema(values, weight) {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
}

const SETTINGS_KEY = "mltrail.charts";

/**
 * A grid of charts, one per metric key, every run overlaid, sharing one set of controls.
 * runs: [{id, name}]; keys: metric keys; opts.xKeys: keys offered as the x axis.
 */
export class ChartGroup {
  constructor(container, runs, keys, opts = {}) {
    this.container = container;
    this.runs = runs;
    this.keys = keys;
    this.opts = opts;
    this.prefix = opts.idPrefix || "chart";
    // about 6,000 points per chart: a run's line keeps its shape, 50 runs stay quick to draw
    this.points = opts.points || Math.max(100, Math.min(1500, Math.floor(6000 / Math.max(1, runs.length))));
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}");
    this.settings = { x: "step", smoothing: 0, log: false, band: true, ...saved };
    if (this.settings.x.startsWith("metric:") && !(opts.xKeys || keys).includes(this.settings.x.slice(7))) this.settings.x = "step";
    this.charts = [];
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) this.draw(e.target._chart);
    }, { rootMargin: "200px" });
    this.build();
    document.addEventListener("themechange", () => this.redrawAll(false));
  }

  build() {
    const box = this.container;
    box.replaceChildren();
    if (!this.keys.length) {
      box.append(emptyState("No metrics", this.opts.emptyText || "Nothing logged with run.log() yet."));
      return;
    }
    if (this.opts.controls !== false) box.append(this.controls());
    const grid = h("div", { class: "charts" });
    for (const key of this.keys) {
      const plot = h("div", { class: "plot", role: "img", "aria-label": `Chart of ${key}` });
      const note = h("span", { class: "note" });
      const el = h("figure", { class: "chart" + (this.keys.length === 1 ? " wide" : ""), dataset: { key } },
        h("h3", {}, h("span", {}, key), note), plot);
      el.style.margin = "0";
      const chart = { key, el, plot, note, range: null, drawn: false, t0: {}, full: {} };
      el._chart = chart;
      this.charts.push(chart);
      grid.append(el);
      this.observer.observe(el);
    }
    box.append(grid);
  }

  controls() {
    const s = this.settings;
    const xSelect = h("select", { id: `${this.prefix}-x` },
      h("option", { value: "step", selected: s.x === "step" }, "Step"),
      h("option", { value: "time", selected: s.x === "time" }, "Wall time"),
      h("option", { value: "relative", selected: s.x === "relative" }, "Relative time"),
      h("optgroup", { label: "Metric" }, (this.opts.xKeys || this.keys).map((k) =>
        h("option", { value: `metric:${k}`, selected: s.x === `metric:${k}` }, k))));
    const smooth = h("input", { id: `${this.prefix}-smoothing`, type: "range", min: "0", max: "0.99", step: "0.01", value: String(s.smoothing) });
    const smoothOut = h("output", { for: `${this.prefix}-smoothing` }, s.smoothing.toFixed(2));
    const log = h("input", { id: `${this.prefix}-log`, type: "checkbox", checked: s.log });
    const band = h("input", { id: `${this.prefix}-band`, type: "checkbox", checked: s.band });
    const changed = (refetch) => {
      localStorage.setItem(SETTINGS_KEY, JSON.stringify(this.settings));
      this.redrawAll(refetch);
    };
    xSelect.addEventListener("change", () => {
      s.x = xSelect.value;
      for (const c of this.charts) c.range = null;
      changed(true);
    });
    smooth.addEventListener("input", () => {
      s.smoothing = Number(smooth.value);
      smoothOut.textContent = s.smoothing.toFixed(2);
    });
    smooth.addEventListener("change", () => changed(false));
    log.addEventListener("change", () => {
      s.log = log.checked;
      changed(false);
    });
    band.addEventListener("change", () => {
      s.band = band.checked;
      changed(false);
    });
    return h("div", { class: "chart-controls", role: "group", "aria-label": "Chart settings" },
      h("div", { class: "field" }, h("label", { for: `${this.prefix}-x` }, "X axis"), xSelect),
      h("div", { class: "field" }, h("label", { for: `${this.prefix}-smoothing` }, "Smoothing"), smooth, smoothOut),
      h("label", { class: "inline" }, log, "Log scale"),
      h("label", { class: "inline" }, band, "Min/max band"));
  }

  redrawAll(refetch) {
    for (const c of this.charts) {
      if (!c.drawn) continue;
      if (refetch) c.data = null;
      this.draw(c, true);
    }
  }

  async fetch(chart) {
    const xKey = this.settings.x.startsWith("metric:") ? this.settings.x.slice(7) : undefined;
    const opts = { points: this.points, xKey, stepMin: chart.range?.[0], stepMax: chart.range?.[1] };
    const results = await Promise.allSettled(this.runs.map((r) => loader.get(r.id, chart.key, opts)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed && results.every((r) => r.status === "rejected")) throw failed.reason;
    const data = results.map((r) => (r.status === "fulfilled" ? r.value : null));
    if (!chart.range) {
      this.runs.forEach((run, i) => {
        const s = data[i];
        if (s && s.times.length) chart.t0[run.id] = s.times[0];
        if (s) chart.full[run.id] = s;
      });
    }
    return data;
  }

  async draw(chart, force = false) {
    if (chart.busy || (chart.drawn && !force)) return;
    chart.busy = true;
    chart.el.dataset.state = "loading";
    try {
      // the series requests first: Plotly.js takes the main thread while it is evaluated
      const series = chart.data ? chart.data : this.fetch(chart);
      await new Promise((resolve) => setTimeout(resolve, 0)); // let the batch go out
      const [Plotly, data] = await Promise.all([loadPlotly(), series]);
      performance.mark(`chart:data:${chart.key}`);
      chart.data = data;
      const traces = this.traces(chart, data);
      const first = data.find((s) => s && s.count);
      chart.note.textContent = first
        ? (this.runs.length === 1
          ? `${fmtNum(first.count)} points${first.reduced ? ` · ${fmtNum(first.steps.length)} shown` : ""}`
          : `${this.runs.length} runs`)
        : "no points";
      await Plotly.react(chart.plot, traces, this.layout(chart), {
        responsive: true, displaylogo: false,
        modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
        toImageButtonOptions: { filename: chart.key.replace(/[^\w.-]+/g, "_") },
      });
      if (!chart.bound) {
        chart.bound = true;
        chart.plot.on("plotly_relayout", (ev) => this.onZoom(chart, ev));
      }
      chart.drawn = true;
      chart.el.dataset.state = "drawn";
      chart.el.dataset.points = String(first ? first.steps.length : 0);
      performance.mark(`chart:${chart.key}`);
    } catch (err) {
      if (err.status !== 401) chart.plot.replaceChildren(errorBox(err, "Chart failed"));
      chart.el.dataset.state = "error";
    } finally {
      chart.busy = false;
    }
  }

  xOf(chart, run, s) {
    const mode = this.settings.x;
    if (mode === "time") return s.times.map((t) => new Date(t * 1000));
    if (mode === "relative") {
      const t0 = chart.t0[run.id] ?? s.times[0] ?? 0;
      return s.times.map((t) => t - t0);
    }
    if (mode.startsWith("metric:")) return s.x || [];
    return s.steps;
  }

  traces(chart, data) {
    const out = [];
    const { smoothing, band } = this.settings;
    const many = this.runs.length > 5;
    this.runs.forEach((run, i) => {
      const s = data[i];
      if (!s || !s.steps.length) return;
      const color = colorFor(run.id);
      const x = this.xOf(chart, run, s);
      const name = run.name || run.id;
      if (band && s.reduced && !many) { // 50 bands are noise, and slow to draw
        out.push({ x, y: s.lo, mode: "lines", line: { width: 0, color }, hoverinfo: "skip", showlegend: false, legendgroup: run.id, type: "scatter" });
        out.push({ x, y: s.hi, mode: "lines", line: { width: 0, color }, fill: "tonexty", fillcolor: rgba(color, 0.18), hoverinfo: "skip", showlegend: false, legendgroup: run.id, type: "scatter" });
      }
      if (smoothing > 0 && !many) {
        out.push({ x, y: s.values, mode: "lines", line: { width: 1, color }, opacity: 0.3, hoverinfo: "skip", showlegend: false, legendgroup: run.id, type: "scatter" });
      }
      out.push({
        x, y: smoothing > 0 ? ema(s.values, smoothing) : s.values, name, mode: "lines", type: "scatter",
        line: { width: 1.6, color }, legendgroup: run.id,
        hovertemplate: `${name.replace(/[<>&]/g, "")}: %{y:.5g}<extra></extra>`,
      });
    });
    return out;
  }

  layout(chart) {
    const c = themeColors();
    const mode = this.settings.x;
    const axis = { gridcolor: c.border, zerolinecolor: c.border, linecolor: c.border, automargin: true };
    const xTitle = mode === "step" ? "step" : mode === "time" ? "" : mode === "relative" ? "seconds" : mode.slice(7);
    return {
      margin: { l: 48, r: 12, t: 8, b: 32 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: c.fg, size: 11, family: "system-ui, sans-serif" },
      xaxis: { ...axis, type: mode === "time" ? "date" : "linear", title: { text: xTitle, font: { size: 11 } } },
      yaxis: { ...axis, type: this.settings.log ? "log" : "linear" },
      showlegend: this.runs.length > 1 && this.runs.length <= 12,
      legend: { orientation: "h", y: -0.22, font: { size: 10 } },
      hovermode: this.runs.length <= 8 ? "x unified" : "closest",
      uirevision: `${chart.key}:${mode}`,
    };
  }

  /** Zoom: fetch the visible step range at full resolution; double-click: the whole range. */
  onZoom(chart, ev) {
    const mode = this.settings.x;
    if (mode.startsWith("metric:")) return;
    let range = null;
    if (ev["xaxis.autorange"]) range = null;
    else if ("xaxis.range[0]" in ev) range = [ev["xaxis.range[0]"], ev["xaxis.range[1]"]];
    else if (Array.isArray(ev["xaxis.range"])) range = ev["xaxis.range"];
    else return;
    let steps = null;
    if (range) {
      if (mode === "step") steps = [Math.floor(range[0]), Math.ceil(range[1])];
      else steps = this.stepsForTimes(chart, range, mode);
    }
    if (JSON.stringify(steps) === JSON.stringify(chart.range)) return;
    chart.range = steps;
    clearTimeout(chart.zoomTimer);
    chart.zoomTimer = setTimeout(() => {
      chart.data = null;
      this.draw(chart, true);
    }, 150);
  }

  stepsForTimes(chart, range, mode) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const run of this.runs) {
      const s = chart.full[run.id];
      if (!s) continue;
      const t0 = chart.t0[run.id] ?? 0;
      const toT = (v) => (mode === "time" ? new Date(v).getTime() / 1000 : Number(v) + t0);
      const a = toT(range[0]);
      const b = toT(range[1]);
      for (let i = 0; i < s.times.length; i++) {
        if (s.times[i] >= a && (i === 0 || s.times[i - 1] < a)) lo = Math.min(lo, s.steps[Math.max(0, i - 1)]);
        if (s.times[i] <= b) hi = Math.max(hi, s.steps[Math.min(s.steps.length - 1, i + 1)]);
      }
    }
    return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : null;
  }
}
