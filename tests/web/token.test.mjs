// token.test.mjs: the dashboard against a server with a bearer token (RCGC_INSPECT_TOKEN),
// opened as /?access_token=<token> as protocol/README.md says. A demo of its own
// (RCGC_WEB_DEMO, started here and stopped by pid) on 127.0.0.1:0: without the token
// every /v1 request is a 401. The page's requests carry it (no 401 logged: withPage's
// check), its plain links carry it in their query (the allocator's text, the pprof
// profile: 200 with it, 401 without), a button's POST (clear traces) and the object
// view's traceback work with it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";

import { api, DEMO, go, heapPath, HEAP, launch, sleep, tracedObject, until, withPage } from "./harness.mjs";

const TOKEN = randomBytes(12).toString("hex");
let browser, demo, base;

// Starts the demo with the token; its inspector's URL from its "inspector: ..." line.
async function startDemo() {
  const child = spawn(DEMO, ["1", "--serve", "600"], {
    env: { ...process.env, RCGC_INSPECT: "127.0.0.1:0", RCGC_INSPECT_CONTROL: "1", RCGC_INSPECT_TOKEN: TOKEN },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "",
    err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const port = await until("the token demo's inspector", async () => {
    if (child.exitCode !== null) throw new Error(`the demo exited (${child.exitCode}): ${out}${err}`);
    return /^inspector: http:\/\/127\.0\.0\.1:(\d+)\//m.exec(out)?.[1];
  }, { timeout: 30_000, interval: 100 });
  return { child, base: `http://127.0.0.1:${port}` };
}

before(async () => {
  if (!DEMO) return;
  ({ child: demo, base } = await startDemo());
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const exited = new Promise((resolve) => demo.once("exit", resolve));
    process.kill(demo.pid, "SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
  }
});

const skip = !DEMO && "no RCGC_WEB_DEMO (run.sh sets it)";
const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };

test("with a token: the allocations view's links carry it, its requests and buttons work", { skip, timeout: 180_000 }, async (t) => {
  assert.equal((await fetch(`${base}/v1/process`)).status, 401, "the server asks for the token");
  assert.equal((await api(base, "/v1/process", auth)).server.auth, true);
  await withPage(browser, t, { base, route: `?access_token=${TOKEN}#/allocations/${HEAP}` }, async ({ page, requests }) => {
    const facts = page.getByTestId("tracing-status");
    await until("mode exact (the status read with the token)", async () => (await facts.getAttribute("data-mode")) === "exact");
    await page.getByTestId("stats-row").first().waitFor({ state: "attached" });
    await page.getByTestId("allocator-class").first().waitFor({ state: "attached" });
    const q = `access_token=${TOKEN}`;

    // Plain links cannot send a header: the token rides in their query.
    const text = await page.getByTestId("allocator-text").getAttribute("href");
    assert.equal(text, `${heapPath()}/allocator?format=text&${q}`);
    const pprof = await page.getByTestId("pprof-download").getAttribute("href");
    assert.equal(pprof, `${heapPath()}/pprof/heap?${q}`);
    for (const [href, type] of [[text, /^text\/plain/], [pprof, /^application\/octet-stream/]]) {
      const r = await fetch(base + href);
      assert.equal(r.status, 200, href);
      assert.match(r.headers.get("content-type"), type);
      assert.equal((await fetch(base + href.replace(/[?&]access_token=[^&]*/, ""))).status, 401, `${href} without the token`);
    }
    const [dl] = await Promise.all([page.waitForEvent("download"), page.getByTestId("pprof-download").click()]);
    const bytes = await readFile(await dl.path());
    assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b], "the downloaded profile is gzip");

    // A button's POST carries the header (the token in no POST's query).
    const [r] = await Promise.all([
      page.waitForResponse((x) => x.request().method() === "POST" && new URL(x.url()).searchParams.get("action") === "clear"),
      page.getByTestId("tracing-clear").click(),
    ]);
    assert.equal(r.status(), 200);
    assert.equal((await r.json()).traces, "0");
    assert.equal(await r.request().headerValue("authorization"), `Bearer ${TOKEN}`);
    assert.ok(!new URL(r.url()).searchParams.has("access_token"));
    assert.match(await page.getByTestId("tracing-out").innerText(), /^traces cleared/);

    // The object view's traceback, read with the token: a Page allocated since the clear.
    const traced = await until("a Page allocated since the clear", () => tracedObject(base, "Page", auth));
    await go(page, `#/object/${HEAP}/${traced.id}`);
    const box = page.locator(`[data-testid="object-view"][data-id="${traced.id}"] [data-testid="alloc-traceback"]`);
    await until('alloc-traceback data-traced="true"', async () => (await box.getAttribute("data-traced")) === "true");
    assert.equal(await box.getByTestId("traceback-frame").count(), traced.traceback.length);
    assert.ok(requests.some((u) => new URL(u).pathname === `${heapPath()}/objects/${traced.id}/traceback`));
  });
});
