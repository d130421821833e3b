// Benchmark: what webhooks cost the SCIM write path. One run, one Worker under Miniflare (its
// local Queue and D1), one organisation: Entra-like user creations, closed loop, 8 at a time,
// first with no endpoint subscribed, then with two (both receivers on this machine, answering
// 204 at once). A write's response never waits for a delivery (the wake-up goes on the Queue
// after the response), so the rows should differ by what the consumer's own D1 calls take
// from the one database. Then it waits for every event to reach both receivers and reports how
// long the last one took. It checks what it measured: every write created its user (the
// directory's count), each receiver got each event of the second row exactly once, in the
// feed's order. Reports figures; asserts only those checks.
//
//   node bench/webhooks.mjs [writes per row=2000] [build dir]

import { Miniflare } from "miniflare";
import { createServer } from "node:http";
import { rmSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { workerOptions } from "../tests/integration/worker.mjs";
import { closedLoop, entraUser, migrated, quiet, root } from "./common.mjs";

const N = Number(process.argv[2] ?? 2_000);
const build = process.argv[3] ?? join(root, "build");
const dir = migrated("scim-edge-bench-webhooks-");
const ADMIN = "bench-admin-token";

// Two receivers: each webhook-id and when it arrived.
const got = { a: new Map(), b: new Map() };
const receiver = createServer((req, res) => {
  const name = req.url.slice(1);
  req.resume();
  req.on("end", () => {
    const id = req.headers["webhook-id"];
    const seen = got[name];
    if (seen && id) seen.set(id, (seen.get(id) ?? 0) + 1);
    res.writeHead(204).end();
  });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const hookUrl = (name) => `http://127.0.0.1:${receiver.address().port}/${name}`;

const mf = new Miniflare({ ...workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build, webhooks: true }), ...quiet });
const url = await mf.ready;

async function call(method, path, { token = ADMIN, body } = {}) {
  const headers = { "content-type": "application/scim+json", authorization: `Bearer ${token}` };
  const r = await fetch(new URL(path, url), { method, headers, body: body && JSON.stringify(body) });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return { r, json: text ? JSON.parse(text) : null };
}
await call("POST", "/admin/v1/tenants", { body: { subdomain: "bench" } });
const { token } = (await call("POST", "/admin/v1/tenants/bench/tokens")).json;
const create = async (i) => (await call("POST", "/tenants/bench/api/scim/v2/Users", { token, body: entraUser(i) })).r;
const show = (label, r) =>
  console.log(
    `${label.padEnd(40)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  D1 calls/request ${r.calls?.d1.toFixed(2) ?? "?"}`,
  );

console.log(`build: ${build}; ${N} writes per row`);
// Warm the isolate (and the listeners' cache) on users outside both rows.
await closedLoop(200, (i) => create(10 * N + i));
show("POST /Users, no endpoint", await closedLoop(N, (i) => create(i)));
for (const name of ["a", "b"]) await call("POST", "/admin/v1/webhooks", { body: { url: hookUrl(name), events: ["user.created"] } });
const started = performance.now();
show("POST /Users, two endpoints subscribed", await closedLoop(N, (i) => create(N + i)));
const written = performance.now();

// Every write changed the directory.
const total = (await call("GET", "/tenants/bench/api/scim/v2/Users?count=1", { token })).json.totalResults;
assert.equal(total, 2 * N + 200, "every measured write created its user");

// Every event of the second row reaches both receivers, once.
const deadline = Date.now() + 600_000;
while ((got.a.size < N || got.b.size < N) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
const lastAt = performance.now();
for (const [name, seen] of Object.entries(got)) {
  assert.equal(seen.size, N, `receiver ${name} got every event of the second row`);
  assert.ok([...seen.values()].every((n) => n === 1), `receiver ${name} got each event once`);
  // webhook-id is evt_<shard>_<the event's number in its shard's feed>: arrivals in order.
  const seqs = [...seen.keys()].map((id) => Number(id.split("_").pop()));
  assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]), `receiver ${name} got them in the feed's order`);
}
const secs = (lastAt - started) / 1000;
console.log(
  `deliveries: ${2 * N} (${N} events x 2 endpoints) in ${secs.toFixed(1)} s from the row's first write, the last ${((lastAt - written) / 1000).toFixed(1)} s after its last; ${(2 * N / secs).toFixed(0)} deliveries/s`,
);
await mf.dispose();
receiver.close();
rmSync(dir, { recursive: true, force: true });
