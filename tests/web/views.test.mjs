// views.test.mjs: every view at 1400 and 800 px wide, in the light and the dark color
// scheme: no horizontal scrollbar on the page, the scheme changes the colours, and a
// screenshot of each (<view>-<width>-<scheme>.png in RCGC_WEB_SCREENSHOTS). The header's
// links lead to the views. Every page here, as everywhere, loads nothing from elsewhere
// and logs no error (withPage's check).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { hashOf, HEAP, launch, leakedDocument, SHOTS, until, withPage } from "./harness.mjs";

let browser, doc;
before(async () => {
  browser = await launch();
  doc = await leakedDocument();
});
after(() => browser?.close());

// Each view: its route and what shows that its data arrived.
const views = () => [
  { name: "overview", route: "#/overview", ready: `[data-testid="heap-card"][data-heap="${HEAP}"] [data-testid="gen-bar"]` },
  { name: "census", route: `#/census/${HEAP}`, ready: '[data-testid="census-row"][data-type="Page"]' },
  { name: "garbage", route: `#/garbage/${HEAP}`, ready: '[data-testid="garbage-group"] svg[data-testid="cycle-graph"] circle' },
  { name: "objects", route: `#/objects/${HEAP}?type=Page`, ready: '[data-testid="object-row"]' },
  { name: "object", route: `#/object/${HEAP}/${doc.id}`, ready: `[data-testid="object-view"][data-id="${doc.id}"] [data-testid="path-step"]` },
  { name: "allocations", route: `#/allocations/${HEAP}`, ready: '[data-testid="flame-box"][data-depth="1"]' },
];

const colours = (page) => page.evaluate(() => {
  const cs = (e) => getComputedStyle(e);
  const b = cs(document.body), h = cs(document.documentElement);
  return [b.color, b.backgroundColor, h.color, h.backgroundColor].join(" / ");
});

for (const width of [1400, 800]) {
  test(`every view at ${width} px, light and dark`, { timeout: 240_000 }, async (t) => {
    const seen = {};
    for (const scheme of ["light", "dark"]) {
      for (const v of views()) {
        await t.test(`${v.name} ${width} ${scheme}`, async (st) => {
          await withPage(browser, st, { route: v.route, width, height: 900, colorScheme: scheme }, async ({ page }) => {
            await page.locator(v.ready).first().waitFor({ state: "visible" });
            await page.waitForTimeout(500); // let the layout settle (charts size themselves)
            await page.screenshot({ path: path.join(SHOTS, `${v.name}-${width}-${scheme}.png`) });
            (seen[v.name] ||= {})[scheme] = await colours(page);
            const { scrollWidth, innerWidth } = await page.evaluate(() => ({
              scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
            }));
            assert.ok(scrollWidth <= innerWidth, `${v.name}: a horizontal scrollbar (${scrollWidth} > ${innerWidth})`);
            assert.equal(await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches), scheme === "dark");
            // Numbers are for people: never in exponent notation ("1.1e+2 µs").
            const exp = await page.evaluate(() => document.body.innerText.match(/.{0,30}\d(\.\d+)?e[+-]\d+.{0,10}/g));
            assert.equal(exp, null, `${v.name}: numbers in exponent notation: ${JSON.stringify(exp)}`);
          });
        });
      }
    }
    for (const [name, c] of Object.entries(seen))
      if (c.light && c.dark) assert.notEqual(c.light, c.dark, `${name}: the same colours in light and dark (${c.light})`);
  });
}

test("the header's links lead to the views", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: `#/census/${HEAP}` }, async ({ page }) => {
    for (const [nav, prefix, ready] of [
      ["nav-overview", "#/overview", '[data-testid="heap-card"]'],
      ["nav-garbage", "#/garbage", '[data-testid="garbage-group"]'],
      ["nav-objects", "#/objects", null], // which type it lists first is the page's choice
      ["nav-allocations", "#/allocations", '[data-testid="allocator-panel"]'],
      ["nav-census", "#/census", '[data-testid="census-table"]'],
    ]) {
      await page.getByTestId(nav).click();
      await until(`${nav} -> ${prefix}`, async () => (await hashOf(page)).startsWith(prefix));
      if (ready) await page.locator(ready).first().waitFor({ state: "visible" });
    }
    // A reload keeps the route.
    await page.reload();
    assert.ok((await hashOf(page)).startsWith("#/census/"));
    await page.getByTestId("census-table").waitFor({ state: "visible" });
  });
});
