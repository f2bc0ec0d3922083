// object.test.mjs: the leak-hunting path of README.md, in the browser. Census -> the top
// unbounded suspect (Page) -> its objects -> one Page: held from outside (path of one
// step: itself), allocated in demo.c. Then the forgotten incref: a Document with
// from_outside 1 (found with the JSON API, as with curl), its refcount explained, its
// Sections as referents and referrers, what it retains, and a Section's path from it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  api, BASE, go, hashOf, heapPath, HEAP, intAttr, launch, leakedDocument, until, withPage,
} from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

// Clicks a row's link (the row itself when it is the anchor).
async function clickRow(row) {
  const a = row.locator("a[href]");
  if ((await row.evaluate((e) => e.matches("a[href]"))) || (await a.count()) === 0) await row.click();
  else await a.first().click();
}

const pathSteps = (page) =>
  page.getByTestId("path-chain").getByTestId("path-step").evaluateAll((els) => els.map((e) => e.dataset.id));

test("census -> suspect Page -> objects -> a Page held from outside, allocated in demo.c", { timeout: 180_000 }, async (t) => {
  await until("Page as the top unbounded suspect", async () =>
    (await api(BASE, `${heapPath()}/suspects?kind=unbounded&limit=1`)).suspects[0]?.type === "Page");
  await withPage(browser, t, { route: `#/census/${HEAP}` }, async ({ page }) => {
    const top = page.getByTestId("suspects-list")
      .locator('[data-testid="suspect-row"][data-kind="unbounded"]').first();
    await top.waitFor({ state: "visible" });
    assert.equal(await top.getAttribute("data-type"), "Page");
    await top.getByTestId("suspect-link").click();
    await until("#/objects/demo?type=Page", async () => (await hashOf(page)) === `#/objects/${HEAP}?type=Page`);

    const row = page.getByTestId("objects-table").getByTestId("object-row").first();
    await row.waitFor({ state: "visible" });
    const id = await row.getAttribute("data-id");
    await clickRow(row);
    await until(`#/object/demo/${id}`, async () => (await hashOf(page)) === `#/object/${HEAP}/${id}`);

    const view = page.locator(`[data-testid="object-view"][data-id="${id}"]`);
    await view.waitFor({ state: "visible" });
    const json = await api(BASE, `${heapPath()}/objects/${id}`);
    assert.equal((await view.getByTestId("object-type").textContent()).trim(), "Page");
    const ex = view.getByTestId("refcount-explained");
    await until("refcount-explained with numbers", async () => (await ex.getAttribute("data-from-outside")) !== null);
    assert.equal(await intAttr(ex, "data-from-outside"), json.refcount_explained.from_outside);
    assert.equal(await intAttr(ex, "data-from-heap"), json.refcount_explained.from_heap);

    // The cache holds the page from C: a root, so the path is the page alone.
    await until("a path-chain ending at the object", async () => {
      const steps = await pathSteps(page);
      return steps.length > 0 && steps[steps.length - 1] === id;
    });
    const site = view.getByTestId("alloc-site");
    const text = await site.textContent();
    assert.match(text, /demo\.c:\d+/);
    assert.ok(text.includes(`demo.c:${json.site.line}`), `alloc-site "${text}", site ${json.site.file}:${json.site.line}`);
    const retained = view.getByTestId("retained-size");
    await until("retained-size data-objects", async () => (await retained.getAttribute("data-objects")) !== null);
    assert.equal(await intAttr(retained, "data-objects"), 1, "a Page retains itself");
  });
});

test("a Document with from_outside 1: refcount explained, referents, referrers, retained, paths", { timeout: 180_000 }, async (t) => {
  const doc = await leakedDocument();
  const id = doc.id;
  const [retainedJson, pathJson] = await Promise.all([
    api(BASE, `${heapPath()}/objects/${id}/retained`),
    api(BASE, `${heapPath()}/objects/${id}/path`),
  ]);
  assert.equal(pathJson.found, true);
  await withPage(browser, t, { route: `#/object/${HEAP}/${id}` }, async ({ page }) => {
    const view = page.locator(`[data-testid="object-view"][data-id="${id}"]`);
    await view.waitFor({ state: "visible" });
    assert.equal((await view.getByTestId("object-type").textContent()).trim(), "Document");
    const ex = view.getByTestId("refcount-explained");
    await until('refcount-explained data-from-outside="1"', async () =>
      (await ex.getAttribute("data-from-outside")) === "1");
    assert.equal(await intAttr(ex, "data-from-heap"), doc.refcount_explained.from_heap);
    assert.match(await view.getByTestId("alloc-site").textContent(), new RegExp(`demo\\.c:${doc.site.line}\\b`));

    // Referents and referrers: its Sections, each a link to the Section.
    const hrefs = (list) => view.getByTestId(list).getByTestId("ref-link").evaluateAll((els) =>
      els.map((e) => e.getAttribute("href")));
    const want = (refs) => refs.map((r) => `#/object/${HEAP}/${r.id}`).sort();
    await until("referents-list links", async () => (await hrefs("referents-list")).length === doc.referents.length);
    assert.deepEqual((await hrefs("referents-list")).sort(), want(doc.referents));
    assert.deepEqual((await hrefs("referrers-list")).sort(), want(doc.referrers));

    // Held from outside: a root, its path is itself.
    await until("path-chain [the document]", async () => JSON.stringify(await pathSteps(page)) === JSON.stringify([id]));
    assert.equal(pathJson.steps.length, 1);

    // What dropping it would free: itself and its Sections.
    const retained = view.getByTestId("retained-size");
    await until("retained-size data-objects", async () => (await retained.getAttribute("data-objects")) !== null);
    assert.equal(await intAttr(retained, "data-objects"), Number(retainedJson.retained.objects));
    const dominated = view.getByTestId("dominated-list");
    await dominated.waitFor({ state: "visible" });
    if (retainedJson.dominated.length) assert.match(await dominated.textContent(), /Section/);

    // Down a referent: the Section's path starts at the document.
    const section = doc.referents[0].id;
    await view.getByTestId("referents-list").locator(`[data-testid="ref-link"][href="#/object/${HEAP}/${section}"]`).click();
    await until(`#/object/demo/${section}`, async () => (await hashOf(page)) === `#/object/${HEAP}/${section}`);
    await page.locator(`[data-testid="object-view"][data-id="${section}"]`).waitFor({ state: "visible" });
    await until("path-chain [document, section]", async () =>
      JSON.stringify(await pathSteps(page)) === JSON.stringify([id, section]));
    assert.equal((await page.getByTestId("object-type").textContent()).trim(), "Section");

    // And back with the browser's history.
    await page.goBack();
    await page.locator(`[data-testid="object-view"][data-id="${id}"]`).waitFor({ state: "visible" });
  });
});

test("an id that is no live object says so without an uncaught error", { timeout: 60_000 }, async (t) => {
  await withPage(browser, t, { route: `#/overview` }, async ({ page }) => {
    await go(page, `#/object/${HEAP}/8`);
    await page.waitForTimeout(3_000);
    assert.equal(await page.locator('[data-testid="object-view"][data-id="8"] [data-testid="path-step"]').count(), 0);
    // A 404 answer is logged by the browser itself ("Failed to load resource"): allowed.
    return { allowNetworkErrors: () => true };
  });
});
