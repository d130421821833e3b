// A V8 CPU profile of the Worker's isolate while it serves one kind of request, under Miniflare
// (its inspector): where the isolate's busy time goes, by function and by part (our wasm,
// wasm-bindgen's glue, the D1 binding's JavaScript, V8's own work). Idle time is left out.
//
//   make profile [PROFILE_ARGS="--op post --requests 3000"]
//   node --experimental-websocket bench/profile.mjs --build dir [--op post|get|disable]
//        [--requests 3000] [--out file.cpuprofile]
//
// `make profile` builds a copy whose wasm keeps its function names (target/profile/) and
// profiles that; the .cpuprofile it writes opens in Chrome's DevTools (Performance panel).
// A profile costs time of its own (a sample every 100 µs): read its shares, not its totals.

import { Miniflare } from "miniflare";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { workerOptions } from "../tests/integration/worker.mjs";
import { closedLoop, entraUser, migrated, option, quiet, root, sender } from "./common.mjs";

const BUILD = option("build", join(root, "target/profile"));
const OP = option("op", "post");
const N = Number(option("requests", 3000));
const OUT = option("out", join(root, `target/${OP}.cpuprofile`));
const ADMIN = "profile-admin-token";
if (typeof WebSocket === "undefined") throw new Error("run with node --experimental-websocket (Node 20) or Node 22+");

const mf = new Miniflare({ ...workerOptions({ port: 0, persist: migrated("scim-edge-profile-"), adminToken: ADMIN, build: BUILD }), inspectorPort: 0, ...quiet });
const url = await mf.ready;
const request = sender(url);
const send = async (...a) => (await request(...a)).body_;
await send("POST", "/admin/v1/tenants", ADMIN, { subdomain: "prof" }, 201);
const { token } = JSON.parse(await send("POST", "/admin/v1/tenants/prof/tokens", ADMIN, undefined, 201));
const scim = (m, p, body, expect) => send(m, `/tenants/prof/api/scim/v2${p}`, token, body, expect);
// Users for the reads and the disables to act on, and a warm isolate.
const ids = [];
await closedLoop(Math.max(200, OP === "disable" ? N + 200 : 0), async (i) => ids.push(JSON.parse(await scim("POST", "/Users", entraUser(i), 201)).id));
const disable = { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [{ op: "Replace", path: "active", value: "False" }] };
const ops = {
  post: (i) => scim("POST", "/Users", entraUser(1_000_000 + i), 201),
  get: (i) => scim("GET", `/Users?filter=${encodeURIComponent(`userName eq "user${i % 200}@contoso.example"`)}`, undefined, 200),
  disable: () => scim("PATCH", `/Users/${ids.pop()}`, disable, 200),
};
if (!ops[OP]) throw new Error(`--op: one of ${Object.keys(ops).join(", ")}`);

// The Worker's isolate among the inspector's targets (the others are Miniflare's own).
const inspector = await mf.getInspectorURL();
const targets = await (await fetch(new URL("/json", `http://${inspector.host}`))).json();
const target = targets.find((t) => t.id.startsWith("core:user:") && !t.id.includes("__mf"));
if (!target) throw new Error(`no Worker isolate among ${targets.map((t) => t.id).join(", ")}`);
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail)));
let seq = 0;
const waiting = new Map();
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (waiting.has(msg.id)) (waiting.get(msg.id)(msg.result), waiting.delete(msg.id));
};
const call = (method, params = {}) => new Promise((ok) => (waiting.set(++seq, ok), ws.send(JSON.stringify({ id: seq, method, params }))));
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 100 });
await call("Profiler.start");
await closedLoop(N, ops[OP], 8);
const { profile } = await call("Profiler.stop");
ws.close();
await mf.dispose();
writeFileSync(OUT, JSON.stringify(profile));

// Self time per node from the samples, then per function and per part.
const dt = new Map();
profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const part = ({ functionName: f, url: u }) => {
  if (f === "(idle)") return "idle";
  if (f === "(garbage collector)") return "V8: garbage collector";
  if (f === "(program)" || f === "(root)") return "V8 and the runtime: (program)";
  if (u.startsWith("wasm://")) return "our wasm";
  if (u.endsWith("index.js")) return "wasm-bindgen glue (index.js)";
  if (/d1/i.test(u)) return "the D1 binding's JavaScript";
  return u ? `JavaScript: ${u.split("/").pop()}` : `built-ins (${f || "anonymous"})`;
};
const byPart = new Map();
const byFunction = new Map();
let busy = 0;
for (const node of profile.nodes) {
  const us = dt.get(node.id) ?? 0;
  const p = part(node.callFrame);
  if (p === "idle") continue;
  busy += us;
  byPart.set(p, (byPart.get(p) ?? 0) + us);
  const key = `${node.callFrame.functionName || "(anonymous)"} [${p}]`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}
const pct = (us) => `${((100 * us) / busy).toFixed(1)}%`;
console.log(`\n## ${OP}: ${N} requests, ${(busy / 1000 / N).toFixed(3)} ms of the isolate's busy time per request (profiled)`);
console.log("| part | share of busy time |\n|---|---|");
for (const [p, us] of [...byPart].sort((a, b) => b[1] - a[1])) console.log(`| ${p} | ${pct(us)} |`);
console.log("\n| function (self time) | share |\n|---|---|");
for (const [f, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`| ${f.replaceAll("|", "\\|")} | ${pct(us)} |`);
console.log(`\nprofile: ${OUT}`);
