// The built Worker under workerd alone (Miniflare), for the integration tests that the
// `wrangler dev` proxy would distort: node workerd.mjs <port> <persist-dir> <admin-token> <shards>.
// The persist directory holds the D1 state that `wrangler d1 migrations apply --persist-to`
// wrote. No rate-limit binding: the valve is open without one.
import { Miniflare } from "miniflare";
import { workerOptions } from "./worker.mjs";

const [port, persist, adminToken, shards] = process.argv.slice(2);
const mf = new Miniflare(workerOptions({ port: Number(port), persist, adminToken, shards: Number(shards ?? 1) }));
await mf.ready;
console.log(`workerd on ${port}`);
process.on("SIGTERM", async () => {
  await mf.dispose();
  process.exit(0);
});
