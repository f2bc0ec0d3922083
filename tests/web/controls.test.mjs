// controls.test.mjs: the overview's controls panel (shown since the demo enables control
// requests: /v1/process server.control). collect-2 runs a full collection (the timeline
// grows, /v1/heaps/demo counts one more generation-2 collection), baseline-take takes a
// labelled baseline that baseline-select then offers, thresholds-apply and debug-flag
// change the heap (restored afterwards).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { api, BASE, getHeap, go, heapPath, HEAP, intAttr, launch, until, untilInt, withPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const panel = async (page) => {
  assert.equal((await api(BASE, "/v1/process")).server.control, true, "the demo enables control");
  const controls = page.getByTestId("controls");
  await controls.waitFor({ state: "visible" });
  return controls;
};

test("collect-2 runs a full collection that the timeline shows", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
    const controls = await panel(page);
    const timeline = page.getByTestId("timeline");
    await until("conn-status live", async () =>
      (await page.getByTestId("conn-status").getAttribute("data-state")) === "live");
    for (const g of [0, 1, 2]) await controls.getByTestId(`collect-${g}`).waitFor({ state: "visible" });
    const points = await intAttr(timeline, "data-points");
    const full = Number((await getHeap()).generations[2].collections);
    await controls.getByTestId("collect-2").click();
    await until("one more generation-2 collection in /v1/heaps/demo", async () =>
      Number((await getHeap()).generations[2].collections) > full, { timeout: 15_000 });
    await untilInt(timeline, "data-points", (v) => v > points, `timeline data-points > ${points}`,
      { timeout: 15_000 });
  });
});

test("baseline-take takes a baseline that baseline-select offers", { timeout: 120_000 }, async (t) => {
  const label = `web-ui-${Date.now()}`;
  await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
    const controls = await panel(page);
    await controls.getByTestId("baseline-label").fill(label);
    await controls.getByTestId("baseline-take").click();
    await until(`baseline ${label} in /baselines`, async () =>
      (await api(BASE, `${heapPath()}/baselines`)).baselines.some((b) => b.label === label), { timeout: 15_000 });
    await go(page, `#/census/${HEAP}`);
    const select = page.getByTestId("baseline-select");
    await select.waitFor({ state: "visible" });
    await until(`an option for ${label} in baseline-select`, async () =>
      (await select.locator("option").evaluateAll((os, l) => os.some((o) => o.value === l || o.textContent.includes(l)), label)));
  });
});

test("thresholds-apply sets the heap's thresholds", { timeout: 120_000 }, async (t) => {
  const before = (await getHeap()).generations.map((g) => Number(g.threshold));
  const want = [before[0] + 100, before[1] + 1, before[2] + 2];
  try {
    await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
      const controls = await panel(page);
      for (let g = 0; g < 3; g++) {
        const input = controls.getByTestId(`threshold-${g}`);
        await until(`threshold-${g} filled with ${before[g]}`, async () => Number(await input.inputValue()) === before[g]);
        await input.fill(String(want[g]));
      }
      await controls.getByTestId("thresholds-apply").click();
      await until(`thresholds ${want} in /v1/heaps/demo`, async () =>
        JSON.stringify((await getHeap()).generations.map((g) => Number(g.threshold))) === JSON.stringify(want),
      { timeout: 15_000 });
      const card = page.locator(`[data-testid="heap-card"][data-heap="${HEAP}"]`);
      await until("gen-bar 0 data-threshold updated", async () =>
        (await intAttr(card.locator('[data-testid="gen-bar"][data-gen="0"]'), "data-threshold")) === want[0]);
    });
  } finally {
    await api(BASE, `${heapPath()}/thresholds`, {
      method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ threshold: before }),
    });
  }
});

test("debug-flag checkboxes show and set the heap's debug flags", { timeout: 120_000 }, async (t) => {
  const flags = ["stats", "collectable", "uncollectable", "saveall"];
  const before = (await getHeap()).debug.flags;
  try {
    await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
      const controls = await panel(page);
      for (const f of flags) {
        const box = controls.locator(`[data-testid="debug-flag"][data-flag="${f}"]`);
        await box.waitFor({ state: "attached" });
        assert.equal(await box.isChecked(), before.includes(f), `debug-flag ${f}`);
      }
      const stats = controls.locator('[data-testid="debug-flag"][data-flag="stats"]');
      // The contract does not say whether a checkbox applies at once or on a button: an
      // apply button (debug-apply), if the panel has one, is clicked.
      const apply = async () => {
        const b = controls.getByTestId("debug-apply");
        if (await b.count()) await b.click();
      };
      await stats.setChecked(!before.includes("stats"));
      await apply();
      await until("stats toggled in /v1/heaps/demo", async () =>
        (await getHeap()).debug.flags.includes("stats") !== before.includes("stats"), { timeout: 15_000 });
      await stats.setChecked(before.includes("stats"));
      await apply();
      await until("stats back in /v1/heaps/demo", async () =>
        (await getHeap()).debug.flags.includes("stats") === before.includes("stats"), { timeout: 15_000 });
    });
  } finally {
    await api(BASE, `${heapPath()}/debug`, {
      method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ flags: before }),
    });
  }
});
