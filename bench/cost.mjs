// Where a `POST /Users`'s CPU goes, locally (`make bench`): the whole workerd process's CPU per
// request, as compare.mjs measures it, taken apart by replaying the POST's own D1 batch
// (recorded by bench/edge.mjs) without the Worker, in rotated rounds:
//
//   SELECT 1    a request that runs a batch of `SELECT 1`: the HTTP request and one D1 call
//   gate + row  the POST's first two statements (the token check, the user's row): about what
//               the floor Worker's create does
//   batch       the POST's whole batch (also the user's values, role, change-feed event, log entry)
//   POST        the request itself, through the Worker
//
//   node bench/cost.mjs [--requests 1500] [--rounds 5] [--build dir]
//
// Every replay is a real insert (its own id, userName and externalId), checked by count after.

import { Miniflare } from "miniflare";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { workerOptions } from "../tests/integration/worker.mjs";
import { closedLoop, cpuMs, edgeModule, entraUser, migrated, option, quiet, root, sender, workerdPids } from "./common.mjs";

const N = Number(option("requests", 1500));
const ROUNDS = Number(option("rounds", 5));
const BUILD = option("build", join(root, "build"));
const ADMIN = "cost-admin-token";

const dir = migrated("scim-edge-cost-");
const options = workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build: BUILD });
options.modules = [edgeModule(BUILD), ...options.modules];
options.bindings.EDGE = JSON.stringify({ record: true });
const mf = new Miniflare({ ...options, ...quiet });
const url = await mf.ready;
const pids = workerdPids();

const request = sender(url);
const send = async (...a) => (await request(...a)).body_;
await send("POST", "/admin/v1/tenants", ADMIN, { subdomain: "cost" }, 201);
const { token } = JSON.parse(await send("POST", "/admin/v1/tenants/cost/tokens", ADMIN, undefined, 201));
const scim = (m, p, body, expect) => send(m, `/tenants/cost/api/scim/v2${p}`, token, body, expect);
const user = (name) => ({
  ...entraUser(0),
  userName: `${name}@contoso.example`,
  externalId: `${name}-ext`,
  emails: [{ primary: true, type: "work", value: `${name}@contoso.example` }],
});
// The isolate knows the tenant after its first request; the probe's batch is then the POST's alone.
await scim("GET", "/Users?count=1", undefined, 200);
const { id } = JSON.parse(await scim("POST", "/Users", user("cost-probe"), 201));
const template = JSON.stringify(await (await fetch(new URL("/__edge/last", url))).json());
if (!template.includes(id) || !template.includes("cost-probe")) throw new Error(`not the probe's batch: ${template.slice(0, 300)}`);
const statements = JSON.parse(template).length;
const variant = (tag, i) => template.split(id).join(`${id}-${tag}${i}`).split("cost-probe").join(`cost-${tag}${i}`);
const replay = (list) => send("POST", "/__edge/batch", token, list, 204);
let next = 0;
const runs = {
  "SELECT 1": () => replay([["SELECT 1", []]]),
  "gate + row": () => replay(JSON.parse(variant("g", next++)).slice(0, 2)),
  batch: () => replay(variant("b", next++)),
  POST: () => scim("POST", "/Users", user(`cost-n${next++}`), 201),
};
const got = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  const names = Object.keys(runs);
  for (const name of names.slice(r % names.length).concat(names.slice(0, r % names.length))) {
    const c0 = cpuMs(pids);
    await closedLoop(N, runs[name], 8);
    got[name].push((cpuMs(pids) - c0) / N);
  }
}
const db = await mf.getD1Database("DB");
const count = async (like) => (await db.prepare("SELECT COUNT(*) AS n FROM users WHERE user_name LIKE ?").bind(like).first()).n;
const events = (await db.prepare("SELECT COUNT(*) AS n FROM events WHERE resource_id LIKE ?").bind(`${id}-b%`).first()).n;
const want = N * ROUNDS;
const counts = { "gate + row": await count("cost-g%"), batch: await count("cost-b%"), POST: await count("cost-n%"), "batch events": events };
console.log(`checked: ${JSON.stringify(counts)} (each ${want})`);
if (Object.values(counts).some((n) => n !== want)) throw new Error("a replay or a POST did not insert what it names");
await mf.dispose();
rmSync(dir, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, median(v)]));
console.log(`\n## Where a POST /Users's CPU goes (workerd process, ms per request, medians of ${ROUNDS} rounds of ${N}; the batch is ${statements} statements)`);
console.log("| request | CPU ms | more than the row above |");
console.log("|---|---|---|");
let prev = null;
for (const [k, v] of Object.entries(ms)) {
  console.log(`| ${k} | ${v.toFixed(2)} | ${prev === null ? "" : (v - prev).toFixed(2)} |`);
  prev = v;
}
