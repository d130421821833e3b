// Faults at the edge, survived: an Entra-like cycle through the built Worker while a share of
// its D1 calls fail with D1's "overloaded" error (bench/edge.mjs injects them), the client
// retrying what it is told to retry (503 and 429, after Retry-After) as Entra does. Then the
// directory is read back and compared with what a fault-free run leaves, and the change feed is
// checked for lost or duplicated changes.
//
//   node bench/faults.mjs [--users 200] [--rate 0.05] [--seed 7] [--build dir]
//
// Prints the counts; exits 1 if any request was answered 500 (or any other unexpected status),
// if the data differs from the fault-free outcome, or if the feed lost or repeated a change.
// Run by the integration tests (tests/integration/faults.rs) with a small cycle.

import { Miniflare } from "miniflare";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { workerOptions } from "../tests/integration/worker.mjs";
import { edgeModule, migrated, option, quiet, root } from "./common.mjs";

const USERS = Number(option("users", 200));
const RATE = Number(option("rate", 0.05));
const SEED = Number(option("seed", 7));
const BUILD = option("build", join(root, "build"));
const ADMIN = "faults-admin-token";
const CONCURRENCY = 8;

const dir = migrated("scim-edge-faults-");
const options = workerOptions({ port: 0, persist: dir, adminToken: ADMIN, build: BUILD });
options.modules = [edgeModule(BUILD), ...options.modules];
options.bindings.EDGE = JSON.stringify({ d1Fault: RATE, seed: SEED });
const mf = new Miniflare({ ...options, ...quiet });
const url = await mf.ready;

const statuses = {};
let retries = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One request as Entra sends it: retried after Retry-After on 503 and 429, up to 20 times. */
async function call(method, path, { token, body, ok }) {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(new URL(path, url), {
      method,
      headers: { "content-type": "application/scim+json", authorization: `Bearer ${token}` },
      body: body && JSON.stringify(body),
    });
    const text = await r.text();
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if ((r.status === 503 || r.status === 429) && attempt < 20) {
      retries++;
      if (!r.headers.get("retry-after")) throw new Error(`${method} ${path}: ${r.status} without Retry-After`);
      await sleep(5); // Retry-After says 1 s; the test does not wait that long.
      continue;
    }
    if (!ok.includes(r.status)) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
    return { status: r.status, json: text ? JSON.parse(text) : null };
  }
}
async function pool(n, f) {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < n; i = next++) await f(i);
  }));
}

let failure = null;
try {
  await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { subdomain: "faults" }, ok: [201, 409] });
  const { token } = (await call("POST", "/admin/v1/tenants/faults/tokens", { token: ADMIN, body: { revokeExisting: true }, ok: [201] })).json;
  const scim = (m, p, body, ok) => call(m, `/tenants/faults/api/scim/v2${p}`, { token, body, ok });
  const patch = (Operations) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });

  // The cycle: Entra looks each user up, creates it, creates two groups, adds the users to
  // them, disables every third user and deletes every tenth.
  const ids = [];
  await pool(USERS, async (i) => {
    const userName = `user${i}@contoso.example`;
    const found = (await scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`, undefined, [200])).json;
    if (found.totalResults > 0) throw new Error(`${userName} exists before it was created`);
    const body = { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName, externalId: `ext-${i}`, active: true, displayName: `User ${i}` };
    const created = await scim("POST", "/Users", body, [201, 409]);
    // A create whose answer was lost may have been applied: Entra looks it up again.
    ids[i] = created.status === 201
      ? created.json.id
      : (await scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`, undefined, [200])).json.Resources[0].id;
  });
  const groups = [];
  for (const name of ["Sales", "Engineering"]) {
    groups.push((await scim("POST", "/Groups", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: name }, [201])).json.id);
  }
  await pool(USERS, async (i) => {
    await scim("PATCH", `/Groups/${groups[i % 2]}`, patch([{ op: "Add", path: "members", value: [{ value: ids[i] }] }]), [204, 200]);
    if (i % 3 === 0) await scim("PATCH", `/Users/${ids[i]}`, patch([{ op: "Replace", path: "active", value: "False" }]), [200, 204]);
    if (i % 10 === 0) await scim("DELETE", `/Users/${ids[i]}`, undefined, [204, 404]);
  });

  // What a fault-free run leaves.
  const expected = { users: {}, members: { Sales: [], Engineering: [] } };
  for (let i = 0; i < USERS; i++) {
    if (i % 10 === 0) continue;
    expected.users[`user${i}@contoso.example`] = i % 3 !== 0;
    expected.members[i % 2 ? "Engineering" : "Sales"].push(`user${i}@contoso.example`);
  }
  // What this run left, read back through the same faults.
  const actual = { users: {}, members: {} };
  const byId = {};
  for (let start = 1; ; start += 100) {
    const page = (await scim("GET", `/Users?startIndex=${start}&count=100`, undefined, [200])).json;
    for (const u of page.Resources) {
      actual.users[u.userName] = u.active;
      byId[u.id] = u.userName;
    }
    if (start + 100 > page.totalResults) break;
  }
  for (const [k, gid] of groups.entries()) {
    const g = (await scim("GET", `/Groups/${gid}`, undefined, [200])).json;
    actual.members[g.displayName] = (g.members ?? []).map((m) => byId[m.value] ?? `unknown ${m.value}`);
    actual.members[g.displayName].sort();
    expected.members[k ? "Engineering" : "Sales"].sort();
  }
  const same = JSON.stringify(actual, Object.keys(actual).sort()) === JSON.stringify(expected, Object.keys(expected).sort()) &&
    JSON.stringify(Object.entries(actual.users).sort()) === JSON.stringify(Object.entries(expected.users).sort()) &&
    JSON.stringify(actual.members.Sales) === JSON.stringify(expected.members.Sales) &&
    JSON.stringify(actual.members.Engineering) === JSON.stringify(expected.members.Engineering);

  // The change feed: every change once.
  const events = [];
  for (let cursor = ""; ; ) {
    const page = (await call("GET", `/admin/v1/tenants/faults/events?after=${cursor}&limit=1000`, { token: ADMIN, ok: [200] })).json;
    events.push(...page.items);
    cursor = page.next;
    if (page.items.length < 1000) break;
  }
  const count = (type) => events.filter((e) => e.type === type).length;
  const feed = { created: count("user.created"), deleted: count("user.deleted") };
  const feedOk = feed.created === USERS && feed.deleted === Math.ceil(USERS / 10);

  const injected = await (await fetch(new URL("/__edge", url))).json();
  console.log(`cycle: ${USERS} users, 2 groups, ${Math.ceil(USERS / 3)} disables, ${Math.ceil(USERS / 10)} deletions; D1 faults injected at ${RATE * 100}% (seed ${SEED})`);
  console.log(`D1 calls: ${injected.d1Calls}, faults injected: ${injected.d1Faults}; client retries: ${retries}`);
  console.log(`answers by status: ${JSON.stringify(statuses)}`);
  console.log(`data equal to the fault-free outcome: ${same}; feed: ${feed.created} user.created, ${feed.deleted} user.deleted (${feedOk ? "each change once" : "MISMATCH"})`);
  if (!same) console.log(`expected ${JSON.stringify(expected)}\nactual ${JSON.stringify(actual)}`);
  if (statuses[500]) failure = `${statuses[500]} answers were 500`;
  else if (!same) failure = "the data differs from the fault-free outcome";
  else if (!feedOk) failure = "the change feed lost or repeated a change";
  else if (!injected.d1Faults && RATE > 0) failure = "no fault was injected";
} catch (e) {
  failure = e.stack ?? String(e);
} finally {
  await mf.dispose();
  rmSync(dir, { recursive: true, force: true });
}
if (failure) {
  console.error(`FAILED: ${failure}`);
  process.exit(1);
}
