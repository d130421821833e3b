// `make bench`: scim-edge beside the platform floor (bench/floor, a Rust Worker that only
// authenticates and makes one indexed D1 call), in the same workerd, on the same seeded data.
//
//   node bench/compare.mjs [--sizes 1000,10000,100000] [--edge] [--rounds 3] [--build dir] [--shards 3]
//
// For each organisation size: the first 1,000 users are created over SCIM the way Entra's
// initial cycle sends them; beyond that they are copies made with SQL (same shape, their own
// userName, externalId and emails), so that 100,000 users take seconds. Then, closed loop with
// 8 connections, each operation of Entra's cycle against the floor, rounds rotated:
//
//   floor-kv   one KV get (the token's grant, warm), then one D1 statement
//   floor-d1   one D1 statement that checks the token itself (no KV)
//   scim-edge  the real request
//
// Reported per operation: req/s (median of the rounds) and its ratio to floor-kv's, raw p50 and
// p99 (closed loop: no coordinated-omission correction), CPU ms per request of the workerd
// process (/proc), and the binding calls per request read from the `Server-Timing` header.
// Then, serially, how each lookup grows from the smallest organisation to the largest, and a
// page deep in the list against the first page. `--edge` runs everything again with the
// bindings delayed as at the edge (bench/edge.mjs: D1 40 ms, KV 1 ms hot, 25 ms cold).
// `--shards N` puts the organisation on the last of N shards, and a second one of the same
// size on DB, measured in the same rounds: their ratios, round by round, say what the shard
// costs without the noise between two separate runs.
// Figures only, but every measured write is a real change, and checked: POST creates a user
// each time, the disable row turns a different active user inactive each time, the update row
// gives a different user values no user had, and the member row adds a different non-member
// each time (their counts read back after the row).

import { Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { cpus } from "node:os";
import { join } from "node:path";
import { shardDatabases, workerOptions } from "../tests/integration/worker.mjs";
import { closedLoop, cpuMs, edgeModule, entraUser, flag, migrated, option, quiet, root, sender, workerdPids } from "./common.mjs";

const SIZES = option("sizes", "1000,10000,100000").split(",").map(Number);
const ROUNDS = Number(option("rounds", 3));
const BUILD = option("build", join(root, "build"));
const FLOOR = join(root, "bench/floor/build");
const EDGE_TOO = flag("edge");
// `--shards N`: N shards, the organisation on the last one (the floor reads that database).
const SHARDS = Number(option("shards", 1));
const HOME = SHARDS > 1 ? `SHARD_${SHARDS}` : "DB";
// Only the serial growth tables, not the operations beside the floor.
const GROWTH_ONLY = flag("growth-only");
const CONCURRENCY = 8;
const EDGE = { d1Ms: 40, kvMs: 1, kvColdMs: 25 };
const ADMIN = "bench-admin-token";
const TEMPLATES = 1000;

/** scim-edge and the floor in one workerd, both behind the edge wrapper, sharing D1 and KV. */
function options(dir, edge) {
  const scim = workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build: BUILD, shards: SHARDS });
  const bindings = { ...scim.bindings, EDGE: JSON.stringify(edge) };
  // KV only for floor-kv: scim-edge has no KV binding.
  const shared = { compatibilityDate: scim.compatibilityDate, d1Databases: scim.d1Databases, kvNamespaces: { KV: "bench" } };
  return {
    host: scim.host,
    port: 0,
    d1Persist: scim.d1Persist,
    kvPersist: join(dir, "v3/kv"),
    workers: [
      { name: "scim", ...shared, modulesRoot: BUILD, modules: [edgeModule(BUILD), ...scim.modules], bindings },
      {
        name: "floor",
        ...shared,
        d1Databases: { DB: shardDatabases(SHARDS)[HOME] },
        routes: ["*/kv/*", "*/d1/*"],
        modulesRoot: FLOOR,
        modules: [
          edgeModule(FLOOR),
          { type: "ESModule", path: join(FLOOR, "index.js") },
          { type: "CompiledWasm", path: join(FLOOR, "index_bg.wasm") },
        ],
        bindings: { EDGE: JSON.stringify(edge) },
      },
    ],
  };
}

// Users beyond the templates are `user{i}-{n}@…` / `ext-{i}-{n}` (see `clone`).
const nameOf = (k) => (k < TEMPLATES ? `user${k}@contoso.example` : `user${k % TEMPLATES}-${Math.floor(k / TEMPLATES)}@contoso.example`);
const extOf = (k) => (k < TEMPLATES ? `ext-${k}` : `ext-${k % TEMPLATES}-${Math.floor(k / TEMPLATES)}`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run(size, edge) {
  const dir = migrated("scim-edge-bench-", SHARDS);
  const mf = new Miniflare({ ...options(dir, edge), ...quiet });
  const started = performance.now();
  const url = await mf.ready;
  const ready = performance.now() - started;
  const pids = workerdPids();
  const send = sender(url);
  const t0 = performance.now();
  const first = await send("GET", "/admin/v1/tenants", ADMIN, undefined, 200);
  const firstMs = performance.now() - t0;
  /** Organisation `sub` on shard `binding` with `size` users: the first 1,000 created over
   * SCIM, the rest copied by SQL; 64 of their ids and an empty group. */
  async function organisation(sub, binding) {
    await send("POST", "/admin/v1/tenants", ADMIN, { subdomain: sub, shard: binding }, 201);
    const { token } = JSON.parse((await send("POST", `/admin/v1/tenants/${sub}/tokens`, ADMIN, undefined, 201)).body_);
    const scim = (m, p, body, expect) => send(m, `/tenants/${sub}/api/scim/v2${p}`, token, body, expect);
    const db = await mf.getD1Database(binding);
    const { id: tenantId } = await db.prepare("SELECT id FROM tenants WHERE subdomain = ?").bind(sub).first();
    const t = performance.now();
    const templates = Math.min(size, TEMPLATES);
    await closedLoop(templates, (i) => scim("POST", "/Users", entraUser(i), 201));
    const copies = Math.ceil(size / TEMPLATES) - 1;
    if (copies > 0) {
      const cols = (await db.prepare("SELECT name FROM pragma_table_info('users')").all()).results.map((r) => r.name);
      const vcols = (await db.prepare("SELECT name FROM pragma_table_info('user_values')").all()).results.map((r) => r.name);
      // Copy k of template user `user{i}@…`/`ext-{i}` is `user{i}-{k}@…`/`ext-{i}-{k}`.
      const tag = (e, k) => `replace(${e}, '@contoso', '-${k}@contoso')`;
      const userExpr = (k) => ({
        id: `id || '-${k}'`,
        user_name: tag("user_name", k),
        user_name_key: tag("user_name_key", k),
        external_id: `external_id || '-${k}'`,
        data: `replace(${tag("data", k)}, '"externalId":"' || external_id || '"', '"externalId":"' || external_id || '-${k}"')`,
        created_at: `created_at + ${k} * 100000000`,
        updated_at: `updated_at + ${k} * 100000000`,
      });
      const valueExpr = (k) => ({ user_id: `user_id || '-${k}'`, value: tag("value", k), value_key: tag("value_key", k) });
      // Template ids are UUIDs (four dashes); copies have a fifth.
      const templatesOnly = "tenant_id = ? AND id NOT LIKE '%-%-%-%-%-%'";
      for (let k = 1; k <= copies; k++) {
        const ue = userExpr(k);
        const ve = valueExpr(k);
        await db.batch([
          db.prepare(`INSERT INTO users (${cols.join(", ")}) SELECT ${cols.map((x) => ue[x] ?? x).join(", ")} FROM users WHERE ${templatesOnly}`).bind(tenantId),
          db
            .prepare(`INSERT INTO user_values (${vcols.join(", ")}) SELECT ${vcols.map((x) => ve[x] ?? x).join(", ")} FROM user_values WHERE ${templatesOnly.replace("id NOT", "user_id NOT")}`)
            .bind(tenantId),
        ]);
      }
    }
    const { n } = await db.prepare("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ?").bind(tenantId).first();
    const seeded = (performance.now() - t) / 1000;
    const ids = [];
    const probe = async (k) => JSON.parse((await scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "${nameOf(k)}"`)}`, undefined, 200)).body_).Resources[0].id;
    for (let i = 0; i < 64; i++) ids.push(await probe((i * 7919) % size));
    const group = JSON.parse((await scim("POST", "/Groups", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "Bench Group" }, 201)).body_).id;
    return { sub, binding, token, scim, db, tenantId, n, seeded, ids, group };
  }

  const main = await organisation("bench", HOME);
  // With several shards, the same operations on an organisation on DB too, in the same rounds:
  // a paired comparison of one shard's organisation with another's, free of the run-to-run
  // noise that two separate runs carry.
  const beside = SHARDS > 1 && !GROWTH_ONLY ? await organisation("bench-db", "DB") : null;
  const { scim, ids, token } = main;
  const kv = await mf.getKVNamespace("KV");
  const hash = createHash("sha256").update(token).digest("hex");
  await kv.put(`floor:${hash}`, JSON.stringify({ tenant_id: main.tenantId }));
  console.log(`\n## ${main.n.toLocaleString("en")} users${edge.d1Ms ? ` (edge: D1 ${edge.d1Ms} ms, KV ${edge.kvMs} ms hot / ${edge.kvColdMs} ms cold)` : ""}`);
  console.log(`seeded in ${main.seeded.toFixed(1)} s; workerd ready in ${ready.toFixed(0)} ms, first request ${firstMs.toFixed(0)} ms (${first.status})`);

  const pick = (i) => (i * 7919 + 13) % size;
  const floor = (mode, m, p, body) => send(m, `/${mode}${p}`, token, body);
  const light = edge.d1Ms ? 0.1 : 1;
  const N = (x) => Math.max(40, Math.round(x * light));

  /** The operations of the table on organisation `o`. */
  function operations(o) {
    const { scim, ids, group, db, tenantId } = o;
    // The ids a write row changes, one per request (taken from the end).
    let pool = [];
    const column = async (sql, limit) => (await db.prepare(sql).bind(tenantId, limit).all()).results.map((r) => r.id);
    const count = async (sql) => (await db.prepare(sql).bind(tenantId).first()).n;
    let created = 0;
    let updated = 0;
    return [
      {
        label: "GET userName eq",
        kind: "read",
        n: N(3000),
        scim: (i) => scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "${nameOf(pick(i))}"`)}`, undefined, 200),
      },
      { label: "GET /Users/{id}", kind: "read", n: N(3000), scim: (i) => scim("GET", `/Users/${ids[i % ids.length]}`, undefined, 200) },
      {
        label: "GET externalId eq",
        kind: "read",
        n: N(3000),
        scim: (i) => scim("GET", `/Users?filter=${encodeURIComponent(`externalId eq "${extOf(pick(i))}"`)}`, undefined, 200),
      },
      { label: "POST /Users", kind: "write", n: N(1500), scim: () => scim("POST", "/Users", entraUser(10_000_000 + created++), 201) },
      {
        // Each request disables a user that is active (a different one every time): a real
        // change, checked by the count of inactive users afterwards.
        label: "PATCH active False (Entra disable)",
        kind: "write",
        n: N(1500),
        prepare: async (total) => {
          pool = await column("SELECT id FROM users WHERE tenant_id = ? AND active = 1 ORDER BY id LIMIT ?", total);
          return count("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND active = 0");
        },
        scim: () => scim("PATCH", `/Users/${pool.pop()}`, { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [{ op: "Replace", path: "active", value: "False" }] }, 200),
        verify: async (total, before) => {
          const after = await count("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND active = 0");
          return [after - before === total, `${after - before} of ${total} users disabled`];
        },
      },
      {
        // Entra's attribute update: each request gives a different user a new displayName, title
        // and department (values no user had): checked by the count of users holding them.
        label: "PATCH attributes (Entra update)",
        kind: "write",
        n: N(1500),
        prepare: async (total) => {
          pool = await column("SELECT id FROM users WHERE tenant_id = ? ORDER BY id DESC LIMIT ?", total);
          return count("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND json_extract(data, '$.displayName') LIKE 'Updated %'");
        },
        scim: () => {
          const k = updated++;
          return scim("PATCH", `/Users/${pool.pop()}`, {
            schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            Operations: [
              { op: "Replace", path: "displayName", value: `Updated ${k}` },
              { op: "Replace", path: "title", value: `Title ${k}` },
              { op: "Add", path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", value: `Dept ${k}` },
            ],
          }, 200);
        },
        verify: async (total, before) => {
          const after = await count("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND json_extract(data, '$.displayName') LIKE 'Updated %'");
          return [after - before === total, `${after - before} of ${total} users updated`];
        },
      },
      {
        // Each request adds a user that is not yet a member: checked by the group's size.
        label: "PATCH group add member",
        kind: "write",
        n: N(1500),
        prepare: async (total) => {
          pool = await column("SELECT id FROM users WHERE tenant_id = ? ORDER BY id LIMIT ?", total);
          return count(`SELECT COUNT(*) AS n FROM memberships WHERE tenant_id = ? AND group_id = '${group}'`);
        },
        scim: () => scim("PATCH", `/Groups/${group}`, { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [{ op: "Add", path: "members", value: [{ value: pool.pop() }] }] }, 204),
        verify: async (total, before) => {
          const after = await count(`SELECT COUNT(*) AS n FROM memberships WHERE tenant_id = ? AND group_id = '${group}'`);
          return [after - before === total, `${after - before} of ${total} members added`];
        },
      },
      {
        label: "GET /Groups?excludedAttributes=members&filter",
        kind: "read",
        n: N(3000),
        scim: () => scim("GET", `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "Bench Group"')}`, undefined, 200),
      },
    ];
  }
  const ops = operations(main);
  const besides = beside && operations(beside);
  const BESIDE = `scim-edge on DB`;
  let floorNames = 0;
  const floors = {
    read: {
      "floor-kv": (i) => floor("kv", "GET", `/user?name=${encodeURIComponent(nameOf(pick(i)))}`),
      "floor-d1": (i) => floor("d1", "GET", `/user?name=${encodeURIComponent(nameOf(pick(i)))}`),
    },
    write: {
      "floor-kv": () => floor("kv", "POST", "/user", entraUser(20_000_000 + floorNames++)),
      "floor-d1": () => floor("d1", "POST", "/user", entraUser(20_000_000 + floorNames++)),
    },
  };
  const table = [];
  const pairs = [];
  const floorDone = {};
  for (const [k, op] of (GROWTH_ONLY ? [] : ops).entries()) {
    const mine = besides ? [op, besides[k]] : [op];
    const runs = { ...(floorDone[op.kind] ? {} : floors[op.kind]), "scim-edge": op.scim, ...(besides ? { [BESIDE]: besides[k].scim } : {}) };
    const got = Object.fromEntries(Object.keys(runs).map((name) => [name, []]));
    const total = op.n * ROUNDS;
    const before = [];
    for (const o of mine) {
      before.push(o.prepare ? await o.prepare(total) : 0);
    }
    for (let r = 0; r < ROUNDS; r++) {
      const names = Object.keys(runs);
      for (const name of names.slice(r % names.length).concat(names.slice(0, r % names.length))) {
        const c0 = cpuMs(pids);
        const res = await closedLoop(op.n, runs[name], CONCURRENCY);
        res.cpu = (cpuMs(pids) - c0) / op.n;
        got[name].push(res);
      }
    }
    for (const [j, o] of mine.entries()) {
      if (!o.verify) continue;
      const [ok, said] = await o.verify(total, before[j]);
      console.log(`checked ${op.label}${j ? " (on DB)" : ""}: ${said}`);
      if (!ok) throw new Error(`${op.label} did not change what it measured: ${said}`);
    }
    for (const [name, rs] of Object.entries(got)) {
      const row = {
        op: name.startsWith("scim-edge") ? op.label : `${op.kind === "read" ? "GET one user" : "POST one user"}`,
        who: name,
        kind: op.kind,
        rps: median(rs.map((x) => x.rps)),
        p50: median(rs.map((x) => x.p50)),
        p99: median(rs.map((x) => x.p99)),
        cpu: median(rs.map((x) => x.cpu)),
        calls: rs[0].calls,
      };
      if (!name.startsWith("scim-edge")) floorDone[op.kind] = { ...(floorDone[op.kind] ?? {}), [name]: row };
      table.push(row);
    }
    // Round by round, the organisation on HOME against the one on DB (the same round's two runs).
    if (besides) {
      const ratio = (f) => median(got["scim-edge"].map((x, r) => f(x) / f(got[BESIDE][r])));
      pairs.push({ op: op.label, rps: ratio((x) => x.rps), cpu: ratio((x) => x.cpu) });
    }
  }
  if (table.length) {
    console.log("| operation | worker | req/s | × floor-kv | p50 ms | p99 ms | CPU ms/req | × floor-kv CPU | D1 calls | KV calls |");
    console.log("|---|---|---|---|---|---|---|---|---|---|");
  }
  for (const row of table) {
    const base = floorDone[row.kind]["floor-kv"];
    // The floors make one D1 call by construction (and floor-kv one KV get); scim-edge has no KV
    // binding, and its D1 calls come from Server-Timing.
    const c = [row.calls ? row.calls.d1.toFixed(2) : "1", row.who === "floor-kv" ? "1" : "0"];
    console.log(
      `| ${row.op} | ${row.who} | ${row.rps.toFixed(0)} | ${(row.rps / base.rps).toFixed(2)} | ${row.p50.toFixed(1)} | ${row.p99.toFixed(1)} | ${row.cpu.toFixed(2)} | ${(row.cpu / base.cpu).toFixed(2)} | ${c[0]} | ${c[1]} |`,
    );
  }
  if (pairs.length) {
    console.log(`\nThe organisation on ${HOME} against the one on DB, the same rounds (median of the rounds' ratios):`);
    console.log(`| operation | req/s, ${HOME} ÷ DB | CPU per request, ${HOME} ÷ DB |`);
    console.log("|---|---|---|");
    for (const p of pairs) console.log(`| ${p.op} | ${p.rps.toFixed(2)} | ${p.cpu.toFixed(2)} |`);
  }

  // Serial lookups (medians of 300) and pages, for the growth table.
  const serial = async (n, request) => {
    const lat = [];
    for (let i = 0; i < n; i++) {
      const t1 = performance.now();
      await request(i);
      lat.push(performance.now() - t1);
    }
    return median(lat);
  };
  const S = edge.d1Ms ? 40 : 300;
  const growth = {
    "userName eq": await serial(S, (i) => scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "${nameOf(pick(i))}"`)}`, undefined, 200)),
    "externalId eq": await serial(S, (i) => scim("GET", `/Users?filter=${encodeURIComponent(`externalId eq "${extOf(pick(i))}"`)}`, undefined, 200)),
    'emails[type eq "work"].value eq': await serial(S, (i) => scim("GET", `/Users?filter=${encodeURIComponent(`emails[type eq "work"].value eq "${nameOf(pick(i))}"`)}`, undefined, 200)),
    "GET /Users/{id}": await serial(S, (i) => scim("GET", `/Users/${ids[i % ids.length]}`, undefined, 200)),
    "first page (count=100)": await serial(Math.round(S / 3), () => scim("GET", "/Users?startIndex=1&count=100", undefined, 200)),
    "page at the middle (count=100)": await serial(Math.round(S / 3), () => scim("GET", `/Users?startIndex=${Math.floor(size / 2) + 1}&count=100`, undefined, 200)),
    // Okta's import: the next page after the previous one, from the middle on (the Worker
    // remembers where each page ended and seeks past it).
    "next page from the middle, in sequence": await serial(Math.round(S / 3), (i) => scim("GET", `/Users?startIndex=${Math.floor(size / 2) + 1 + 100 * i}&count=100`, undefined, 200)),
  };
  await mf.dispose();
  rmSync(dir, { recursive: true, force: true });
  return growth;
}

const wasm = (d) => readFileSync(join(d, "index_bg.wasm"));
for (const [name, d] of [["scim-edge", BUILD], ["floor", FLOOR]]) {
  const bytes = wasm(d);
  const gz = execFileSync("gzip", ["-9c"], { input: bytes }).length;
  console.log(`${name}: wasm ${bytes.length.toLocaleString("en")} B (${gz.toLocaleString("en")} B gzip)`);
}
console.log(`machine: ${cpus().length} × ${cpus()[0].model}; ${CONCURRENCY} connections, ${ROUNDS} rotated rounds, medians; ${SHARDS} shard(s), the organisation on ${HOME}`);

for (const edge of EDGE_TOO ? [{}, EDGE] : [{}]) {
  const growth = {};
  for (const size of SIZES) growth[size] = await run(size, edge);
  const [lo, hi] = [SIZES[0], SIZES[SIZES.length - 1]];
  console.log(`\n## Growth, serial medians (ms)${edge.d1Ms ? " at the edge" : ""}`);
  console.log(`| lookup | ${SIZES.map((s) => s.toLocaleString("en")).join(" | ")} | ${hi.toLocaleString("en")} / ${lo.toLocaleString("en")} |`);
  console.log(`|---|${SIZES.map(() => "---|").join("")}---|`);
  for (const k of Object.keys(growth[lo])) {
    console.log(`| ${k} | ${SIZES.map((s) => growth[s][k].toFixed(2)).join(" | ")} | ${(growth[hi][k] / growth[lo][k]).toFixed(2)}× |`);
  }
  for (const s of SIZES) {
    console.log(`deep page at ${s.toLocaleString("en")} users: ${(growth[s]["page at the middle (count=100)"] / growth[s]["first page (count=100)"]).toFixed(2)}× the first page`);
  }
}
