// pprof_check.mjs <test_pprof> [out dir]: the pprof encoder (inspectd/src/pprof.c) checked
// by independent decoders (CTest protocol.pprof, through pprof_check.sh). node:zlib
// gunzips what it writes — a realistic heap profile and inputs of many sizes and kinds —
// and protobufjs decodes the profile against profile.proto (this folder), which must hold
// exactly the samples the encoder was given. test_pprof (tests/inspectd) is the encoder's
// cmocka test; `--profile OUT.pb.gz OUT.json` writes the profile and what it holds,
// `--gzip` gzips stdin to stdout. The profile is left in the out dir (default: the working
// directory) as pprof-sample.pb.gz, for `go tool pprof -top pprof-sample.pb.gz`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

import protobuf from "protobufjs";

const here = dirname(fileURLToPath(import.meta.url));
const [bin, outDir = process.cwd()] = process.argv.slice(2).map((a) => resolve(a));
if (!bin) {
  console.error("usage: node pprof_check.mjs <test_pprof> [out dir]");
  process.exit(2);
}
const Profile = protobuf.loadSync(join(here, "profile.proto")).lookupType("perftools.profiles.Profile");

function run(args, input) {
  const r = spawnSync(bin, args, { input, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${bin} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

// Decodes a .pb.gz into a plain object, 64-bit integers as BigInt.
function decodeProfile(gz) {
  assert.deepEqual([...gz.subarray(0, 4)], [0x1f, 0x8b, 8, 0], "gzip header");
  const msg = Profile.decode(gunzipSync(gz));
  const obj = Profile.toObject(msg, { longs: String, defaults: true, arrays: true });
  const big = (x) => (typeof x === "string" && /^-?\d+$/.test(x) ? BigInt(x) : x);
  return JSON.parse(JSON.stringify(obj), (k, v) => (Array.isArray(v) ? v.map(big) : big(v)));
}

test("the profile decodes with protobufjs and holds exactly the samples added", () => {
  const pb = join(outDir, "pprof-sample.pb.gz");
  const js = join(outDir, "pprof-sample.json");
  run(["--profile", pb, js]);
  const want = JSON.parse(readFileSync(js, "utf8"));
  const p = decodeProfile(readFileSync(pb));
  const s = (i) => {
    assert.ok(i >= 0n && i < BigInt(p.stringTable.length), `string index ${i}`);
    return p.stringTable[Number(i)];
  };

  assert.equal(p.stringTable[0], "");
  assert.equal(new Set(p.stringTable).size, p.stringTable.length, "strings are stored once");
  assert.deepEqual(p.sampleType.map((t) => [s(t.type), s(t.unit)]), want.sample_types);
  assert.equal(s(p.defaultSampleType), "inuse_space");
  assert.deepEqual([s(p.periodType.type), s(p.periodType.unit), p.period], ["space", "bytes", 0n]);
  assert.equal(p.timeNanos, 1700000000000000000n);
  assert.deepEqual(p.comment.map(s), ["rcgc heap main"]);

  // One symbolized Mapping, which every Location names.
  assert.equal(p.mapping.length, 1);
  const m = p.mapping[0];
  assert.deepEqual([m.id, m.hasFunctions, m.hasFilenames, m.hasLineNumbers], [1n, true, true, true]);

  // Ids: 1, 2, ... in order; one Location per distinct frame, one Function per (name, file).
  const fns = new Map(p.function.map((f, i) => {
    assert.equal(f.id, BigInt(i + 1));
    assert.equal(f.systemName, f.name);
    return [f.id, f];
  }));
  const locs = new Map(p.location.map((l, i) => {
    assert.equal(l.id, BigInt(i + 1));
    assert.equal(l.mappingId, 1n);
    assert.equal(l.line.length, 1);
    assert.ok(fns.has(l.line[0].functionId), `location ${l.id}: no function ${l.line[0].functionId}`);
    return [l.id, l];
  }));
  const frame = (id) => {
    const l = locs.get(id);
    assert.ok(l, `no location ${id}`);
    const f = fns.get(l.line[0].functionId);
    return [s(f.name), s(f.filename), Number(l.line[0].line)];
  };
  const distinct = (xs) => new Set(xs.map((x) => JSON.stringify(x))).size;
  const allFrames = want.samples.flatMap((x) => x.frames);
  assert.equal(p.location.length, distinct(allFrames), "one Location per distinct frame");
  assert.equal(p.function.length, distinct(allFrames.map(([n, f]) => [n, f])), "one Function per (name, file)");
  assert.equal(distinct(p.location.map((l) => frame(l.id))), p.location.length);

  assert.equal(p.sample.length, want.samples.length);
  p.sample.forEach((got, i) => {
    const w = want.samples[i];
    assert.deepEqual(got.value, w.values.map(BigInt), `sample ${i} values`);
    assert.deepEqual(got.locationId.map(frame), w.frames, `sample ${i} frames`);
    const labels = Object.fromEntries(got.label.map((l) =>
      [s(l.key), l.str !== 0n ? s(l.str) : [Number(l.num), s(l.numUnit)]]));
    assert.deepEqual(labels, w.labels, `sample ${i} labels`);
  });
});

// Deterministic inputs (xorshift32) of a kind: random bytes, zeros, words, runs.
function input(n, kind, seed) {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  const words = ["alloc", "node", "heap.c:", "cycle ", "rcgc_", "\n", "4096"];
  for (let i = 0; i < n; ) {
    if (kind === "random") b[i++] = rnd() & 255;
    else if (kind === "zeros") i++;
    else if (kind === "text") for (const c of Buffer.from(words[rnd() % 7])) { if (i < n) b[i++] = c; }
    else {
      const c = rnd() & 255;
      for (let r = rnd() % 600; r > 0 && i < n; r--) b[i++] = rnd() % 8 ? c : rnd() & 255;
    }
  }
  return b;
}

const sizes = [0, 1, 2, 3, 4, 257, 1000, 32767, 32768, 32769, 65534, 65535, 65536, 65537, 131071, 200000, 1 << 20];
for (const kind of ["random", "zeros", "text", "runs"]) {
  test(`gzip round trips through zlib.gunzipSync: ${kind}`, () => {
    for (const n of sizes) {
      const raw = input(n, kind, n + kind.length);
      const gz = run(["--gzip"], raw);
      assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], `header, ${n} bytes`);
      assert.ok(gz.length <= n + 6 * (Math.floor(n / 65535) + 1) + 19, `${n} bytes gave ${gz.length}`);
      assert.ok(raw.equals(gunzipSync(gz)), `${kind}, ${n} bytes`);
    }
  });
}

test("the round trip check catches a damaged member", () => {
  const gz = Buffer.from(run(["--gzip"], input(5000, "text", 7)));
  gz[gz.length - 8] ^= 1; // the CRC
  assert.throws(() => gunzipSync(gz));
  const short = gz.subarray(0, gz.length - 1);
  assert.throws(() => gunzipSync(short));
});
