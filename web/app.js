// app.js: the rcgc leak-hunting dashboard. Hash routes:
//   #/overview                     every heap: generations, rates, the live collection timeline, controls
//   #/census/<heap>                types with objects, bytes, growth, sparklines; leak suspects
//   #/objects/<heap>?type=<T>      a type's objects (every object: ?scope=all), virtualized
//   #/object/<heap>/<id>           one object: refcount explained, references, path, site, allocation traceback, retained
//   #/garbage/<heap>               the garbage list grouped by cycle, each drawn as a graph
//   #/allocations/<heap>           tracing, top allocation sites, growth, flame graph, allocator (allocations.js)
// Data comes from protocol v1 (protocol/README.md) on the same origin; nothing else is loaded.
import { allocationsView } from "./allocations.js";
import { ApiError, EventStream, VirtualTable, api, clear, coalesce, cycleGraph, el, fmtBytes, fmtDelta, fmtDuration, fmtInt, fmtMs, fmtNs, heapPath, sparkline } from "./lib.js";

const POLL_MS = 1000;
const CENSUS_POLL_MS = 2000;
const HISTORY = 60; // census samples kept per type, for the sparklines
const TIMELINE_MAX = 2000; // collections kept on the timeline

const state = {
  process: null,
  heaps: [], // names
  heap: null, // the heap the views show
  stats: new Map(), // heap -> last /v1/heaps/{heap}
  rate: new Map(), // heap -> collections per second
  timeline: new Map(), // heap -> {t: [], pause: [], collected: [], uncollectable: [], gen: []}
  census: new Map(), // heap -> Map(type -> [objects...])
  connState: "connecting",
};

const main = document.getElementById("main");
const statusEl = document.querySelector("[data-testid=conn-status]");
const heapSelect = document.getElementById("heap-select");
let current = null; // the view: {render(), stop()}

// ---- the shell ----

function setConn(s) {
  state.connState = s;
  statusEl.dataset.state = s;
  statusEl.textContent = s === "live" ? "live" : s === "connecting" ? "connecting…" : "reconnecting…";
}

function errorBox(e) {
  const msg = e instanceof ApiError ? `${e.message} (${e.code})` : String(e?.message ?? e);
  return el("div", { class: "error", role: "alert" }, msg);
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = h.split("?");
  const parts = path.split("/").map(decodeURIComponent);
  return { view: parts[0] || "overview", heap: parts[1] || null, id: parts[2] || null, query: new URLSearchParams(query) };
}

export function go(hash) {
  if (location.hash !== hash) location.hash = hash;
  else route();
}

const link = (hash, text, attrs = {}) => el("a", { href: hash, ...attrs }, text);
const plural = (n, word) => `${fmtInt(n)} ${word}${String(n) === "1" ? "" : "s"}`;
const objectHash = (heap, id) => `#/object/${encodeURIComponent(heap)}/${id}`;
const objectsHash = (heap, type) => `#/objects/${encodeURIComponent(heap)}?type=${encodeURIComponent(type)}`;

function route() {
  const r = parseHash();
  if (r.heap && state.heaps.includes(r.heap)) state.heap = r.heap;
  if (!state.heap && state.heaps.length) state.heap = state.heaps[0];
  heapSelect.value = state.heap ?? "";
  for (const a of document.querySelectorAll("nav a[data-view]")) {
    a.href = a.dataset.view === "overview" ? "#/overview" : `#/${a.dataset.view}/${encodeURIComponent(state.heap ?? "")}`;
    a.classList.toggle("active", a.dataset.view === r.view || (r.view === "object" && a.dataset.view === "objects"));
  }
  current?.stop?.();
  clear(main);
  const views = {
    overview: overviewView,
    census: censusView,
    objects: objectsView,
    object: objectView,
    garbage: garbageView,
    allocations: () => allocationsView(state.heap, { control: state.process?.server?.control === true, errorBox }),
  };
  const make = views[r.view] ?? overviewView;
  if (r.view !== "overview" && !state.heap) {
    main.append(el("p", { class: "muted" }, "No heap yet."));
    current = null;
    return;
  }
  current = make(r);
  main.append(current.root);
  current.root.querySelector("[autofocus]")?.focus();
}

// ---- data shared by the views: heap stats polled, collections streamed ----

function timelineOf(heap) {
  if (!state.timeline.has(heap)) state.timeline.set(heap, { seen: 0, t: [], pause: [], collected: [], uncollectable: [], gen: [] });
  return state.timeline.get(heap);
}

function onEvent(type, d) {
  if (type === "collect_done" && d.heap) {
    const tl = timelineOf(d.heap);
    tl.t.push(Date.parse(d.time) / 1000);
    tl.pause.push(Number(d.pause_ns) / 1e6);
    tl.collected.push(Number(d.collected));
    tl.uncollectable.push(Number(d.uncollectable));
    tl.gen.push(d.generation);
    tl.seen++;
    if (tl.t.length > TIMELINE_MAX) for (const k of ["t", "pause", "collected", "uncollectable", "gen"]) tl[k].shift();
    current?.onCollect?.(d.heap);
  }
  if (type === "reset") current?.onCollect?.(null);
}

async function pollStats() {
  for (const heap of state.heaps) {
    try {
      const s = await api(heapPath(heap));
      const prev = state.stats.get(heap);
      if (prev) {
        const total = (x) => x.generations.reduce((a, g) => a + Number(g.collections), 0);
        const dt = (performance.now() - prev._at) / 1000;
        if (dt > 0) state.rate.set(heap, Math.max(0, (total(s) - total(prev)) / dt));
      }
      s._at = performance.now();
      state.stats.set(heap, s);
    } catch {
      /* the next poll tries again */
    }
  }
  current?.onStats?.();
}

/** Every type's count over time, for the census sparklines: sampled in the background
 * (a snapshot read, no walk) so that the trend is there when the census opens. */
async function pollCensus() {
  const heap = state.heap;
  if (!heap) return;
  try {
    const c = await api(heapPath(heap, "/census?limit=10000"));
    const history = state.census.get(heap) ?? new Map();
    state.census.set(heap, history);
    for (const t of c.types) {
      const h = history.get(t.type) ?? [];
      h.push(Number(t.objects));
      if (h.length > HISTORY) h.shift();
      history.set(t.type, h);
    }
  } catch {
    /* the next poll tries again */
  }
}

async function refreshHeaps() {
  try {
    const h = await api("/v1/heaps");
    const names = h.heaps.map((x) => x.name);
    if (names.join("\0") !== state.heaps.join("\0")) {
      state.heaps = names;
      clear(heapSelect);
      for (const n of names) heapSelect.append(el("option", { value: n }, n));
      if (!state.heap || !names.includes(state.heap)) state.heap = names[0] ?? null;
      heapSelect.value = state.heap ?? "";
      return true;
    }
  } catch {
    /* keep the last list */
  }
  return false;
}

// ---- controls (only when the server allows them) ----

function controlsPanel(heap) {
  const out = el("p", { class: "muted ctl-out", role: "status" });
  // A button's action: fn() returns the text to show; errors are shown instead.
  const action = (fn) => async () => {
    try {
      out.textContent = await fn();
    } catch (e) {
      out.textContent = e instanceof ApiError ? e.message : String(e);
    }
  };
  const s = state.stats.get(heap);
  const thresholds = [0, 1, 2].map((g) => el("input", { type: "number", min: 0, testid: `threshold-${g}`, "aria-label": `threshold ${g}`, value: s ? s.generations[g].threshold : "" }));
  const flags = ["stats", "collectable", "uncollectable", "saveall"].map((f) =>
    el("label", { class: "flag" }, el("input", { type: "checkbox", testid: "debug-flag", dataset: { flag: f }, checked: s?.debug?.flags?.includes(f) ?? false }), f),
  );
  const label = el("input", { type: "text", testid: "baseline-label", placeholder: "label", "aria-label": "baseline label", pattern: "[A-Za-z0-9_.-]{1,64}", size: 10 });
  const collect = (g) =>
    action(async () => {
      const r = await api(heapPath(heap, `/collect?generation=${g}`), { method: "POST" });
      return `generation ${g}: ${fmtInt(r.collected)} collected, ${fmtInt(r.uncollectable)} uncollectable in ${fmtNs(r.pause_ns)}`;
    });
  const applyThresholds = action(async () => {
    const r = await api(heapPath(heap, "/thresholds"), { method: "PUT", body: { threshold: thresholds.map((i) => Number(i.value)) } });
    return `thresholds ${r.threshold.join(" / ")}`;
  });
  const applyDebug = action(async () => {
    const on = flags.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.dataset.flag);
    const r = await api(heapPath(heap, "/debug"), { method: "PUT", body: { flags: on } });
    return `debug flags: ${r.debug.flags.join(", ") || "none"}`;
  });
  const takeBaseline = action(async () => {
    const name = label.value || `b${Date.now() % 100000}`;
    const r = await api(heapPath(heap, `/baselines?label=${encodeURIComponent(name)}`), { method: "POST" });
    label.value = "";
    current?.onBaseline?.();
    return `baseline "${r.baseline.label}" taken`;
  });
  const row = (...children) => el("div", { class: "row" }, ...children);
  return el(
    "section",
    { class: "panel controls", testid: "controls" },
    el("h3", {}, "Controls"),
    row("Collect ", [0, 1, 2].map((g) => el("button", { testid: `collect-${g}`, onclick: collect(g) }, `gen ${g}`))),
    row("Thresholds ", thresholds, el("button", { testid: "thresholds-apply", onclick: applyThresholds }, "apply")),
    row("Debug ", flags, el("button", { testid: "debug-apply", onclick: applyDebug }, "apply")),
    row("Baseline ", label, el("button", { testid: "baseline-take", onclick: takeBaseline }, "take")),
    out,
  );
}

// ---- overview ----

function overviewView() {
  const root = el("div", { class: "view overview" }, el("h2", {}, "Overview"));
  const proc = state.process;
  if (proc)
    root.append(
      el(
        "p",
        { class: "muted" },
        `${proc.program} (pid ${proc.pid}) · up ${fmtDuration(proc.uptime_seconds)} · resident ${fmtBytes(proc.memory.resident_bytes)} · ${proc.threads} threads · rcgc ${proc.rcgc_version}`,
      ),
    );
  const cards = new Map();
  const charts = new Map();
  function card(heap) {
    const gens = el("div", { class: "gens" });
    const facts = el("dl", { class: "facts" });
    const chartBox = el("div", { class: "timeline", testid: "timeline", dataset: { points: "0" } });
    const c = el(
      "section",
      { class: "panel heap-card", testid: "heap-card", dataset: { heap } },
      el("h3", {}, heap, " ", link(`#/census/${encodeURIComponent(heap)}`, "census →", { class: "small" })),
      gens,
      facts,
      el("h4", {}, "Collections: pause per collection (ms), collected and uncollectable objects"),
      chartBox,
    );
    if (proc?.server?.control) c.append(controlsPanel(heap));
    cards.set(heap, { c, gens, facts, chartBox });
    return c;
  }
  const grid = el("div", { class: "cards" });
  root.append(grid);
  function paintStats() {
    for (const heap of state.heaps) {
      if (!cards.has(heap)) grid.append(card(heap));
      const s = state.stats.get(heap);
      if (!s) continue;
      const { gens, facts } = cards.get(heap);
      clear(gens);
      for (const g of s.generations) {
        const count = Number(g.count),
          thr = Number(g.threshold);
        const pct = thr > 0 ? Math.min(100, (count / thr) * 100) : 0;
        gens.append(
          el(
            "div",
            { class: "gen", testid: "gen-bar", dataset: { gen: g.generation, count: g.count, threshold: g.threshold } },
            el("span", { class: "gen-name" }, `gen ${g.generation}`),
            el("span", { class: "bar", role: "meter", "aria-valuenow": count, "aria-valuemax": thr }, el("span", { class: "fill", style: `width:${pct.toFixed(1)}%` })),
            el("span", { class: "num" }, `${fmtInt(g.count)} / ${fmtInt(g.threshold)}`),
            el("span", { class: "muted small" }, `${fmtInt(g.objects)} objects · ${fmtInt(g.collections)} collections · max pause ${fmtNs(g.pause_max_ns)}`),
          ),
        );
      }
      clear(facts);
      const rate = state.rate.get(heap);
      const fact = (k, v, testid) => [el("dt", {}, k), el("dd", { testid }, v)];
      facts.append(
        ...fact("live objects", fmtInt(s.objects)),
        ...fact("bytes", fmtBytes(s.bytes)),
        ...fact("collections/s", rate === undefined ? "…" : rate.toFixed(rate < 10 ? 1 : 0), "collections-rate"),
        ...fact("garbage list", fmtInt(s.garbage)),
        ...fact("frozen", fmtInt(s.frozen)),
        ...fact("collector", s.enabled ? "enabled" : "disabled"),
      );
    }
  }
  function paintChart(heap) {
    const box = cards.get(heap)?.chartBox;
    if (!box) return;
    const tl = timelineOf(heap);
    box.dataset.points = String(tl.seen); // every collection seen; the chart keeps the last TIMELINE_MAX
    if (typeof uPlot !== "function") {
      box.textContent = `${tl.t.length} collections (charting library missing)`;
      return;
    }
    let ch = charts.get(heap);
    const data = [tl.t, tl.pause, tl.collected, tl.uncollectable];
    if (!ch) {
      const width = Math.max(280, box.clientWidth || 600);
      ch = new uPlot(
        {
          width,
          height: 200,
          legend: { live: true },
          scales: { x: { time: true }, ms: { auto: true }, n: { auto: true } },
          axes: [{ stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.15)" } }, { scale: "ms", stroke: "currentColor", label: "pause ms", grid: { stroke: "rgba(128,128,128,.15)" } }, { scale: "n", side: 1, stroke: "currentColor", label: "objects", grid: { show: false } }],
          series: [
            {},
            { label: "pause", scale: "ms", stroke: "#3b82f6", width: 1, points: { show: true, size: 4 }, value: (u, v) => (v == null ? "–" : fmtMs(v)) },
            { label: "collected", scale: "n", stroke: "#10b981", width: 1, value: (u, v) => (v == null ? "–" : fmtInt(v)) },
            { label: "uncollectable", scale: "n", stroke: "#ef4444", width: 1, value: (u, v) => (v == null ? "–" : fmtInt(v)) },
          ],
        },
        data,
        box,
      );
      charts.set(heap, ch);
      sizer.observe(box);
    } else ch.setData(data);
  }
  // The chart follows its box's width (the box has none until the view is in the page).
  const sizer = new ResizeObserver(() => {
    for (const [heap, ch] of charts) {
      const w = cards.get(heap)?.chartBox.clientWidth;
      if (w && Math.abs(w - ch.width) > 1) ch.setSize({ width: w, height: 200 });
    }
  });
  paintStats();
  for (const h of state.heaps) paintChart(h);
  const dirty = new Set();
  let frame = 0;
  return {
    root,
    onStats: paintStats,
    onCollect: (heap) => {
      // One repaint per frame however many collections arrive meanwhile.
      dirty.add(heap ?? "*");
      if (!frame)
        frame = requestAnimationFrame(() => {
          frame = 0;
          const all = dirty.has("*");
          const heaps = all ? state.heaps : [...dirty];
          dirty.clear();
          heaps.forEach(paintChart);
        });
    },
    stop: () => {
      cancelAnimationFrame(frame);
      sizer.disconnect();
      for (const ch of charts.values()) ch.destroy();
    },
  };
}

// ---- census and suspects ----

function censusView(r) {
  const heap = state.heap;
  const history = state.census.get(heap) ?? new Map();
  state.census.set(heap, history);
  let baseline = r.query.get("baseline") ?? "";
  const filter = el("input", { type: "search", testid: "census-filter", placeholder: "filter types  (/)", "aria-label": "filter types", oninput: () => table.setFilter(filter.value) });
  const select = el("select", { testid: "baseline-select", "aria-label": "baseline", onchange: () => ((baseline = select.value), load()) }, el("option", { value: "" }, "no baseline"));
  const totals = el("p", { class: "muted", testid: "census-totals" });
  const err = el("div");
  const hasDelta = () => baseline !== "";
  const table = new VirtualTable(
    [
      { key: "type", label: "type", width: "minmax(8em,2fr)", sort: (t) => t.type.toLowerCase(), render: (t) => link(objectsHash(heap, t.type), t.type) },
      { key: "objects", label: "objects", num: true, sort: (t) => Number(t.objects), render: (t) => fmtInt(t.objects) },
      { key: "bytes", label: "bytes", num: true, sort: (t) => Number(t.bytes), render: (t) => fmtBytes(t.bytes) },
      { key: "delta", label: "growth", num: true, sort: (t) => (t.delta ? Number(t.delta.objects) : 0), render: (t) => (t.delta ? el("span", { class: Number(t.delta.objects) > 0 ? "up" : "" }, fmtDelta(t.delta.objects)) : "–") },
      { key: "trend", label: "trend", width: "100px", render: (t) => sparkline(history.get(t.type) ?? [], { width: 80 }) },
    ],
    {
      testid: "census-table",
      rowTestid: "census-row",
      rowData: (t) => ({ type: t.type, objects: t.objects }),
      text: (t) => t.type,
      onOpen: (t) => go(objectsHash(heap, t.type)),
      sortKey: "bytes",
      height: 420,
      empty: "no live objects",
    },
  );
  const suspects = el("ol", { class: "suspects", testid: "suspects-list" });
  const root = el(
    "div",
    { class: "view census" },
    el("h2", {}, "Census of ", el("code", {}, heap)),
    el("div", { class: "toolbar" }, filter, select, totals),
    err,
    el("div", { class: "split" }, el("section", { class: "panel grow" }, table.root), el("section", { class: "panel side" }, el("h3", {}, "Leak suspects"), el("p", { class: "muted small" }, "Types whose count keeps growing across collections, steadiest growth first."), suspects)),
  );
  async function loadBaselines() {
    try {
      const b = await api(heapPath(heap, "/baselines"));
      const keep = select.value || baseline;
      clear(select);
      select.append(el("option", { value: "" }, "no baseline"));
      for (const x of b.baselines) select.append(el("option", { value: x.label }, `since ${x.label}`));
      select.value = b.baselines.some((x) => x.label === keep) ? keep : "";
      baseline = select.value;
    } catch {
      /* keep */
    }
  }
  async function load() {
    try {
      const q = `/census?limit=10000${hasDelta() ? `&baseline=${encodeURIComponent(baseline)}` : ""}`;
      const c = await api(heapPath(heap, q));
      totals.textContent = `${fmtInt(c.totals.objects)} objects · ${fmtBytes(c.totals.bytes)} · ${fmtInt(c.total)} types${c.totals.delta ? ` · growth ${fmtDelta(c.totals.delta.objects)} objects, ${fmtBytes(c.totals.delta.bytes)}` : ""}`;
      table.setRows(c.types);
      clear(err);
    } catch (e) {
      clear(err).append(errorBox(e));
    }
    try {
      const s = await api(heapPath(heap, "/suspects?limit=20"));
      clear(suspects);
      const ranked = s.suspects.filter((x) => x.kind === "unbounded" || x.kind === "fluctuating");
      if (!ranked.length) suspects.append(el("li", { class: "muted" }, s.suspects.length ? "nothing grows steadily" : "not enough collections yet"));
      for (const x of ranked)
        suspects.append(
          el(
            "li",
            { testid: "suspect-row", dataset: { type: x.type ?? "", kind: x.kind } },
            link(objectsHash(heap, x.type), x.type, { testid: "suspect-link" }),
            el("span", { class: `kind ${x.kind}` }, x.kind),
            el("span", { class: "muted small" }, ` score ${Number(x.score).toFixed(1)} · ${fmtInt(x.first)} → ${fmtInt(x.last)} over ${x.samples} collections`),
          ),
        );
    } catch {
      /* keep the last */
    }
  }
  loadBaselines().then(load);
  const timer = setInterval(load, CENSUS_POLL_MS);
  return { root, stop: () => clearInterval(timer), onBaseline: loadBaselines };
}

// ---- objects of a type ----

function objectsView(r) {
  const heap = state.heap;
  const type = r.query.get("type") ?? "";
  const rows = [];
  let cursor = null,
    total = null,
    busy = false;
  const count = el("span", { testid: "objects-count" }, "…");
  const err = el("div");
  const table = new VirtualTable(
    [
      { key: "id", label: "address", width: "minmax(10em,1.4fr)", sort: (o) => BigInt(o.id), render: (o) => link(objectHash(heap, o.id), o.address) },
      { key: "type", label: "type", sort: (o) => o.type, render: (o) => o.type },
      { key: "size", label: "size", num: true, sort: (o) => Number(o.size), render: (o) => fmtBytes(o.size) },
      { key: "refcount", label: "refcount", num: true, sort: (o) => o.refcount, render: (o) => fmtInt(o.refcount) },
      { key: "where", label: "where", sort: (o) => o.where, render: (o) => o.where },
      { key: "site", label: "allocated at", width: "minmax(8em,1.4fr)", render: (o) => `${o.site.file}:${o.site.line}` },
    ],
    { testid: "objects-table", rowTestid: "object-row", rowData: (o) => ({ id: o.id }), onOpen: (o) => go(objectHash(heap, o.id)), height: 520, empty: "no object of this type" },
  );
  async function page() {
    const q = new URLSearchParams({ scope: "all", limit: "1000" });
    if (type) q.set("type", type);
    if (cursor) q.set("cursor", cursor);
    const p = await api(heapPath(heap, `/objects?${q}`));
    rows.push(...p.objects);
    total = p.total;
    cursor = p.truncated ? p.next_cursor : null;
    count.textContent = `${fmtInt(rows.length)} of ${fmtInt(total)} loaded`;
    count.dataset.total = total;
    count.dataset.loaded = String(rows.length);
    table.setRows(rows);
    more.disabled = all.disabled = cursor === null;
  }
  async function run(fn) {
    if (busy) return;
    busy = true;
    try {
      await fn();
      clear(err);
    } catch (e) {
      clear(err).append(errorBox(e));
    } finally {
      busy = false;
    }
  }
  const more = el("button", { testid: "objects-more", onclick: () => run(page) }, "next 1,000");
  const all = el(
    "button",
    {
      testid: "objects-load-all",
      onclick: () =>
        run(async () => {
          while (cursor !== null && current?.root === root) await page();
        }),
    },
    "load all",
  );
  const root = el(
    "div",
    { class: "view objects" },
    el("h2", {}, type ? ["Objects of type ", el("code", {}, type)] : "Objects"),
    el("p", { class: "muted" }, "Every object of the type (tracked or not), in address order. Open one to see what keeps it alive.", " ", link(`#/census/${encodeURIComponent(heap)}`, "← census")),
    el("div", { class: "toolbar" }, count, more, all),
    err,
    el("section", { class: "panel" }, table.root),
  );
  run(page);
  return { root };
}

// ---- one object ----

function refList(heap, items, total, truncated, testid) {
  const ul = el("ul", { class: "refs", testid });
  for (const x of items) ul.append(el("li", {}, link(objectHash(heap, x.id), x.address, { testid: "ref-link" }), " ", el("span", { class: "type" }, x.type)));
  if (!items.length) ul.append(el("li", { class: "muted" }, "none"));
  if (truncated) ul.append(el("li", { class: "muted" }, `… ${fmtInt(total)} in all`));
  return ul;
}

/** The object's allocation traceback (GET .../objects/{id}/traceback: tracemalloc's
 * get_object_traceback) into box: its frames, most recent first; or why there is none. */
async function loadTraceback(heap, id, box) {
  const none = (reason, ...text) => {
    box.dataset.traced = "false";
    box.dataset.reason = reason;
    clear(box).append(el("p", { testid: "traceback-none" }, ...text));
  };
  let t;
  try {
    t = await api(heapPath(heap, `/objects/${id}/traceback`));
  } catch (e) {
    if (e instanceof ApiError && e.code === "object_not_found") none("gone", "Not traced: the object is no longer alive (freed since this page loaded).");
    else {
      none("error", "The traceback could not be read:");
      box.append(errorBox(e));
    }
    return;
  }
  if (!t.traced) {
    none(
      "untraced",
      "Not traced: this object has no allocation trace. It was allocated while the heap did not trace its allocations, was not sampled (sampled tracing), or its trace was cleared since. ",
      link(`#/allocations/${encodeURIComponent(heap)}`, "Allocations"),
      " shows whether the heap traces now; objects allocated while it does have a traceback.",
    );
    return;
  }
  box.dataset.traced = "true";
  box.dataset.reason = "";
  box.dataset.frames = String(t.traceback.length);
  const site = (f) => (f.line ? `${f.file}:${f.line}` : f.file);
  clear(box).append(
    el(
      "ol",
      { class: "traceback" },
      t.traceback.map((f) => el("li", { testid: "traceback-frame", dataset: { site: site(f), function: f.function ?? "" } }, el("code", {}, site(f)), f.function ? el("span", { class: "muted" }, ` ${f.function}`) : null)),
    ),
    el("p", { class: "muted small" }, "Most recent call first: the allocating statement, then its callers from the C stack, as many as the heap's traceback limit keeps."),
  );
}

function objectView(r) {
  const heap = state.heap,
    id = r.id;
  const root = el("div", { class: "view object", testid: "object-view", dataset: { id } }, el("h2", {}, "Object ", el("code", {}, id)));
  const body = el("div", {}, el("p", { class: "muted" }, "loading…"));
  root.append(body);
  (async () => {
    let o;
    try {
      o = await api(heapPath(heap, `/objects/${id}`));
    } catch (e) {
      clear(body).append(errorBox(e), el("p", {}, link(`#/census/${encodeURIComponent(heap)}`, "← census")));
      return;
    }
    const ex = o.refcount_explained;
    const total = Math.max(1, ex.from_heap + ex.from_garbage_list + Math.max(0, ex.from_outside));
    const seg = (n, cls, label) => (n > 0 ? el("span", { class: `seg ${cls}`, style: `flex:${n / total}`, title: `${label}: ${n}` }, `${label} ${n}`) : null);
    const verdict =
      ex.from_outside > 0
        ? `${ex.from_outside} reference${ex.from_outside > 1 ? "s" : ""} from outside the heap: C code holds it (a local, a global — or a missing decref: the leak no collector can free).`
        : ex.from_outside < 0
          ? `The refcount is ${-ex.from_outside} lower than the references the heap holds: a missing incref.`
          : "Every reference comes from the heap: something in the heap keeps it alive (see the path).";
    const site = `${o.site.file}:${o.site.line}`;
    const tracebackBox = el("div", { testid: "alloc-traceback", dataset: { traced: "" } }, el("p", { class: "muted" }, "loading…"));
    const pathBox = el("div", { class: "path", testid: "path-chain" }, el("p", { class: "muted" }, "finding the path…"));
    const retainedBox = el("div", { testid: "retained" }, el("p", { class: "muted" }, "computing…"));
    clear(body).append(
      el(
        "section",
        { class: "panel" },
        el(
          "dl",
          { class: "facts wide" },
          el("dt", {}, "type"),
          el("dd", { testid: "object-type" }, link(objectsHash(heap, o.type), o.type)),
          el("dt", {}, "address"),
          el("dd", {}, o.address),
          el("dt", {}, "size"),
          el("dd", {}, fmtBytes(o.size)),
          el("dt", {}, "refcount"),
          el("dd", {}, fmtInt(o.refcount), o.immortal ? " (saturated)" : ""),
          el("dt", {}, "where"),
          el("dd", {}, o.generation !== null ? `generation ${o.generation}` : o.where, o.tracked ? "" : " · untracked", o.finalized ? " · finalized" : "", o.weakref ? " · a weak reference" : "", o.weakrefs !== "0" ? ` · ${fmtInt(o.weakrefs)} weak references to it` : ""),
          el("dt", {}, "allocated at"),
          el("dd", { testid: "alloc-site" }, site),
        ),
      ),
      el(
        "section",
        { class: "panel", testid: "refcount-explained", dataset: { fromOutside: ex.from_outside, fromHeap: ex.from_heap, fromGarbageList: ex.from_garbage_list } },
        el("h3", {}, "Refcount explained"),
        el("div", { class: "stack" }, seg(ex.from_heap, "heap", "heap"), seg(ex.from_garbage_list, "garbage", "garbage list"), seg(ex.from_outside, "outside", "outside")),
        el("p", { class: ex.from_outside !== 0 ? "verdict warn" : "verdict" }, verdict),
      ),
      el("section", { class: "panel" }, el("h3", {}, "Where was it allocated? The allocation traceback"), tracebackBox),
      el("section", { class: "panel" }, el("h3", {}, "Why is it alive? The path from a root"), pathBox),
      el(
        "div",
        { class: "split" },
        el("section", { class: "panel grow" }, el("h3", {}, `Referents (${fmtInt(o.referents_total)})`), refList(heap, o.referents, o.referents_total, o.referents_truncated, "referents-list")),
        el("section", { class: "panel grow" }, el("h3", {}, `Referrers (${fmtInt(o.referrers_total)})`), refList(heap, o.referrers, o.referrers_total, o.referrers_truncated, "referrers-list")),
      ),
      el("section", { class: "panel" }, el("h3", {}, "Retained: what dropping it would free"), retainedBox),
    );
    await loadTraceback(heap, id, tracebackBox);
    try {
      const p = await api(heapPath(heap, `/objects/${id}/path?budget_ms=1000`));
      clear(pathBox);
      if (p.found) {
        const chain = el("ol", { class: "chain" });
        p.steps.forEach((s, i) =>
          chain.append(
            el(
              "li",
              { testid: "path-step", dataset: { id: s.id } },
              i ? el("span", { class: "arrow", "aria-hidden": "true" }, "→") : null,
              link(objectHash(heap, s.id), s.type, { class: s.id === id ? "target" : "" }),
              el("span", { class: "muted small" }, i === 0 ? ` root, ${p.root_from_outside} from outside` : ` rc ${s.refcount}`),
            ),
          ),
        );
        pathBox.append(chain, el("p", { class: "muted small" }, p.length === 0 ? "It is held directly from outside the heap." : `${p.length} reference${p.length > 1 ? "s" : ""} from a root held from outside${p.steps_truncated ? " (path cut)" : ""}.`));
      } else pathBox.append(el("p", {}, p.complete ? "No root reaches it: only a cycle keeps it alive; the next full collection frees it." : `The search ran out of time (${fmtMs(p.elapsed_ms)}).`));
    } catch (e) {
      clear(pathBox).append(errorBox(e));
    }
    try {
      const t = await api(heapPath(heap, `/objects/${id}/retained?budget_ms=1000&dominated_limit=20`));
      clear(retainedBox).append(
        el("p", { testid: "retained-size", dataset: { objects: t.retained.objects, bytes: t.retained.bytes } }, `${plural(t.retained.objects, "object")}, ${fmtBytes(t.retained.bytes)}`, t.complete ? "" : " (at most: the time budget ran out)"),
        el("p", { class: "muted small" }, t.by_type.map((x) => `${x.type} ${fmtInt(x.objects)}`).join(" · ")),
        el("h4", {}, `It dominates (${fmtInt(t.dominated_total)})`),
        el("ul", { class: "refs", testid: "dominated-list" }, t.dominated.map((d) => el("li", {}, link(objectHash(heap, d.id), d.address), ` ${d.type} · retains ${plural(d.retained.objects, "object")}, ${fmtBytes(d.retained.bytes)}`)), t.dominated.length ? null : el("li", { class: "muted" }, "nothing else")),
      );
    } catch (e) {
      clear(retainedBox).append(errorBox(e));
    }
  })();
  return { root };
}

// ---- garbage ----

const GROUPS_PER_PAGE = 24;

function garbageView() {
  const heap = state.heap;
  let offset = 0;
  const list = el("div", { class: "groups" });
  const head = el("p", { class: "muted" });
  const prev = el("button", { testid: "garbage-prev", onclick: () => ((offset = Math.max(0, offset - GROUPS_PER_PAGE)), load()) }, "← previous");
  const next = el("button", { testid: "garbage-next", onclick: () => ((offset += GROUPS_PER_PAGE), load()) }, "next →");
  const root = el("div", { class: "view garbage" }, el("h2", {}, "Garbage list of ", el("code", {}, heap)), el("div", { class: "toolbar" }, head, prev, next), list);
  async function load() {
    try {
      const g = await api(heapPath(heap, `/garbage?limit=${GROUPS_PER_PAGE}&offset=${offset}&objects_limit=40`));
      if (g.groups.length === 0 && offset > 0) {
        offset = 0;
        return load();
      }
      head.textContent = `${fmtInt(g.garbage)} entries in the garbage list (uncollectable cycles${g.saveall ? ", and everything DEBUG_SAVEALL kept" : ""}), ${fmtInt(g.total)} groups${g.total > g.groups.length ? `: ${offset + 1}–${offset + g.groups.length} shown` : ""}.`;
      prev.disabled = offset === 0;
      next.disabled = !g.truncated;
      clear(list);
      if (!g.groups.length) list.append(el("p", {}, "The garbage list is empty."));
      for (const grp of g.groups) {
        const index = new Map(grp.objects.map((o, i) => [o.id, i]));
        const edges = [];
        grp.objects.forEach((o, i) => o.referents.forEach((x) => index.has(x.id) && edges.push([i, index.get(x.id)])));
        list.append(
          el(
            "section",
            { class: "panel group", testid: "garbage-group", dataset: { kind: grp.kind, size: grp.size } },
            el("h3", {}, grp.kind === "cycle" ? `A cycle of ${fmtInt(grp.size)}` : "A single object", " · ", grp.types.map((t) => `${t.type} ×${fmtInt(t.objects)}`).join(", ")),
            cycleGraph(grp.objects, edges, { onNode: (o) => go(objectHash(heap, o.id)) }),
            el(
              "ul",
              { class: "refs" },
              grp.objects.map((o) => el("li", {}, link(objectHash(heap, o.id), o.address), ` ${o.type}`, o.legacy_del ? el("span", { class: "kind unbounded" }, "legacy finalizer") : null)),
            ),
          ),
        );
      }
    } catch (e) {
      clear(list).append(errorBox(e));
    }
  }
  load();
  const reload = coalesce(load, 1000);
  return { root, onCollect: (h) => (h === heap || h === null) && reload(), stop: () => reload.cancel() };
}

// ---- start ----

function keyboard(e) {
  if (e.target.closest("input, select, textarea")) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.key === "/") {
    const f = document.querySelector("[data-testid=census-filter], [data-testid=stats-filter]:not([hidden] *)");
    if (f) {
      e.preventDefault();
      f.focus();
    }
    return;
  }
  const keys = { o: "overview", c: "census", b: "objects", g: "garbage", a: "allocations" };
  if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) {
    const v = keys[e.key];
    go(v === "overview" ? "#/overview" : `#/${v}/${encodeURIComponent(state.heap ?? "")}`);
    return;
  }
  if (e.key === "j" || e.key === "k") {
    const t = main.querySelector(".vt-scroll");
    if (t && document.activeElement !== t) {
      t.focus();
      t.dispatchEvent(new KeyboardEvent("keydown", { key: e.key }));
    }
  }
}

async function start() {
  setConn("connecting");
  heapSelect.addEventListener("change", () => {
    state.heap = heapSelect.value;
    const r = parseHash();
    go(r.view === "overview" ? "#/overview" : `#/${r.view === "object" ? "census" : r.view}/${encodeURIComponent(state.heap)}`);
  });
  document.addEventListener("keydown", keyboard);
  try {
    state.process = await api("/v1/process");
    document.getElementById("program").textContent = `${state.process.program.split("/").pop()} · pid ${state.process.pid}`;
  } catch (e) {
    main.append(errorBox(e));
  }
  await refreshHeaps();
  await pollStats();
  window.addEventListener("hashchange", route);
  route();
  new EventStream(onEvent, setConn);
  setInterval(pollStats, POLL_MS);
  pollCensus();
  setInterval(pollCensus, CENSUS_POLL_MS);
  setInterval(async () => (await refreshHeaps()) && route(), 5000);
}

start();
