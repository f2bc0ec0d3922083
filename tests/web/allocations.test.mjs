// allocations.test.mjs: #/allocations/demo — the tracing status as /tracing has it; the
// top allocation sites as the /tracing/statistics answer the page received (key switch,
// include filter, sizes printed as tracemalloc prints them); a snapshot taken by button
// and the growth since it in the JSON's order; the flame graph (a box per outermost
// frame, widths in proportion to bytes within a pixel, zoom and reset); the allocator
// panel as /allocator and its text link; stop / start by button; the tracing-off state
// (the 100,000-Record demo, tracing stopped through the API and restarted after); the
// `a` key. The demo traces from its start, exact, 8 frames (examples/demo.c).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { api, BASE, EXTRA, hashOf, heapPath, HEAP, launch, SHOTS, until, withPage } from "./harness.mjs";

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
      assert.match(await page.getByTestId("nav-allocations").getAttribute("class"), /active/);
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
      await page.getByTestId("tracing-frames").fill("8");
      await page.getByTestId("tracing-start-exact").click();
      await until("mode exact again", async () => (await facts.getAttribute("data-mode")) === "exact");
      const s = await tracing();
      assert.equal(s.mode, "exact");
      assert.equal(s.traceback_limit, 8);
      await page.getByTestId("stats-panel").waitFor({ state: "visible" });
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
        await page.getByTestId("allocator-class").first().waitFor({ state: "visible" });
        assert.equal(requests.filter((u) => u.includes("/tracing/statistics")).length, 0, "no statistics asked while off");
        await page.screenshot({ path: path.join(SHOTS, `allocations-off-1400-${scheme}.png`), fullPage: true });
      });
  } finally {
    await api(EXTRA, `${heapPath()}/tracing?action=start&frames=8`, { method: "POST" });
  }
});
