// allocations.test.mjs: #/allocations/demo — the tracing status as /tracing has it; the
// top allocation sites as the /tracing/statistics answer the page received (key switch,
// include filter, sizes printed as tracemalloc prints them); a snapshot taken by button
// and the growth since it in the JSON's order; the flame graph (a box per outermost
// frame, widths in proportion to bytes within a pixel, zoom and reset); the allocator
// panel as /allocator and its text link; stop / start by button; the tracing-off state
// (the 100,000-Record demo, tracing stopped through the API and restarted after); the
// `a` key; the cumulative box (the request's query, the rows as its answer, off for
// tracebacks); clear traces and reset peak by button (the action's answer shown, the
// server's traces and peak after it); the pprof link (its href, fetched from the page, the
// file a click downloads: a gzipped profile). The demo traces from its start, exact, 8
// frames (examples/demo.c).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { gunzipSync } from "node:zlib";

import { api, BASE, EXTRA, hashOf, heapPath, HEAP, launch, SHOTS, tracedObject, until, withPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const ROUTE = `#/allocations/${HEAP}`;
const tracing = (base = BASE) => api(base, `${heapPath()}/tracing`);
const post = (base, action) => api(base, `${heapPath()}/tracing?action=${action}`, { method: "POST" });

// tracemalloc._format_size, as the page prints sizes.
function traceSize(v, sign = false) {
  let n = Number(v);
  for (const [i, unit] of ["B", "KiB", "MiB", "GiB", "TiB"].entries()) {
    const f = (d) => `${sign && n >= 0 ? "+" : ""}${n.toFixed(d)} ${unit}`;
    if (Math.abs(n) < 100 && i > 0) return f(1);
    if (Math.abs(n) < 10 * 1024 || i === 4) return f(0);
    n /= 1024;
  }
}
const site = (f) => (f.line ? `${f.file}:${f.line}` : f.file);

// Every JSON answer the page receives from a path, in order (the page polls: the DOM is
// compared with what the page was given, not with a later answer).
function answers(page, match) {
  const seen = [];
  page.on("response", async (r) => {
    if (!match(new URL(r.url())) || r.status() !== 200) return;
    try {
      seen.push(await r.json());
    } catch {
      /* the page went away */
    }
  });
  return seen;
}
const isStats = (u) => u.pathname.endsWith("/tracing/statistics");
const tableStats = (u) => isStats(u) && u.searchParams.get("limit") !== "1000"; // not the flame graph's
const flameStats = (u) => isStats(u) && u.searchParams.get("limit") === "1000";

const rows = (page) =>
  page.getByTestId("stats-row").evaluateAll((els) =>
    els.map((e) => ({ site: e.dataset.site, fn: e.dataset.function, size: e.dataset.size, count: e.dataset.count, sizeDiff: e.dataset.sizeDiff, first: e.cells[0].textContent })));
const asRows = (j) => j.entries.map((e) => ({ site: site(e.traceback[0]), fn: e.traceback[0].function ?? "", size: e.size, count: e.count, sizeDiff: e.size_diff, first: traceSize(e.size) }));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// Stops the page's own refreshing, then refreshes once: the table is one answer's.
async function frozen(page, seen) {
  await page.getByTestId("stats-row").first().waitFor({ state: "attached" });
  await page.getByTestId("stats-auto").uncheck();
  const n = seen.length;
  await page.getByTestId("stats-refresh").click();
  return until("a statistics answer after refresh, shown", async () =>
    seen.length > n && same(await rows(page), asRows(seen.at(-1))) && seen.at(-1));
}

test("status, top sites, key, filter: as the JSON", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const status = answers(page, (u) => u.pathname === `${heapPath()}/tracing`);
    const stats = answers(page, tableStats);
    const facts = page.getByTestId("tracing-status");
    const json = await tracing();
    assert.equal(json.mode, "exact", "the demo traces from its start");
    await until("tracing-status as a /tracing answer the page got", async () => {
      const d = await facts.evaluate((e) => ({ ...e.dataset }));
      return status.some((s) => s.mode === d.mode && String(s.traceback_limit) === d.frames && s.traced.current === d.current && s.traced.peak === d.peak && s.traces === d.traces && s.memory === d.memory);
    });
    assert.equal(await facts.getAttribute("data-mode"), json.mode);
    assert.equal(await facts.getAttribute("data-frames"), String(json.traceback_limit));
    assert.equal(await page.getByTestId("tracing-off").isVisible(), false);

    // Top sites by line: every row as the answer, sizes as tracemalloc prints them; the
    // largest site is the Page cache's, as the API says too.
    const shown = await frozen(page, stats);
    assert.equal(shown.key, "lineno");
    assert.ok(shown.entries.length > 0);
    const now = await api(BASE, `${heapPath()}/tracing/statistics?key=lineno&limit=5`);
    const top = (await rows(page))[0];
    assert.equal(top.site, site(now.entries[0].traceback[0]), "the largest site, page and API");
    assert.match(top.site, /demo\.c:\d+$/);

    // By file: the rows change to file names (line 0: no ":line").
    await page.getByTestId("stats-key").selectOption("filename");
    await until("rows by file", async () => {
      const j = stats.at(-1);
      return j.key === "filename" && (await page.getByTestId("stats-table").getAttribute("data-key")) === "filename" && same(await rows(page), asRows(j));
    });
    const byFile = await rows(page);
    assert.ok(byFile.every((r) => !/:\d+$/.test(r.site)), JSON.stringify(byFile));
    assert.notDeepEqual(byFile.map((r) => r.site), shown.entries.map((e) => site(e.traceback[0])));

    // The filter is include=: the top line's file and line keeps that line only; a name
    // matching nothing leaves the table empty.
    await page.getByTestId("stats-key").selectOption("lineno");
    const [, line] = /:(\d+)$/.exec(top.site);
    const filter = page.getByTestId("stats-filter");
    await filter.fill(`demo.c:${line}`);
    await until(`rows of demo.c:${line} only`, async () => {
      const j = stats.at(-1);
      const r = await rows(page);
      return j.key === "lineno" && r.length >= 1 && r.length < shown.entries.length && r.every((x) => x.site === top.site) && same(r, asRows(j));
    });
    await filter.fill("no-such-file.c");
    await until("no row for no-such-file.c", async () => (await rows(page)).length === 0 && stats.at(-1).entries.length === 0);
    assert.match(await page.getByTestId("stats-table").innerText(), /No traced allocation/);
  });
});

test("a snapshot taken by button: the growth since it, in the JSON's order", { timeout: 120_000 }, async (t) => {
  const label = `web-${Date.now()}`;
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const stats = answers(page, tableStats);
    await page.getByTestId("stats-row").first().waitFor({ state: "attached" });
    await page.getByTestId("snapshot-label").fill(label);
    await page.getByTestId("snapshot-take").click();
    const snap = await until(`snapshot ${label} in /tracing/snapshots`, async () =>
      (await api(BASE, `${heapPath()}/tracing/snapshots`)).snapshots.find((s) => s.label === label));
    const select = page.getByTestId("snapshot-select");
    await until("the snapshot chosen", async () => (await select.inputValue()) === snap.id);
    await page.getByTestId("stats-auto").uncheck();
    // The demo renders pages for ever: some site grows after the snapshot.
    await until("a grown site, rows in the order of the answer", async () => {
      const n = stats.length;
      await page.getByTestId("stats-refresh").click();
      const j = await until("an answer", async () => stats.length > n && stats.at(-1), { timeout: 10_000 });
      if (!j.base || j.base.id !== snap.id) return false;
      await until("the table shows it", async () => same(await rows(page), asRows(j)), { timeout: 5_000 });
      assert.equal(await page.getByTestId("stats-table").getAttribute("data-base"), snap.id);
      assert.ok(j.entries.every((e) => e.size_diff !== undefined));
      const heads = await page.locator('[data-testid="stats-table"] th').allInnerTexts();
      assert.ok(heads.includes("growth") && heads.includes("count growth"), heads.join("|"));
      return j.entries.some((e) => Number(e.size_diff) > 0);
    }, { interval: 1000 });
    const grown = (await rows(page)).find((r) => Number(r.sizeDiff) > 0);
    const cell = page.locator(`[data-testid="stats-row"][data-size-diff="${grown.sizeDiff}"] td`).nth(1);
    assert.equal(await cell.innerText(), traceSize(grown.sizeDiff, true));
  });
});

test("flame graph: a box per outermost frame, widths as bytes, zoom and reset", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: ROUTE, width: 1400 }, async ({ page }) => {
    const flames = answers(page, flameStats);
    const stats = answers(page, tableStats);
    await frozen(page, stats);
    const j = await until("the flame graph's answer", async () => flames.at(-1));
    const graph = page.getByTestId("flame-graph");
    const boxes = () => graph.getByTestId("flame-box").evaluateAll((els) =>
      els.map((e) => ({ depth: Number(e.dataset.depth), frame: e.dataset.frame, size: Number(e.dataset.size), key: e.dataset.key, w: e.getBoundingClientRect().width })));
    const W = await graph.evaluate((e) => e.clientWidth);
    // The tree's first level: outermost frames (the last of each traceback), bytes summed.
    const outer = new Map();
    let total = 0;
    for (const e of j.entries) {
      const f = e.traceback.at(-1);
      const k = `${site(f)} ${f.function}`;
      outer.set(k, { site: site(f), size: (outer.get(k)?.size ?? 0) + Number(e.size) });
      total += Number(e.size);
    }
    const b = await boxes();
    const root = b.find((x) => x.depth === 0);
    assert.equal(root.size, total);
    assert.ok(Math.abs(root.w - W) <= 1, `root ${root.w} px, graph ${W} px`);
    for (const o of outer.values()) {
      if ((o.size / total) * W < 2) continue; // narrower than a pixel or two is left out
      const box = b.find((x) => x.depth === 1 && x.frame === o.site && x.size === o.size);
      assert.ok(box, `no depth-1 box for ${o.site} (${o.size} B): ${JSON.stringify(b.filter((x) => x.depth === 1))}`);
    }
    for (const x of b.filter((y) => y.depth >= 1))
      assert.ok(Math.abs(x.w - (x.size / total) * W) <= 1, `${x.frame} at depth ${x.depth}: ${x.w} px for ${x.size} of ${total} B in ${W} px`);

    // Hover tells the bytes; a click zooms into a frame with children (full width), reset
    // zooms out.
    const deep = b.filter((x) => x.depth >= 1 && x.size < total && x.w >= 10).sort((p, q) => q.size - p.size)[0];
    assert.ok(deep, `a frame that not every stack goes through: ${JSON.stringify(b)}`);
    const target = graph.getByTestId("flame-box").nth(b.indexOf(deep));
    await target.hover();
    await until("flame-detail shows the frame's bytes", async () =>
      (await page.getByTestId("flame-detail").getAttribute("data-size")) === String(deep.size));
    assert.match(await page.getByTestId("flame-detail").innerText(), /%/);
    await target.click();
    await until("the zoomed frame spans the graph", async () => {
      const z = (await boxes()).find((x) => x.key === deep.key);
      return z && Math.abs(z.w - W) <= 1;
    });
    assert.equal(await page.getByTestId("flame-reset").isEnabled(), true);
    await page.getByTestId("flame-reset").click();
    await until("back to the whole graph", async () => {
      const z = (await boxes()).find((x) => x.key === deep.key);
      return z && Math.abs(z.w - (deep.size / total) * W) <= 1;
    });
    assert.equal(await page.getByTestId("flame-reset").isEnabled(), false);
    await page.screenshot({ path: path.join(SHOTS, "allocations-flame-1400-light.png"), fullPage: true });
  });
});

test("allocator panel as /allocator; its text link serves text/plain", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const seen = answers(page, (u) => u.pathname === `${heapPath()}/allocator`);
    const panel = page.getByTestId("allocator-panel");
    await panel.getByTestId("allocator-class").first().waitFor({ state: "attached" });
    const dom = () => page.evaluate(() => {
      const p = document.querySelector('[data-testid="allocator-panel"]');
      const dd = (id) => Object.fromEntries([...p.querySelectorAll(`[data-testid="${id}"] dd`)].map((d) => [d.dataset.key, d.dataset.value]));
      return {
        classes: [...p.querySelectorAll('[data-testid="allocator-class"]')].map((r) => ({ class: Number(r.dataset.class), size: Number(r.dataset.size), pools: Number(r.dataset.pools), blocks_in_use: r.dataset.inUse, blocks_available: r.dataset.available })),
        arenas: dd("allocator-arenas"),
        bytes: dd("allocator-bytes"),
      };
    });
    await until("the allocator panel as an /allocator answer the page got", async () => {
      const d = await dom();
      return seen.some((a) => same(d.classes, a.classes) && same(d.arenas, { current: a.arenas.current, highwater: a.arenas.highwater, reclaimed: a.arenas.reclaimed, allocated_total: a.arenas.allocated_total })
        && Object.keys(a.bytes).every((k) => d.bytes[k] === a.bytes[k]));
    });
    const href = await panel.getByTestId("allocator-text").getAttribute("href");
    assert.equal(href, `${heapPath()}/allocator?format=text`);
    const r = await fetch(BASE + href);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/plain/);
    assert.match(await r.text(), /class\s+size\s+num pools/);
  });
});

test("stop and start exact by button; the `a` key opens the view", { timeout: 120_000 }, async (t) => {
  assert.equal((await api(BASE, "/v1/process")).server.control, true, "the demo enables control");
  let from = Infinity, to = 0;
  try {
    await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
      await page.getByTestId("heap-card").first().waitFor();
      await page.keyboard.press("a");
      await until("#/allocations after a", async () => (await hashOf(page)) === ROUTE);
      // The hash changes before the hashchange handler re-renders the header: wait for it.
      await until("the header marks Allocations", async () => /active/.test((await page.getByTestId("nav-allocations").getAttribute("class")) ?? ""));
      const facts = page.getByTestId("tracing-status");
      await until("mode exact", async () => (await facts.getAttribute("data-mode")) === "exact");
      await page.getByTestId("stats-row").first().waitFor({ state: "attached" });
      // A statistics request in flight while tracing stops is answered 409 (handled; the
      // browser logs the status): admitted while the buttons work.
      from = Date.now();
      await page.getByTestId("tracing-stop").click();
      await until("mode off", async () => (await facts.getAttribute("data-mode")) === "off");
      assert.equal((await tracing()).tracing, false);
      await page.getByTestId("tracing-off").waitFor({ state: "visible" });
      assert.equal(await page.getByTestId("stats-panel").isVisible(), false);
      assert.equal(await page.getByTestId("pprof-line").isVisible(), false, "no pprof link while off (a 409)");
      await page.getByTestId("tracing-frames").fill("8");
      await page.getByTestId("tracing-start-exact").click();
      await until("mode exact again", async () => (await facts.getAttribute("data-mode")) === "exact");
      const s = await tracing();
      assert.equal(s.mode, "exact");
      assert.equal(s.traceback_limit, 8);
      await page.getByTestId("stats-panel").waitFor({ state: "visible" });
      await page.getByTestId("pprof-line").waitFor({ state: "visible" });
      to = Date.now() + 3000;
      await page.getByTestId("stats-row").first().waitFor({ state: "attached" });
      return { allowNetworkErrors: (at) => at >= from && at <= to };
    });
  } finally {
    if (!(await tracing()).tracing) await api(BASE, `${heapPath()}/tracing?action=start&frames=8`, { method: "POST" });
  }
});

test("tracing off: said plainly, how to start it, the allocator still shown", { skip: !EXTRA && "no RCGC_WEB_EXTRA_URL", timeout: 120_000 }, async (t) => {
  await post(EXTRA, "stop");
  try {
    for (const scheme of ["light", "dark"])
      await withPage(browser, t, { base: EXTRA, route: ROUTE, colorScheme: scheme }, async ({ page, requests }) => {
        const off = page.getByTestId("tracing-off");
        await off.waitFor({ state: "visible" });
        assert.match(await off.innerText(), /Tracing is off/);
        assert.match(await off.innerText(), /start exact/); // control is on: the buttons
        assert.equal(await page.getByTestId("tracing-status").getAttribute("data-mode"), "off");
        assert.equal(await page.getByTestId("stats-panel").isVisible(), false);
        assert.equal(await page.getByTestId("flame-panel").isVisible(), false);
        assert.equal(await page.getByTestId("pprof-line").isVisible(), false);
        assert.equal((await fetch(`${EXTRA}${heapPath()}/pprof/heap`)).status, 409, "the profile is a 409 while off");
        await page.getByTestId("allocator-class").first().waitFor({ state: "visible" });
        assert.equal(requests.filter((u) => u.includes("/tracing/statistics")).length, 0, "no statistics asked while off");
        await page.screenshot({ path: path.join(SHOTS, `allocations-off-1400-${scheme}.png`), fullPage: true });
      });
  } finally {
    await api(EXTRA, `${heapPath()}/tracing?action=start&frames=8`, { method: "POST" });
  }
});

// Every statistics answer for the table with the query that asked for it.
function askedAndAnswered(page) {
  const seen = [];
  page.on("response", async (r) => {
    const u = new URL(r.url());
    if (!tableStats(u) || r.status() !== 200) return;
    try {
      seen.push({ q: u.searchParams, json: await r.json() });
    } catch {
      /* the page went away */
    }
  });
  return seen;
}
const sum = (entries) => entries.reduce((a, e) => a + Number(e.size), 0);

test("cumulative: the query asks for it, every frame of a traceback counts, off for tracebacks", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const seen = askedAndAnswered(page);
    const stats = answers(page, tableStats);
    const box = page.getByTestId("stats-cumulative");
    const plain = await frozen(page, stats);
    assert.equal(await box.isChecked(), false);
    assert.equal(seen.at(-1).q.get("cumulative"), "false");
    assert.equal(plain.cumulative, false);
    // Not cumulative: one row per allocating statement (demo.c:LINE), the rows sum to the total.
    const plainRows = await rows(page);
    assert.ok(plainRows.every((r) => /demo\.c:\d+$/.test(r.site)), JSON.stringify(plainRows));
    assert.equal(plain.truncated, false, "the demo allocates from a few lines: one page of rows");
    assert.equal(sum(plain.entries), Number(plain.total.size));

    // Cumulative: the callers' frames get rows too (sites no allocating statement has: the
    // executable and libc, with line 0 or, with debug information, their source lines),
    // and a trace counts once per frame, so the rows add up to more than the total.
    // An action, then the answer to the request it made (asked with cumulative=want), shown.
    const shown = async (want, action) => {
      const n = seen.length;
      await action();
      await until(`a cumulative=${want} answer, shown`, async () => {
        const last = seen.at(-1);
        return seen.length > n && last.q.get("cumulative") === String(want) && last.json.cumulative === want && same(await rows(page), asRows(last.json));
      });
      assert.ok(seen.slice(n).every((x) => x.q.get("cumulative") === String(want)), `every request since asked for cumulative=${want}`);
      return seen.at(-1).json;
    };
    const cum = await shown(true, () => box.check());
    const cumRows = await rows(page);
    const plainSites = new Set(plainRows.map((r) => r.site));
    assert.ok(cumRows.some((r) => !plainSites.has(r.site)), `a caller's frame among ${JSON.stringify(cumRows.map((r) => r.site))}`);
    assert.ok(cumRows.length > plainRows.length, `${cumRows.length} cumulative rows, ${plainRows.length} plain`);
    assert.ok(sum(cum.entries) > Number(cum.total.size), `cumulative rows ${sum(cum.entries)} B, total ${cum.total.size} B`);

    // Off again: back to the allocating statements.
    await shown(false, () => box.uncheck());
    assert.ok((await rows(page)).every((r) => /demo\.c:\d+$/.test(r.site)));

    // By traceback there is no cumulative (tracemalloc has none): the box is disabled and
    // the query says false even while it is checked; back to lines, true again.
    await shown(true, () => box.check());
    const n1 = seen.length;
    await page.getByTestId("stats-key").selectOption("traceback");
    await until("a traceback answer", async () => seen.length > n1 && seen.at(-1).json.key === "traceback");
    assert.equal(await box.isDisabled(), true);
    assert.equal(await box.isChecked(), true);
    assert.equal(seen.at(-1).q.get("cumulative"), "false");
    assert.equal(seen.at(-1).json.cumulative, false);
    await shown(true, () => page.getByTestId("stats-key").selectOption("lineno"));
    assert.equal(await box.isEnabled(), true);
  });
});

// Records every tracing-status the page paints from now on (in the page: a poll may
// replace a figure before the test reads it); the returned function reads them.
async function watchStatus(page) {
  await page.getByTestId("tracing-status").evaluate((e) => {
    const seen = (window.__tracingShown = []);
    new MutationObserver(() => seen.push({ mode: e.dataset.mode, traces: e.dataset.traces, current: e.dataset.current, peak: e.dataset.peak })).observe(e, { attributes: true });
  });
  return () => page.evaluate(() => window.__tracingShown);
}

// Clicks a tracing button; returns the POST's answer (the status right after the action).
async function clickAction(page, testid, action) {
  const [r] = await Promise.all([
    page.waitForResponse((x) => x.request().method() === "POST" && new URL(x.url()).pathname === `${heapPath()}/tracing` && new URL(x.url()).searchParams.get("action") === action),
    page.getByTestId(testid).click(),
  ]);
  assert.equal(r.status(), 200, `POST ?action=${action}`);
  return r.json();
}

test("clear traces by button: traced memory from 0, an older object's trace gone, smaller statistics", { timeout: 120_000 }, async (t) => {
  const old = await tracedObject(BASE, "Page"); // a Page allocated while tracing: traced
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const stats = answers(page, tableStats);
    const facts = page.getByTestId("tracing-status");
    const before = await frozen(page, stats); // auto-refresh off: the next answer is the clear's
    assert.ok(Number(before.total.count) > 0 && Number(before.total.size) > 0);
    await until("traces shown", async () => Number(await facts.getAttribute("data-traces")) > 0);
    const shown = await watchStatus(page);
    const n = stats.length;
    const s = await clickAction(page, "tracing-clear", "clear");
    // tracemalloc.clear_traces(): no trace, traced memory and its peak 0, still tracing.
    assert.equal(s.tracing, true);
    assert.equal(s.mode, "exact");
    assert.equal(s.traces, "0");
    assert.deepEqual(s.traced, { current: "0", peak: "0" });
    await until("the page painted the cleared status", async () => (await shown()).some((x) => x.traces === "0" && x.current === "0" && x.peak === "0"));
    assert.match(await page.getByTestId("tracing-out").innerText(), /^traces cleared/);
    assert.equal(await page.getByTestId("tracing-clear").isEnabled(), true, "still tracing: clear again is possible");
    // The server forgot the older Page's trace; it still lives.
    const tb = await api(BASE, `${heapPath()}/objects/${old.id}/traceback`);
    assert.equal(tb.traced, false);
    assert.equal(tb.traceback, null);
    // The statistics the page asked for after the clear count only what was allocated
    // since, far less than before (the cache of Pages held thousands).
    const after = await until("a statistics answer after the clear, shown", async () =>
      stats.length > n && same(await rows(page), asRows(stats.at(-1))) && stats.at(-1));
    assert.ok(Number(after.total.count) < Number(before.total.count) / 2, `${after.total.count} traced blocks after the clear, ${before.total.count} before`);
    assert.ok(Number(after.total.size) < Number(before.total.size) / 2, `${after.total.size} B after the clear, ${before.total.size} B before`);
  });
});

test("reset peak by button: the peak is the traced memory now, the traces stay", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const facts = page.getByTestId("tracing-status");
    await until("mode exact", async () => (await facts.getAttribute("data-mode")) === "exact");
    // Garbage Documents are freed at each collection: the peak soon exceeds the current.
    await until("peak above current on the page and the server", async () => {
      const p = Number(await facts.getAttribute("data-peak")), c = Number(await facts.getAttribute("data-current"));
      const s = await tracing();
      return p > c && Number(s.traced.peak) > Number(s.traced.current);
    }, { timeout: 60_000, interval: 500 });
    const shown = await watchStatus(page);
    const s = await clickAction(page, "tracing-reset-peak", "reset_peak");
    assert.equal(s.tracing, true);
    assert.equal(s.traced.peak, s.traced.current, "tracemalloc.reset_peak(): peak = current");
    assert.ok(Number(s.traced.current) > 0);
    assert.notEqual(s.traces, "0", "reset_peak keeps the traces");
    await until("the page painted the reset peak", async () => (await shown()).some((x) => x.peak === s.traced.peak && x.current === s.traced.current && x.traces === s.traces));
    assert.match(await page.getByTestId("tracing-out").innerText(), /^peak reset/);
    assert.notEqual((await tracing()).traces, "0");
  });
});

test("pprof link: its href, fetched from the page, downloaded by a click: a gzipped profile", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: ROUTE }, async ({ page }) => {
    const a = page.getByTestId("pprof-download");
    await a.waitFor({ state: "visible" });
    const href = await a.getAttribute("href");
    assert.equal(href, `${heapPath()}/pprof/heap`);
    assert.equal(await a.getAttribute("download"), "", "a download named by the server");
    const got = await page.evaluate(async (h) => {
      const r = await fetch(h);
      const b = new Uint8Array(await r.arrayBuffer());
      return { status: r.status, type: r.headers.get("content-type"), disposition: r.headers.get("content-disposition"), head: [b[0], b[1]], length: b.length };
    }, href);
    assert.equal(got.status, 200);
    assert.deepEqual(got.head, [0x1f, 0x8b], "gzip's magic bytes");
    assert.equal(got.type, "application/octet-stream");
    assert.equal(got.disposition, `attachment; filename="rcgc-${HEAP}-heap.pb.gz"`);
    assert.ok(got.length > 100, `${got.length} bytes`);

    // A click downloads the file: a gzipped profile.proto with the sample types and the
    // demo's source file in its string table.
    const [dl] = await Promise.all([page.waitForEvent("download"), a.click()]);
    assert.equal(dl.suggestedFilename(), `rcgc-${HEAP}-heap.pb.gz`);
    assert.equal(new URL(dl.url()).pathname, `${heapPath()}/pprof/heap`);
    const bytes = await readFile(await dl.path());
    assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b]);
    const pb = gunzipSync(bytes).toString("latin1");
    for (const s of ["inuse_objects", "inuse_space", "count", "bytes", "space"]) assert.ok(pb.includes(s), `"${s}" in the profile`);
    assert.match(pb, /demo\.c/);
  });
});
