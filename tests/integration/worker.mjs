// The Miniflare options that run the built Worker (`build/`, or another build directory) on one
// workerd, with local D1 persisted under `persist`. Shared by the integration harness's
// plain-workerd server (workerd.mjs) and the benchmarks (bench/), so all run the Worker the same
// way.

import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;

/** The D1 bindings of `shards` shards: DB, then SHARD_2 … (ids as the Makefile's SHARDS= config). */
export function shardDatabases(shards = 1) {
  const dbs = { DB: "00000000-0000-0000-0000-000000000000" };
  for (let n = 2; n <= shards; n++) dbs[`SHARD_${n}`] = `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`;
  return dbs;
}

/** The Queues of wrangler.toml, as Miniflare takes them: webhooks' wake-ups and their
 * dead-letter queue. */
const queues = {
  queueProducers: { WEBHOOKS: { queueName: "scim-edge-webhooks" } },
  queueConsumers: {
    "scim-edge-webhooks": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 10, deadLetterQueue: "scim-edge-webhooks-dead" },
    "scim-edge-webhooks-dead": { maxBatchSize: 10, maxBatchTimeout: 5 },
  },
};

/** `vars`: more settings (strings); `webhooks`: the Queues and a WEBHOOK_KEY, with deliveries
 * allowed to this machine (DEV_ALLOW_LOOPBACK). */
export function workerOptions({ port, persist, adminToken, build = join(root, "build"), shards = 1, vars = {}, webhooks = false }) {
  const hooks = webhooks ? { WEBHOOK_KEY: `${adminToken}-webhooks`, DEV_ALLOW_LOOPBACK: "true" } : {};
  return {
    ...(webhooks ? queues : {}),
    host: "127.0.0.1",
    port,
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: join(build, "index.js") },
      { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
    ],
    compatibilityDate: "2025-09-01",
    d1Databases: shardDatabases(shards),
    d1Persist: join(persist, "v3/d1"),
    bindings: { BASE_DOMAIN: "localhost", TENANT_URL_FORM: "subdomain", ADMIN_TOKEN: adminToken, ...hooks, ...vars },
    // GET /cdn-cgi/handler/scheduled runs the Cron Trigger's handler (as `wrangler dev
    // --test-scheduled` does at /__scheduled).
    unsafeTriggerHandlers: true,
  };
}
