// A virtualised ARIA grid: only the rows in view (and a few either side) are in the DOM,
// at absolute positions inside a body as tall as every row; rows are recycled.
// The caller fills a row (renderItem) and is told which rows are in view (onRange).
// Keyboard: arrows, Page Up/Down, Home/End (Ctrl: first/last row), Space, Enter.
import { h } from "./dom.js";

const OVERSCAN = 8;

export class VirtualGrid {
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.rowH = opts.rowHeight || 32;
    this.count = 0;
    this.cols = [];
    this.rows = new Map(); // item index -> row element
    this.free = [];
    this.active = { row: -1, col: 1 };
    this.raf = 0;
    this.head = h("div", { class: "grid-head", role: "row", "aria-rowindex": "1" });
    this.body = h("div", { class: "grid-body", role: "rowgroup" });
    this.overlay = h("div", { class: "grid-empty", hidden: true });
    el.append(this.head, this.body, this.overlay);
    el.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(el);
    el.addEventListener("keydown", (e) => this.onKey(e));
    el.addEventListener("focus", () => {
      if (this.active.row < 0 && this.count > 0) this.moveTo(0, this.active.col);
    });
    el.addEventListener("mousedown", (e) => {
      const row = e.target.closest(".grid-row");
      const cell = e.target.closest(".cell");
      if (!row || !this.body.contains(row)) return;
      const index = Number(row.dataset.index);
      const col = cell ? Number(cell.dataset.col) : this.active.col;
      this.active = { row: index, col };
      this.decorate();
    });
  }

  setColumns(cols) {
    this.cols = cols;
    this.el.style.setProperty("--cols", cols.map((c) => `${c.width}px`).join(" "));
    this.el.setAttribute("aria-colcount", String(cols.length));
    this.active.col = Math.min(this.active.col, cols.length - 1);
    this.renderHead();
    this.invalidate();
  }

  renderHead() {
    const cells = this.cols.map((c, j) => {
      const cell = h("div", { class: "hcell" + (c.num ? " num" : ""), role: "columnheader", "aria-colindex": String(j + 1), title: c.title || c.label });
      if (c.id === "__select") {
        const box = h("input", { type: "checkbox", "aria-label": "Select all loaded runs" });
        box.addEventListener("change", () => this.opts.onSelectAll?.(box.checked));
        cell.append(box);
        this.selectAll = box;
        return cell;
      }
      if (c.sortable) {
        cell.setAttribute("aria-sort", c.sort || "none");
        // a tab stop each: sorting works from the keyboard too
        cell.append(h("button", { class: "sort", type: "button", "aria-label": `Sort by ${c.title || c.label}`, onclick: () => this.opts.onSort?.(c) }, c.label));
      } else {
        cell.append(h("span", {}, c.label));
      }
      if (c.resizable !== false) {
        const grip = h("span", { class: "resize", "aria-hidden": "true" });
        grip.addEventListener("mousedown", (e) => this.startResize(e, c));
        cell.append(grip);
      }
      return cell;
    });
    this.head.replaceChildren(...cells);
  }

  startResize(e, col) {
    e.preventDefault();
    e.stopPropagation();
    const x0 = e.clientX;
    const w0 = col.width;
    const move = (ev) => {
      col.width = Math.max(48, Math.round(w0 + ev.clientX - x0));
      this.el.style.setProperty("--cols", this.cols.map((c) => `${c.width}px`).join(" "));
    };
    const up = () => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      this.opts.onResize?.(col);
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  }

  setCount(n) {
    this.count = n;
    this.body.style.height = `${n * this.rowH}px`;
    this.el.setAttribute("aria-rowcount", String(n + 1));
    if (this.active.row >= n) this.active.row = n - 1;
    this.invalidate();
  }

  showOverlay(node) {
    this.overlay.replaceChildren(...(node ? [node] : []));
    this.overlay.hidden = !node;
  }

  invalidate() {
    for (const row of this.rows.values()) row._stale = true;
    this.schedule();
  }

  schedule() {
    if (!this.raf) this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  visibleRange() {
    const top = this.el.scrollTop;
    const height = this.el.clientHeight - this.head.offsetHeight;
    const first = Math.floor(top / this.rowH);
    const last = Math.min(this.count - 1, Math.ceil((top + Math.max(height, 0)) / this.rowH));
    return [first, last];
  }

  render() {
    const [vFirst, vLast] = this.visibleRange();
    const first = Math.max(0, vFirst - OVERSCAN);
    const last = Math.min(this.count - 1, vLast + OVERSCAN);
    for (const [i, row] of this.rows) {
      if (i < first || i > last) {
        this.rows.delete(i);
        row.remove();
        this.free.push(row);
      }
    }
    for (let i = first; i <= last; i++) {
      let row = this.rows.get(i);
      if (!row) {
        row = this.free.pop() || h("div", { class: "grid-row", role: "row" });
        row.dataset.index = String(i);
        row.style.transform = `translateY(${i * this.rowH}px)`;
        row.setAttribute("aria-rowindex", String(i + 2));
        row._stale = true;
        this.rows.set(i, row);
        this.body.append(row);
      }
      if (row._stale) {
        row._stale = false;
        this.opts.renderItem(i, row);
        for (const [j, cell] of [...row.children].entries()) {
          cell.id = `cell-${i}-${j}`;
          cell.dataset.col = String(j);
          cell.setAttribute("role", "gridcell");
          cell.setAttribute("aria-colindex", String(j + 1));
        }
      }
    }
    this.decorate();
    this.opts.onRange?.(Math.max(0, vFirst), Math.max(vFirst, vLast));
  }

  decorate() {
    for (const old of this.body.querySelectorAll(".cell.active")) old.classList.remove("active");
    const row = this.rows.get(this.active.row);
    if (!row) {
      this.el.removeAttribute("aria-activedescendant");
      return;
    }
    const cell = row.children[Math.min(this.active.col, row.children.length - 1)];
    if (cell) {
      cell.classList.add("active");
      this.el.setAttribute("aria-activedescendant", cell.id);
    }
  }

  moveTo(row, col) {
    if (this.count === 0) return;
    row = Math.max(0, Math.min(this.count - 1, row));
    col = Math.max(0, Math.min(this.cols.length - 1, col));
    this.active = { row, col };
    const top = row * this.rowH;
    const view = this.el.clientHeight - this.head.offsetHeight;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + this.rowH > this.el.scrollTop + view) this.el.scrollTop = top + this.rowH - view;
    this.render();
  }

  onKey(e) {
    if (e.target !== this.el) return; // a header button or a checkbox has the key
    const { row, col } = this.active;
    const page = Math.max(1, Math.floor((this.el.clientHeight - this.head.offsetHeight) / this.rowH) - 1);
    const moves = {
      ArrowDown: [row + 1, col], ArrowUp: [row - 1, col],
      ArrowRight: [row, col + 1], ArrowLeft: [row, col - 1],
      PageDown: [row + page, col], PageUp: [row - page, col],
      Home: e.ctrlKey ? [0, col] : [row, 0],
      End: e.ctrlKey ? [this.count - 1, col] : [row, this.cols.length - 1],
    };
    if (e.key in moves) {
      e.preventDefault();
      const [r, c] = moves[e.key];
      this.moveTo(r < 0 && row < 0 ? 0 : r, c);
    } else if (e.key === " " && row >= 0) {
      e.preventDefault();
      this.opts.onToggle?.(row);
    } else if (e.key === "Enter" && row >= 0) {
      e.preventDefault();
      this.opts.onActivate?.(row, e);
    }
  }
}
