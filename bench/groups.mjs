// Benchmark: the cost of adding one member to a group of 100,000 members versus a group of 10,
// and of reading the large group, through the built Worker over HTTP.
//
// Runs the build in `build/` under Miniflare (one workerd, no `wrangler dev` proxy) on a
// temporary persisted D1, applied by wrangler's migrations.
// Bulk rows (users, memberships) are inserted with SQL for speed; everything timed goes
// through the Worker. Reports medians and percentiles from raw latencies; it asserts nothing.
//
//   node bench/groups.mjs [members=100000] [samples=200]

import { Miniflare } from "miniflare";
import { rmSync } from "node:fs";
import { workerOptions } from "../tests/integration/worker.mjs";
import { migrated, quiet } from "./common.mjs";

const BIG = Number(process.argv[2] ?? 100_000);
const SAMPLES = Number(process.argv[3] ?? 200);
const dir = migrated();

const ADMIN = "bench-admin-token";
const mf = new Miniflare({ ...workerOptions({ port: 0, persist: dir, adminToken: ADMIN }), ...quiet });
const url = await mf.ready;
const db = await mf.getD1Database("DB");

async function call(method, path, { token, body } = {}) {
  const headers = { "content-type": "application/scim+json", authorization: `Bearer ${token}` };
  const r = await fetch(new URL(path, url), { method, headers, body: body && JSON.stringify(body) });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return { status: r.status, text };
}

await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { subdomain: "bench" } });
const { token } = JSON.parse((await call("POST", "/admin/v1/tenants/bench/tokens", { token: ADMIN })).text);
// Node's fetch cannot set Host: use the path form of the Tenant URL.
const scim = (m, p, body) => call(m, `/tenants/bench/api/scim/v2${p}`, { token, body });
const { id: tenantId } = await db.prepare("SELECT id FROM tenants WHERE subdomain = 'bench'").first();

// Bulk users b1..bN and two probe users, then the two groups.
let t0 = performance.now();
await db
  .prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO users (tenant_id, id, user_name, user_name_key, external_id, active, manager_id, data, version, write_id, created_at, updated_at)
     SELECT ?, 'b' || i, 'bulk' || i || '@x.org', 'bulk' || i || '@x.org', NULL, 1, NULL,
            json_object('userName', 'bulk' || i || '@x.org', 'active', json('true')), 1, 'w', 0, 0 FROM n`,
  )
  .bind(BIG, tenantId)
  .run();
const probe = JSON.parse((await scim("POST", "/Users", { userName: "probe@x.org" })).text).id;
const big = JSON.parse((await scim("POST", "/Groups", { displayName: "Big" })).text).id;
const small = JSON.parse((await scim("POST", "/Groups", { displayName: "Small" })).text).id;
for (const [gid, n] of [[big, BIG], [small, 10]]) {
  await db
    .prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO memberships (tenant_id, group_id, member_id, member_type) SELECT ?, ?, 'b' || i, 'User' FROM n`,
    )
    .bind(n, tenantId, gid)
    .run();
}
const seeded = (await db.prepare("SELECT COUNT(*) AS n FROM memberships WHERE group_id = ?").bind(big).first()).n;
console.log(`seeded ${BIG} users and a group of ${seeded} members in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
function report(label, xs) {
  xs.sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(
    `${label.padEnd(44)} n=${xs.length}  median ${pct(xs, 50).toFixed(2)} ms  p90 ${pct(xs, 90).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  mean ${mean.toFixed(2)} ms`,
  );
}

async function timeMemberPatch(gid) {
  const adds = [];
  const removes = [];
  for (let i = 0; i < SAMPLES; i++) {
    let t = performance.now();
    await scim("PATCH", `/Groups/${gid}`, { Operations: [{ op: "Add", path: "members", value: [{ value: probe }] }] });
    adds.push(performance.now() - t);
    t = performance.now();
    await scim("PATCH", `/Groups/${gid}`, { Operations: [{ op: "Remove", path: "members", value: [{ value: probe }] }] });
    removes.push(performance.now() - t);
  }
  return { adds, removes };
}

// Warm up both paths, then interleave nothing: each group measured on its own.
await timeMemberPatch(small);
const s = await timeMemberPatch(small);
const b = await timeMemberPatch(big);
report("add 1 member, group of 10", s.adds);
report(`add 1 member, group of ${BIG}`, b.adds);
report("remove 1 member, group of 10", s.removes);
report(`remove 1 member, group of ${BIG}`, b.removes);

const reads = [];
let size = 0;
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  const r = await scim("GET", `/Groups/${big}`);
  reads.push(performance.now() - t);
  size = r.text.length;
  const members = JSON.parse(r.text).members.length;
  if (members !== BIG) throw new Error(`GET returned ${members} members, expected ${BIG}`);
}
report(`GET group of ${BIG} with all members (${(size / 1e6).toFixed(1)} MB)`, reads);
const lookups = [];
for (let i = 0; i < SAMPLES; i++) {
  const t = performance.now();
  await scim("GET", `/Groups?excludedAttributes=members&filter=${encodeURIComponent(`id eq "${big}" and members eq "b${1 + (i * 7919) % BIG}"`)}`);
  lookups.push(performance.now() - t);
}
report(`membership check in group of ${BIG}`, lookups);

await mf.dispose();
rmSync(dir, { recursive: true, force: true });
