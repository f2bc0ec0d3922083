// live.test.mjs: validate.mjs --live itself, against mock-server.mjs (the examples served
// over HTTP): a conforming server passes, a planned endpoint that is missing is skipped,
// an implemented one that is missing fails, and a broken answer fails.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { startMock } from "./mock-server.mjs";
import { checkLive, loadProtocol } from "./validate.mjs";

const servers = [];
after(() => Promise.all(servers.map((s) => s.close())));
const mock = async (opts) => {
  const s = await startMock(opts);
  servers.push(s);
  return s.url;
};
const failures = (r) => r.results.filter((x) => x.problems.length).map((x) => `${x.what}: ${x.problems.join("; ")}`);

test("a server that answers like the examples passes, control requests included", async () => {
  const p = loadProtocol();
  p.status = p.status.map((row) => ({ ...row, status: "implemented" })); // every check runs
  const r = await checkLive(p, await mock(), { control: true, eventsMs: 300 });
  assert.deepEqual(failures(r), []);
  const checked = r.results.filter((x) => x.outcome === "checked").map((x) => x.what);
  for (const w of [
    "GET /v1/process",
    "GET /v1/heaps/{heap}/objects/{id}",
    "GET /metrics",
    "GET /v1/events (300 ms)",
    "GET /",
    "GET /assets/app.js",
    "GET /assets/<unknown> -> 404 not_found",
    "DELETE /v1/heaps/{heap} -> 405 method_not_allowed + Allow",
    "objects/banana -> 400 bad_id",
  ])
    assert.ok(checked.includes(w), `${w} was not checked: ${checked.join(", ")}`);
  assert.ok(checked.some((w) => w.startsWith("PUT /v1/heaps/{heap}/thresholds")));
});

test("a missing endpoint is skipped while README says planned, and fails once implemented", async () => {
  const url = await mock({ missing: ["garbage"] });
  const p = loadProtocol();
  // Whatever README says today: planned first, then implemented.
  p.status = p.status.map((row) => (row.path.endsWith("/garbage") ? { ...row, status: "planned" } : row));
  let r = await checkLive(p, url, { eventsMs: 200 });
  assert.deepEqual(failures(r), []);
  assert.ok(r.results.some((x) => x.outcome === "skip" && x.what.includes("/garbage (planned)")));
  p.status = p.status.map((row) => (row.path.endsWith("/garbage") ? { ...row, status: "implemented" } : row));
  r = await checkLive(p, url, { eventsMs: 200 });
  assert.deepEqual(failures(r).length, 1, failures(r).join("\n"));
  assert.match(failures(r)[0], /garbage/);
});

test("a broken answer fails", async () => {
  const r = await checkLive(loadProtocol(), await mock({ broken: ["census"] }), { eventsMs: 200 });
  assert.ok(failures(r).some((f) => f.includes("/census") && f.includes("protocol")), failures(r).join("\n"));
});
