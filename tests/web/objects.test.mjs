// objects.test.mjs: #/objects/demo?type=T lists the objects of /objects?type=T (Page
// and Record are untracked leaves: the list is the heap's, scope=all), in id order, each
// row linking to #/object/demo/<id>; with 100,000 Records loaded (objects-load-all, the
// demo run with --extra 100000) the table stays virtualized: under 200 rows in the DOM
// while scrolling through, the last one the largest id.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  allObjects, api, BASE, EXTRA, heapPath, HEAP, launch, numbers, until, withPage,
} from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const total = async (base, type) =>
  Number((await api(base, `${heapPath()}/objects?type=${type}&scope=all&limit=1`)).total);

test("the objects view lists the objects of /objects?type=Page", { timeout: 120_000 }, async (t) => {
  const before = await total(BASE, "Page");
  await withPage(browser, t, { route: `#/objects/${HEAP}?type=Page` }, async ({ page }) => {
    const table = page.getByTestId("objects-table");
    await table.waitFor({ state: "visible" });
    // objects-count's text gives the total: its last number ("1,000 of 5,234 loaded").
    const count = page.getByTestId("objects-count");
    const shown = await until("objects-count with a number", async () => {
      const n = numbers(await count.textContent()).pop();
      return n > 0 && n;
    });
    const afterwards = await total(BASE, "Page");
    assert.ok(shown >= before && shown <= afterwards,
      `objects-count ${shown}, /objects?type=Page total ${before} before and ${afterwards} after`);

    const rows = table.getByTestId("object-row");
    await rows.first().waitFor({ state: "attached" });
    const ids = await rows.evaluateAll((els) => els.map((e) => e.dataset.id));
    assert.ok(ids.length > 0 && ids.length < 200, `${ids.length} object-row elements`);
    for (let i = 1; i < ids.length; i++)
      assert.ok(BigInt(ids[i - 1]) < BigInt(ids[i]), `rows not in id order: ${ids[i - 1]} before ${ids[i]}`);
    for (const id of ids.slice(0, 5)) {
      const obj = await api(BASE, `${heapPath()}/objects/${id}`);
      assert.equal(obj.type, "Page", `object-row ${id}`);
    }
    // Each row links to its object.
    const links = await rows.evaluateAll((els) => els.slice(0, 20).map((e) => {
      const a = e.matches("a[href]") ? e : e.querySelector("a[href]");
      return [e.dataset.id, a && a.getAttribute("href")];
    }));
    for (const [id, href] of links) assert.equal(href, `#/object/${HEAP}/${id}`, `object-row ${id}'s link`);
  });
});

// The element that scrolls the table: objects-table itself, something inside it or
// around it, or the page.
const scrollTo = (page, where) =>
  page.getByTestId("objects-table").evaluate((table, where) => {
    const scrolls = (e) => /(auto|scroll|overlay)/.test(getComputedStyle(e).overflowY)
      && e.scrollHeight > e.clientHeight + 1;
    let s = [table, ...table.querySelectorAll("*")].find(scrolls);
    for (let e = table.parentElement; !s && e; e = e.parentElement) if (scrolls(e)) s = e;
    s = s || document.scrollingElement;
    s.scrollTop = where === "bottom" ? s.scrollHeight : where * (s.scrollHeight - s.clientHeight);
    return { scrollTop: s.scrollTop, scrollHeight: s.scrollHeight, clientHeight: s.clientHeight };
  }, where);

// The rendered rows, top to bottom on screen (a virtualized table may reuse its nodes),
// and whether the lowest is inside the viewport.
const renderedRows = (page) =>
  page.getByTestId("objects-table").evaluate((table) => {
    const rows = [...table.querySelectorAll('[data-testid="object-row"]')]
      .map((e) => ({ id: e.dataset.id, r: e.getBoundingClientRect() }))
      .filter((x) => x.r.height > 0)
      .sort((a, b) => a.r.top - b.r.top);
    const last = rows[rows.length - 1];
    return {
      dom: table.querySelectorAll('[data-testid="object-row"]').length,
      ids: rows.map((x) => x.id),
      lastVisible: !!last && last.r.top < innerHeight && last.r.bottom > 0,
    };
  });

const nextFrames = (page) =>
  page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))));

test("100,000 Records: load all, scroll to the end, under 200 rows in the DOM", {
  timeout: 300_000,
  skip: EXTRA ? false : "RCGC_WEB_EXTRA_URL is not set (run.sh starts a demo with --extra 100000)",
}, async (t) => {
  const records = await allObjects(EXTRA, "Record");
  assert.equal(records.length, 100_000, "the demo run with --extra 100000");
  const largest = records.map((o) => BigInt(o.id)).reduce((a, b) => (a > b ? a : b)).toString();

  await withPage(browser, t, { base: EXTRA, route: `#/objects/${HEAP}?type=Record`, height: 900 }, async ({ page }) => {
    const table = page.getByTestId("objects-table");
    await table.getByTestId("object-row").first().waitFor({ state: "attached" });
    const count = page.getByTestId("objects-count");
    await until("objects-count to say 100,000", async () => /(^|[^\d,])100,000([^\d,]|$)/.test(await count.textContent()),
      { timeout: 30_000 });
    await page.getByTestId("objects-load-all").click();

    // Loaded when the bottom of the table is the largest id.
    await until(`the last row, scrolled to the bottom, to be the largest id ${largest}`, async () => {
      await scrollTo(page, "bottom");
      await nextFrames(page);
      const r = await renderedRows(page);
      assert.ok(r.dom < 200, `${r.dom} object-row elements in the DOM after scrolling to the end`);
      return r.ids[r.ids.length - 1] === largest && r.lastVisible;
    }, { timeout: 180_000, interval: 500 });
    // Every number objects-count shows is 100,000 now ("100,000 of 100,000 loaded").
    const shown = await count.textContent();
    assert.ok(numbers(shown).length > 0 && numbers(shown).every((n) => n === 100_000), `objects-count "${shown}"`);

    // Scrolling through: always rows on screen, never 200 of them, in id order, and each
    // step rendered promptly.
    const times = [];
    for (let i = 0; i <= 20; i++) {
      const t0 = Date.now();
      await scrollTo(page, i / 20);
      await nextFrames(page);
      times.push(Date.now() - t0);
      const r = await renderedRows(page);
      assert.ok(r.dom > 0 && r.dom < 200, `at ${i * 5}%: ${r.dom} object-row elements`);
      assert.ok(r.ids.length > 0, `at ${i * 5}%: no row on screen`);
      for (let k = 1; k < r.ids.length; k++)
        assert.ok(BigInt(r.ids[k - 1]) < BigInt(r.ids[k]), `at ${i * 5}%: rows out of id order`);
    }
    times.sort((a, b) => a - b);
    assert.ok(times[Math.floor(times.length / 2)] < 250, `median scroll step ${times[10]} ms (${times})`);

    // Back at the top: the smallest id first.
    await scrollTo(page, 0);
    await nextFrames(page);
    const first = (await renderedRows(page)).ids[0];
    assert.equal(first, records[0].id, "the first row at the top");
  });
});
