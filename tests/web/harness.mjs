// harness.mjs: what every browser test of the dashboard shares. run.sh starts the demo
// and sets the environment:
//
//   RCGC_WEB_BASE_URL    the leak-hunting demo's inspector (rcgc-demo 1 --serve),
//                        control requests on (required)
//   RCGC_WEB_EXTRA_URL   a second demo run with --extra 100000 (100,000 Record objects);
//                        the tests that need it skip without it
//   RCGC_WEB_DEMO        the demo program itself (rcgc-demo), for the tests that start
//                        one of their own (token.test.mjs); they skip without it
//   RCGC_WEB_SCREENSHOTS where screenshots go (default ./screenshots): test artefacts
//   RCGC_WEB_CHROMIUM    the browser (default /usr/bin/chromium, Debian's)
//
// The browser is Debian's chromium (/usr/bin/chromium), driven by playwright-core over
// CDP; no browser is ever downloaded and the page may load nothing from elsewhere.
import { mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { chromium } from "playwright-core";

export { sleep };

export const CHROMIUM = process.env.RCGC_WEB_CHROMIUM || "/usr/bin/chromium";
export const HEAP = "demo";

const trimSlash = (u) => u.replace(/\/+$/, "");
if (!process.env.RCGC_WEB_BASE_URL)
  throw new Error("RCGC_WEB_BASE_URL is not set: run the tests with tests/web/run.sh <rcgc-demo>");
export const BASE = trimSlash(process.env.RCGC_WEB_BASE_URL);
export const EXTRA = process.env.RCGC_WEB_EXTRA_URL ? trimSlash(process.env.RCGC_WEB_EXTRA_URL) : null;
export const DEMO = process.env.RCGC_WEB_DEMO || null;
export const SHOTS = path.resolve(process.env.RCGC_WEB_SCREENSHOTS || "screenshots");
mkdirSync(SHOTS, { recursive: true });

export const launch = () =>
  chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });

// ---- the JSON API, from node ----

export async function api(base, p, init = {}) {
  const r = await fetch(base + p, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${init.method || "GET"} ${p}: ${r.status} ${text}`);
  return JSON.parse(text);
}
export const heapPath = (heap = HEAP) => `/v1/heaps/${encodeURIComponent(heap)}`;
export const getHeap = (base = BASE) => api(base, heapPath());
export const collect = (base, generation) =>
  api(base, `${heapPath()}/collect?generation=${generation}`, { method: "POST" });

// Every object of a type (scope=all: Page and Record are untracked leaves), in id order.
export async function allObjects(base, type) {
  const out = [];
  let cursor = "";
  for (;;) {
    const q = `?type=${encodeURIComponent(type)}&scope=all&limit=1000${cursor && `&cursor=${cursor}`}`;
    const page = await api(base, `${heapPath()}/objects${q}`);
    out.push(...page.objects);
    if (!page.truncated) return out;
    cursor = encodeURIComponent(page.next_cursor);
  }
}

// A Document whose refcount has one reference from outside the heap (the demo's forgotten
// incref, every 50th request): found through the JSON API, as a person would with curl.
export async function leakedDocument(base = BASE) {
  const list = await api(base, `${heapPath()}/objects?type=Document&limit=1000`);
  for (const o of list.objects) {
    let obj;
    try {
      obj = await api(base, `${heapPath()}/objects/${o.id}`);
    } catch {
      continue; // freed meanwhile (a collected cycle)
    }
    if (obj.refcount_explained.from_outside === 1) return obj;
  }
  throw new Error(`no Document with from_outside 1 among ${list.objects.length}`);
}

// A live object of a type that has an allocation trace (GET .../objects/{id}/traceback
// with traced true; objects allocated before tracing last started or its traces were
// last cleared have none): that answer, the first in id order. Looks at 3,000 at most.
// init: fetch's, for every request (headers: a token).
export async function tracedObject(base, type, init = {}) {
  let cursor = "",
    looked = 0;
  for (;;) {
    const q = `?type=${encodeURIComponent(type)}&scope=all&limit=1000${cursor && `&cursor=${cursor}`}`;
    const page = await api(base, `${heapPath()}/objects${q}`, init);
    for (const o of page.objects) {
      if (++looked > 3000) throw new Error(`no traced ${type} among the first 3,000`);
      let t;
      try {
        t = await api(base, `${heapPath()}/objects/${o.id}/traceback`, init);
      } catch {
        continue; // freed meanwhile
      }
      if (t.traced) return t;
    }
    if (!page.truncated) throw new Error(`no traced ${type} among ${looked}`);
    cursor = encodeURIComponent(page.next_cursor);
  }
}

// ---- waiting ----

// until(what, fn): calls fn until it returns something truthy (which it returns), or
// throws after `timeout` ms saying what it waited for and what it saw last.
export async function until(what, fn, { timeout = 30_000, interval = 200 } = {}) {
  const end = Date.now() + timeout;
  let last, err;
  for (;;) {
    try {
      err = undefined;
      last = await fn();
      if (last) return last;
    } catch (e) {
      err = e;
    }
    if (Date.now() > end) {
      const saw = err ? `; last error: ${err.message.split("\n")[0]}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${saw}`);
    }
    await sleep(interval);
  }
}

// untilInt(locator, name, pred, what): waits until the integer attribute satisfies pred;
// a timeout says the last value seen.
export async function untilInt(locator, name, pred, what, opts) {
  let seen;
  try {
    return await until(what, async () => pred((seen = await intAttr(locator, name))), opts);
  } catch (e) {
    e.message += ` (${name} was ${seen})`;
    throw e;
  }
}

export const intAttr = async (locator, name) => {
  const v = await locator.getAttribute(name, { timeout: 5_000 });
  if (v === null || !/^-?\d+$/.test(v.trim())) throw new Error(`${name}="${v}" is not an integer`);
  return Number(v);
};
// The numbers in a text, thousands separators (",") removed: "1,000 of 5,234" -> [1000, 5234].
export const numbers = (text) => (String(text).match(/\d[\d,]*/g) || []).map((n) => Number(n.replace(/,/g, "")));
export const hashOf = (page) => page.evaluate(() => location.hash);

// ---- a page under watch ----

// openPage(browser, {base, route, width, height, colorScheme}): a new context and page at
// base + "/" + route, recording every request and every console error and page error.
// check() asserts (h): no request left the server's origin, no console error, no
// uncaught exception. `allowNetworkErrors` (a function of the time) admits the browser's
// own errors about failed requests ("Failed to load resource", EventSource's) while a
// test has cut the connection or used up the event streams on purpose.
export async function openPage(browser, opts = {}) {
  const { base = BASE, route = "#/overview", width = 1400, height = 900, colorScheme = "light" } = opts;
  const context = await browser.newContext({
    viewport: { width, height },
    colorScheme,
    locale: "en-US",
    serviceWorkers: "block",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const requests = [];
  const consoleErrors = [];
  const pageErrors = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error") {
      const loc = m.location();
      consoleErrors.push({ at: Date.now(), text: m.text(), url: loc && loc.url });
    }
  });
  page.on("pageerror", (e) => pageErrors.push(`${e.name}: ${e.message}\n${e.stack || ""}`));
  await page.goto(`${base}/${route}`);
  const check = ({ allowNetworkErrors } = {}) => {
    const outside = requests.filter((u) => !(u === base || u.startsWith(base + "/")));
    const errors = consoleErrors.filter(
      (e) => !(allowNetworkErrors && allowNetworkErrors(e.at) && /Failed to load resource|net::ERR_|EventSource/.test(e.text)),
    );
    const problems = [];
    if (outside.length) problems.push(`requests outside ${base}:\n  ${[...new Set(outside)].join("\n  ")}`);
    if (errors.length)
      problems.push(`console errors:\n  ${errors.map((e) => `${e.text}${e.url ? ` (${e.url})` : ""}`).join("\n  ")}`);
    if (pageErrors.length) problems.push(`uncaught exceptions:\n  ${pageErrors.join("\n  ")}`);
    if (problems.length) throw new Error(problems.join("\n"));
  };
  return { context, page, requests, consoleErrors, pageErrors, check };
}

// withPage(browser, t, opts, body): openPage, run body({page, ...}), then check(); on a
// failure, a screenshot failed-<test name>.png goes to the screenshot folder first.
export async function withPage(browser, t, opts, body) {
  const w = await openPage(browser, opts);
  try {
    const checkOpts = (await body(w)) || {};
    w.check(checkOpts);
  } catch (e) {
    const name = `failed-${t.name.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 80)}.png`;
    await w.page.screenshot({ path: path.join(SHOTS, name), fullPage: false }).catch(() => {});
    e.message += `\n  (page at failure: ${w.page.url()}; screenshot ${path.join(SHOTS, name)})`;
    throw e;
  } finally {
    await w.context.close();
  }
}

// Navigates within the single-page app by its hash route.
export async function go(page, route) {
  await page.evaluate((r) => {
    location.hash = r;
  }, route);
}

// ---- breaking the connection ----

// startProxy(target): a TCP proxy on 127.0.0.1:0 in front of the server. cut() closes
// every connection going through it and refuses new ones until restore(): from the
// browser, the server went away and came back (an EventSource gets an error, retries
// and resumes with Last-Event-ID). Neither context.setOffline nor page.route can do this:
// Chromium keeps an open EventSource streaming through both (checked with Chromium 156).
export async function startProxy(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(resolve);
      }),
  };
}
