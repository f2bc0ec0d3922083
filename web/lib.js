// lib.js: the dashboard's small toolbox — the API client (token, errors), number
// formatting for people, a DOM builder that never parses HTML from data, a virtualized
// table, sparklines, a small graph drawing, and the event stream with reconnection.

// ---- the API ----

const token = new URLSearchParams(location.search).get("access_token");

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** fetch + JSON; errors become ApiError with the protocol's code. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", `cannot reach the server (${e.message})`);
  }
  let j = null;
  try {
    j = await r.json();
  } catch {
    /* not JSON */
  }
  if (!r.ok) throw new ApiError(r.status, j?.error?.code ?? "http", j?.error?.message ?? `HTTP ${r.status}`);
  return j;
}

/** A path under /v1/heaps/{heap}. */
export const heapPath = (heap, rest = "") => `/v1/heaps/${encodeURIComponent(heap)}${rest}`;

/** A same-origin URL for a plain link (a download, a text page): the token, if any, rides
 * in the query (access_token), since a followed link cannot send a header. */
export function linkUrl(path) {
  if (!token) return path;
  return `${path}${path.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(token)}`;
}

/** The URL of the event stream (EventSource cannot send headers: the token goes in the query). */
export function eventsUrl(since) {
  const q = new URLSearchParams();
  if (since) q.set("since", since);
  if (token) q.set("access_token", token);
  const s = q.toString();
  return s ? `/v1/events?${s}` : "/v1/events";
}

/**
 * Coalesces calls to an async fn: at most one run at a time and one every `ms`; calls
 * meanwhile collapse into one more run afterwards. (A busy heap collects hundreds of
 * times a second: one request per collection would exhaust the browser.)
 */
export function coalesce(fn, ms = 1000) {
  let running = false,
    again = false,
    last = 0,
    timer = null;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = performance.now();
    try {
      await fn();
    } finally {
      running = false;
      if (again) {
        again = false;
        call();
      }
    }
  };
  const call = () => {
    if (running) {
      again = true;
      return;
    }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - performance.now()));
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}

// ---- numbers for people ----

const intFmt = new Intl.NumberFormat("en-US");

/** 3400112 or "3400112" -> "3,400,112" (64-bit counters arrive as strings). */
export function fmtInt(v) {
  if (v === null || v === undefined || v === "") return "–";
  try {
    return intFmt.format(typeof v === "bigint" ? v : BigInt(typeof v === "number" ? Math.round(v) : v));
  } catch {
    return String(v);
  }
}

/** Signed: "+1,204" / "−36". */
export function fmtDelta(v) {
  const b = BigInt(v);
  return b > 0n ? `+${fmtInt(b)}` : b < 0n ? `−${fmtInt(-b)}` : "0";
}

/** 1258291 -> "1.2 MiB". */
export function fmtBytes(v) {
  let n = Number(v);
  if (!Number.isFinite(n)) return "–";
  const neg = n < 0;
  n = Math.abs(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  const s = u === 0 ? String(n) : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
  return `${neg ? "−" : ""}${s} ${units[u]}`;
}

/** Sizes as Python's tracemalloc prints them (_format_size): "512 B", "9876 B", "12.3 KiB",
 * "1234 KiB", "56.7 MiB"; with sign, "+1.5 KiB" / "-96 B". Averages may be fractional. */
export function fmtTraceSize(v, sign = false) {
  let n = Number(v);
  if (!Number.isFinite(n)) return "–";
  const f = (x, d) => `${sign && x >= 0 ? "+" : ""}${x.toFixed(d)}`;
  for (const [i, unit] of ["B", "KiB", "MiB", "GiB", "TiB"].entries()) {
    if (Math.abs(n) < 100 && i > 0) return `${f(n, 1)} ${unit}`;
    if (Math.abs(n) < 10 * 1024 || i === 4) return `${f(n, 0)} ${unit}`;
    n /= 1024;
  }
}

/** Milliseconds: 1.83 -> "1.8 ms", 0.0412 -> "41 µs", 2410 -> "2.41 s". */
export function fmtMs(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n)) return "–";
  if (n < 1) {
    const us = n * 1000;
    return `${us < 10 ? us.toFixed(1).replace(/\.0$/, "") : us.toFixed(0)} µs`;
  }
  if (n < 1000) return `${n < 10 ? n.toFixed(1) : n.toFixed(0)} ms`;
  return `${(n / 1000).toFixed(2)} s`;
}

export const fmtNs = (ns) => fmtMs(Number(ns) / 1e6);

export function fmtDuration(seconds) {
  const s = Math.floor(Number(seconds));
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

// ---- the DOM ----

/** el("div", {class: "x", testid: "y", onclick}, children...): text children are text nodes. */
export function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "circle", "line", "path", "polyline", "g", "text", "marker", "defs", "title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "testid") e.setAttribute("data-testid", v);
    else if (k === "class") e.setAttribute("class", v);
    else if (k === "style") {
      // Through the CSSOM: the page's Content-Security-Policy forbids style attributes.
      for (const decl of String(v).split(";")) {
        const i = decl.indexOf(":");
        if (i > 0) e.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
      }
    }
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "dataset") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
    else if (k in e && !svg && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// ---- a virtualized table: only the visible rows are in the DOM ----

/**
 * columns: [{key, label, render(row) -> Node|string, sort(row) -> number|string|bigint, num: bool}]
 * opts: {rowHeight, height, testid, rowTestid, rowData(row) -> dataset, onOpen(row), empty}
 */
export class VirtualTable {
  constructor(columns, opts) {
    this.columns = columns;
    this.opts = { rowHeight: 30, height: 480, ...opts };
    this.rows = [];
    this.view = [];
    this.sortKey = opts.sortKey ?? null;
    this.sortDir = opts.sortDir ?? -1;
    this.filter = "";
    this.cursor = 0;
    const grid = columns.map((c) => c.width ?? "1fr").join(" ");
    this.head = el(
      "div",
      { class: "vt-head", role: "row", style: `grid-template-columns:${grid}` },
      columns.map((c) =>
        el(
          "button",
          { class: `vt-th${c.num ? " num" : ""}`, role: "columnheader", onclick: () => this.sortBy(c.key), disabled: !c.sort },
          c.label,
        ),
      ),
    );
    this.spacer = el("div", { class: "vt-spacer" });
    this.body = el("div", { class: "vt-rows" });
    this.scroller = el(
      "div",
      { class: "vt-scroll", tabindex: 0, style: `max-height:${this.opts.height}px`, onscroll: () => this.paint(), onkeydown: (e) => this.key(e) },
      this.spacer,
      this.body,
    );
    this.grid = grid;
    this.root = el("div", { class: "vt", testid: opts.testid, role: "table" }, this.head, this.scroller);
  }

  setRows(rows) {
    this.rows = rows;
    this.refilter();
  }

  setFilter(text) {
    this.filter = text.toLowerCase();
    this.refilter();
  }

  sortBy(key) {
    if (this.sortKey === key) this.sortDir = -this.sortDir;
    else {
      this.sortKey = key;
      this.sortDir = this.columns.find((c) => c.key === key)?.num ? -1 : 1;
    }
    this.refilter();
  }

  refilter() {
    const f = this.filter;
    let v = f ? this.rows.filter((r) => (this.opts.text?.(r) ?? "").toLowerCase().includes(f)) : this.rows.slice();
    const col = this.columns.find((c) => c.key === this.sortKey);
    if (col?.sort) {
      const d = this.sortDir;
      v.sort((a, b) => {
        const x = col.sort(a),
          y = col.sort(b);
        return x < y ? -d : x > y ? d : 0;
      });
    }
    this.view = v;
    for (const th of this.head.children) th.classList.remove("asc", "desc");
    const i = this.columns.indexOf(col);
    if (i >= 0) this.head.children[i].classList.add(this.sortDir > 0 ? "asc" : "desc");
    this.cursor = Math.min(this.cursor, Math.max(0, v.length - 1));
    this.spacer.style.height = `${v.length * this.opts.rowHeight}px`;
    this.paint(true);
  }

  paint(force = false) {
    const h = this.opts.rowHeight;
    const top = this.scroller.scrollTop;
    const visible = Math.ceil((this.scroller.clientHeight || this.opts.height) / h) + 1;
    const first = Math.max(0, Math.floor(top / h) - 5);
    const last = Math.min(this.view.length, first + visible + 10);
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    clear(this.body);
    this.body.style.transform = `translateY(${first * h}px)`;
    if (this.view.length === 0 && this.opts.empty) this.body.append(el("div", { class: "vt-empty" }, this.opts.empty));
    for (let i = first; i < last; i++) {
      const r = this.view[i];
      const row = el(
        "div",
        {
          class: `vt-row${i === this.cursor ? " cursor" : ""}`,
          role: "row",
          testid: this.opts.rowTestid,
          style: `grid-template-columns:${this.grid};height:${h}px`,
          dataset: this.opts.rowData?.(r),
          onclick: (e) => {
            if (e.target.closest("a")) return;
            this.cursor = i;
            this.opts.onOpen?.(r);
          },
        },
        this.columns.map((c) => el("div", { class: `vt-td${c.num ? " num" : ""}`, role: "cell" }, c.render ? c.render(r) : String(r[c.key] ?? ""))),
      );
      this.body.append(row);
    }
  }

  /** j/k or arrows move the cursor, Enter opens, Home/End jump. */
  key(e) {
    const n = this.view.length;
    if (!n) return;
    let c = this.cursor;
    if (e.key === "j" || e.key === "ArrowDown") c++;
    else if (e.key === "k" || e.key === "ArrowUp") c--;
    else if (e.key === "PageDown") c += 10;
    else if (e.key === "PageUp") c -= 10;
    else if (e.key === "Home") c = 0;
    else if (e.key === "End") c = n - 1;
    else if (e.key === "Enter") {
      this.opts.onOpen?.(this.view[c]);
      return;
    } else return;
    e.preventDefault();
    this.cursor = Math.max(0, Math.min(n - 1, c));
    const h = this.opts.rowHeight,
      y = this.cursor * h,
      s = this.scroller;
    if (y < s.scrollTop) s.scrollTop = y;
    else if (y + h > s.scrollTop + s.clientHeight) s.scrollTop = y + h - s.clientHeight;
    this.paint(true);
  }
}

// ---- sparklines ----

export function sparkline(values, { width = 90, height = 20 } = {}) {
  const svg = el("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" });
  if (values.length < 2) return svg;
  const min = Math.min(...values),
    max = Math.max(...values);
  const span = max - min || 1;
  const pts = values.map((v, i) => `${((i / (values.length - 1)) * (width - 2) + 1).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`);
  svg.append(el("polyline", { points: pts.join(" "), fill: "none", "stroke-width": 1.5 }));
  return svg;
}

// ---- a small graph: the objects of a cycle on a circle, references as arrows ----

let markerSeq = 0;
export function cycleGraph(nodes, edges, { size = 180, onNode } = {}) {
  const n = nodes.length;
  const r = n === 1 ? 0 : size / 2 - 36; // room for the labels below the nodes
  const pos = nodes.map((_, i) => {
    const a = (2 * Math.PI * i) / n - Math.PI / 2;
    return [size / 2 + r * Math.cos(a), size / 2 + r * Math.sin(a)];
  });
  const mid = `arrow${++markerSeq}`;
  const svg = el(
    "svg",
    { class: "graph", testid: "cycle-graph", width: size, height: size, viewBox: `0 0 ${size} ${size}`, role: "img" },
    el("defs", {}, el("marker", { id: mid, viewBox: "0 0 10 10", refX: 19, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, el("path", { d: "M 0 0 L 10 5 L 0 10 z" }))),
  );
  for (const [a, b] of edges) {
    if (a === b) {
      const [x, y] = pos[a];
      svg.append(el("path", { class: "edge", d: `M ${x - 6} ${y - 9} C ${x - 22} ${y - 40}, ${x + 22} ${y - 40}, ${x + 6} ${y - 9}`, fill: "none", "marker-end": `url(#${mid})` }));
    } else {
      // A slight curve to the right of the direction: a -> b and b -> a stay apart.
      const [x1, y1] = pos[a],
        [x2, y2] = pos[b];
      const len = Math.hypot(x2 - x1, y2 - y1) || 1;
      const cx = (x1 + x2) / 2 + ((y2 - y1) / len) * 16,
        cy = (y1 + y2) / 2 - ((x2 - x1) / len) * 16;
      svg.append(el("path", { class: "edge", d: `M ${x1} ${y1} Q ${cx} ${cy} ${x2} ${y2}`, fill: "none", "marker-end": `url(#${mid})` }));
    }
  }
  nodes.forEach((node, i) => {
    const g = el(
      "g",
      { class: "node", tabindex: 0, onclick: () => onNode?.(node), onkeydown: (e) => e.key === "Enter" && onNode?.(node) },
      el("title", {}, `${node.type} ${node.address}`),
      el("circle", { cx: pos[i][0], cy: pos[i][1], r: 11 }),
      el("text", { x: pos[i][0], y: pos[i][1] + 26, "text-anchor": "middle" }, node.type),
    );
    svg.append(g);
  });
  return svg;
}

// ---- the event stream, reconnecting ----

/**
 * Follows /v1/events. onEvent(type, data) for every event; onState("connecting" |
 * "live" | "reconnecting"). EventSource retries by itself after a dropped connection;
 * when it gives up (an HTTP error, the server gone) a new one resumes with ?since= the
 * last id seen, after 1, 2, 4 .. 10 s.
 */
export class EventStream {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.last = null;
    this.delay = 1000;
    this.types = ["collect_start", "collect_done", "collectable", "uncollectable", "reset"];
    this.open();
  }

  open() {
    this.onState("connecting");
    const es = new EventSource(eventsUrl(this.last));
    this.es = es;
    es.onopen = () => {
      this.delay = 1000;
      this.onState("live");
    };
    es.onerror = () => {
      if (es !== this.es) return;
      this.onState("reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      }
    };
    for (const t of this.types)
      es.addEventListener(t, (m) => {
        if (m.lastEventId) this.last = m.lastEventId;
        let data = null;
        try {
          data = JSON.parse(m.data);
        } catch {
          return;
        }
        this.onEvent(t, data);
      });
  }

  close() {
    clearTimeout(this.timer);
    this.es?.close();
  }
}
