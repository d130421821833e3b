// Benchmark: what the change feed and the provisioning log cost, and how much room they take.
//
// Runs a build (default `build/`) under Miniflare (one workerd, no `wrangler dev` proxy) on a
// temporary D1, creates USERS users through SCIM the way Entra's initial cycle does (8 at a
// time), then times Entra's `userName eq` lookups and more creations, closed loop. Every write
// now also writes its events and its log entry in the same batch, every read its log entry
// after the response: run it against a build from before the feed (`node bench/feed.mjs 10000
// /path/to/old/build`) to compare in the same harness. Then it measures, with SQLite's dbstat
// on the database file, the bytes per user, per event and per log entry (tables and their
// indexes). Reports figures; asserts nothing.
//
//   node bench/feed.mjs [users=10000] [build dir]

import { Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { workerOptions } from "../tests/integration/worker.mjs";
import { closedLoop, entraUser, migrated, quiet, root } from "./common.mjs";

const USERS = Number(process.argv[2] ?? 10_000);
const build = process.argv[3] ?? join(root, "build");
const dir = migrated("scim-edge-bench-feed-");

const ADMIN = "bench-admin-token";
const mf = new Miniflare({ ...workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build }), ...quiet });
const url = await mf.ready;

async function call(method, path, { token, body } = {}) {
  const headers = { "content-type": "application/scim+json", authorization: `Bearer ${token}` };
  const r = await fetch(new URL(path, url), { method, headers, body: body && JSON.stringify(body) });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text;
}
await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { subdomain: "bench" } });
const { token } = JSON.parse(await call("POST", "/admin/v1/tenants/bench/tokens", { token: ADMIN }));
const scim = (m, p, body) => call(m, `/tenants/bench/api/scim/v2${p}`, { token, body });

const show = (label, r) => console.log(`${label.padEnd(34)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`);

console.log(`build: ${build}`);
show(`POST /Users (${USERS}, initial cycle)`, await closedLoop(USERS, (i) => scim("POST", "/Users", entraUser(i))));
show("GET /Users?filter=userName eq", await closedLoop(4_000, (i) =>
  scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "user${(i * 7919) % USERS}@contoso.example"`)}`)));
show("POST /Users (2,000 more)", await closedLoop(2_000, (i) => scim("POST", "/Users", entraUser(USERS + i))));
show("PATCH active False (2,000)", await closedLoop(2_000, async (i) => {
  const found = JSON.parse(await scim("GET", `/Users?filter=${encodeURIComponent(`externalId eq "ext-${i}"`)}`));
  await scim("PATCH", `/Users/${found.Resources[0].id}`, { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [{ op: "Replace", path: "active", value: "False" }] });
}));
await mf.dispose();

// Bytes on disk per row, from the database file: each table with its indexes.
const d1 = join(dir, "v3/d1/miniflare-D1DatabaseObject");
const file = readdirSync(d1).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
const py = `
import sqlite3, json, sys
c = sqlite3.connect(sys.argv[1])
size = dict(c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
idx = dict(c.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index'").fetchall())
out = {}
for t in ["users", "user_values", "events", "logs"]:
    rows = c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    total = size.get(t, 0) + sum(v for k, v in size.items() if idx.get(k) == t)
    out[t] = [rows, total]
print(json.dumps(out))`;
const stats = JSON.parse(execFileSync("python3", ["-c", py, join(d1, file)], { encoding: "utf8" }));
const users = stats.users[0];
const perUser = (stats.users[1] + stats.user_values[1]) / users;
console.log(`storage: ${users} users, ${(perUser).toFixed(0)} bytes per user (users + user_values with indexes)`);
for (const t of ["events", "logs"]) {
  const [rows, bytes] = stats[t];
  if (rows > 0) console.log(`storage: ${rows} ${t}, ${(bytes / rows).toFixed(0)} bytes per row (with indexes)`);
}
rmSync(dir, { recursive: true, force: true });
