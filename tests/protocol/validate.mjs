// validate.mjs: checks protocol/ (OpenAPI 3.1, JSON Schemas 2020-12, examples, the metric
// and event lists) and, with --live, a running inspection server against it.
//
//   node validate.mjs                          the static checks (what schemas.test.mjs runs)
//   node validate.mjs --live http://127.0.0.1:7070 [--token T] [--heap NAME] [--control]
//
// As a library (schemas.test.mjs, integration tests): loadProtocol() once, then the
// check* functions, each returning a list of problems (empty: conforms).
//
// Tools, all from npm and pinned in package-lock.json: ajv 8 with its draft 2020-12 class
// (ajv/dist/2020), ajv-formats, yaml, and the official OpenAPI 3.1 JSON Schema as shipped
// by @seriousme/openapi-schema-validator (schemas/v3.1/schema.json).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import Ajv2020 from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse as parseYaml } from "yaml";

const addFormats = addFormatsModule.default ?? addFormatsModule;
const require = createRequire(import.meta.url);
const HERE = dirname(fileURLToPath(import.meta.url));

export const PROTOCOL_DIR = resolve(HERE, "../../protocol");
export const BASE = "https://rcgc.invalid/inspect/v1/";
export const SPEC_ID = BASE + "openapi.yaml";
const MAX_SAFE = 9007199254740991;
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

// ---- loading ----

/** Everything under protocol/, parsed, with two ajv instances: `strict` (the schema files
 *  in ajv's strict mode) and `spec` (the schema files plus openapi.yaml, for validating
 *  against an operation's schema by JSON pointer). */
export function loadProtocol(dir = PROTOCOL_DIR) {
  const p = { dir };
  p.specText = readFileSync(join(dir, "openapi.yaml"), "utf8");
  p.spec = parseYaml(p.specText);
  p.schemas = {};
  for (const f of readdirSync(join(dir, "schemas")).sort()) {
    if (f.endsWith(".json")) p.schemas[f] = JSON.parse(readFileSync(join(dir, "schemas", f), "utf8"));
  }
  p.readme = readFileSync(join(dir, "README.md"), "utf8");
  p.status = parseStatusTable(p.readme);
  p.errorTable = parseErrorTable(p.readme);
  p.metricsTable = parseMetricsTable(readFileSync(join(dir, "metrics.md"), "utf8"));

  p.strict = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  addFormats(p.strict);
  p.spec_ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(p.spec_ajv);
  for (const s of Object.values(p.schemas)) {
    p.strict.addSchema(s);
    p.spec_ajv.addSchema(s);
  }
  // openapi.yaml is not a JSON Schema, but its Schema Objects are (jsonSchemaDialect is
  // 2020-12): registered under SPEC_ID, "schemas/x.json" resolves to the files' $ids.
  p.spec_ajv.addSchema(p.spec, SPEC_ID, undefined, false);
  p.validators = new Map();
  return p;
}

/** A validator for the Schema Object at a JSON pointer of openapi.yaml. */
export function specValidator(p, pointer) {
  let v = p.validators.get(pointer);
  if (!v) {
    v = p.spec_ajv.compile({ $ref: SPEC_ID + "#" + encodePointer(pointer) });
    p.validators.set(pointer, v);
  }
  return v;
}

function encodePointer(pointer) {
  return pointer
    .split("/")
    .map((t) => encodeURIComponent(t))
    .join("/");
}
export function pointerOf(...tokens) {
  return "/" + tokens.map((t) => String(t).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}
function getPointer(doc, pointer) {
  let node = doc;
  for (const raw of pointer.split("/").slice(1)) {
    const t = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(t in node)) return undefined;
    node = node[t];
  }
  return node;
}

// ---- the tables in README.md and metrics.md ----

/** README's endpoint table: [{method, path, status, answer}]. */
export function parseStatusTable(readme) {
  const rows = [];
  const re = /^\|\s*(GET|PUT|POST|DELETE|PATCH)\s*\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*([^|]*)\|/;
  for (const line of readme.split("\n")) {
    const m = re.exec(line);
    if (m) rows.push({ method: m[1], path: m[2], status: m[3], answer: m[4].trim() });
  }
  return rows;
}

/** README's error table: [{status, code}]. */
export function parseErrorTable(readme) {
  const rows = [];
  const re = /^\|\s*([1-5][0-9][0-9])\s*\|\s*`([a-z_]+)`\s*\|/;
  for (const line of readme.split("\n")) {
    const m = re.exec(line);
    if (m) rows.push({ status: Number(m[1]), code: m[2] });
  }
  return rows;
}

/** metrics.md's table: Map name -> {type, labels: [..], help}. */
export function parseMetricsTable(md) {
  const out = new Map();
  const re = /^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(\w+)\s*\|([^|]*)\|\s*(.*?)\s*\|\s*$/;
  for (const line of md.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const labels = m[3].split(",").map((s) => s.trim()).filter(Boolean);
    out.set(m[1], { type: m[2], labels, help: m[4] });
  }
  return out;
}

// ---- operations ----

/** Every operation of openapi.yaml: [{method, path, op, pointer}]. */
export function operations(p) {
  const out = [];
  for (const [path, item] of Object.entries(p.spec.paths ?? {})) {
    for (const m of METHODS) {
      if (item[m]) out.push({ method: m.toUpperCase(), path, op: item[m], pointer: pointerOf("paths", path, m) });
    }
  }
  return out;
}

/** Follows a Reference Object inside openapi.yaml ("#/components/responses/X"). */
function deref(p, node) {
  let seen = 0;
  while (node && typeof node.$ref === "string" && node.$ref.startsWith("#/") && seen++ < 10) {
    node = getPointer(p.spec, node.$ref.slice(1));
  }
  return node;
}

/** The response of an operation for a status, and the pointer of its content. */
function responseOf(p, o, status) {
  const r = o.op.responses?.[String(status)];
  if (!r) return null;
  const pointer =
    typeof r.$ref === "string" ? r.$ref.slice(1) : o.pointer + pointerOf("responses", String(status));
  return { response: deref(p, r), pointer };
}

/** The name of the file in schemas/ that a Schema Object ends at (via components). */
function schemaFileOf(p, schema) {
  let s = schema;
  for (let i = 0; i < 5 && s && typeof s.$ref === "string"; i++) {
    if (s.$ref.startsWith("#/")) s = getPointer(p.spec, s.$ref.slice(1));
    else return s.$ref.replace(/^schemas\//, "").replace(/#.*$/, "");
  }
  return null;
}

function mediaJson(mt) {
  return mt.split(";")[0].trim() === "application/json";
}

// ---- static checks ----

/** openapi.yaml against the official OpenAPI 3.1 schema. */
export function checkOpenApiDocument(p, doc = p.spec) {
  const file = require.resolve("@seriousme/openapi-schema-validator/schemas/v3.1/schema.json");
  const oas = JSON.parse(readFileSync(file, "utf8"));
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat("media-range", true);
  const v = ajv.compile(oas);
  const problems = [];
  if (!v(doc)) for (const e of v.errors) problems.push(`openapi.yaml${e.instancePath}: ${e.message}`);
  if (doc.openapi !== "3.1.0") problems.push(`openapi.yaml: openapi is ${doc.openapi}, not 3.1.0`);
  return problems;
}

/** Every schema compiles in ajv's strict mode and follows the protocol's conventions. */
export function checkSchemas(p) {
  const problems = [];
  for (const [file, s] of Object.entries(p.schemas)) {
    if (s.$schema !== "https://json-schema.org/draft/2020-12/schema") problems.push(`${file}: $schema is not 2020-12`);
    if (s.$id !== BASE + "schemas/" + file) problems.push(`${file}: $id is not ${BASE}schemas/${file}`);
    try {
      p.strict.getSchema(s.$id);
    } catch (e) {
      problems.push(`${file}: ${e.message}`);
    }
    walkSchema(s, `${file}#`, false, (node, where, inCondition) => {
      if (node.type === "integer" && !(typeof node.maximum === "number" && node.maximum <= MAX_SAFE && (node.minimum === undefined || node.minimum >= -MAX_SAFE)))
        problems.push(`${where}: an integer needs bounds within +-(2^53-1) (64-bit values travel as u64 strings)`);
      if (!inCondition && node.properties && node.additionalProperties !== false)
        problems.push(`${where}: an object with properties must say additionalProperties: false`);
    });
  }
  // Answers (the files named in README's table, and the event payloads) carry protocol.
  const answers = new Set(p.status.map((r) => r.answer.replace(/`/g, "").split(" ")[0]).filter((a) => a.endsWith(".json")));
  answers.add("error.json");
  for (const file of answers) {
    const s = p.schemas[file];
    if (!s) {
      problems.push(`README names ${file}, which schemas/ lacks`);
      continue;
    }
    const tops = s.oneOf ? s.oneOf.map((r) => getPointer(s, r.$ref.slice(1))) : [s];
    for (const t of tops) {
      if (!t.required?.includes("protocol")) problems.push(`${file}: an answer must require "protocol"`);
    }
  }
  return problems;
}

function walkSchema(node, where, inCondition, fn) {
  if (Array.isArray(node)) {
    node.forEach((x, i) => walkSchema(x, `${where}/${i}`, inCondition, fn));
    return;
  }
  if (node === null || typeof node !== "object") return;
  fn(node, where, inCondition);
  for (const [k, v] of Object.entries(node)) {
    if (k === "enum" || k === "const" || k === "required") continue;
    if (k === "properties" || k === "$defs" || k === "patternProperties") {
      for (const [kk, vv] of Object.entries(v)) walkSchema(vv, `${where}/${k}/${kk}`, inCondition, fn);
    } else {
      walkSchema(v, `${where}/${k}`, inCondition || k === "if" || k === "then" || k === "else", fn);
    }
  }
}

/** Every $ref of openapi.yaml resolves and every Schema Object in it compiles. */
export function checkSpecRefs(p) {
  const problems = [];
  const visit = (node, pointer) => {
    if (Array.isArray(node)) return node.forEach((x, i) => visit(x, `${pointer}/${i}`));
    if (node === null || typeof node !== "object") return;
    if (typeof node.$ref === "string" && node.$ref.startsWith("#/") && getPointer(p.spec, node.$ref.slice(1)) === undefined)
      problems.push(`openapi.yaml${pointer}: $ref ${node.$ref} does not resolve`);
    if (typeof node.$ref === "string" && !node.$ref.startsWith("#")) {
      const file = node.$ref.replace(/#.*$/, "");
      if (!existsSync(join(p.dir, file))) problems.push(`openapi.yaml${pointer}: $ref ${node.$ref}: no such file`);
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === "schema" && v && typeof v === "object") {
        try {
          specValidator(p, `${pointer}/${k}`);
        } catch (e) {
          problems.push(`openapi.yaml${pointer}/schema: ${e.message}`);
        }
      }
      visit(v, `${pointer}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`);
    }
  };
  visit(p.spec, "");
  for (const name of Object.keys(p.spec.components?.schemas ?? {})) {
    try {
      specValidator(p, pointerOf("components", "schemas", name));
    } catch (e) {
      problems.push(`components/schemas/${name}: ${e.message}`);
    }
  }
  return problems;
}

/** README's endpoint table and error table agree with openapi.yaml and error.json. */
export function checkTables(p) {
  const problems = [];
  const ops = operations(p);
  const key = (m, path) => `${m} ${path}`;
  const inSpec = new Set(ops.map((o) => key(o.method, o.path)));
  const inReadme = new Set(p.status.map((r) => key(r.method, r.path)));
  for (const k of inSpec) if (!inReadme.has(k)) problems.push(`README's table lacks ${k}`);
  for (const k of inReadme) if (!inSpec.has(k)) problems.push(`README's table has ${k}, which openapi.yaml lacks`);
  for (const r of p.status) {
    if (!["implemented", "planned"].includes(r.status)) problems.push(`README: ${r.method} ${r.path}: status ${r.status}`);
    const o = ops.find((x) => x.method === r.method && x.path === r.path);
    if (!o) continue;
    const ok = Object.keys(o.op.responses).find((s) => /^2/.test(s));
    const content = deref(p, o.op.responses[ok])?.content ?? {};
    const json = Object.entries(content).find(([mt]) => mediaJson(mt));
    const answer = r.answer.replace(/`/g, "").split(" ")[0];
    if (json) {
      const file = schemaFileOf(p, json[1].schema);
      if (file !== answer) problems.push(`README: ${r.method} ${r.path} answers ${answer}, openapi.yaml says ${file}`);
    } else if (content["text/event-stream"]) {
      if (answer !== "events.json") problems.push(`README: ${r.method} ${r.path} should name events.json`);
    }
  }
  const codes = p.schemas["error.json"].properties.error.properties.code.enum;
  const table = new Map();
  for (const r of p.errorTable) {
    if (table.has(r.code)) problems.push(`README's error table lists ${r.code} twice`);
    table.set(r.code, r.status);
  }
  for (const c of codes) if (!table.has(c)) problems.push(`README's error table lacks ${c}`);
  for (const c of table.keys()) if (!codes.includes(c)) problems.push(`error.json lacks the code ${c}`);
  return problems;
}

/** Every example referenced by openapi.yaml (externalValue) validates against its
 *  operation's schema and the cross-field rules; every file of examples/ is referenced.
 *  Returns [{file, where, problems}]. */
export function checkExamples(p) {
  const results = [];
  const referenced = new Set();
  const errorStatus = new Map(p.errorTable.map((r) => [r.code, r.status]));
  // Which status each components/responses entry is used under.
  const componentStatus = new Map();
  for (const o of operations(p)) {
    for (const [status, r] of Object.entries(o.op.responses ?? {})) {
      if (typeof r.$ref === "string") {
        const set = componentStatus.get(r.$ref) ?? new Set();
        set.add(Number(status));
        componentStatus.set(r.$ref, set);
      }
    }
  }
  const check = (file, mediaPointer, mt, schemaFile, where, extra) => {
    referenced.add(file);
    const path = join(p.dir, file);
    const res = { file, where, problems: [] };
    results.push(res);
    if (!existsSync(path)) {
      res.problems.push("no such file");
      return;
    }
    const text = readFileSync(path, "utf8");
    const base = mt.split(";")[0].trim();
    if (base === "application/json") {
      let body;
      try {
        body = JSON.parse(text);
      } catch (e) {
        res.problems.push(`not JSON: ${e.message}`);
        return;
      }
      res.problems.push(...validateAt(p, mediaPointer + "/schema", body));
      res.problems.push(...checkInvariants(schemaFile, body));
      if (extra) res.problems.push(...extra(body));
    } else if (base === "text/event-stream") {
      res.problems.push(...checkEventStream(p, text, { requireRetry: true }));
    } else if (base === "text/plain") {
      res.problems.push(...checkMetricsText(p, text));
    } else {
      res.problems.push(`no check for media type ${mt}`);
    }
  };
  for (const o of operations(p)) {
    const name = `${o.method} ${o.path}`;
    if (o.op.requestBody) {
      for (const [mt, media] of Object.entries(o.op.requestBody.content ?? {})) {
        for (const ex of Object.values(media.examples ?? {})) {
          check(ex.externalValue, o.pointer + pointerOf("requestBody", "content", mt), mt, schemaFileOf(p, media.schema), `${name} request`);
        }
      }
    }
    for (const [status, r] of Object.entries(o.op.responses ?? {})) {
      if (typeof r.$ref === "string") continue; // shared responses: below
      let seen = 0;
      for (const [mt, media] of Object.entries(r.content ?? {})) {
        for (const ex of Object.values(media.examples ?? {})) {
          seen++;
          check(ex.externalValue, o.pointer + pointerOf("responses", status, "content", mt), mt, schemaFileOf(p, media.schema), `${name} ${status}`);
        }
      }
      if (/^2/.test(status) && Object.keys(r.content ?? {}).some((mt) => mediaJson(mt) || mt.startsWith("text/event-stream") || mt.startsWith("text/plain")) && seen === 0)
        results.push({ file: "(none)", where: `${name} ${status}`, problems: ["no example"] });
    }
  }
  for (const [name, r] of Object.entries(p.spec.components?.responses ?? {})) {
    const ref = `#/components/responses/${name}`;
    const statuses = [...(componentStatus.get(ref) ?? [])];
    for (const [mt, media] of Object.entries(r.content ?? {})) {
      for (const ex of Object.values(media.examples ?? {})) {
        check(ex.externalValue, pointerOf("components", "responses", name, "content", mt), mt, schemaFileOf(p, media.schema), `response ${name}`, (body) => {
          const want = errorStatus.get(body?.error?.code);
          if (statuses.length !== 1) return [`components/responses/${name} is used under statuses ${statuses.join(", ")}`];
          if (want !== statuses[0]) return [`code ${body?.error?.code} goes with ${want} (README), but ${name} is ${statuses[0]}`];
          return [];
        });
      }
    }
  }
  const all = listFiles(join(p.dir, "examples")).map((f) => relative(p.dir, f));
  for (const f of all) if (!referenced.has(f)) results.push({ file: f, where: "examples/", problems: ["not referenced from openapi.yaml"] });
  return results;
}

function listFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const f = join(dir, e);
    if (statSync(f).isDirectory()) out.push(...listFiles(f));
    else out.push(f);
  }
  return out.sort();
}

/** Validates body against the Schema Object at pointer of openapi.yaml. */
export function validateAt(p, pointer, body) {
  const v = specValidator(p, pointer);
  if (v(body)) return [];
  return v.errors.map((e) => `${e.instancePath || "/"} ${e.message}${e.params && Object.keys(e.params).length ? " " + JSON.stringify(e.params) : ""}`);
}

/** Validates body against a schema file of schemas/ (strict instance). */
export function validateSchema(p, file, body) {
  const v = p.strict.getSchema(BASE + "schemas/" + file);
  if (v(body)) return [];
  return v.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
}

// ---- cross-field rules the schemas cannot state ----

const big = (s) => BigInt(s);
function pageRules(body, list, what) {
  const out = [];
  if (list.length > body.limit) out.push(`${what}: ${list.length} entries exceed limit ${body.limit}`);
  if ("offset" in body) {
    const more = big(body.offset) + big(list.length) < big(body.total);
    if (body.truncated !== more) out.push(`${what}: truncated is ${body.truncated} but offset ${body.offset} + ${list.length} vs total ${body.total}`);
  } else if (big(list.length) > big(body.total)) {
    out.push(`${what}: more entries than total`);
  }
  return out;
}
function sorted(list, key, what, ascending = false) {
  for (let i = 1; i < list.length; i++) {
    const a = key(list[i - 1]), b = key(list[i]);
    if (ascending ? a > b : a < b) return [`${what}: not in order at entry ${i}`];
  }
  return [];
}
function deltaRules(row, what) {
  const out = [];
  if (!row.baseline) return out;
  if (big(row.objects) - big(row.baseline.objects) !== big(row.delta.objects)) out.push(`${what}: delta.objects != objects - baseline.objects`);
  if (big(row.bytes) - big(row.baseline.bytes) !== big(row.delta.bytes)) out.push(`${what}: delta.bytes != bytes - baseline.bytes`);
  return out;
}
function idAddressRules(node, where = "") {
  const out = [];
  if (Array.isArray(node)) node.forEach((x, i) => out.push(...idAddressRules(x, `${where}/${i}`)));
  else if (node && typeof node === "object") {
    if (typeof node.id === "string" && typeof node.address === "string" && /^\d+$/.test(node.id) && /^0x[0-9a-f]+$/.test(node.address) && BigInt(node.id) !== BigInt(node.address))
      out.push(`${where || "/"}: id ${node.id} is not address ${node.address}`);
    for (const [k, v] of Object.entries(node)) out.push(...idAddressRules(v, `${where}/${k}`));
  }
  return out;
}
const DEBUG_BITS = { stats: 1, collectable: 2, uncollectable: 4, saveall: 32 };
function debugRules(d) {
  const v = d.flags.reduce((a, f) => a | DEBUG_BITS[f], 0);
  return (d.value & 39) === v ? [] : [`debug: value ${d.value} does not match flags ${d.flags.join(",")}`];
}
const sortKey = {
  objects: (r) => big(r.objects),
  bytes: (r) => big(r.bytes),
  delta_objects: (r) => big(r.delta.objects),
  delta_bytes: (r) => big(r.delta.bytes),
};
const KIND_RANK = { unbounded: 0, bounded: 1, fluctuating: 2, flat: 3 };

/** The rules for an answer of schema file `file` (call after schema validation). */
export function checkInvariants(file, b) {
  const out = [];
  if (b === null || typeof b !== "object") return out;
  out.push(...idAddressRules(b));
  switch (file) {
    case "heaps.json": {
      const names = b.heaps.map((h) => h.name);
      if (new Set(names).size !== names.length) out.push("heaps: a name is listed twice");
      break;
    }
    case "heap.json":
      b.generations.forEach((g, i) => g.generation !== i && out.push(`generations[${i}].generation is ${g.generation}`));
      out.push(...debugRules(b.debug));
      if ((b.snapshot.serial === "0") !== (b.snapshot.age_ms === null)) out.push("snapshot: age_ms is null exactly when serial is 0");
      break;
    case "census.json":
    case "sites.json": {
      const list = file === "census.json" ? b.types : b.sites;
      out.push(...pageRules(b, list, file));
      list.forEach((r, i) => out.push(...deltaRules(r, `${file} entry ${i}`)));
      if (b.totals) out.push(...deltaRules(b.totals, "totals"));
      if (b.sort === "name") out.push(...sorted(list, (r) => r.type, "census by name", true));
      else out.push(...sorted(list, sortKey[b.sort], `${file} by ${b.sort}`));
      if (file === "census.json" && b.offset === 0 && !b.truncated) {
        const sum = (k) => list.reduce((a, r) => a + big(r[k]), 0n);
        if (sum("objects") !== big(b.totals.objects)) out.push("census: the types' objects do not add up to totals.objects");
        if (sum("bytes") !== big(b.totals.bytes)) out.push("census: the types' bytes do not add up to totals.bytes");
        if (big(list.length) !== big(b.total)) out.push("census: total is not the number of types");
      }
      if (file === "sites.json" && b.type !== undefined && list.some((r) => r.type !== b.type)) out.push("sites: a site of another type than ?type=");
      break;
    }
    case "baselines.json": {
      if (b.baselines.length > b.capacity) out.push("baselines: more than capacity");
      const labels = b.baselines.map((x) => x.label);
      if (new Set(labels).size !== labels.length) out.push("baselines: a label twice");
      out.push(...sorted(b.baselines, (x) => x.age_ms, "baselines oldest first"));
      break;
    }
    case "suspects.json":
      out.push(...pageRules(b, b.suspects, "suspects"));
      b.suspects.forEach((s, i) => {
        if (!b.kinds.includes(s.kind)) out.push(`suspects[${i}]: kind ${s.kind} not among kinds`);
        if (s.kind !== "unbounded" && s.score !== 0) out.push(`suspects[${i}]: score must be 0 unless unbounded`);
        if (big(s.peak) < big(s.first) || big(s.peak) < big(s.last)) out.push(`suspects[${i}]: peak below first or last`);
        if (s.samples > b.window || s.samples < b.min_samples) out.push(`suspects[${i}]: samples outside min_samples..window`);
      });
      out.push(...sorted(b.suspects, (s) => -KIND_RANK[s.kind], "suspects by kind"));
      out.push(...sorted(b.suspects.filter((s) => s.kind === "unbounded"), (s) => s.score, "unbounded suspects by score"));
      break;
    case "garbage.json":
      out.push(...pageRules(b, b.groups, "garbage groups"));
      b.groups.forEach((g, i) => {
        if (g.index !== b.offset + i) out.push(`groups[${i}]: index ${g.index}, expected ${b.offset + i}`);
        if (g.kind === "single" && g.size !== "1") out.push(`groups[${i}]: a single group of size ${g.size}`);
        if (big(g.objects.length) > big(g.size)) out.push(`groups[${i}]: more objects than size`);
        if (g.objects_truncated !== big(g.objects.length) < big(g.size)) out.push(`groups[${i}]: objects_truncated is wrong`);
        if (g.types.reduce((a, t) => a + big(t.objects), 0n) !== big(g.size)) out.push(`groups[${i}]: types do not add up to size`);
        for (const o of g.objects)
          for (const r of o.referents) if (r.group !== null && big(r.group) >= big(b.total)) out.push(`groups[${i}]: a referent in group ${r.group} >= total`);
      });
      if (big(b.reached) > BigInt(b.max_objects)) out.push("garbage: reached exceeds max_objects");
      break;
    case "objects.json": {
      out.push(...pageRules(b, b.objects, "objects"));
      for (let i = 1; i < b.objects.length; i++) if (big(b.objects[i].id) <= big(b.objects[i - 1].id)) out.push("objects: ids not strictly increasing");
      if (b.type !== undefined && b.objects.some((o) => o.type !== b.type)) out.push("objects: an object of another type than ?type=");
      if (b.generation !== undefined && b.objects.some((o) => o.generation !== b.generation)) out.push("objects: an object of another generation");
      if (b.scope === "tracked" && b.objects.some((o) => !["0", "1", "2"].includes(o.where))) out.push("objects: scope tracked lists an object outside generations 0..2");
      if (b.objects.some((o) => (["0", "1", "2"].includes(o.where) ? o.generation !== Number(o.where) : o.generation !== null))) out.push("objects: generation does not match where");
      break;
    }
    case "object.json": {
      const r = b.refcount_explained;
      if (r.refcount !== b.refcount) out.push("refcount_explained.refcount != refcount");
      if (r.from_heap + r.from_garbage_list + r.from_outside !== r.refcount) out.push("refcount != from_heap + from_garbage_list + from_outside");
      if (b.immortal !== (b.refcount === 4294967295)) out.push("immortal is true exactly when the refcount saturated");
      if (["0", "1", "2"].includes(b.where) ? b.generation !== Number(b.where) : b.generation !== null) out.push(`generation ${b.generation} does not match where ${b.where}`);
      for (const k of ["referents", "referrers"]) {
        if (big(b[k].length) > big(b[`${k}_total`])) out.push(`${k}: more than ${k}_total`);
        if (b[`${k}_truncated`] !== big(b[k].length) < big(b[`${k}_total`])) out.push(`${k}_truncated is wrong`);
      }
      break;
    }
    case "path.json":
      if (b.found && !b.steps_truncated) {
        if (b.length !== b.steps.length - 1) out.push("path: length != steps - 1");
        if (b.steps.at(-1).id !== b.target.id) out.push("path: the last step is not the target");
      }
      if (b.steps_truncated && (!b.found || b.length < b.steps.length)) out.push("path: steps_truncated but the path is not longer than its steps");
      break;
    case "retained.json": {
      if (b.elapsed_ms > b.budget_ms * 4 + 1000) out.push("retained: elapsed_ms far beyond the budget");
      if (!b.by_type_truncated) {
        const s = (k) => b.by_type.reduce((a, t) => a + big(t[k]), 0n);
        if (s("objects") !== big(b.retained.objects) || s("bytes") !== big(b.retained.bytes)) out.push("retained: by_type does not add up to retained");
      }
      out.push(...sorted(b.by_type, (t) => big(t.bytes), "by_type by bytes"));
      out.push(...sorted(b.dominated, (d) => big(d.retained.bytes), "dominated by retained bytes"));
      if (b.dominated.some((d) => big(d.retained.bytes) > big(b.retained.bytes))) out.push("retained: a child retains more than the target");
      if (big(b.dominated.length) > big(b.dominated_total) || b.dominated_truncated !== big(b.dominated.length) < big(b.dominated_total)) out.push("retained: dominated_total / dominated_truncated are wrong");
      break;
    }
    case "allocator.json": {
      const x = b.bytes;
      const parts = ["allocated_blocks", "available_blocks", "unused_pools", "pool_headers", "quantization", "arena_alignment"];
      if (parts.reduce((a, k) => a + big(x[k]), 0n) !== big(x.total)) out.push("allocator: the byte parts do not add up to bytes.total");
      if (big(x.total) !== big(b.arenas.current) * BigInt(b.arena_size) + big(x.arena_alignment)) out.push("allocator: bytes.total != arenas.current * arena_size + arena_alignment");
      if (big(x.unused_pools) !== big(b.unused_pools) * BigInt(b.pool_size)) out.push("allocator: bytes.unused_pools != unused_pools * pool_size");
      out.push(...sorted(b.classes, (c) => c.class, "allocator classes by class", true));
      const inUse = b.classes.reduce((a, c) => a + big(c.blocks_in_use) * BigInt(c.size), 0n);
      if (inUse !== big(x.allocated_blocks)) out.push("allocator: the classes' blocks in use do not add up to bytes.allocated_blocks");
      break;
    }
    case "tracing.json":
      if ((b.mode === "off") === b.tracing) out.push(`tracing: mode ${b.mode} but tracing is ${b.tracing}`);
      if ((b.mode === "sampled") !== (b.sample_bytes !== "0")) out.push(`tracing: mode ${b.mode} with sample_bytes ${b.sample_bytes}`);
      if (big(b.traced.peak) < big(b.traced.current)) out.push("tracing: peak below current");
      break;
    case "tracing-statistics.json": {
      const e = b.entries;
      if (e.length > b.limit) out.push(`statistics: ${e.length} entries exceed limit ${b.limit}`);
      if (b.truncated !== b.offset + e.length < b.total_entries) out.push("statistics: truncated is wrong");
      const abs = (v) => (v < 0n ? -v : v);
      if (b.base === null) out.push(...sorted(e, (x) => big(x.size), "statistics by size"));
      else out.push(...sorted(e, (x) => abs(big(x.size_diff)), "differences by |size_diff|"));
      if (b.key !== "traceback" && e.some((x) => x.traceback.length !== 1)) out.push(`statistics by ${b.key}: an entry with more than one frame`);
      if (b.key === "filename" && e.some((x) => x.traceback[0].line !== 0 || x.traceback[0].function !== null)) out.push("statistics by filename: a frame with a line or function");
      if (b.key === "traceback" && e.some((x) => x.traceback.length > b.traceback_limit)) out.push("statistics: a traceback longer than traceback_limit");
      if (!b.cumulative && b.base === null && e.some((x) => big(x.size) > big(b.total.size))) out.push("statistics: an entry larger than total");
      break;
    }
    case "tracing-snapshots.json":
      for (let i = 1; i < b.snapshots.length; i++) if (big(b.snapshots[i].id) <= big(b.snapshots[i - 1].id)) out.push("snapshots: ids not increasing (oldest first)");
      break;
    case "traceback.json":
      if (b.traced !== (b.traceback !== null)) out.push("traceback: null exactly when traced is false");
      break;
    case "collect.json":
      if (big(b.collected) + big(b.uncollectable) !== big(b.unreachable)) out.push("collect: collected + uncollectable != unreachable");
      break;
    case "debug.json":
      out.push(...debugRules(b.debug));
      break;
    case "events.json":
      if (b.event === "collect_done" && big(b.collected) + big(b.uncollectable) !== big(b.unreachable)) out.push("collect_done: collected + uncollectable != unreachable");
      if (b.event === "reset" && (b.seq !== b.head || big(b.oldest) > big(b.head) + 1n)) out.push("reset: seq must equal head, oldest <= head + 1");
      break;
    default:
      break;
  }
  return out;
}

// ---- Server-Sent Events ----

/** Parses an event stream as the WHATWG parser does, also keeping the raw fields of each
 *  event so that the framing can be checked: [{id, event, data: [..], fields: [..]}],
 *  plus comments and retry values. */
export function parseSse(text) {
  const out = { events: [], comments: [], retry: [], firstField: null, incomplete: false };
  let cur = { fields: [] };
  const lines = text.split(/\r\n|\r|\n/);
  const endsClean = /(\r\n|\r|\n)$/.test(text);
  if (endsClean) lines.pop();
  for (const line of lines) {
    if (line === "") {
      if (cur.fields.length) out.events.push(cur);
      cur = { fields: [] };
      continue;
    }
    if (line.startsWith(":")) {
      out.comments.push(line.slice(1).trim());
      continue;
    }
    const i = line.indexOf(":");
    const name = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (out.firstField === null) out.firstField = name;
    if (name === "retry") {
      out.retry.push(value);
      continue;
    }
    cur.fields.push(name);
    if (name === "data") (cur.data ??= []).push(value);
    else if (name === "id" || name === "event") cur[name] = value;
  }
  if (cur.fields.length) out.incomplete = true;
  return out;
}

/** Framing and data of an event stream (a whole example, or what a live client read:
 *  then partial allows a cut last event). */
export function checkEventStream(p, text, { requireRetry = false, partial = false } = {}) {
  const out = [];
  const s = parseSse(text);
  if (requireRetry && (s.firstField !== "retry" || s.retry[0] !== "3000")) out.push("the stream must start with retry: 3000");
  if (s.incomplete && !partial) out.push("the stream ends in the middle of an event");
  for (const c of s.comments) if (c !== "hb") out.push(`unexpected comment ": ${c}"`);
  let last = null;
  s.events.forEach((e, i) => {
    const at = `event ${i} (${e.event ?? "?"})`;
    if (e.fields.join(",") !== "id,event,data") out.push(`${at}: fields must be id, event, data (got ${e.fields.join(", ")})`);
    const m = /^([0-9a-f]{16})-(0|[1-9][0-9]*)$/.exec(e.id ?? "");
    if (!m) out.push(`${at}: bad id ${e.id}`);
    let data;
    try {
      data = JSON.parse((e.data ?? []).join("\n"));
    } catch (err) {
      out.push(`${at}: data is not JSON`);
      return;
    }
    const v = p.strict.getSchema(BASE + "schemas/events.json");
    if (!v(data)) out.push(...v.errors.map((x) => `${at}: ${x.instancePath || "/"} ${x.message}`));
    out.push(...checkInvariants("events.json", data).map((x) => `${at}: ${x}`));
    if (data.event !== e.event) out.push(`${at}: data.event is ${data.event}`);
    if (m && data.seq !== m[2]) out.push(`${at}: data.seq ${data.seq} is not the id's seq ${m[2]}`);
    if (m && e.event === "reset" && data.epoch !== m[1]) out.push(`${at}: reset epoch is not the id's`);
    if (m && last) {
      if (m[1] !== last.epoch && e.event !== "reset") out.push(`${at}: the epoch changed without a reset`);
      if (BigInt(m[2]) <= last.seq && !(e.event === "reset")) out.push(`${at}: seq ${m[2]} does not increase`);
    }
    if (m) last = { epoch: m[1], seq: BigInt(m[2]) };
  });
  return out;
}

// ---- Prometheus text format ----

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LNAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Parses the text exposition format 0.0.4 strictly. Returns {families: Map, problems}. */
export function parseExposition(text) {
  const problems = [];
  const families = new Map();
  if (!text.endsWith("\n")) problems.push("the last line must end with a newline");
  let current = null;
  const closed = new Set();
  const familyOf = (sample) => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (sample.endsWith(suffix)) {
        const f = families.get(sample.slice(0, -suffix.length));
        if (f && (f.type === "histogram" || f.type === "summary")) return f;
      }
    }
    return families.get(sample);
  };
  text.split("\n").forEach((line, n) => {
    const at = `line ${n + 1}`;
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // other comments are allowed
      const [, kind, name, rest = ""] = m;
      if (!NAME.test(name)) problems.push(`${at}: bad metric name ${name}`);
      let f = families.get(name);
      if (!f) {
        if (current) closed.add(current.name);
        f = { name, help: null, type: null, samples: [] };
        families.set(name, f);
        current = f;
      } else if (f !== current) {
        problems.push(`${at}: ${name} is not one contiguous group`);
      }
      if (kind === "HELP") {
        if (f.help !== null) problems.push(`${at}: second HELP for ${name}`);
        f.help = rest.replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
      } else {
        if (f.type !== null) problems.push(`${at}: second TYPE for ${name}`);
        if (f.samples.length) problems.push(`${at}: TYPE after samples of ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) problems.push(`${at}: bad type ${rest}`);
        f.type = rest;
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) {
      problems.push(`${at}: not a sample line: ${line}`);
      return;
    }
    const [, name, rawLabels = "", value] = m;
    const labels = parseLabels(rawLabels.slice(1, -1), at, problems);
    if (!/^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(value)) problems.push(`${at}: bad value ${value}`);
    const f = familyOf(name);
    if (!f) {
      problems.push(`${at}: sample ${name} has no HELP/TYPE`);
      return;
    }
    if (f !== current) problems.push(`${at}: ${f.name} is not one contiguous group`);
    if (closed.has(f.name)) problems.push(`${at}: samples of ${f.name} after another family`);
    f.samples.push({ name, labels, value: Number(value.replace("Inf", "Infinity")), line: n + 1 });
  });
  for (const f of families.values()) {
    if (f.help === null) problems.push(`${f.name}: no HELP`);
    if (f.type === null) problems.push(`${f.name}: no TYPE`);
    const seen = new Set();
    for (const s of f.samples) {
      const k = s.name + JSON.stringify(Object.entries(s.labels).sort());
      if (seen.has(k)) problems.push(`${f.name}: duplicate series ${k}`);
      seen.add(k);
    }
    if (f.type === "counter") {
      if (!f.name.endsWith("_total")) problems.push(`${f.name}: a counter's name ends in _total`);
      for (const s of f.samples) if (!(s.value >= 0)) problems.push(`${f.name}: a counter below 0 or NaN`);
    } else if (/_total$|_count$|_sum$|_bucket$/.test(f.name)) {
      problems.push(`${f.name}: only counters end in _total (and _count/_sum/_bucket are reserved)`);
    }
    if (f.type === "histogram") problems.push(...histogramRules(f));
  }
  return { families, problems };
}

function parseLabels(s, at, problems) {
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    if (!m) {
      problems.push(`${at}: bad labels {${s}}`);
      return labels;
    }
    i += m[0].length;
    let v = "";
    for (;;) {
      if (i >= s.length) {
        problems.push(`${at}: unterminated label value`);
        return labels;
      }
      const c = s[i++];
      if (c === '"') break;
      if (c === "\n") problems.push(`${at}: newline in a label value`);
      if (c === "\\") {
        const d = s[i++];
        if (d === "n") v += "\n";
        else if (d === "\\" || d === '"') v += d;
        else problems.push(`${at}: bad escape \\${d}`);
      } else v += c;
    }
    if (m[1] in labels) problems.push(`${at}: label ${m[1]} twice`);
    if (!LNAME.test(m[1]) || m[1].startsWith("__")) problems.push(`${at}: bad label name ${m[1]}`);
    labels[m[1]] = v;
    if (s[i] === ",") i++;
    else if (i < s.length) {
      problems.push(`${at}: bad labels {${s}}`);
      return labels;
    }
  }
  return labels;
}

function histogramRules(f) {
  const out = [];
  const groups = new Map();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const k = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(k) ?? { buckets: [], sum: null, count: null };
    groups.set(k, g);
    if (s.name === f.name + "_bucket") g.buckets.push({ le, value: s.value });
    else if (s.name === f.name + "_sum") g.sum = s.value;
    else if (s.name === f.name + "_count") g.count = s.value;
    else out.push(`${f.name}: stray sample ${s.name}`);
  }
  for (const [k, g] of groups) {
    const les = g.buckets.map((b) => (b.le === "+Inf" ? Infinity : Number(b.le)));
    if (g.buckets.some((b) => b.le === undefined || Number.isNaN(b.le === "+Inf" ? 0 : Number(b.le)))) out.push(`${f.name}${k}: a bucket without a numeric le`);
    for (let i = 1; i < les.length; i++) {
      if (!(les[i] > les[i - 1])) out.push(`${f.name}${k}: buckets not in increasing le order`);
      if (g.buckets[i].value < g.buckets[i - 1].value) out.push(`${f.name}${k}: buckets not cumulative`);
    }
    if (les.at(-1) !== Infinity) out.push(`${f.name}${k}: no le="+Inf" bucket`);
    else if (g.buckets.at(-1).value !== g.count) out.push(`${f.name}${k}: +Inf bucket != _count`);
    if (g.sum === null || g.count === null) out.push(`${f.name}${k}: _sum or _count missing`);
  }
  return out;
}

/** An exposition against the format rules, metrics.md's table, and promtool when it is
 *  on PATH (or in $PROMTOOL). */
export function checkMetricsText(p, text, { promtool = true } = {}) {
  const { families, problems } = parseExposition(text);
  for (const [name, f] of families) {
    const want = p.metricsTable.get(name);
    if (!want) {
      problems.push(`${name}: not in metrics.md`);
      continue;
    }
    if (f.type !== want.type) problems.push(`${name}: type ${f.type}, metrics.md says ${want.type}`);
    if (f.help !== want.help) problems.push(`${name}: HELP "${f.help}" is not metrics.md's "${want.help}"`);
    for (const s of f.samples) {
      const names = Object.keys(s.labels).filter((l) => !(f.type === "histogram" && l === "le")).sort();
      if (names.join(",") !== [...want.labels].sort().join(",")) problems.push(`${name} (line ${s.line}): labels ${names.join(",")}, metrics.md says ${want.labels.join(",")}`);
      if (s.labels.generation !== undefined && !["0", "1", "2"].includes(s.labels.generation))
        problems.push(`${name} (line ${s.line}): generation="${s.labels.generation}"`);
    }
  }
  // process_* appear when /proc/self can be read; the rcgc_* families always.
  for (const name of p.metricsTable.keys())
    if (!families.has(name) && !name.startsWith("process_")) problems.push(`${name}: listed in metrics.md, absent`);
  if (promtool) {
    const tool = process.env.PROMTOOL || findOnPath("promtool");
    if (tool) {
      try {
        execFileSync(tool, ["check", "metrics"], { input: text, stdio: ["pipe", "pipe", "pipe"] });
      } catch (e) {
        problems.push(`promtool check metrics: exit ${e.status}: ${String(e.stderr).trim()}`);
      }
    }
  }
  return problems;
}

export function findOnPath(cmd) {
  for (const d of (process.env.PATH ?? "").split(":")) {
    if (d && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

// ---- the static checks in one call ----

export function checkAll(p) {
  const sections = [
    ["OpenAPI 3.1 document", checkOpenApiDocument(p)],
    ["schemas", checkSchemas(p)],
    ["openapi.yaml references", checkSpecRefs(p)],
    ["README tables", checkTables(p)],
  ];
  for (const r of checkExamples(p)) sections.push([`${r.file} (${r.where})`, r.problems]);
  return sections;
}

// ---- live ----

/** Checks a running server. Returns {results: [{what, outcome, problems}], failed}. */
export async function checkLive(p, url, { token = null, heap = null, control = false, eventsMs = 2000, log = () => {} } = {}) {
  const base = url.replace(/\/+$/, "");
  const results = [];
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const statusOf = new Map(p.status.map((r) => [`${r.method} ${r.path}`, r.status]));
  const ops = operations(p);
  const record = (what, outcome, problems = []) => {
    results.push({ what, outcome, problems });
    log(`${problems.length ? "FAIL" : outcome === "skip" ? "skip" : "ok  "} ${what}${problems.length ? "\n       " + problems.join("\n       ") : outcome === "skip" ? "" : ""}`);
  };
  const request = async (method, path, init = {}) => {
    const r = await fetch(base + path, {
      method,
      headers: { ...headers, ...(init.headers ?? {}) },
      body: init.body,
      signal: AbortSignal.timeout(init.timeout ?? 15000),
    });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, type: r.headers.get("content-type") ?? "", text, json, headers: r.headers };
  };
  const notFoundRoute = (a) => a.status === 404 && a.json?.error?.code === "not_found";
  // README, Transport: every answer but the event stream.
  const headerRules = (a) => {
    const out = [];
    if (a.headers.get("x-content-type-options") !== "nosniff") out.push("no X-Content-Type-Options: nosniff");
    if (!/\bno-store\b/.test(a.headers.get("cache-control") ?? "")) out.push("no Cache-Control: no-store");
    if (a.headers.get("access-control-allow-origin") !== null) out.push("Access-Control-Allow-Origin must not be sent");
    return out;
  };
  const errorShape = (a, status, code) => {
    const probs = [];
    if (a.status !== status) probs.push(`status ${a.status}, expected ${status}`);
    if (!a.type.startsWith("application/json")) probs.push(`content-type ${a.type}`);
    probs.push(...headerRules(a));
    probs.push(...validateSchema(p, "error.json", a.json));
    if (code && a.json?.error?.code !== code) probs.push(`code ${a.json?.error?.code}, expected ${code}`);
    return probs;
  };

  // Checks one JSON answer of operation o against its schema for the status it gave.
  const checkAnswer = (o, a, want) => {
    const probs = [];
    if (a.status !== want) {
      probs.push(`status ${a.status}, expected ${want}${a.json?.error ? ` (${a.json.error.code}: ${a.json.error.message})` : ""}`);
      return probs;
    }
    if (!a.type.startsWith("application/json")) probs.push(`content-type ${a.type}, expected application/json`);
    probs.push(...headerRules(a));
    if (a.json === null) return [...probs, "body is not JSON"];
    const r = responseOf(p, o, want);
    const mt = Object.keys(r.response.content).find(mediaJson);
    probs.push(...validateAt(p, r.pointer + pointerOf("content", mt, "schema"), a.json));
    probs.push(...checkInvariants(schemaFileOf(p, r.response.content[mt].schema), a.json));
    return probs;
  };

  const planned = (o) => statusOf.get(`${o.method} ${o.path}`) !== "implemented";
  const ctx = { heap, id: null, label: null, type: null };
  const fill = (path) =>
    path.replace("{heap}", encodeURIComponent(ctx.heap ?? "")).replace("{id}", ctx.id ?? "");

  const noted = new Set();
  const get = async (o, query = "", { want = 200, echo = {} } = {}) => {
    const what = `${o.method} ${o.path}${query}`;
    if (o.path.includes("{heap}") && ctx.heap === null) return record(what + " (no heap)", "skip"), null;
    if (o.path.includes("{id}") && ctx.id === null) return record(what + " (no object to ask for)", "skip"), null;
    const a = await request(o.method, fill(o.path) + query);
    if (notFoundRoute(a) && planned(o)) return record(what + " (planned)", "skip"), null;
    const probs = checkAnswer(o, a, want);
    // The answer says which filters it applied: they must be the ones asked for.
    for (const [k, v] of Object.entries(echo)) {
      const got = k.split(".").reduce((x, t) => x?.[t], a.json);
      if (!probs.length && got !== v) probs.push(`${k} is ${JSON.stringify(got)}, asked for ${JSON.stringify(v)}`);
    }
    if (!probs.length && planned(o) && !noted.has(o.pointer)) {
      noted.add(o.pointer);
      log(`note ${o.method} ${o.path} answers although README says planned: flip it`);
    }
    record(what, "checked", probs);
    return probs.length ? null : a.json;
  };

  const byId = (id) => ops.find((o) => o.op.operationId === id);

  // The allocator and allocation tracing. Statistics, snapshots and pprof answer 409
  // not_tracing while the heap does not trace: then that is what is checked.
  async function checkTracing() {
    if (ctx.heap === null) return record("tracing (no heap)", "skip");
    await get(byId("getAllocator"));
    const alloc = byId("getAllocator");
    const text = await request("GET", fill(alloc.path) + "?format=text");
    if (!(notFoundRoute(text) && planned(alloc))) {
      const probs = [];
      if (text.status !== 200) probs.push(`status ${text.status}`);
      if (text.type !== "text/plain; charset=utf-8") probs.push(`content-type ${text.type}`);
      probs.push(...headerRules(text));
      if (!text.text.startsWith("Small block threshold = 512, in 32 size classes.\n")) probs.push("does not start with sys._debugmallocstats's first line");
      record("GET /v1/heaps/{heap}/allocator?format=text", "checked", probs);
    }
    const status = await get(byId("getTracing"));
    const tracing = status?.tracing === true;
    const stats = byId("getTracingStatistics");
    const want = tracing ? 200 : 409;
    const statsAt = async (query, echo = {}) => {
      if (tracing) return get(stats, query, { echo });
      const a = await request("GET", fill(stats.path) + query);
      if (notFoundRoute(a) && planned(stats)) return record(`GET ${stats.path}${query} (planned)`, "skip"), null;
      record(`GET ${stats.path}${query} -> 409 not_tracing`, "checked", errorShape(a, 409, "not_tracing"));
      return null;
    };
    await statsAt("");
    await statsAt("?key=filename&limit=5", { key: "filename", limit: 5 });
    await statsAt("?key=traceback&limit=3", { key: "traceback" });
    await statsAt("?key=lineno&cumulative=true", { cumulative: true });
    await statsAt("?include=*&exclude=no-such-file.c:1&limit=3");
    await get(byId("listTracingSnapshots"));
    if (control) {
      const o = byId("createTracingSnapshot");
      const a = await request("POST", fill(o.path) + "?label=validate-live");
      if (notFoundRoute(a) && planned(o)) record("POST tracing/snapshots (planned)", "skip");
      else if (a.status === 403 && a.json?.error?.code === "control_disabled") record("POST tracing/snapshots: control is disabled", "checked", errorShape(a, 403, "control_disabled"));
      else if (!tracing) record("POST tracing/snapshots -> 409 not_tracing", "checked", errorShape(a, 409, "not_tracing"));
      else {
        record("POST tracing/snapshots?label=validate-live", "checked", checkAnswer(o, a, 201));
        if (a.status === 201) await statsAt(`?base=${a.json.id}&limit=5`, { "base.id": a.json.id });
      }
      const c = byId("controlTracing");
      const r = await request("POST", fill(c.path) + "?action=reset_peak");
      if (notFoundRoute(r) && planned(c)) record("POST tracing (planned)", "skip");
      else if (r.status === 403 && r.json?.error?.code === "control_disabled") record("POST tracing: control is disabled", "checked", errorShape(r, 403, "control_disabled"));
      else record("POST tracing?action=reset_peak", "checked", checkAnswer(c, r, 200));
    }
    const pp = byId("getPprofHeap");
    const r = await fetch(base + fill(pp.path), { headers, signal: AbortSignal.timeout(15000) });
    const bytes = new Uint8Array(await r.arrayBuffer());
    const type = r.headers.get("content-type") ?? "";
    let json = null;
    if (type.startsWith("application/json")) json = JSON.parse(new TextDecoder().decode(bytes));
    const a = { status: r.status, type, json, headers: r.headers };
    if (r.status === 404 && json?.error?.code === "not_found" && planned(pp)) record("GET pprof/heap (planned)", "skip");
    else if (!tracing) record("GET pprof/heap -> 409 not_tracing", "checked", errorShape(a, 409, "not_tracing"));
    else {
      const probs = r.status === 200 ? [] : [`status ${r.status}`];
      if (type !== "application/octet-stream") probs.push(`content-type ${type}`);
      probs.push(...headerRules(a));
      if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) probs.push("not gzip (no 1f 8b magic)");
      if (!/^attachment; filename="rcgc-[A-Za-z0-9._-]+-heap\.pb\.gz"$/.test(r.headers.get("content-disposition") ?? "")) probs.push(`Content-Disposition ${r.headers.get("content-disposition")}`);
      record("GET /v1/heaps/{heap}/pprof/heap", "checked", probs);
    }
  }
  // The order matters: later requests use what earlier ones found.
  await get(byId("getProcess"));
  const heaps = await get(byId("listHeaps"));
  if (ctx.heap === null && heaps?.heaps?.length) ctx.heap = heaps.heaps[0].name;
  await get(byId("getHeap"));
  await get(byId("getCensus"));
  const baselines = await get(byId("listBaselines"));
  if (baselines?.baselines?.length) ctx.label = baselines.baselines.at(-1).label;
  if (control && ctx.heap !== null) {
    const o = byId("createBaseline");
    const a = await request("POST", fill(o.path) + "?label=validate-live");
    if (notFoundRoute(a) && planned(o)) record("POST baselines (planned)", "skip");
    else if (a.status === 403 && a.json?.error?.code === "control_disabled") record("POST baselines: control is disabled", "checked", errorShape(a, 403, "control_disabled"));
    else {
      record("POST baselines?label=validate-live", "checked", checkAnswer(o, a, 201));
      if (a.status === 201) ctx.label = "validate-live";
    }
  }
  if (ctx.label) {
    const q = `?baseline=${encodeURIComponent(ctx.label)}`;
    await get(byId("getCensus"), q, { echo: { "baseline.label": ctx.label } });
    await get(byId("getSites"), q, { echo: { "baseline.label": ctx.label } });
  }
  await get(byId("getSites"));
  await get(byId("getSuspects"));
  await get(byId("getSuspects"), "?by=site&limit=5", { echo: { by: "site", limit: 5 } });
  await get(byId("getGarbage"));
  const objects = await get(byId("listObjects"), "?limit=5", { echo: { limit: 5 } });
  if (objects?.objects?.length) {
    ctx.id = objects.objects[0].id;
    ctx.type = objects.objects[0].type;
  }
  if (objects?.next_cursor) await get(byId("listObjects"), `?limit=5&cursor=${encodeURIComponent(objects.next_cursor)}`);
  if (ctx.type !== null) await get(byId("listObjects"), `?type=${encodeURIComponent(ctx.type)}&limit=3`, { echo: { type: ctx.type } });
  const old = await get(byId("listObjects"), "?generation=2&limit=3", { echo: { generation: 2 } });
  await get(byId("listObjects"), "?scope=all&limit=20", { echo: { scope: "all" } });
  // The object endpoints ask about an id picked above; a young object of a busy host may
  // die in between (404), so prefer one that survived into the oldest generation. Even
  // such an object may die while it is asked about (a host that collects at every
  // allocation promotes short-lived objects too): then the checks are run again about
  // the next one listed, up to three objects, and only the last run is recorded.
  let candidates = old?.objects ?? [];
  for (let attempt = 0; ; attempt++) {
    if (candidates.length) {
      ctx.id = candidates[0].id;
      ctx.type = candidates[0].type;
    }
    const mark = results.length;
    await get(byId("getObject"));
    await get(byId("getObjectPath"));
    await get(byId("getObjectRetained"));
    if (ctx.type !== null) await get(byId("getTypeRetained"), `?type=${encodeURIComponent(ctx.type)}`);
    else record("GET /v1/heaps/{heap}/retained (no type to ask for)", "skip");
    await get(byId("getObjectTraceback"));
    const died = results.slice(mark).some((r) => r.problems.some((p) => p.includes("status 404") && p.includes("object_not_found")));
    if (!died || attempt === 2 || candidates.length < 2) break;
    log(`note object ${ctx.id} died while it was asked about: asking about the next one`);
    results.splice(mark);
    candidates = candidates.slice(1);
  }
  await checkTracing();

  if (control && ctx.heap !== null) {
    const heapDoc = ctx.heap !== null ? (await request("GET", fill("/v1/heaps/{heap}"))).json : null;
    const tries = [
      ["collect", "POST", "?generation=0", null, 200],
      ["setThresholds", "PUT", "", heapDoc?.generations ? { threshold: heapDoc.generations.map((g) => g.threshold) } : null, 200],
      ["setDebug", "PUT", "", heapDoc?.debug ? { flags: heapDoc.debug.flags } : null, 200],
    ];
    for (const [id, method, query, body, want] of tries) {
      const o = byId(id);
      if (method === "PUT" && body === null) {
        record(`${method} ${o.path} (the heap's current values are unknown)`, "skip");
        continue;
      }
      const a = await request(method, fill(o.path) + query, body ? { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } } : {});
      if (notFoundRoute(a) && planned(o)) record(`${method} ${o.path} (planned)`, "skip");
      else if (a.status === 403 && a.json?.error?.code === "control_disabled") record(`${method} ${o.path}: control is disabled`, "checked", errorShape(a, 403, "control_disabled"));
      else record(`${method} ${o.path}${query}`, "checked", checkAnswer(o, a, want));
    }
  }

  // Errors every server gives, whatever it implements.
  if (!planned(byId("getTracingStatistics")) && ctx.heap !== null) {
    const st = fill("/v1/heaps/{heap}/tracing/statistics");
    record("tracing/statistics?limit=0 -> 400 bad_parameter", "checked", errorShape(await request("GET", st + "?limit=0"), 400, "bad_parameter"));
    record("tracing/statistics?key=banana -> 400 bad_parameter", "checked", errorShape(await request("GET", st + "?key=banana"), 400, "bad_parameter"));
    record("tracing/statistics?base=<none> -> 404 snapshot_not_found", "checked", errorShape(await request("GET", st + "?base=9007199254740991"), 404, "snapshot_not_found"));
  }
  record("GET /v1/no-such-endpoint -> 404 not_found", "checked", errorShape(await request("GET", "/v1/no-such-endpoint"), 404, "not_found"));
  const heapOp = byId("getHeap");
  if (!planned(heapOp)) {
    record("GET /v1/heaps/<unknown> -> 404 heap_not_found", "checked", errorShape(await request("GET", "/v1/heaps/rcgc-validate-no-such-heap"), 404, "heap_not_found"));
    const a = await request("DELETE", fill("/v1/heaps/{heap}"));
    const probs = errorShape(a, 405, "method_not_allowed");
    if (!a.headers.get("allow")) probs.push("no Allow header");
    record("DELETE /v1/heaps/{heap} -> 405 method_not_allowed + Allow", "checked", probs);
  }
  if (!planned(byId("getCensus")) && ctx.heap !== null) {
    record("census?limt=5 -> 400 unknown_parameter", "checked", errorShape(await request("GET", fill("/v1/heaps/{heap}/census") + "?limt=5"), 400, "unknown_parameter"));
    record("census?limit=0 -> 400 bad_parameter", "checked", errorShape(await request("GET", fill("/v1/heaps/{heap}/census") + "?limit=0"), 400, "bad_parameter"));
    record("census?baseline=<none> -> 404 baseline_not_found", "checked", errorShape(await request("GET", fill("/v1/heaps/{heap}/census") + "?baseline=rcgc-validate-none"), 404, "baseline_not_found"));
  }
  if (!planned(byId("getObject")) && ctx.heap !== null) {
    record("objects/1 -> 404 object_not_found", "checked", errorShape(await request("GET", fill("/v1/heaps/{heap}/objects/16")), 404, "object_not_found"));
    record("objects/banana -> 400 bad_id", "checked", errorShape(await request("GET", fill("/v1/heaps/{heap}/objects/banana")), 400, "bad_id"));
  }

  // /metrics
  {
    const o = byId("getMetrics");
    const a = await request("GET", "/metrics");
    if (notFoundRoute(a) && planned(o)) record("GET /metrics (planned)", "skip");
    else {
      const probs = [];
      if (a.status !== 200) probs.push(`status ${a.status}`);
      if (!/^text\/plain; ?version=0\.0\.4/.test(a.type)) probs.push(`content-type ${a.type}`);
      probs.push(...headerRules(a));
      probs.push(...checkMetricsText(p, a.text));
      record("GET /metrics", "checked", probs);
    }
  }
  // /v1/events: the first second or two of the stream.
  {
    const o = byId("streamEvents");
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), eventsMs);
    let status = 0, type = "", text = "";
    try {
      const r = await fetch(base + "/v1/events", { headers, signal: ac.signal });
      status = r.status;
      type = r.headers.get("content-type") ?? "";
      if (status === 200) {
        const dec = new TextDecoder();
        for await (const chunk of r.body) text += dec.decode(chunk, { stream: true });
      } else text = await r.text();
    } catch (e) {
      if (e.name !== "AbortError") text += "";
    } finally {
      clearTimeout(timer);
    }
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* a stream */
    }
    if (status === 404 && json?.error?.code === "not_found" && planned(o)) record("GET /v1/events (planned)", "skip");
    else {
      const probs = [];
      if (status !== 200) probs.push(`status ${status}`);
      if (!type.startsWith("text/event-stream")) probs.push(`content-type ${type}`);
      if (status === 200) probs.push(...checkEventStream(p, text, { requireRetry: true, partial: true }));
      const bad = await request("GET", "/v1/events?since=garbage");
      if (!(notFoundRoute(bad) && planned(o))) probs.push(...errorShape(bad, 400, "bad_parameter").map((x) => `?since=garbage: ${x}`));
      record(`GET /v1/events (${eventsMs} ms)`, "checked", probs);
    }
  }
  // The dashboard: the page (with its CSP), the files it names under /assets/, and a
  // file it lacks.
  {
    const o = byId("getDashboard");
    const a = await request("GET", "/");
    if (notFoundRoute(a) && planned(o)) record("GET / (planned)", "skip");
    else {
      const probs = a.status === 200 && a.type.startsWith("text/html") ? [] : [`status ${a.status}, content-type ${a.type}`];
      probs.push(...headerRules(a));
      if (!/default-src 'none'/.test(a.headers.get("content-security-policy") ?? "")) probs.push("no Content-Security-Policy with default-src 'none'");
      record("GET /", "checked", probs);
    }
    const assets = byId("getAsset");
    const types = { html: "text/html", css: "text/css", js: "text/javascript", svg: "image/svg+xml", png: "image/png" };
    const named = a.status === 200 ? [...new Set([...a.text.matchAll(/(?:src|href)="\/assets\/([^"?#]+)"/g)].map((m) => m[1]))] : [];
    for (const name of named.slice(0, 20)) {
      const f = await request("GET", `/assets/${name}`);
      if (notFoundRoute(f) && planned(assets)) {
        record(`GET /assets/${name} (planned)`, "skip");
        continue;
      }
      const probs = f.status === 200 ? [] : [`status ${f.status}`];
      const want = types[name.split(".").pop()];
      if (!want || !f.type.startsWith(want)) probs.push(`content-type ${f.type}, expected ${want}`);
      if (f.headers.get("x-content-type-options") !== "nosniff") probs.push("no X-Content-Type-Options: nosniff");
      if (!f.headers.get("etag")) probs.push("no ETag");
      record(`GET /assets/${name}`, "checked", probs);
    }
    const none = await request("GET", "/assets/rcgc-validate-no-such-file.js");
    if (notFoundRoute(none) && planned(assets)) record("GET /assets/{name} (planned)", "skip");
    else record("GET /assets/<unknown> -> 404 not_found", "checked", errorShape(none, 404, "not_found"));
  }
  return { results, failed: results.filter((r) => r.problems.length).length };
}

// ---- command line ----

async function main(argv) {
  const args = { live: null, token: process.env.RCGC_INSPECT_TOKEN ?? null, heap: null, control: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--live") args.live = argv[++i];
    else if (a === "--token") args.token = argv[++i];
    else if (a === "--heap") args.heap = argv[++i];
    else if (a === "--control") args.control = true;
    else if (a === "-h" || a === "--help") {
      console.log("usage: node validate.mjs [--live URL [--token T] [--heap NAME] [--control]]");
      return 0;
    } else {
      console.error(`validate.mjs: unknown argument ${a}`);
      return 2;
    }
  }
  const p = loadProtocol();
  if (!args.live) {
    let failed = 0;
    for (const [what, problems] of checkAll(p)) {
      if (problems.length) failed++;
      console.log(`${problems.length ? "FAIL" : "ok  "} ${what}${problems.length ? "\n       " + problems.join("\n       ") : ""}`);
    }
    console.log(failed ? `${failed} failed` : "protocol/ conforms");
    return failed ? 1 : 0;
  }
  const { results, failed } = await checkLive(p, args.live, { ...args, log: (s) => console.log(s) });
  const checked = results.filter((r) => r.outcome === "checked").length;
  const skipped = results.length - checked;
  console.log(failed ? `${failed} of ${checked} checks failed (${skipped} skipped)` : `${checked} checks passed, ${skipped} skipped (planned, or nothing to ask for)`);
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`validate.mjs: ${e.cause?.code === "ECONNREFUSED" ? `cannot connect: ${e.cause.message}` : e.stack ?? e}`);
      process.exit(1);
    },
  );
}
