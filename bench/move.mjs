// Moving one organisation of 10,000 users to another shard while a client keeps writing to it
// (`make bench-shards` runs it after shards.mjs; figures, no assertions beyond "nothing lost").
//
// Two shards under the edge wrapper (40 ms per D1 call; `--local` for none): the organisation's
// users are created by SCIM as Entra sends them (the first 1,000) and copied by SQL (the rest),
// each with its creation event; then a client PATCHes users one after the other (each a real
// change, read back at the end) while POST …/move runs, the Cron Trigger carrying it on. It
// reports how long the move took, how long the switch refused writes (the freeze), how many
// 503s the client met and how long they lasted, and checks every user and every event arrived
// once.
//
//   node bench/move.mjs [--users 10000] [--local]

import { Miniflare } from "miniflare";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { workerOptions } from "../tests/integration/worker.mjs";
import { closedLoop, edgeModule, entraUser, migrated, quiet, root } from "./common.mjs";

const args = process.argv.slice(2);
const USERS = Number(args[args.indexOf("--users") + 1] || 10000) || 10000;
const LOCAL = args.includes("--local");
const EDGE = LOCAL ? {} : { d1Ms: 40 };
const ADMIN = "bench-admin-token";
const BUILD = join(root, "build");
const TEMPLATES = Math.min(USERS, 1000);

const dir = migrated("scim-edge-bench-move-", 2);
const base = workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build: BUILD, shards: 2 });
const mf = new Miniflare({
  ...quiet,
  ...base,
  modules: [edgeModule(BUILD), ...base.modules],
  bindings: { ...base.bindings, EDGE: JSON.stringify(EDGE) },
});
const url = await mf.ready;
async function call(method, path, token, body, ok = [200, 201, 202, 204]) {
  const r = await fetch(new URL(path, url), {
    method,
    headers: { "content-type": "application/scim+json", authorization: `Bearer ${token}` },
    body: body && JSON.stringify(body),
  });
  const text = await r.text();
  if (!ok.includes(r.status)) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
  return { status: r.status, json: text ? JSON.parse(text) : null, retryAfter: r.headers.get("retry-after") };
}

const org = (await call("POST", "/admin/v1/tenants", ADMIN, { subdomain: "mover", shard: "DB" })).json;
const { token } = (await call("POST", "/admin/v1/tenants/mover/tokens", ADMIN)).json;
const scim = (m, p, body, ok) => call(m, `/tenants/mover/api/scim/v2${p}`, token, body, ok);
let t = performance.now();
await closedLoop(TEMPLATES, (i) => scim("POST", "/Users", entraUser(i)));
const db = await mf.getD1Database("DB");
// Copies k of the templates, with their values and their creation events.
for (let k = 1; k * TEMPLATES < USERS; k++) {
  const tag = (e) => `replace(${e}, '@contoso', '-${k}@contoso')`;
  await db.batch([
    db
      .prepare(
        `INSERT INTO users (tenant_id, id, user_name, user_name_key, external_id, active, manager_id, data, version, write_id, created_at, updated_at) ` +
          `SELECT tenant_id, id || '-${k}', ${tag("user_name")}, ${tag("user_name_key")}, external_id || '-${k}', active, manager_id, ${tag("data")}, version, write_id, created_at, updated_at ` +
          `FROM users WHERE tenant_id = ? AND id NOT LIKE '%-%-%-%-%-%'`,
      )
      .bind(org.id),
    db
      .prepare(
        `INSERT INTO user_values (tenant_id, user_id, attr, value, type, display, is_primary, value_key) ` +
          `SELECT tenant_id, user_id || '-${k}', attr, ${tag("value")}, type, display, is_primary, ${tag("value_key")} ` +
          `FROM user_values WHERE tenant_id = ? AND user_id NOT LIKE '%-%-%-%-%-%'`,
      )
      .bind(org.id),
    db
      .prepare(
        `INSERT INTO events (tenant_id, type, resource_id, at, data) SELECT tenant_id, type, resource_id || '-${k}', at, data ` +
          `FROM events WHERE tenant_id = ? AND type = 'user.created' AND resource_id NOT LIKE '%-%-%-%-%-%'`,
      )
      .bind(org.id),
  ]);
}
const seeded = (performance.now() - t) / 1000;
const count = async (binding, table) =>
  (await (await mf.getD1Database(binding)).prepare(`SELECT count(*) AS n FROM ${table} WHERE tenant_id = ?`).bind(org.id).first()).n;
const before = { users: await count("DB", "users"), values: await count("DB", "user_values"), events: await count("DB", "events") };

// A client that keeps changing users, as an incremental cycle does, retrying 503s as Entra does.
const ids = (await db.prepare("SELECT id FROM users WHERE tenant_id = ? ORDER BY id").bind(org.id).all()).results.map((r) => r.id);
let stop = false;
const refused = [];
const slowest = { ms: 0 };
const changed = new Map();
const writer = (async () => {
  for (let i = 0; !stop; i++) {
    const id = ids[(i * 37) % ids.length];
    const value = `Moved ${i}`;
    const started = performance.now();
    for (;;) {
      const r = await scim("PATCH", `/Users/${id}`, { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [{ op: "Replace", path: "displayName", value }] }, [200, 503]);
      if (r.status === 200) break;
      refused.push(1);
      await new Promise((res) => setTimeout(res, 1000 * Number(r.retryAfter ?? 1)));
    }
    slowest.ms = Math.max(slowest.ms, performance.now() - started);
    changed.set(id, value);
  }
})();

t = performance.now();
await call("POST", "/admin/v1/tenants/mover/move", ADMIN, { shard: "SHARD_2" });
let m;
for (;;) {
  m = (await call("GET", "/admin/v1/tenants/mover", ADMIN)).json.move;
  if (m.phase === "done") break;
  await new Promise((r) => setTimeout(r, 1000));
  // The request that started it copies for 25 s; the Cron Trigger goes on.
  if (performance.now() - t > 26000) await fetch(new URL("/cdn-cgi/handler/scheduled", url));
}
const took = (performance.now() - t) / 1000;
stop = true;
await writer;

const after = { users: await count("SHARD_2", "users"), values: await count("SHARD_2", "user_values"), events: await count("SHARD_2", "events") };
const left = (await count("DB", "users")) + (await count("DB", "user_values")) + (await count("DB", "events"));
let readBack = 0;
for (const [id, value] of changed) {
  const r = await scim("GET", `/Users/${id}`);
  if (r.json.displayName === value) readBack++;
}
const patches = changed.size;
console.log(`## Moving an organisation of ${before.users.toLocaleString("en")} users${LOCAL ? " (local, no edge delay)" : " (edge: D1 40 ms per call)"}`);
console.log(`seeded in ${seeded.toFixed(1)} s: ${before.users} users, ${before.values} values, ${before.events} events`);
console.log(`| moved in | rows at start | rows copied | catch-up rounds | writes refused at the switch (freeze) | 503s the client met | slowest write, retries included | users, values, events on the new shard | left on the old | changes read back |`);
console.log(`|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|`);
console.log(
  `| ${took.toFixed(1)} s | ${m.rowsAtStart} | ${m.rowsCopied} | ${m.catchupRounds} | ${m.frozenMs} ms | ${refused.length} | ${(slowest.ms / 1000).toFixed(1)} s | ${after.users}, ${after.values}, ${after.events} | ${left} | ${readBack} of ${patches} |`,
);
const createdEvents = after.events - (before.events - before.users);
if (after.users !== before.users || after.values !== before.values || left !== 0 || readBack !== patches || createdEvents < before.users) {
  console.log("MISMATCH: something was lost or left behind");
  process.exitCode = 1;
}
await mf.dispose();
rmSync(dir, { recursive: true, force: true });
