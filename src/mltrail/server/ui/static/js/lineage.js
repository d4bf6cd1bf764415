// The lineage graph: dataset -> run -> model artifact -> model version -> stage/alias,
// drawn as layered boxes in SVG (left to right, as the data flows), nodes are links.
import { api } from "./api.js";
import { emptyState, errorBox, h } from "./dom.js";

const W = 184;
const H = 46;
const GAP_X = 44;
const GAP_Y = 14;
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

export function hrefOf(node) {
  if (node.kind === "run") return "/runs/" + encodeURIComponent(node.id);
  if (node.kind === "model") {
    const [name, version] = node.id.split("@");
    return `/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`;
  }
  if (node.href) return node.href;
  return null;
}

/** A graph from the API's lineage trees: `up` (edges child -> node) and `down`. */
export class Graph {
  constructor() {
    this.nodes = new Map();
    this.edges = new Set();
  }
  node(n) {
    const key = `${n.kind}:${n.id}`;
    if (!this.nodes.has(key)) this.nodes.set(key, { key, kind: n.kind, id: n.id, label: n.label, href: n.href });
    return key;
  }
  edge(a, b) {
    this.edges.add(`${a}\n${b}`);
  }
  addTree(tree, direction) {
    const walk = (n) => {
      const key = this.node(n);
      for (const c of n.children || []) {
        const ck = walk(c);
        if (direction === "up") this.edge(ck, key);
        else this.edge(key, ck);
      }
      return key;
    };
    return walk(tree);
  }
}

function shortLabel(n) {
  if (n.kind === "run") {
    const m = /^run (.*) \(/.exec(n.label);
    return m ? m[1] : n.id;
  }
  if (n.kind === "model") return n.id;
  if (n.kind === "artifact") return n.label.replace(/^\S+ /, "");
  return n.label;
}

function kindLabel(n) {
  if (n.kind === "alias") return n.id.split(":")[0]; // "stage" or "alias"
  if (n.kind === "artifact") return n.label.split(" ")[0];
  if (n.kind === "model") {
    const m = /\[(.*)\]/.exec(n.label);
    const text = m ? `version · ${m[1]}` : "model version";
    return text.length > 32 ? text.slice(0, 31) + "…" : text;
  }
  return n.kind;
}

/** Draw the graph; `focus` is the key of the node the page is about. */
export function drawGraph(graph, focus) {
  const nodes = [...graph.nodes.values()];
  if (nodes.length <= 1) return emptyState("No lineage", "Nothing was used or produced by this yet.");
  const edges = [...graph.edges].map((e) => e.split("\n"));
  const layer = new Map(nodes.map((n) => [n.key, 0]));
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const [a, b] of edges) {
      if (layer.get(b) < layer.get(a) + 1) {
        layer.set(b, layer.get(a) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of nodes) (columns[layer.get(n.key)] ||= []).push(n);
  const tallest = Math.max(...columns.map((c) => (c ? c.length : 0)));
  const height = tallest * (H + GAP_Y) + GAP_Y;
  const width = columns.length * (W + GAP_X) + GAP_X / 2;
  const pos = new Map();
  columns.forEach((col, i) => {
    if (!col) return;
    const top = (height - col.length * (H + GAP_Y)) / 2 + GAP_Y / 2;
    col.forEach((n, j) => pos.set(n.key, { x: GAP_X / 4 + i * (W + GAP_X), y: top + j * (H + GAP_Y) }));
  });
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Lineage graph" });
  for (const [a, b] of edges) {
    const p = pos.get(a);
    const q = pos.get(b);
    const x1 = p.x + W;
    const y1 = p.y + H / 2;
    const x2 = q.x;
    const y2 = q.y + H / 2;
    const mid = (x1 + x2) / 2;
    root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 6},${y2}`, "marker-end": "url(#arrow)" }));
  }
  const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "5", refY: "5", markerWidth: "6", markerHeight: "6", orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "currentColor", class: "arrow" })));
  root.prepend(defs);
  for (const n of nodes) {
    const { x, y } = pos.get(n.key);
    const label = shortLabel(n);
    const text = label.length > 28 ? label.slice(0, 27) + "…" : label;
    const g = svg("g", { class: `node ${n.kind}${n.key === focus ? " focus" : ""}`, transform: `translate(${x},${y})` },
      svg("title", {}, document.createTextNode(n.label)),
      svg("rect", { width: W, height: H, rx: 6 }),
      svg("text", { x: 10, y: 17, class: "kind" }, document.createTextNode(kindLabel(n))),
      svg("text", { x: 10, y: 35 }, document.createTextNode(text)));
    const href = hrefOf(n);
    root.append(href && n.key !== focus ? svg("a", { href, "aria-label": `${n.kind} ${label}` }, g) : g);
  }
  return h("div", { class: "lineage" }, root);
}

/** Lineage around `target` (a run id or model name@version): both directions. */
export async function lineageOf(target, { up = 5, down = 4, extra } = {}) {
  try {
    const [upTree, downTree] = await Promise.all([
      api("/lineage", { params: { target, direction: "up", depth: up } }),
      api("/lineage", { params: { target, direction: "down", depth: down } }),
    ]);
    const graph = new Graph();
    const focus = graph.addTree(upTree, "up");
    graph.addTree(downTree, "down");
    if (extra) extra(graph, focus);
    return drawGraph(graph, focus);
  } catch (err) {
    return errorBox(err, "Lineage could not be read");
  }
}
