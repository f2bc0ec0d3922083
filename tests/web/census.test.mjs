// census.test.mjs: #/census/demo shows the census of /v1/heaps/demo/census (one row per
// type, the Page cache's count as the JSON has it), filters rows by name, offers the
// baselines of /baselines, and lists the suspects of /suspects (Page first: unbounded).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { api, BASE, heapPath, HEAP, intAttr, launch, until, withPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const census = () => api(BASE, `${heapPath()}/census?limit=10000`);
const objectsOf = (json, type) => Number(json.types.find((r) => r.type === type)?.objects ?? NaN);

test("census rows are the types of /census, Page's count as the JSON's", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: `#/census/${HEAP}` }, async ({ page }) => {
    const table = page.getByTestId("census-table");
    await table.waitFor({ state: "visible" });
    const pageRow = table.locator('[data-testid="census-row"][data-type="Page"]');
    await pageRow.waitFor({ state: "attached" });

    // Every type of the JSON has a row, and every row a type of the JSON.
    const json = await census();
    const rows = await table.getByTestId("census-row").evaluateAll((els) => els.map((e) => e.dataset.type));
    const types = json.types.map((r) => r.type);
    for (const type of types) assert.ok(rows.includes(type), `no census-row for ${type} (rows: ${rows})`);
    for (const type of rows) assert.ok(types.includes(type), `census-row ${type} is not in /census (${types})`);

    // Page only grows (the cache never evicts): the row is at most what the JSON says
    // now and catches up with what it said before, as the page polls.
    const then = objectsOf(await census(), "Page");
    await until(`census-row Page data-objects >= ${then} (the JSON then)`, async () => {
      const dom = await intAttr(pageRow, "data-objects");
      const now = objectsOf(await census(), "Page");
      assert.ok(dom <= now, `census-row Page data-objects ${dom} > /census ${now}`);
      return dom >= then;
    }, { timeout: 30_000, interval: 500 });
  });
});

test("census-filter keeps the rows whose type matches", { timeout: 60_000 }, async (t) => {
  await withPage(browser, t, { route: `#/census/${HEAP}` }, async ({ page }) => {
    const table = page.getByTestId("census-table");
    await table.locator('[data-testid="census-row"][data-type="Page"]').waitFor({ state: "visible" });
    await page.getByTestId("census-filter").fill("Pag");
    await until("only rows matching 'Pag' visible", async () => {
      const visible = await table.locator('[data-testid="census-row"]:visible').evaluateAll((els) =>
        els.map((e) => e.dataset.type));
      return visible.length >= 1 && visible.every((ty) => /pag/i.test(ty)) && visible.includes("Page");
    }, { timeout: 10_000 });
    await page.getByTestId("census-filter").fill("");
    await until("every row back after clearing the filter", async () =>
      (await table.locator('[data-testid="census-row"][data-type="Section"]:visible').count()) === 1,
    { timeout: 10_000 });
  });
});

test("baseline-select offers the heap's baselines and the census uses one", { timeout: 60_000 }, async (t) => {
  const label = `web-census-${Date.now()}`;
  await api(BASE, `${heapPath()}/baselines?label=${label}`, { method: "POST" });
  await withPage(browser, t, { route: `#/census/${HEAP}` }, async ({ page, requests }) => {
    const select = page.getByTestId("baseline-select");
    await select.waitFor({ state: "visible" });
    const option = select.locator("option", { hasText: label });
    await until(`an option ${label} in baseline-select`, async () => (await option.count()) >= 1
      || (await select.locator(`option[value="${label}"]`).count()) >= 1);
    const value = (await select.locator(`option[value="${label}"]`).count()) >= 1
      ? label : await option.first().getAttribute("value");
    await select.selectOption(value);
    await until(`a census request with baseline=${label}`, async () =>
      requests.some((u) => u.includes("/census?") && new URL(u).searchParams.get("baseline") === label));
    // The Page row still shows the live count, not the baseline's.
    const pageRow = page.locator('[data-testid="census-row"][data-type="Page"]');
    await pageRow.waitFor({ state: "attached" });
    const base = await api(BASE, `${heapPath()}/census?baseline=${label}&limit=10000`);
    const row = base.types.find((r) => r.type === "Page");
    assert.ok((await intAttr(pageRow, "data-objects")) >= Number(row.baseline.objects));
  });
});

test("suspects list Page first, unbounded, linking to its objects", { timeout: 120_000 }, async (t) => {
  // The server judges a type after 4 collections; the demo collects every half second.
  const json = await until("an unbounded suspect in /suspects", async () => {
    const s = await api(BASE, `${heapPath()}/suspects?kind=unbounded`);
    return s.suspects.length > 0 && s;
  });
  assert.equal(json.suspects[0].type, "Page", "the demo's top unbounded suspect");
  await withPage(browser, t, { route: `#/census/${HEAP}` }, async ({ page }) => {
    const list = page.getByTestId("suspects-list");
    await list.waitFor({ state: "visible" });
    const first = list.locator('[data-testid="suspect-row"][data-kind="unbounded"]').first();
    await first.waitFor({ state: "attached" });
    assert.equal(await first.getAttribute("data-type"), "Page");
    const kinds = ["unbounded", "bounded", "fluctuating", "flat"];
    const rows = await list.getByTestId("suspect-row").evaluateAll((els) =>
      els.map((e) => ({ type: e.dataset.type, kind: e.dataset.kind })));
    for (const r of rows) assert.ok(kinds.includes(r.kind), `suspect-row ${r.type}: data-kind ${r.kind}`);
    const href = await first.getByTestId("suspect-link").getAttribute("href");
    assert.match(href, new RegExp(`#/objects/${HEAP}\\?type=Page$`));
  });
});
