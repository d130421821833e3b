// The scale of sharding, by simulation (`make bench-shards`; figures, no assertions): 1,000
// organisations of 10 to 10,000 users (most small) on 1, 2 and 4 shards, under the edge
// wrapper (bench/edge.mjs) with each D1 database modelled as one writer: its calls are served
// one at a time, each holding it D1_SERVICE_MS per statement, after a 40 ms network delay.
//
// For each shard count: the organisations are created through the admin API (placement decides
// their shards), their users seeded by SQL on their shards, then two workloads run:
//   incremental   Entra-like incremental cycles of many organisations at once: per cycle, a
//                 filter on externalId and a PATCH that really changes the user's displayName
//                 (checked afterwards: every PATCH's value is read back)
//   initial       several organisations' initial cycles at once: each POSTs new users as fast
//                 as Entra pushes them (every create checked: 201 and the count at the end)
// and it reports requests per second, p50/p99 latency, and each shard's utilisation (the time
// its writer was busy over the run), then the bytes of each shard after seeding.
//
//   node bench/shards.mjs [--shards 1,2,4] [--orgs 1000]

import { Miniflare } from "miniflare";
import { rmSync } from "node:fs";
import { workerOptions } from "../tests/integration/worker.mjs";
import { edgeModule, entraUser, migrated, quiet, root } from "./common.mjs";
import { join } from "node:path";

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const SHARD_COUNTS = arg("--shards", "1,2,4").split(",").map(Number);
const ORGS = Number(arg("--orgs", "1000"));
const D1_SERVICE_MS = 0.5;
const EDGE = { d1Ms: 40, oneWriter: true, d1ServiceMs: D1_SERVICE_MS };
const ADMIN = "bench-admin-token";
const BUILD = join(root, "build");
// Incremental cycles: this many organisations at once, each this many changed users.
const INCREMENTAL_ORGS = 200;
const INCREMENTAL_USERS = 5;
// Initial cycles: this many organisations at once, each pushing this many users, this many
// requests in flight per organisation (Entra pushes at 25+ requests per second).
const INITIAL_ORGS = 8;
const INITIAL_USERS = 200;
const INITIAL_CONCURRENCY = 8;

/** Organisation sizes: most small, a few large (10 to 10,000 users; seeded by position). */
function sizeOf(i) {
  const u = ((i * 7919) % ORGS) / ORGS; // a fixed spread over [0, 1)
  return Math.round(10 * Math.pow(1000, u ** 3));
}

async function run(shards) {
  const dir = migrated("scim-edge-bench-shards-", shards);
  const base = workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build: BUILD, shards });
  const mf = new Miniflare({
    ...quiet,
    ...base,
    modules: [edgeModule(BUILD), ...base.modules],
    bindings: { ...base.bindings, EDGE: JSON.stringify(EDGE) },
  });
  const url = await mf.ready;
  const call = async (method, path, token, body, expect) => {
    const r = await fetch(new URL(path, url), {
      method,
      headers: { "content-type": "application/scim+json", authorization: `Bearer ${token}` },
      body: body && JSON.stringify(body),
    });
    const text = await r.text();
    if (expect && r.status !== expect) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 200)}`);
    return { status: r.status, json: text ? JSON.parse(text) : null, headers: r.headers };
  };
  const dbs = {};
  for (const b of Object.keys(base.d1Databases)) dbs[b] = await mf.getD1Database(b);

  // The organisations, placed by the Worker (the admin API, as a vendor creates them).
  let t = performance.now();
  const orgs = [];
  // A few at a time: creations at the very same moment see the same sizes and counts.
  for (let i = 0; i < ORGS; i += 5) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(5, ORGS - i) }, (_, k) =>
        call("POST", "/admin/v1/tenants", ADMIN, { subdomain: `org${i + k}` }, 201).then((r) => r.json),
      ),
    );
    orgs.push(...batch);
  }
  const created = performance.now() - t;
  // A template user from SCIM (what Entra sends), then every organisation's users copied from
  // it by SQL on the organisation's shard.
  t = performance.now();
  const template = orgs[0];
  const { token: templateToken } = (await call("POST", `/admin/v1/tenants/${template.subdomain}/tokens`, ADMIN, undefined, 201)).json;
  await call("POST", `/tenants/${template.subdomain}/api/scim/v2/Users`, templateToken, entraUser(0), 201);
  const tdb = dbs[template.shard];
  const tu = await tdb.prepare("SELECT * FROM users WHERE tenant_id = ?").bind(template.id).first();
  const tv = (await tdb.prepare("SELECT * FROM user_values WHERE tenant_id = ?").bind(template.id).all()).results;
  await tdb.batch([
    tdb.prepare("DELETE FROM user_values WHERE tenant_id = ?").bind(template.id),
    tdb.prepare("DELETE FROM users WHERE tenant_id = ?").bind(template.id),
  ]);
  let users = 0;
  for (const [i, o] of orgs.entries()) {
    const n = sizeOf(i);
    users += n;
    const db = dbs[o.shard];
    const seq = "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)";
    const name = (col) => `replace(${col}, 'user0@', 'user' || n || '@')`;
    await db.batch([
      db
        .prepare(
          `${seq} INSERT INTO users (tenant_id, id, user_name, user_name_key, external_id, active, manager_id, data, version, write_id, created_at, updated_at) ` +
            `SELECT ?, 'u' || n, ${name("?")}, ${name("?")}, 'ext-' || n, 1, NULL, replace(replace(?, 'user0@', 'user' || n || '@'), '"ext-0"', '"ext-' || n || '"'), 1, 'seed', ?, ? FROM k`,
        )
        .bind(n, o.id, tu.user_name, tu.user_name_key, tu.data, tu.created_at, tu.updated_at),
      ...tv.map((v) =>
        db
          .prepare(
            `${seq} INSERT INTO user_values (tenant_id, user_id, attr, value, type, display, is_primary, value_key) ` +
              `SELECT ?, 'u' || n, ?, ${name("?")}, ?, ?, ?, ${name("?")} FROM k`,
          )
          .bind(n, o.id, v.attr, v.value, v.type, v.display, v.is_primary, v.value_key),
      ),
    ]);
  }
  const seeded = performance.now() - t;
  const figures = (await call("GET", "/admin/v1/shards", ADMIN, undefined, 200)).json.items;

  // Tokens for the organisations the workloads use: the largest ones for the initial cycles'
  // neighbours, a spread for the incremental ones.
  const tokens = new Map();
  const tokenOf = async (o) => {
    if (!tokens.has(o.subdomain)) {
      tokens.set(o.subdomain, (await call("POST", `/admin/v1/tenants/${o.subdomain}/tokens`, ADMIN, undefined, 201)).json.token);
    }
    return tokens.get(o.subdomain);
  };
  const scim = async (o, method, path, body, expect) => call(method, `/tenants/${o.subdomain}/api/scim/v2${path}`, await tokenOf(o), body, expect);
  const incOrgs = orgs.filter((_, i) => sizeOf(i) >= INCREMENTAL_USERS).slice(1, 1 + INCREMENTAL_ORGS);
  for (const o of incOrgs) await tokenOf(o);
  // Organisations placed on every shard in turn (as a vendor's new customers arrive).
  const byShard = Object.keys(dbs).map((b) => orgs.filter((o) => o.shard === b).slice(-INITIAL_ORGS));
  const initOrgs = Array.from({ length: INITIAL_ORGS }, (_, i) => byShard[i % byShard.length][Math.floor(i / byShard.length)]).filter(Boolean);
  for (const o of initOrgs) await tokenOf(o);

  const edge = async (reset) => (await fetch(new URL(`/__edge${reset ? "?reset" : ""}`, url))).json();
  const measure = async (name, work) => {
    await edge(true);
    const lat = [];
    const t0 = performance.now();
    const n = await work(async (f) => {
      const s = performance.now();
      const r = await f();
      lat.push(performance.now() - s);
      return r;
    });
    const secs = (performance.now() - t0) / 1000;
    const e = await edge(false);
    lat.sort((a, b) => a - b);
    const p = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
    const util = Object.fromEntries(Object.entries(e.busyMs).map(([b, ms]) => [b, ms / e.elapsedMs]));
    const busiest = Math.max(0, ...Object.values(util));
    return { name, requests: n, rps: n / secs, p50: p(0.5), p99: p(0.99), busiest, util };
  };

  // Incremental cycles of many organisations at once: each a filter then a real change.
  const stamp = Date.now();
  const incremental = await measure("incremental", async (timed) => {
    let n = 0;
    await Promise.all(
      incOrgs.map(async (o) => {
        for (let k = 1; k <= INCREMENTAL_USERS; k++) {
          const filter = encodeURIComponent(`externalId eq "ext-${k}"`);
          const found = await timed(() => scim(o, "GET", `/Users?filter=${filter}`, undefined, 200));
          const id = found.json.Resources[0].id;
          const patch = { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [{ op: "Replace", path: "displayName", value: `Cycle ${stamp} ${k}` }] };
          await timed(() => scim(o, "PATCH", `/Users/${id}`, patch, 200));
          n += 2;
        }
      }),
    );
    return n;
  });
  // Every PATCH changed its user: read back.
  let changed = 0;
  for (const o of incOrgs) {
    for (let k = 1; k <= INCREMENTAL_USERS; k++) {
      const r = await scim(o, "GET", `/Users/u${k}`, undefined, 200);
      if (r.json.displayName === `Cycle ${stamp} ${k}`) changed++;
    }
  }
  if (changed !== incOrgs.length * INCREMENTAL_USERS) throw new Error(`only ${changed} changes read back`);

  // Several initial cycles at once: each organisation pushes new users.
  const initial = await measure("initial", async (timed) => {
    let n = 0;
    await Promise.all(
      initOrgs.flatMap((o) =>
        Array.from({ length: INITIAL_CONCURRENCY }, async (_, w) => {
          for (let i = w; i < INITIAL_USERS; i += INITIAL_CONCURRENCY) {
            const user = { ...entraUser(100000 + i), externalId: `init-${i}`, userName: `init${i}@contoso.example` };
            await timed(() => scim(o, "POST", "/Users", user, 201));
            n++;
          }
        }),
      ),
    );
    return n;
  });
  for (const o of initOrgs) {
    const r = await scim(o, "GET", `/Users?filter=${encodeURIComponent('userName sw "init"')}&count=1`, undefined, 200);
    if (r.json.totalResults !== INITIAL_USERS) throw new Error(`${o.subdomain}: ${r.json.totalResults} of ${INITIAL_USERS} created`);
  }
  await mf.dispose();
  rmSync(dir, { recursive: true, force: true });
  return { shards, created, seeded, users, figures, rows: [incremental, initial] };
}

const mb = (b) => (b / 1e6).toFixed(1);
const results = [];
for (const n of SHARD_COUNTS) {
  const r = await run(n);
  results.push(r);
  console.log(`\n## ${n} shard${n > 1 ? "s" : ""}: ${ORGS} organisations, ${r.users.toLocaleString("en")} users`);
  console.log(`created in ${(r.created / 1000).toFixed(1)} s, seeded in ${(r.seeded / 1000).toFixed(1)} s`);
  console.log("| shard | organisations | users | MB |");
  console.log("|---|---:|---:|---:|");
  for (const f of r.figures) console.log(`| ${f.binding} | ${f.tenants} | ${f.users.toLocaleString("en")} | ${mb(f.bytes)} |`);
  console.log("\n| workload | requests | req/s | p50 ms | p99 ms | busiest shard | utilisation per shard |");
  console.log("|---|---:|---:|---:|---:|---:|---|");
  for (const w of r.rows) {
    const per = Object.entries(w.util).sort().map(([b, u]) => `${b} ${(u * 100).toFixed(0)}%`).join(", ");
    console.log(`| ${w.name} | ${w.requests} | ${w.rps.toFixed(0)} | ${w.p50.toFixed(0)} | ${w.p99.toFixed(0)} | ${(w.busiest * 100).toFixed(0)}% | ${per} |`);
  }
}
console.log("\n## Throughput by shard count");
console.log("| shards | incremental req/s | initial req/s | incremental p99 ms | initial p99 ms |");
console.log("|---:|---:|---:|---:|---:|");
for (const r of results) {
  const [inc, init] = r.rows;
  console.log(`| ${r.shards} | ${inc.rps.toFixed(0)} | ${init.rps.toFixed(0)} | ${inc.p99.toFixed(0)} | ${init.p99.toFixed(0)} |`);
}
