// garbage.test.mjs: #/garbage/demo shows the groups of /v1/heaps/demo/garbage (the demo's
// Session pairs: cycles of two through a legacy finalizer), each drawn as a graph with
// one circle per object.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { api, BASE, heapPath, HEAP, intAttr, launch, withPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test("garbage groups are those of /garbage, one circle per object", { timeout: 120_000 }, async (t) => {
  const json = await api(BASE, `${heapPath()}/garbage`);
  assert.ok(json.groups.length > 0, "the demo has Session cycles in its garbage list");
  await withPage(browser, t, { route: `#/garbage/${HEAP}` }, async ({ page }) => {
    const groups = page.getByTestId("garbage-group");
    await groups.first().waitFor({ state: "visible" });
    const n = await groups.count();
    assert.ok(n >= Math.min(json.groups.length, 1), `${n} garbage-group elements`);

    // The list only grows (uncollectable cycles stay at their place): the JSON's first
    // groups are shown as they are, kind and size.
    const dom = await groups.evaluateAll((els) => els.map((e) => ({
      kind: e.dataset.kind,
      size: e.dataset.size,
      circles: e.querySelectorAll('svg[data-testid="cycle-graph"] circle').length,
      graphs: e.querySelectorAll('svg[data-testid="cycle-graph"]').length,
    })));
    const first = json.groups[0];
    assert.equal(dom[0].kind, first.kind, "the first group's data-kind");
    assert.equal(dom[0].size, String(first.size), "the first group's data-size");
    for (const [i, g] of dom.entries()) {
      assert.ok(["cycle", "single"].includes(g.kind), `group ${i}: data-kind ${g.kind}`);
      assert.equal(g.graphs, 1, `group ${i}: one svg cycle-graph`);
      assert.equal(g.circles, Number(g.size), `group ${i}: ${g.circles} circles for data-size ${g.size}`);
    }
    const cycles = dom.filter((g) => g.kind === "cycle");
    assert.ok(cycles.some((g) => g.size === "2"), "a Session pair: a cycle of 2");

    // The groups in the JSON's order.
    const sizes = json.groups.slice(0, n).map((g) => String(g.size));
    assert.deepEqual(dom.slice(0, sizes.length).map((g) => g.size), sizes, "data-size of the groups in order");
    assert.equal(await intAttr(groups.first(), "data-size"), Number(first.size));
  });
});
