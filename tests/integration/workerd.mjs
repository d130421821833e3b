// The built Worker under workerd alone (Miniflare), for the integration tests that the
// `wrangler dev` proxy would distort: node workerd.mjs <port> <persist-dir> <admin-token>.
// The persist directory holds the D1 state that `wrangler d1 migrations apply --persist-to`
// wrote. No rate-limit binding: the valve is open without one.
import { Miniflare } from "miniflare";
import { join } from "node:path";

const [port, persist, adminToken] = process.argv.slice(2);
const root = new URL("../..", import.meta.url).pathname;
const mf = new Miniflare({
  host: "127.0.0.1",
  port: Number(port),
  modulesRoot: join(root, "build"),
  modules: [
    { type: "ESModule", path: join(root, "build/index.js") },
    { type: "CompiledWasm", path: join(root, "build/index_bg.wasm") },
  ],
  compatibilityDate: "2025-09-01",
  d1Databases: { DB: "00000000-0000-0000-0000-000000000000" },
  kvNamespaces: { KV: "00000000000000000000000000000000" },
  d1Persist: join(persist, "v3/d1"),
  kvPersist: join(persist, "v3/kv"),
  bindings: { BASE_DOMAIN: "localhost", TENANT_URL_FORM: "subdomain", ADMIN_TOKEN: adminToken },
});
await mf.ready;
console.log(`workerd on ${port}`);
process.on("SIGTERM", async () => {
  await mf.dispose();
  process.exit(0);
});
