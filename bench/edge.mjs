// The edge simulation for `make bench` (and the fault test): a Worker entry that runs a build's
// own entry with its bindings wrapped, so that every D1 and KV call is delayed as at the edge,
// or fails as the platform sometimes fails. Benchmark and test only; never deployed.
//
// Settings come from the `EDGE` binding (JSON):
//   d1Ms        delay before every D1 call (statement or batch), ms
//   kvMs        delay before a KV call for a key this isolate has called before ("hot"), ms
//   kvColdMs    delay before the first KV call for a key in this isolate ("cold"), ms
//   d1ServiceMs with oneWriter: the time each statement holds its database, ms
//   oneWriter   model each D1 database (DB and every SHARD_… binding) as one writer: its calls
//               are served one at a time, each holding it d1ServiceMs per statement (plus the
//               real run), after the network delay d1Ms; GET /__edge reports each one's busy time
//   d1Fault     share of D1 calls that fail with D1's "overloaded" error instead of running
//   kvFault     share of KV calls that throw instead of running
//   seed        seed of the fault draws (a fixed seed gives the same faults in the same order)
//   record      keep the statements and parameters of the latest D1 batch, served at
//               GET /__edge/last; POST /__edge/batch runs such a list ([[sql, params], …]) as
//               one batch on DB, through the same wrappers (bench/cost.mjs)
// Counts of injected faults are served at GET /__edge (the Worker under test never sees it).
import { WorkerEntrypoint } from "cloudflare:workers";
import Inner from "./index.js";

const sleep = (ms) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
const counts = { d1Calls: 0, kvCalls: 0, d1Faults: 0, kvFaults: 0, busyMs: {}, since: Date.now() };
// Per database, the tail of its queue of calls (one writer: each waits for the one before).
const queues = new Map();
const seenKeys = new Set();
let state = 0;

function settings(env) {
  const s = JSON.parse(env.EDGE ?? "{}");
  if (state === 0) state = (s.seed ?? 1) >>> 0 || 1;
  return s;
}

// xorshift32: the same seed draws the same faults.
function draw() {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 0x100000000;
}

async function d1Call(s, run, name = "DB", statements = 1) {
  counts.d1Calls++;
  await sleep(s.d1Ms ?? 0);
  if (draw() < (s.d1Fault ?? 0)) {
    counts.d1Faults++;
    throw new Error("D1_ERROR: D1 DB is overloaded. Too many requests queued.");
  }
  if (!s.oneWriter) return run();
  const before = queues.get(name) ?? Promise.resolve();
  let done;
  const mine = new Promise((r) => (done = r));
  queues.set(name, before.then(() => mine));
  await before;
  const t = performance.now();
  try {
    await sleep((s.d1ServiceMs ?? 0) * statements);
    return await run();
  } finally {
    counts.busyMs[name] = (counts.busyMs[name] ?? 0) + (performance.now() - t);
    done();
  }
}

async function kvCall(s, key, run) {
  counts.kvCalls++;
  const hot = seenKeys.has(key);
  seenKeys.add(key);
  await sleep(hot ? s.kvMs ?? 0 : s.kvColdMs ?? s.kvMs ?? 0);
  if (draw() < (s.kvFault ?? 0)) {
    counts.kvFaults++;
    throw new Error("KV GET failed: 503 Service Unavailable");
  }
  return run();
}

// Proxies keep each binding's constructor (the Worker checks its name) and route the calls that
// reach the network through the delays and faults above.
const targets = new WeakMap();
// With `record`: each statement's SQL and parameters, and the latest batch's.
const recorded = new WeakMap();
let lastBatch = null;
function statement(s, stmt, name, sql, params = []) {
  const p = new Proxy(stmt, {
    get(t, prop) {
      const v = t[prop];
      if (typeof v !== "function" || prop === "constructor") return v;
      if (prop === "bind") return (...a) => statement(s, t.bind(...a), name, sql, a);
      if (["all", "run", "first", "raw"].includes(prop)) return (...a) => d1Call(s, () => t[prop](...a), name);
      return v.bind(t);
    },
  });
  targets.set(p, stmt);
  if (s.record) recorded.set(p, [sql, params]);
  return p;
}

function database(s, db, name) {
  return new Proxy(db, {
    get(t, prop) {
      const v = t[prop];
      if (typeof v !== "function" || prop === "constructor") return v;
      if (prop === "prepare") return (sql) => statement(s, t.prepare(sql), name, sql);
      if (prop === "batch") {
        return (stmts) => {
          if (s.record) lastBatch = stmts.map((x) => recorded.get(x));
          return d1Call(s, () => t.batch(stmts.map((x) => targets.get(x) ?? x)), name, stmts.length);
        };
      }
      return v.bind(t);
    },
  });
}

function namespace(s, kv) {
  return new Proxy(kv, {
    get(t, prop) {
      const v = t[prop];
      if (typeof v !== "function" || prop === "constructor") return v;
      if (["get", "put", "delete", "getWithMetadata", "list"].includes(prop)) {
        return (key, ...a) => kvCall(s, String(key), () => t[prop](key, ...a));
      }
      return v.bind(t);
    },
  });
}

function wrap(env) {
  const s = settings(env);
  const out = { ...env };
  for (const name of Object.keys(env)) {
    if (name === "DB" || name.startsWith("SHARD_")) out[name] = database(s, env[name], name);
  }
  if (env.KV) out.KV = namespace(s, env.KV);
  return out;
}

export default class Edge extends WorkerEntrypoint {
  fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/__edge/last") return Response.json(lastBatch);
    if (url.pathname === "/__edge/batch" && request.method === "POST") return this.batch(request);
    if (url.pathname === "/__edge") {
      const now = { ...counts, elapsedMs: Date.now() - counts.since };
      if (url.searchParams.has("reset")) Object.assign(counts, { busyMs: {}, since: Date.now() });
      return Response.json(now);
    }
    return new Inner(this.ctx, wrap(this.env)).fetch(request);
  }

  async batch(request) {
    const db = wrap(this.env).DB;
    const list = await request.json();
    await db.batch(list.map(([sql, params]) => db.prepare(sql).bind(...params)));
    return new Response(null, { status: 204 });
  }

  scheduled(controller) {
    return new Inner(this.ctx, wrap(this.env)).scheduled(controller);
  }
}
