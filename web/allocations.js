// allocations.js: the allocations view, #/allocations/<heap> — tracing status and its
// controls, the top allocation sites (tracemalloc's statistics, or the growth since a
// snapshot the server keeps), a flame graph of the traced stacks, a link to the same
// stacks as a pprof heap profile, and the pool allocator's figures
// (sys._debugmallocstats). Endpoints: /v1/heaps/{heap}/tracing, /tracing/statistics,
// /tracing/snapshots, /pprof/heap, /allocator (protocol v1). While the heap does not
// trace only the status and the allocator are asked for: statistics would be a 409.
import { ApiError, api, clear, coalesce, el, fmtBytes, fmtInt, fmtTraceSize, heapPath, linkUrl } from "./lib.js";

const POLL_MS = 2000; // status and allocator: read from the published snapshot, cheap
const STATS_MS = 4000; // statistics: the owner thread copies every trace, not so cheap
const FLAME_ROW = 20; // px per stack depth
const FLAME_LIMIT = 1000; // tracebacks asked for the flame graph (the server's maximum)

const frameText = (f) => (f.line ? `${f.file}:${f.line}` : f.file);
const frameLabel = (f) => (f.function ? `${f.function} (${frameText(f)})` : frameText(f));

/**
 * A filter box's text as the statistics' include= pattern (fnmatch on file names, with an
 * optional :LINE): text without a wildcard matches anywhere in the name ("demo.c" ->
 * "*demo.c*"); text with one (* ? [) is taken as it is.
 */
export function includePattern(text) {
  const t = text.trim();
  if (!t) return "";
  const m = /^(.*?)(:\d+)?$/.exec(t);
  const pat = /[*?[]/.test(m[1]) ? m[1] : `*${m[1]}*`;
  return pat + (m[2] ?? "");
}

// ---- the flame graph ----

/**
 * Tracebacks (most recent frame first, as the JSON has them) merged into a tree rooted at
 * the outermost frame: node {key, frame, size, count, children: Map, parent, depth}. The
 * root (frame null) holds the sum of every entry.
 */
export function flameTree(entries) {
  const root = { key: "", frame: null, size: 0, count: 0, children: new Map(), parent: null, depth: 0 };
  for (const e of entries) {
    const size = Number(e.size),
      count = Number(e.count);
    root.size += size;
    root.count += count;
    let n = root;
    for (let i = e.traceback.length - 1; i >= 0; i--) {
      const f = e.traceback[i];
      const k = `${f.file}:${f.line}:${f.function ?? ""}`;
      let c = n.children.get(k);
      if (!c) n.children.set(k, (c = { key: `${n.key}\n${k}`, frame: f, size: 0, count: 0, children: new Map(), parent: n, depth: n.depth + 1 }));
      c.size += size;
      c.count += count;
      n = c;
    }
  }
  return root;
}

/**
 * A flame graph drawn with positioned boxes (no canvas, no HTML from data): the root
 * ("all") spans the width, each frame's children sit below it, left to right by size,
 * widths proportional to bytes. Hover or focus shows a frame in the detail line; a click
 * zooms into its subtree (its ancestors stay above, full width); reset() zooms out.
 * Boxes narrower than a pixel are left out.
 */
class FlameGraph {
  constructor() {
    this.tree = null;
    this.zoom = ""; // the zoomed node's key ("" is the root), kept across refreshes
    this.detail = el("p", { class: "flame-detail small", testid: "flame-detail", "aria-live": "polite" }, "Point at a frame to see its bytes; click to zoom in.");
    this.resetBtn = el("button", { testid: "flame-reset", disabled: true, onclick: () => this.reset() }, "reset zoom");
    this.box = el("div", { class: "flame", testid: "flame-graph", role: "group", "aria-label": "flame graph of the traced stacks, outermost frame on top" });
    this.root = el("div", {}, el("div", { class: "toolbar" }, this.resetBtn, this.detail), this.box);
    this.sizer = new ResizeObserver(() => {
      if (this.box.clientWidth !== this.width) this.paint();
    });
    this.sizer.observe(this.box);
  }

  setEntries(entries) {
    this.tree = flameTree(entries);
    this.paint();
  }

  reset() {
    this.zoom = "";
    this.paint();
  }

  find(key) {
    let n = this.tree;
    if (!key) return n;
    for (const part of key.split("\n").slice(1)) {
      n = n.children.get(part);
      if (!n) return null;
    }
    return n;
  }

  show(n) {
    const total = this.tree.size || 1;
    const z = this.find(this.zoom) ?? this.tree;
    const what = n.frame ? frameLabel(n.frame) : "all traced stacks";
    const share = `${((n.size / total) * 100).toFixed(1)}% of all`;
    const ofZoom = z !== this.tree && n.depth >= z.depth ? `, ${((n.size / (z.size || 1)) * 100).toFixed(1)}% of the zoomed frame` : "";
    this.detail.textContent = `${what} · ${fmtTraceSize(n.size)} (${share}${ofZoom}) · ${fmtInt(n.count)} blocks`;
    this.detail.dataset.size = String(n.size);
  }

  paint() {
    const box = this.box;
    clear(box);
    this.width = box.clientWidth;
    const W = this.width || 800;
    const t = this.tree;
    if (!t || t.size === 0) {
      box.style.height = "auto";
      box.append(el("p", { class: "muted" }, t ? "No traced stacks (nothing traced is alive, or the filter keeps none)." : "loading…"));
      this.resetBtn.disabled = true;
      return;
    }
    let z = this.find(this.zoom);
    if (!z) ((this.zoom = ""), (z = t));
    this.resetBtn.disabled = z === t;
    let depth = 0;
    const add = (n, x, w, dim) => {
      depth = Math.max(depth, n.depth);
      const file = n.frame ? n.frame.file : "";
      let hash = 0;
      for (const ch of file) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
      const b = el(
        "div",
        {
          class: `flame-box c${n.frame ? Math.abs(hash) % 4 : "r"}${dim ? " dim" : ""}${n === z && z !== t ? " zoomed" : ""}`,
          testid: "flame-box",
          tabindex: 0,
          dataset: { depth: String(n.depth), size: String(n.size), count: String(n.count), frame: n.frame ? frameText(n.frame) : "all", key: n.key },
          style: `left:${x}px;top:${n.depth * FLAME_ROW}px;width:${w}px`,
          onmouseenter: () => this.show(n),
          onfocus: () => this.show(n),
          onclick: () => {
            this.zoom = n === t ? "" : n.key;
            this.paint();
            this.show(n);
          },
          onkeydown: (e) => e.key === "Enter" && e.currentTarget.click(),
        },
        el("span", {}, n.frame ? frameLabel(n.frame) : `all · ${fmtTraceSize(n.size)}`),
      );
      b.title = `${n.frame ? frameLabel(n.frame) : "all"}: ${fmtTraceSize(n.size)}, ${fmtInt(n.count)} blocks`;
      box.append(b);
    };
    // The zoomed node's ancestors, full width and dimmed; then its subtree in proportion.
    for (let a = z.parent; a; a = a.parent) add(a, 0, W, true);
    const walk = (n, x, w) => {
      add(n, x, w, false);
      const kids = [...n.children.values()].sort((a, b) => b.size - a.size);
      let cx = x;
      for (const c of kids) {
        const cw = (c.size / n.size) * w;
        if (cw >= 1) walk(c, cx, cw);
        cx += cw;
      }
    };
    walk(z, 0, W);
    box.style.height = `${(depth + 1) * FLAME_ROW}px`;
  }

  stop() {
    this.sizer.disconnect();
  }
}

// ---- the view ----

/**
 * heap: the heap shown; control: whether the server takes control requests (/v1/process
 * server.control). Returns {root, stop}.
 */
export function allocationsView(heap, { control, errorBox }) {
  let status = null; // the last /tracing
  let statusHeld = 0; // until then, polled statuses are ignored (an action's answer is newer)
  const tracing = () => status?.tracing === true;
  const opts = { key: "lineno", cumulative: false, include: "", base: "", limit: 50, auto: true };
  const expanded = new Set(); // tracebacks shown (their frames' text), across refreshes

  // ---- status and controls ----
  const facts = el("dl", { class: "facts", testid: "tracing-status", dataset: { mode: "" } });
  const out = el("p", { class: "muted ctl-out", role: "status", testid: "tracing-out" });
  const frames = el("input", { type: "number", min: 1, max: 65535, value: 8, testid: "tracing-frames", "aria-label": "frames per traceback" });
  const sampleBytes = el("input", { type: "number", min: 1, value: 524288, testid: "tracing-sample-bytes", "aria-label": "sample bytes", class: "wide" });
  const act = (action, extra = "") => async () => {
    try {
      const s = await api(heapPath(heap, `/tracing?action=${action}${extra}`), { method: "POST" });
      statusHeld = performance.now() + 3 * POLL_MS; // the published snapshot may lag the action
      setStatus(s);
      out.textContent = { start: `tracing started (${s.mode})`, stop: "tracing stopped: every trace dropped", clear: "traces cleared: the traced memory and its peak start again from 0", reset_peak: `peak reset to the traced memory now, ${fmtBytes(s.traced.peak)}` }[action];
      loadStats.now();
    } catch (e) {
      out.textContent = e instanceof ApiError ? `${e.message} (${e.code})` : String(e);
    }
  };
  const btn = (testid, text, onclick) => el("button", { testid, onclick }, text);
  const startExact = btn("tracing-start-exact", "start exact", () => act("start", `&frames=${encodeURIComponent(frames.value)}`)());
  const startSampled = btn("tracing-start-sampled", "start sampled", () => act("start", `&frames=${encodeURIComponent(frames.value)}&sample_bytes=${encodeURIComponent(sampleBytes.value)}`)());
  const stopBtn = btn("tracing-stop", "stop", act("stop"));
  const clearBtn = btn("tracing-clear", "clear traces", act("clear"));
  const peakBtn = btn("tracing-reset-peak", "reset peak", act("reset_peak"));
  const controls = control
    ? el(
        "div",
        { class: "controls", testid: "tracing-controls" },
        el("div", { class: "row" }, el("label", {}, "frames ", frames), startExact, el("label", {}, "every ", sampleBytes, " bytes"), startSampled),
        el("div", { class: "row" }, stopBtn, clearBtn, peakBtn),
        out,
      )
    : null;
  // The traced stacks as a gzipped pprof profile (a 409 while off: shown only while tracing).
  // A plain link, so the token rides in its query (linkUrl); the server names the file.
  const pprofLine = el(
    "p",
    { class: "small", testid: "pprof-line", hidden: true },
    el("a", { href: linkUrl(heapPath(heap, "/pprof/heap")), testid: "pprof-download", download: "" }, "download the pprof heap profile"),
    el("span", { class: "muted" }, " of the traced memory (gzipped, one sample per traceback) for ", el("code", {}, "go tool pprof -top <file>")),
  );
  const offBox = el("div", { class: "panel off", testid: "tracing-off", hidden: true });
  function paintOff() {
    clear(offBox).append(
      el("h3", {}, "Tracing is off"),
      el("p", {}, "Without tracing no allocation has a trace: there are no allocation sites, no growth and no flame graph. The allocator's figures below need no tracing."),
      control
        ? el("p", {}, "Start it here: ", el("b", {}, "start exact"), " traces every allocation with a traceback of the given number of frames (more than one frame unwinds the C stack: slow); ", el("b", {}, "start sampled"), " traces one allocation per that many bytes on average, cheap enough to leave on.")
        : el("p", {}, "Start it in the program: ", el("code", {}, "RCGC_TRACEMALLOC=N"), " in the environment traces with N frames from the heap's creation, or call ", el("code", {}, "rcgc_tracemalloc_start(heap, N)"), " (", el("code", {}, "rcgc_tracemalloc_start_sampled"), " for sampling). With control requests allowed (", el("code", {}, "RCGC_INSPECT_CONTROL=1"), "), this page can start it, as can ", el("code", {}, "POST /v1/heaps/{heap}/tracing?action=start&frames=N"), "."),
    );
  }
  paintOff();

  function setStatus(s) {
    const was = tracing();
    status = s;
    const on = tracing();
    facts.dataset.mode = s.mode;
    Object.assign(facts.dataset, { frames: String(s.traceback_limit), traces: s.traces, current: s.traced.current, peak: s.traced.peak, memory: s.memory });
    const fact = (k, v, testid) => [el("dt", {}, k), el("dd", { testid }, v)];
    clear(facts).append(
      ...fact("mode", s.mode === "sampled" ? `sampled, every ${fmtBytes(s.sample_bytes)}` : s.mode, "tracing-mode"),
      ...fact("frames", String(s.traceback_limit), "tracing-frames-shown"),
      ...fact("traced", on ? `${fmtBytes(s.traced.current)} (peak ${fmtBytes(s.traced.peak)})` : "–", "tracing-traced"),
      ...fact("traces", on ? `${fmtInt(s.traces)} (${fmtInt(s.tracebacks)} tracebacks)` : "–", "tracing-traces"),
      ...fact("tracing memory", fmtBytes(s.memory), "tracing-memory"),
      ...fact("recorded", on ? `${fmtInt(s.recorded)}${s.lost !== "0" ? ` · ${fmtInt(s.lost)} lost (out of memory)` : ""}` : "–", "tracing-recorded"),
    );
    startExact.disabled = startSampled.disabled = on;
    stopBtn.disabled = clearBtn.disabled = peakBtn.disabled = !on;
    offBox.hidden = on;
    pprofLine.hidden = !on;
    for (const p of tracedPanels) p.hidden = !on;
    takeBtn && (takeBtn.disabled = !on);
    if (on && !was) {
      loadSnapshots();
      loadStats.now();
    }
  }

  // ---- top allocation sites ----
  const keySel = el(
    "select",
    { testid: "stats-key", "aria-label": "group by", onchange: () => ((opts.key = keySel.value), (cumul.disabled = opts.key === "traceback"), loadStats.now()) },
    el("option", { value: "lineno" }, "by line"),
    el("option", { value: "filename" }, "by file"),
    el("option", { value: "traceback" }, "by traceback"),
  );
  const cumulBox = el("input", { type: "checkbox", testid: "stats-cumulative", onchange: () => ((opts.cumulative = cumulBox.checked), loadStats.now()) });
  const cumul = cumulBox; // disabled for tracebacks: tracemalloc has no cumulative traceback statistics
  let filterTimer = 0;
  const filter = el("input", {
    type: "search",
    testid: "stats-filter",
    placeholder: "file filter, e.g. demo.c or *.c:120  (/)",
    "aria-label": "file name filter (include)",
    size: 28,
    oninput: () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => ((opts.include = includePattern(filter.value)), loadStats.now()), 300);
    },
  });
  const limitSel = el("select", { testid: "stats-limit", "aria-label": "rows", onchange: () => ((opts.limit = Number(limitSel.value)), loadStats.now()) }, [50, 200, 1000].map((n) => el("option", { value: n }, `top ${n}`)));
  const autoBox = el("input", { type: "checkbox", testid: "stats-auto", checked: true, onchange: () => (opts.auto = autoBox.checked) });
  const refreshBtn = el("button", { testid: "stats-refresh", onclick: () => loadStats.now() }, "refresh");
  const snapSel = el("select", { testid: "snapshot-select", "aria-label": "compare with snapshot", onchange: () => ((opts.base = snapSel.value), loadStats.now()) }, el("option", { value: "" }, "no snapshot: sizes now"));
  const snapLabel = control ? el("input", { type: "text", testid: "snapshot-label", placeholder: "label", "aria-label": "snapshot label", pattern: "[A-Za-z0-9_.\\-]{1,64}", title: "letters, digits, _ . -", size: 10, maxlength: 64 }) : null;
  const takeBtn = control ? el("button", { testid: "snapshot-take", onclick: takeSnapshot }, "take snapshot") : null;
  const statsHead = el("p", { class: "muted", testid: "stats-summary" }, "loading…");
  const statsErr = el("div");
  const statsBody = el("tbody");
  const statsHeadRow = el("tr");
  const statsTable = el("table", { class: "data", testid: "stats-table", dataset: { key: "", base: "" } }, el("thead", {}, statsHeadRow), statsBody);

  async function takeSnapshot() {
    try {
      const label = snapLabel.value.trim() || `snapshot-${new Date().toLocaleTimeString("en-GB").replaceAll(":", "")}`;
      const s = await api(heapPath(heap, `/tracing/snapshots?label=${encodeURIComponent(label)}`), { method: "POST" });
      snapLabel.value = "";
      await loadSnapshots();
      snapSel.value = opts.base = s.id; // growth from now on
      out.textContent = `snapshot ${s.id} "${s.label}": ${fmtInt(s.traces)} traces, ${fmtTraceSize(s.size)}`;
      loadStats.now();
    } catch (e) {
      out.textContent = e instanceof ApiError ? `${e.message} (${e.code})` : String(e);
    }
  }

  let snapSig = null,
    snapSeq = 0;
  async function loadSnapshots() {
    const seq = ++snapSeq;
    try {
      const r = await api(heapPath(heap, "/tracing/snapshots"));
      if (seq !== snapSeq) return; // a later list is on its way (one taken meanwhile)
      const sig = r.snapshots.map((s) => `${s.id} ${s.label}`).join("\n");
      if (sig === snapSig) return; // unchanged: an open list stays open
      snapSig = sig;
      const keep = opts.base;
      clear(snapSel).append(el("option", { value: "" }, "no snapshot: sizes now"));
      for (const s of r.snapshots) snapSel.append(el("option", { value: s.id }, `growth since #${s.id} ${s.label} (${new Date(s.time).toLocaleTimeString("en-GB")}, ${fmtTraceSize(s.size)})`));
      opts.base = r.snapshots.some((s) => s.id === keep) ? keep : "";
      snapSel.value = opts.base;
    } catch {
      /* 409 while tracing is off; the next start reloads */
    }
  }

  const query = () => {
    const q = new URLSearchParams({ key: opts.key, cumulative: String(opts.cumulative && opts.key !== "traceback"), limit: String(opts.limit) });
    if (opts.include) q.set("include", opts.include);
    if (opts.base) q.set("base", opts.base);
    return q.toString();
  };

  function paintStats(r) {
    const diff = r.base !== null && r.base !== undefined;
    statsTable.dataset.key = r.key;
    statsTable.dataset.base = diff ? r.base.id : "";
    const th = (text, num) => el("th", { class: num ? "num" : "" }, text);
    const heads = [th("size", true), diff && th("growth", true), th("count", true), diff && th("count growth", true), th("average", true)];
    heads.push(th(r.key === "filename" ? "file" : r.key === "traceback" ? "allocated at (traceback)" : "file:line (function)"));
    clear(statsHeadRow).append(...heads.filter(Boolean));
    clear(statsBody);
    const cols = diff ? 6 : 4;
    if (!r.entries.length) statsBody.append(el("tr", {}, el("td", { colspan: cols, class: "muted" }, opts.include ? "No traced allocation in the files the filter keeps." : "No traced allocation alive.")));
    r.entries.forEach((e, i) => {
      const f = e.traceback[0] ?? { file: "<unknown>", line: 0, function: null };
      const site = frameText(f);
      const tbKey = e.traceback.map((x) => `${frameText(x)} ${x.function ?? ""}`).join("|");
      const n = Number(e.count);
      const tb = r.key === "traceback" && e.traceback.length > 0;
      const toggle = tb
        ? el("button", {
            class: "tb-toggle",
            testid: "stats-expand",
            "aria-expanded": String(expanded.has(tbKey)),
            title: "show the traceback",
            onclick: () => {
              if (expanded.has(tbKey)) expanded.delete(tbKey);
              else expanded.add(tbKey);
              paintStats(r);
            },
          }, expanded.has(tbKey) ? "▾" : "▸")
        : null;
      const d = (v, sign) => el("td", { class: `num${sign && Number(v) > 0 ? " up" : ""}` }, fmtTraceSize(v, sign));
      statsBody.append(
        el(
          "tr",
          {
            testid: "stats-row",
            dataset: { index: String(i), site, function: f.function ?? "", size: e.size, count: e.count, ...(diff ? { sizeDiff: e.size_diff, countDiff: e.count_diff } : {}) },
          },
          d(e.size),
          diff ? d(e.size_diff, true) : null,
          el("td", { class: "num" }, fmtInt(e.count)),
          diff ? el("td", { class: `num${Number(e.count_diff) > 0 ? " up" : ""}` }, Number(e.count_diff) > 0 ? `+${fmtInt(e.count_diff)}` : fmtInt(e.count_diff)) : null,
          el("td", { class: "num" }, n > 0 ? fmtTraceSize(Number(e.size) / n) : "–"),
          el("td", { class: "site" }, toggle, el("code", { testid: "stats-site" }, site), f.function ? el("span", { class: "muted" }, ` (${f.function})`) : null, tb && e.traceback.length > 1 ? el("span", { class: "muted small" }, ` +${e.traceback.length - 1} frames`) : null),
        ),
      );
      if (tb && expanded.has(tbKey))
        statsBody.append(el("tr", { class: "tb-row" }, el("td", { colspan: cols }, el("ol", { class: "traceback", testid: "stats-traceback" }, e.traceback.map((x) => el("li", {}, el("code", {}, frameText(x)), x.function ? el("span", { class: "muted" }, ` ${x.function}`) : null))))));
    });
    const shown = r.entries.length;
    statsHead.textContent =
      `${fmtTraceSize(r.total.size)} in ${fmtInt(r.total.count)} traced blocks` +
      (r.sample_bytes !== "0" ? ` (estimated: sampled every ${fmtBytes(r.sample_bytes)})` : "") +
      ` · ${shown < r.total_entries ? `top ${fmtInt(shown)} of ${fmtInt(r.total_entries)}` : fmtInt(r.total_entries)} ${r.key === "filename" ? "files" : r.key === "traceback" ? "tracebacks" : "lines"}` +
      (diff ? ` · growth since snapshot #${r.base.id} "${r.base.label}", largest change first` : "");
  }

  const flame = new FlameGraph();
  const flameHead = el("p", { class: "muted small", testid: "flame-summary" });
  let statsSeq = 0;
  async function loadStatsNow() {
    if (!tracing()) return;
    const q = query();
    const seq = ++statsSeq;
    try {
      const fq = new URLSearchParams({ key: "traceback", cumulative: "false", limit: String(FLAME_LIMIT) });
      if (opts.include) fq.set("include", opts.include);
      const [r, fl] = await Promise.all([api(heapPath(heap, `/tracing/statistics?${q}`)), api(heapPath(heap, `/tracing/statistics?${fq}`))]);
      if (seq !== statsSeq || q !== query()) return; // the options changed meanwhile: a newer load paints
      paintStats(r);
      flame.setEntries(fl.entries);
      flameHead.textContent = `${fl.entries.length < fl.total_entries ? `The ${fmtInt(fl.entries.length)} largest of ${fmtInt(fl.total_entries)} stacks` : `${fmtInt(fl.total_entries)} stacks`}, outermost frame on top, width in proportion to the bytes still allocated${fl.sample_bytes !== "0" ? " (sampled)" : ""}.`;
      clear(statsErr);
    } catch (e) {
      if (e instanceof ApiError && e.code === "not_tracing") {
        setStatus({ ...(status ?? {}), tracing: false, mode: "off", traced: { current: "0", peak: "0" }, traces: "0", tracebacks: "0", memory: status?.memory ?? "0", recorded: "0", lost: "0", traceback_limit: status?.traceback_limit ?? 1, sample_bytes: "0" });
        return;
      }
      if (e instanceof ApiError && e.code === "snapshot_not_found" && opts.base) {
        // The snapshot was dropped (the server keeps 8): back to the sizes now.
        opts.base = snapSel.value = "";
        snapSig = null;
        loadSnapshots();
      }
      clear(statsErr).append(errorBox(e));
    }
  }
  const loadStats = coalesce(loadStatsNow, 1000);
  loadStats.now = () => {
    statsSeq++; // whatever is in flight is stale
    loadStatsNow();
  };

  // ---- the allocator ----
  const allocBody = el("div", { testid: "allocator-body" }, el("p", { class: "muted" }, "loading…"));
  async function loadAllocator() {
    try {
      const a = await api(heapPath(heap, "/allocator"));
      const fact = (k, v, key, raw) => [el("dt", {}, k), el("dd", { dataset: { key, value: raw ?? v } }, v)];
      const byteFact = (k, key) => fact(k, fmtBytes(a.bytes[key]), key, a.bytes[key]);
      clear(allocBody).append(
        el(
          "p",
          { class: "muted small" },
          `Objects up to ${fmtInt(a.small_request_threshold)} bytes come from ${fmtBytes(a.pool_size)} pools of one size class each, carved from ${fmtBytes(a.arena_size)} arenas; larger ones from malloc. Snapshot #${a.serial}. `,
          el("a", { href: linkUrl(heapPath(heap, "/allocator?format=text")), testid: "allocator-text", target: "_blank", rel: "noopener" }, "as text (sys._debugmallocstats)"),
        ),
        el(
          "div",
          { class: "split" },
          el(
            "div",
            { class: "grow" },
            el(
              "table",
              { class: "data", testid: "allocator-classes" },
              el("thead", {}, el("tr", {}, ["class", "size", "pools", "blocks in use", "available"].map((h) => el("th", { class: "num" }, h)))),
              el(
                "tbody",
                {},
                a.classes.length ? null : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No pool in use.")),
                a.classes.map((c) =>
                  el(
                    "tr",
                    { testid: "allocator-class", dataset: { class: String(c.class), size: String(c.size), pools: String(c.pools), inUse: c.blocks_in_use, available: c.blocks_available } },
                    el("td", { class: "num" }, String(c.class)),
                    el("td", { class: "num" }, `${fmtInt(c.size)} B`),
                    el("td", { class: "num" }, fmtInt(c.pools)),
                    el("td", { class: "num" }, fmtInt(c.blocks_in_use)),
                    el("td", { class: "num" }, fmtInt(c.blocks_available)),
                  ),
                ),
              ),
            ),
          ),
          el(
            "div",
            { class: "side" },
            el("h4", {}, "Arenas"),
            el("dl", { class: "facts wide", testid: "allocator-arenas" }, ...fact("current", fmtInt(a.arenas.current), "current", a.arenas.current), ...fact("highwater", fmtInt(a.arenas.highwater), "highwater", a.arenas.highwater), ...fact("reclaimed", fmtInt(a.arenas.reclaimed), "reclaimed", a.arenas.reclaimed), ...fact("allocated in all", fmtInt(a.arenas.allocated_total), "allocated_total", a.arenas.allocated_total)),
            el("h4", {}, "Bytes"),
            el(
              "dl",
              { class: "facts wide bytes", testid: "allocator-bytes" },
              ...byteFact("in allocated blocks", "allocated_blocks"),
              ...byteFact("in available blocks", "available_blocks"),
              ...fact("in unused pools", `${fmtBytes(a.bytes.unused_pools)} (${plural(a.unused_pools, "pool")})`, "unused_pools", a.bytes.unused_pools),
              ...byteFact("pool headers", "pool_headers"),
              ...byteFact("quantization", "quantization"),
              ...byteFact("arena alignment", "arena_alignment"),
              ...byteFact("total", "total"),
              ...fact("large objects", `${fmtInt(a.large.objects)} · ${fmtBytes(a.large.bytes)}`, "large", a.large.bytes),
            ),
          ),
        ),
      );
    } catch (e) {
      clear(allocBody).append(errorBox(e));
    }
  }
  const plural = (n, word) => `${fmtInt(n)} ${word}${String(n) === "1" ? "" : "s"}`;

  async function loadStatus() {
    try {
      const s = await api(heapPath(heap, "/tracing"));
      if (performance.now() < statusHeld && status && s.tracing !== status.tracing) return;
      setStatus(s);
    } catch (e) {
      out.textContent = e instanceof ApiError ? `${e.message} (${e.code})` : String(e);
      if (!status) clear(facts).append(el("dd", {}, errorBox(e)));
    }
  }

  const tracedPanels = [
    el(
      "section",
      { class: "panel", testid: "stats-panel", hidden: true },
      el("h3", {}, "Top allocation sites"),
      el(
        "div",
        { class: "toolbar" },
        keySel,
        el("label", { class: "flag" }, cumulBox, "cumulative"),
        filter,
        limitSel,
        snapSel,
        snapLabel,
        takeBtn,
        el("label", { class: "flag" }, autoBox, "auto-refresh"),
        refreshBtn,
      ),
      statsHead,
      statsErr,
      el("div", { class: "table-box" }, statsTable),
    ),
    el("section", { class: "panel", testid: "flame-panel", hidden: true }, el("h3", {}, "Flame graph of the traced stacks"), flameHead, flame.root),
  ];

  const root = el(
    "div",
    { class: "view allocations" },
    el("h2", {}, "Allocations of ", el("code", {}, heap)),
    el("section", { class: "panel" }, el("h3", {}, "Tracing"), facts, pprofLine, controls),
    offBox,
    ...tracedPanels,
    el("section", { class: "panel", testid: "allocator-panel" }, el("h3", {}, "Allocator"), allocBody),
  );

  loadStatus();
  loadAllocator();
  let ticks = 0;
  const timer = setInterval(() => {
    loadStatus();
    loadAllocator();
    if (opts.auto && tracing() && ++ticks % Math.round(STATS_MS / POLL_MS) === 0) {
      loadStats();
      loadSnapshots(); // others may take snapshots too (the API)
    }
  }, POLL_MS);
  return {
    root,
    stop: () => {
      clearInterval(timer);
      clearTimeout(filterTimer);
      loadStats.cancel();
      statsSeq++;
      flame.stop();
    },
  };
}
