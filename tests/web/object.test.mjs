// object.test.mjs: the leak-hunting path of README.md, in the browser. Census -> the top
// unbounded suspect (Page) -> its objects -> one Page: held from outside (path of one
// step: itself), allocated in demo.c. Then the forgotten incref: a Document with
// from_outside 1 (found with the JSON API, as with curl), its refcount explained, its
// Sections as referents and referrers, what it retains, and a Section's path from it.
// The allocation traceback: a traced Page's frames as /objects/{id}/traceback; a Page
// allocated before "clear traces" says it is not traced; the documented errors
// (object_not_found: freed meanwhile; others shown as errors).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  api, BASE, go, hashOf, heapPath, HEAP, intAttr, launch, leakedDocument, tracedObject, until, withPage,
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

const frames = (page) =>
  page.getByTestId("alloc-traceback").getByTestId("traceback-frame").evaluateAll((els) =>
    els.map((e) => ({ site: e.dataset.site, fn: e.dataset.function, text: e.textContent })));

test("a traced Page: its allocation traceback as /objects/{id}/traceback, frame 0 its site", { timeout: 120_000 }, async (t) => {
  const tb = await tracedObject(BASE, "Page");
  const obj = await api(BASE, `${heapPath()}/objects/${tb.id}`);
  assert.ok(tb.traceback.length >= 2 && tb.traceback.length <= 8, `${tb.traceback.length} frames (the demo traces 8)`);
  await withPage(browser, t, { route: `#/object/${HEAP}/${tb.id}` }, async ({ page, requests }) => {
    const box = page.locator(`[data-testid="object-view"][data-id="${tb.id}"] [data-testid="alloc-traceback"]`);
    await until('alloc-traceback data-traced="true"', async () => (await box.getAttribute("data-traced")) === "true");
    assert.equal(await intAttr(box, "data-frames"), tb.traceback.length);
    const site = (f) => (f.line ? `${f.file}:${f.line}` : f.file);
    const shown = await frames(page);
    assert.deepEqual(shown.map(({ site, fn }) => ({ site, fn })), tb.traceback.map((f) => ({ site: site(f), fn: f.function ?? "" })));
    for (const [i, f] of tb.traceback.entries()) {
      assert.ok(shown[i].text.includes(site(f)), `frame ${i}: "${shown[i].text}"`);
      if (f.function) assert.ok(shown[i].text.includes(f.function), `frame ${i}: "${shown[i].text}"`);
    }
    // Frame 0 is the allocating statement: the object's site, in demo.c (its callers, from
    // the C stack, are as the answer has them).
    assert.equal(shown[0].site, `${obj.site.file}:${obj.site.line}`);
    assert.match(shown[0].site, /demo\.c:\d+$/);
    assert.equal(await box.getByTestId("traceback-none").count(), 0);
    assert.ok(requests.some((u) => new URL(u).pathname === `${heapPath()}/objects/${tb.id}/traceback`), "the page asked /objects/{id}/traceback");
  });
});

test("a Page allocated before clear traces: not traced, said plainly", { timeout: 120_000 }, async (t) => {
  const list = await api(BASE, `${heapPath()}/objects?type=Page&scope=all&limit=5`);
  const cleared = await api(BASE, `${heapPath()}/tracing?action=clear`, { method: "POST" });
  assert.equal(cleared.traces, "0");
  const id = list.objects[0].id; // Pages are never freed (the cache)
  const tb = await api(BASE, `${heapPath()}/objects/${id}/traceback`);
  assert.equal(tb.traced, false);
  assert.equal(tb.traceback, null);
  await withPage(browser, t, { route: `#/object/${HEAP}/${id}` }, async ({ page }) => {
    const box = page.locator(`[data-testid="object-view"][data-id="${id}"] [data-testid="alloc-traceback"]`);
    await until('alloc-traceback data-traced="false"', async () => (await box.getAttribute("data-traced")) === "false");
    assert.equal(await box.getAttribute("data-reason"), "untraced");
    assert.equal(await box.getByTestId("traceback-frame").count(), 0);
    const text = await box.getByTestId("traceback-none").innerText();
    assert.match(text, /^Not traced/);
    assert.match(text, /cleared/);
    assert.equal(await box.locator("a").getAttribute("href"), `#/allocations/${HEAP}`);
    // The rest of the view is there all the same.
    assert.match(await page.getByTestId("alloc-site").textContent(), /demo\.c:\d+/);
  });
});

test("the traceback's documented errors: object_not_found says freed, another is shown", { timeout: 120_000 }, async (t) => {
  const id = (await api(BASE, `${heapPath()}/objects?type=Page&scope=all&limit=1`)).objects[0].id;
  // The object's own answer is real; its traceback's is one of the protocol's errors (a
  // Page freed between the two requests cannot be arranged with the demo, whose Pages live).
  for (const [status, code, reason, want] of [
    [404, "object_not_found", "gone", /^Not traced: the object is no longer alive/],
    [503, "no_safepoint", "error", /^The traceback could not be read/],
  ]) {
    await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
      await page.route(`**${heapPath()}/objects/${id}/traceback`, (r) =>
        r.fulfill({ status, contentType: "application/json", body: JSON.stringify({ protocol: 1, error: { code, message: `a ${code} for the test` } }) }));
      await go(page, `#/object/${HEAP}/${id}`);
      const box = page.locator(`[data-testid="object-view"][data-id="${id}"] [data-testid="alloc-traceback"]`);
      await until(`alloc-traceback data-reason="${reason}"`, async () => (await box.getAttribute("data-reason")) === reason);
      assert.equal(await box.getAttribute("data-traced"), "false");
      assert.match(await box.getByTestId("traceback-none").innerText(), want);
      if (reason === "error") assert.match(await box.locator(".error").innerText(), new RegExp(`\\(${code}\\)`));
      else assert.equal(await box.locator(".error").count(), 0);
      await page.getByTestId("retained-size").waitFor({ state: "attached" }); // the view went on
      return { allowNetworkErrors: () => true }; // the browser logs the error status itself
    });
  }
});
