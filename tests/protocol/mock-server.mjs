// mock-server.mjs: an HTTP server that answers protocol v1 from protocol/examples, for
// testing validate.mjs --live itself (live.test.mjs) before and besides the real server.
// Not a model of the real server's behaviour beyond the shapes of its answers.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

import { PROTOCOL_DIR } from "./validate.mjs";

const ex = (f) => readFileSync(join(PROTOCOL_DIR, "examples", f), "utf8");
const err = (code, message) => JSON.stringify({ protocol: 1, error: { code, message } }) + "\n";

/** Starts the mock on 127.0.0.1:0. opts.missing: routes (by example folder name) that
 *  answer 404 not_found, as a server that lacks them would; opts.broken: folders whose
 *  answer loses its "protocol" field. Returns {url, close()}. */
export async function startMock({ missing = [], broken = [] } = {}) {
  const routes = [
    ["GET", /^\/v1\/process$/, "process"],
    ["GET", /^\/v1\/heaps$/, "heaps"],
    ["GET", /^\/v1\/heaps\/main$/, "heap"],
    ["GET", /^\/v1\/heaps\/main\/census$/, "census"],
    ["GET", /^\/v1\/heaps\/main\/baselines$/, "baselines"],
    ["POST", /^\/v1\/heaps\/main\/baselines$/, "baselines-post"],
    ["GET", /^\/v1\/heaps\/main\/sites$/, "sites"],
    ["GET", /^\/v1\/heaps\/main\/suspects$/, "suspects"],
    ["GET", /^\/v1\/heaps\/main\/garbage$/, "garbage"],
    ["GET", /^\/v1\/heaps\/main\/objects$/, "objects"],
    ["GET", /^\/v1\/heaps\/main\/objects\/[^/]+$/, "object"],
    ["GET", /^\/v1\/heaps\/main\/objects\/[^/]+\/path$/, "object-path"],
    ["GET", /^\/v1\/heaps\/main\/objects\/[^/]+\/retained$/, "object-retained"],
    ["GET", /^\/v1\/heaps\/main\/retained$/, "type-retained"],
    ["GET", /^\/v1\/heaps\/main\/objects\/[^/]+\/traceback$/, "object-traceback"],
    ["GET", /^\/v1\/heaps\/main\/allocator$/, "allocator"],
    ["GET", /^\/v1\/heaps\/main\/tracing$/, "tracing"],
    ["POST", /^\/v1\/heaps\/main\/tracing$/, "tracing-post"],
    ["GET", /^\/v1\/heaps\/main\/tracing\/statistics$/, "tracing-statistics"],
    ["GET", /^\/v1\/heaps\/main\/tracing\/snapshots$/, "tracing-snapshots"],
    ["POST", /^\/v1\/heaps\/main\/tracing\/snapshots$/, "tracing-snapshots-post"],
    ["GET", /^\/v1\/heaps\/main\/pprof\/heap$/, "pprof"],
    ["POST", /^\/v1\/heaps\/main\/collect$/, "collect"],
    ["PUT", /^\/v1\/heaps\/main\/thresholds$/, "thresholds"],
    ["PUT", /^\/v1\/heaps\/main\/debug$/, "debug"],
    ["GET", /^\/metrics$/, "metrics"],
    ["GET", /^\/v1\/events$/, "events"],
    ["GET", /^\/$/, "dashboard"],
    ["GET", /^\/assets\/[^/]+$/, "asset"],
  ];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const send = (status, type, body, headers = {}) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", ...headers });
      res.end(body);
    };
    const json = (status, body, headers) => send(status, "application/json", body, headers);
    const path = url.pathname;
    const q = url.searchParams;
    if (/^\/v1\/heaps\/(?!main(\/|$))[^/]+(\/.*)?$/.test(path)) return json(404, err("heap_not_found", "no such heap"));
    const hits = routes.filter(([, re]) => re.test(path));
    if (!hits.length) return json(404, err("not_found", "no endpoint at this path"));
    const hit = hits.find(([m]) => m === req.method || (m === "GET" && req.method === "HEAD"));
    if (!hit) return json(405, err("method_not_allowed", "not here"), { Allow: hits.map(([m]) => m).join(", ") });
    const name = hit[2];
    if (missing.includes(name)) return json(404, err("not_found", "no endpoint at this path"));
    if (q.has("limt")) return json(400, err("unknown_parameter", "unknown query parameter 'limt'"));
    if (q.get("limit") === "0") return json(400, err("bad_parameter", "limit must be 1..10000"));
    if (q.get("baseline") === "rcgc-validate-none") return json(404, err("baseline_not_found", "no such baseline"));
    if (name === "object" && !/^\/v1\/heaps\/main\/objects\/(\d+|0x[0-9a-f]+)$/.test(path)) return json(400, err("bad_id", "not an id"));
    if (name === "object" && path.endsWith("/16")) return json(404, err("object_not_found", "no live object"));
    if (name === "events" && q.has("since") && !/^[0-9a-f]{16}-\d+$/.test(q.get("since"))) return json(400, err("bad_parameter", "since"));
    if (name === "tracing-statistics" && q.get("base") === "9007199254740991") return json(404, err("snapshot_not_found", "no such snapshot"));
    if (name === "tracing-statistics" && q.has("key") && !["lineno", "filename", "traceback"].includes(q.get("key"))) return json(400, err("bad_parameter", "key"));
    if (name === "allocator" && q.get("format") === "text") return send(200, "text/plain; charset=utf-8", "Small block threshold = 512, in 32 size classes.\n");
    if (name === "pprof")
      return send(200, "application/octet-stream", gzipSync(Buffer.from("profile")), { "Content-Disposition": 'attachment; filename="rcgc-main-heap.pb.gz"' });
    if (name === "metrics") return send(200, "text/plain; version=0.0.4; charset=utf-8", ex("metrics/response.txt"));
    if (name === "dashboard")
      return send(200, "text/html; charset=utf-8", '<!doctype html><title>rcgc</title><script src="/assets/app.js"></script>\n', {
        "Content-Security-Policy": "default-src 'none'; script-src 'self'",
      });
    if (name === "asset" && path === "/assets/app.js") return send(200, "text/javascript; charset=utf-8", "// app\n", { ETag: '"1"', "Cache-Control": "no-cache" });
    if (name === "asset") return json(404, err("not_found", "no such file"));
    if (name === "events") {
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      res.write(ex("events/stream.txt"));
      return; // stays open, as the real stream does
    }
    let file = `${name}/response.json`;
    if ((name === "census" || name === "sites") && q.has("baseline")) file = `${name}-baseline/response.json`;
    if (name === "suspects" && q.get("by") === "site") file = "suspects-site/response.json";
    if (name === "tracing-statistics" && q.has("base")) file = "tracing-statistics-base/response.json";
    const body = JSON.parse(ex(file));
    // Echo what was asked where the example allows it.
    if (body.baseline && q.has("baseline")) body.baseline.label = q.get("baseline");
    if (name === "objects" && q.has("limit")) body.limit = Math.max(Number(q.get("limit")), body.objects.length);
    if (name === "objects" && q.has("generation")) body.generation = Number(q.get("generation"));
    if (name === "objects" && q.has("scope")) body.scope = q.get("scope");
    if (name === "tracing-statistics") {
      if (q.has("base")) body.base.id = q.get("base");
      if (q.has("limit")) body.limit = Math.max(Number(q.get("limit")), body.entries.length);
      if (q.has("cumulative")) body.cumulative = q.get("cumulative") === "true";
      if (q.has("key")) body.key = q.get("key");
      if (body.key === "filename") for (const e of body.entries) e.traceback = [{ ...e.traceback[0], line: 0, function: null }];
      if (body.key !== "traceback") for (const e of body.entries) e.traceback = e.traceback.slice(0, 1);
      body.truncated = body.offset + body.entries.length < body.total_entries;
    }
    if (broken.includes(name)) delete body.protocol;
    json(["baselines-post", "tracing-snapshots-post"].includes(name) ? 201 : 200, JSON.stringify(body) + "\n");
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((ok) => server.close(ok));
    },
  };
}
