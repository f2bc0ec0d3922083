// overview.test.mjs: #/overview shows the heap as /v1/heaps/demo has it (one card, three
// generation bars with the thresholds in force), the connection state, and a timeline of
// collections that grows with every collect_done event (collections POSTed from here).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { BASE, collect, getHeap, HEAP, intAttr, launch, until, untilInt, withPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test("the heap card shows the generations of /v1/heaps/demo", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
    let lastHeap = null;
    page.on("response", async (r) => {
      if (new URL(r.url()).pathname === `/v1/heaps/${HEAP}` && r.ok()) lastHeap = await r.json().catch(() => lastHeap);
    });
    for (const id of ["nav-overview", "nav-census", "nav-garbage", "nav-objects"])
      await page.getByTestId(id).waitFor({ state: "visible" });
    const status = page.getByTestId("conn-status");
    await until('conn-status data-state="live"', async () => (await status.getAttribute("data-state")) === "live");

    const card = page.locator(`[data-testid="heap-card"][data-heap="${HEAP}"]`);
    await card.waitFor({ state: "visible", timeout: 30_000 });
    const bars = card.getByTestId("gen-bar");
    await until("three gen-bar elements in the heap card", async () => (await bars.count()) === 3);

    const heap = await getHeap();
    for (let g = 0; g < 3; g++) {
      const bar = card.locator(`[data-testid="gen-bar"][data-gen="${g}"]`);
      assert.equal(await bar.count(), 1, `gen-bar data-gen=${g}`);
      assert.equal(await intAttr(bar, "data-threshold"), Number(heap.generations[g].threshold),
        `generation ${g}: data-threshold against /v1/heaps/demo`);
      const count = await intAttr(bar, "data-count");
      assert.ok(count >= 0, `generation ${g}: data-count ${count}`);
    }
    // The bars show the /v1/heaps/demo answer the page received last (counts change at
    // every collection, so compare with exactly what the page got).
    await until("gen-bar data-count and data-threshold equal to the last /v1/heaps/demo the page got", async () => {
      const got = lastHeap;
      if (!got) return false;
      for (let g = 0; g < 3; g++) {
        const bar = card.locator(`[data-testid="gen-bar"][data-gen="${g}"]`);
        if ((await intAttr(bar, "data-count")) !== Number(got.generations[g].count)) return false;
        if ((await intAttr(bar, "data-threshold")) !== Number(got.generations[g].threshold)) return false;
      }
      return got === lastHeap; // no newer answer arrived meanwhile
    }, { timeout: 30_000, interval: 100 });

    const timeline = page.getByTestId("timeline");
    await timeline.waitFor({ state: "visible" });
    assert.ok((await intAttr(timeline, "data-points")) >= 0);
  });
});

test("the timeline grows when collections are triggered", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
    const status = page.getByTestId("conn-status");
    await until("conn-status live", async () => (await status.getAttribute("data-state")) === "live");
    const timeline = page.getByTestId("timeline");
    await timeline.waitFor({ state: "visible" });
    for (let round = 0; round < 2; round++) {
      const before = await intAttr(timeline, "data-points");
      const n = 5;
      for (let i = 0; i < n; i++) await collect(BASE, 0);
      await untilInt(timeline, "data-points", (v) => v >= before + n, `timeline data-points >= ${before} + ${n}`, { timeout: 20_000 });
    }
  });
});

for (const width of [1400, 800]) {
  test(`the timeline chart spans its panel at ${width} px`, { timeout: 60_000 }, async (t) => {
    await withPage(browser, t, { route: "#/overview", width }, async ({ page }) => {
      const timeline = page.getByTestId("timeline");
      await timeline.waitFor({ state: "visible" });
      await collect(BASE, 0);
      await until("a chart (canvas or svg) in the timeline", async () =>
        (await timeline.locator("canvas, svg").count()) > 0);
      await page.waitForTimeout(500);
      const { box, chart } = await timeline.evaluate((el) => ({
        box: el.getBoundingClientRect().width,
        chart: Math.max(...[...el.querySelectorAll("canvas, svg")].map((c) => c.getBoundingClientRect().width)),
      }));
      assert.ok(chart >= 0.8 * box && chart <= box + 1, `the chart is ${chart} px wide in a timeline ${box} px wide`);
    });
  });
}

// A busy program collects hundreds of times a second (the GC_STRESS build: ~800/s): the
// timeline keeps counting every collection (data-points grows on each collect_done, as
// the contract says, whatever the chart keeps on screen).
test("a burst of 2,100 collections: data-points counts every one", { timeout: 180_000 }, async (t) => {
  await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
    const status = page.getByTestId("conn-status");
    await until("conn-status live", async () => (await status.getAttribute("data-state")) === "live");
    const timeline = page.getByTestId("timeline");
    const before = await intAttr(timeline, "data-points");
    const n = 2_100;
    await Promise.all([0, 1, 2, 3].map(async () => {
      for (let i = 0; i < n / 4; i++) await collect(BASE, 0);
    }));
    await untilInt(timeline, "data-points", (v) => v >= before + n, `timeline data-points >= ${before} + ${n}`, { timeout: 30_000, interval: 500 });
  });
});
