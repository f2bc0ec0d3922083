// schemas.test.mjs: protocol/ is consistent (CTest protocol.schemas; `node --test`).
// openapi.yaml is valid OpenAPI 3.1, every schema compiles in ajv's strict 2020-12 mode
// and follows the conventions, every example validates against its operation's schema and
// the cross-field rules, the metric and event examples follow metrics.md / events.md, and
// README's tables match the document. Each check is also shown to reject a broken input,
// so that a check that silently accepts everything cannot pass.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  checkEventStream,
  checkExamples,
  checkInvariants,
  checkMetricsText,
  checkOpenApiDocument,
  checkSchemas,
  checkSpecRefs,
  checkTables,
  loadProtocol,
  parseSse,
  pointerOf,
  validateAt,
  validateSchema,
} from "./validate.mjs";

const p = loadProtocol();
const example = (f) => JSON.parse(readFileSync(join(p.dir, "examples", f), "utf8"));
const exampleText = (f) => readFileSync(join(p.dir, "examples", f), "utf8");
const clone = (x) => structuredClone(x);
const ok200 = (path, method = "get", status = "200") =>
  pointerOf("paths", path, method, "responses", status, "content", "application/json", "schema");

test("openapi.yaml is valid OpenAPI 3.1 (the official schema, from @seriousme/openapi-schema-validator)", () => {
  assert.deepEqual(checkOpenApiDocument(p), []);
});

test("the OpenAPI check rejects a broken document", () => {
  const broken = clone(p.spec);
  delete broken.info;
  broken.paths["/v1/process"].get.responses["200"].content["application/json"].examples.docstore = { value: 1, externalValue: "x" };
  broken.paths["/v1/heaps"].get.parameters = [{ name: "x", in: "nowhere" }];
  const problems = checkOpenApiDocument(p, broken);
  assert.ok(problems.length >= 2, problems.join("\n"));
});

test("every schema compiles in ajv strict mode (draft 2020-12) and follows the conventions", () => {
  assert.deepEqual(checkSchemas(p), []);
});

test("the convention checks reject an unbounded integer and an open object", () => {
  const q = loadProtocol();
  q.schemas["heap.json"] = clone(q.schemas["heap.json"]);
  q.schemas["heap.json"].properties.types = { type: "integer", minimum: 0 };
  delete q.schemas["heap.json"].$defs.debug.additionalProperties;
  const problems = checkSchemas(q);
  assert.ok(problems.some((x) => /integer needs bounds/.test(x)), problems.join("\n"));
  assert.ok(problems.some((x) => /additionalProperties/.test(x)), problems.join("\n"));
});

test("every $ref of openapi.yaml resolves and every schema in it compiles", () => {
  assert.deepEqual(checkSpecRefs(p), []);
});

test("README's endpoint and error tables match openapi.yaml and error.json", () => {
  assert.deepEqual(checkTables(p), []);
  assert.ok(p.status.length >= 20, "the endpoint table was not found in README.md");
  assert.ok(p.status.every((r) => ["implemented", "planned"].includes(r.status)));
});

test("the table check notices an endpoint missing from README", () => {
  const q = loadProtocol();
  q.status = q.status.filter((r) => r.path !== "/v1/heaps/{heap}/garbage");
  q.errorTable = q.errorTable.filter((r) => r.code !== "bad_id");
  const problems = checkTables(q);
  assert.ok(problems.some((x) => x.includes("/garbage")), problems.join("\n"));
  assert.ok(problems.some((x) => x.includes("bad_id")), problems.join("\n"));
});

// One subtest per example file, so that a failure names the file.
test("every example validates against its operation's schema and the cross-field rules", async (t) => {
  const results = checkExamples(p);
  assert.ok(results.length >= 35, `only ${results.length} examples checked`);
  for (const r of results) {
    await t.test(`${r.file} (${r.where})`, () => assert.deepEqual(r.problems, []));
  }
});

test("the operation schemas are the real ones (not empty): they reject wrong answers", () => {
  const process = example("process/response.json");
  assert.deepEqual(validateAt(p, ok200("/v1/process"), process), []);
  assert.notDeepEqual(validateAt(p, ok200("/v1/process"), {}), []);
  assert.notDeepEqual(validateAt(p, ok200("/v1/process"), { ...process, extra: 1 }), [], "additionalProperties");
  assert.notDeepEqual(validateAt(p, ok200("/v1/process"), { ...process, protocol: 2 }), [], "protocol 2");

  const heap = example("heap/response.json");
  const asNumber = clone(heap);
  asNumber.generations[0].collections = 4210; // a 64-bit counter as a JSON number
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}"), asNumber), []);
  const leadingZero = clone(heap);
  leadingZero.objects = "0123";
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}"), leadingZero), []);

  const census = example("census-baseline/response.json");
  const noDelta = clone(census);
  delete noDelta.types[0].delta; // a baseline answer: every row carries delta
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}/census"), noDelta), []);
  const plain = example("census/response.json");
  const strayDelta = clone(plain);
  strayDelta.types[0].delta = { objects: "1", bytes: "1" };
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}/census"), strayDelta), []);

  const objects = example("objects/response.json");
  const noCursor = clone(objects);
  delete noCursor.next_cursor; // truncated without next_cursor
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}/objects"), noCursor), []);

  const path = example("object-path/response.json");
  const notFound = { ...clone(path), found: false };
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}/objects/{id}/path"), notFound), [], "steps with found: false");

  const suspects = example("suspects/response.json");
  const siteless = { ...clone(suspects), by: "site" }; // sites need file and line
  assert.notDeepEqual(validateAt(p, ok200("/v1/heaps/{heap}/suspects"), siteless), []);

  assert.notDeepEqual(validateSchema(p, "error.json", { protocol: 1, error: { code: "teapot", message: "x" } }), []);
  assert.notDeepEqual(validateSchema(p, "thresholds-request.json", { threshold: [700, 10] }), []);
  assert.deepEqual(validateSchema(p, "thresholds-request.json", { threshold: ["700", 10, 0] }), []);
  assert.notDeepEqual(validateSchema(p, "debug-request.json", { flags: ["verbose"] }), []);
});

test("the cross-field rules reject inconsistent answers", () => {
  const census = example("census-baseline/response.json");
  const wrongDelta = clone(census);
  wrongDelta.types[0].delta.objects = "1";
  assert.notDeepEqual(checkInvariants("census.json", wrongDelta), []);
  const wrongPage = clone(census);
  wrongPage.truncated = false;
  assert.notDeepEqual(checkInvariants("census.json", wrongPage), []);
  const unsorted = clone(example("census/response.json"));
  unsorted.types.reverse();
  assert.notDeepEqual(checkInvariants("census.json", unsorted), []);

  const object = example("object/response.json");
  const wrongSum = clone(object);
  wrongSum.refcount_explained.from_outside = 0;
  assert.notDeepEqual(checkInvariants("object.json", wrongSum), []);
  const wrongAddress = clone(object);
  wrongAddress.address = "0x10";
  assert.notDeepEqual(checkInvariants("object.json", wrongAddress), []);

  const collect = { ...example("collect/response.json"), collected: "7" };
  assert.notDeepEqual(checkInvariants("collect.json", collect), []);
  const debug = clone(example("debug/response.json"));
  debug.debug.value = 1;
  assert.notDeepEqual(checkInvariants("debug.json", debug), []);
  const garbage = clone(example("garbage/response.json"));
  garbage.groups[1].index = 7;
  assert.notDeepEqual(checkInvariants("garbage.json", garbage), []);
  const retained = clone(example("object-retained/response.json"));
  retained.retained.objects = "1";
  assert.notDeepEqual(checkInvariants("retained.json", retained), []);
});

test("event streams: the examples parse as SSE with one JSON data line per event", () => {
  const s = parseSse(exampleText("events/stream.txt"));
  assert.equal(s.retry[0], "3000");
  assert.deepEqual(s.comments, ["hb"]);
  assert.deepEqual(
    s.events.map((e) => e.event),
    ["collect_start", "uncollectable", "uncollectable", "uncollectable", "collect_done", "collect_start", "collect_done"],
  );
  const r = parseSse(exampleText("events/reset.txt"));
  assert.equal(r.events[0].event, "reset");
});

test("the event stream check rejects bad framing and bad data", () => {
  const good = exampleText("events/stream.txt");
  assert.deepEqual(checkEventStream(p, good, { requireRetry: true }), []);
  const twoLines = good.replace('data: {"protocol":1,"event":"collect_start"', 'data: {"protocol":1,\ndata: "event":"collect_start"');
  assert.notDeepEqual(checkEventStream(p, twoLines), []);
  const wrongSeq = good.replace("id: 5f0c2a9e4b7d1c38-18812", "id: 5f0c2a9e4b7d1c38-18899");
  assert.notDeepEqual(checkEventStream(p, wrongSeq), []);
  const noId = good.replace("id: 5f0c2a9e4b7d1c38-18815\n", "");
  assert.notDeepEqual(checkEventStream(p, noId), []);
  const numberCounter = good.replace('"pause_ns":"48211904"', '"pause_ns":48211904');
  assert.notDeepEqual(checkEventStream(p, numberCounter), []);
  assert.notDeepEqual(checkEventStream(p, good.slice(0, -1)), [], "a cut last event");
});

test("the metrics check rejects what promtool and metrics.md reject", () => {
  const good = exampleText("metrics/response.txt");
  assert.deepEqual(checkMetricsText(p, good), []);
  const cases = {
    "no final newline": good.slice(0, -1),
    "another HELP text": good.replace("# HELP rcgc_gc_enabled 1 when", "# HELP rcgc_gc_enabled One when"),
    "an undocumented metric": good + "# HELP rcgc_extra x\n# TYPE rcgc_extra gauge\nrcgc_extra 1\n",
    "a counter without _total": good.replace(/rcgc_gc_collections_total/g, "rcgc_gc_collections"),
    "a split family": good + 'rcgc_gc_enabled{heap="late"} 1\n',
    "+Inf bucket != count": good.replace(
      'rcgc_gc_pause_seconds_count{heap="main",generation="0"} 4210',
      'rcgc_gc_pause_seconds_count{heap="main",generation="0"} 4211',
    ),
    "a missing label": good.replace('rcgc_gc_threshold{heap="main",generation="0"}', 'rcgc_gc_threshold{heap="main"}'),
    "a bad generation": good.replace('rcgc_gc_counts{heap="main",generation="2"}', 'rcgc_gc_counts{heap="main",generation="3"}'),
    "a duplicate series": good.replace(
      'rcgc_build_info{version="0.1.0"} 1\n',
      'rcgc_build_info{version="0.1.0"} 1\nrcgc_build_info{version="0.1.0"} 1\n',
    ),
  };
  for (const [what, text] of Object.entries(cases)) {
    assert.notDeepEqual(checkMetricsText(p, text, { promtool: false }), [], what);
  }
});
