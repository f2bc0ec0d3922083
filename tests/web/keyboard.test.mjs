// keyboard.test.mjs: the main views without a mouse — o / c / b / g switch views, "/"
// focuses the census filter, j / k move the cursor in a table and Enter opens the row:
// census -> objects of a type -> one object, keys only.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { HEAP, hashOf, launch, until, withPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test("keys switch views, filter the census and open rows", { timeout: 120_000 }, async (t) => {
  await withPage(browser, t, { route: "#/overview" }, async ({ page }) => {
    await page.getByTestId("heap-card").first().waitFor();
    await page.keyboard.press("c");
    await until("#/census after c", async () => (await hashOf(page)) === `#/census/${HEAP}`);
    await page.getByTestId("census-row").first().waitFor({ state: "attached" });

    // "/" focuses the filter; typing narrows the rows to Page; Escape leaves the field.
    await page.keyboard.press("/");
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), "census-filter");
    await page.keyboard.type("Page");
    await until("only Page rows", async () => {
      const types = await page.getByTestId("census-row").evaluateAll((els) => els.map((e) => e.dataset.type));
      return types.length > 0 && types.every((x) => x === "Page");
    });
    await page.keyboard.press("Escape");

    // j focuses the table and moves; Enter opens the row under the cursor: Page's objects.
    await page.keyboard.press("j");
    await page.keyboard.press("k");
    await page.keyboard.press("Enter");
    await until("#/objects of Page after Enter", async () => (await hashOf(page)) === `#/objects/${HEAP}?type=Page`);
    await page.getByTestId("object-row").first().waitFor({ state: "attached" });
    await page.keyboard.press("j"); // second row
    await page.keyboard.press("Enter");
    await until("#/object after Enter", async () => (await hashOf(page)).startsWith(`#/object/${HEAP}/`));
    const id = (await hashOf(page)).split("/").pop();
    await page.getByTestId("object-view").waitFor();
    assert.equal(await page.getByTestId("object-view").getAttribute("data-id"), id);

    // g and o: garbage, then back to the overview.
    await page.keyboard.press("g");
    await until("#/garbage after g", async () => (await hashOf(page)) === `#/garbage/${HEAP}`);
    await page.keyboard.press("o");
    await until("#/overview after o", async () => (await hashOf(page)) === "#/overview");
  });
});
