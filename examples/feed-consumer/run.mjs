// Run the example backend Worker (worker.mjs) under Miniflare against a scim-edge origin, sync
// once, and print what it mirrored as JSON:
//
//   node examples/feed-consumer/run.mjs <scim-edge origin> <admin token> <state dir>
//
// The state directory keeps the app's D1 (its mirror and its cursor) between runs, so a second
// run applies only what changed since the first.
import { Miniflare } from "miniflare";
import { join } from "node:path";

const [origin, adminToken, state] = process.argv.slice(2);
if (!origin || !adminToken || !state) {
  console.error("usage: node run.mjs <scim-edge origin> <admin token> <state dir>");
  process.exit(2);
}
const here = new URL(".", import.meta.url).pathname;
const mf = new Miniflare({
  modules: true,
  scriptPath: join(here, "worker.mjs"),
  modulesRules: [{ type: "ESModule", include: ["**/*.mjs"] }],
  compatibilityDate: "2025-09-01",
  d1Databases: ["APP_DB"],
  d1Persist: join(state, "d1"),
  bindings: { SCIM_EDGE_ORIGIN: origin, SCIM_EDGE_ADMIN_TOKEN: adminToken },
});
try {
  const r = await mf.dispatchFetch("http://app.local/mirror");
  const text = await r.text();
  if (!r.ok) throw new Error(`${r.status} ${text}`);
  console.log(text);
} finally {
  await mf.dispose();
}
