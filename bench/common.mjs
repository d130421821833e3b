// What the benchmarks and the fault run share: a temporary directory whose local D1 has every
// migration applied (by wrangler, as `make dev` applies them), the Worker under the edge
// wrapper (edge.mjs), workerd's CPU time, the command line's options, requests to the Worker,
// and the user Entra sends with its default attribute mappings.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const root = new URL("..", import.meta.url).pathname;

/** A fresh directory to pass as `persist`, the D1 of each of `shards` shards migrated (DB,
 * SHARD_2, …: the bindings and ids of tests/integration/worker.mjs's `shardDatabases`). */
export function migrated(prefix = "scim-edge-bench-", shards = 1) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cfg = join(dir, "wrangler.toml");
  const migrations = join(root, "migrations");
  let text = readFileSync(join(root, "wrangler.toml"), "utf8")
    .replace(/\[build\][\s\S]*?\n\n/, "")
    .replace(/^migrations_dir = .*$/m, `migrations_dir = "${migrations}"`)
    .replace(/^directory = .*$/m, `directory = "${join(root, "assets")}"`);
  for (let n = 2; n <= shards; n++) {
    const id = `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`;
    text += `\n[[d1_databases]]\nbinding = "SHARD_${n}"\ndatabase_name = "scim-edge-shard-${n}"\ndatabase_id = "${id}"\nmigrations_dir = "${migrations}"\n`;
  }
  writeFileSync(cfg, text);
  for (const binding of ["DB", ...Array.from({ length: shards - 1 }, (_, i) => `SHARD_${i + 2}`)]) {
    execFileSync(join(root, "node_modules/.bin/wrangler"), ["d1", "migrations", "apply", binding, "--local", "--persist-to", dir, "-c", cfg], {
      env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
      stdio: "ignore",
    });
  }
  return dir;
}

/** Miniflare's option that keeps the Worker's output (its operator's line per request) off the
 * benchmark's report; errors still show. The lines are still written: their cost is measured. */
export const quiet = {
  handleRuntimeStdio(stdout, stderr) {
    stdout.resume();
    stderr.pipe(process.stderr);
  },
};

/** The module that puts a build's entry behind edge.mjs (list it first, as the main module). */
export const edgeModule = (build) => ({
  type: "ESModule",
  path: join(build, "edge.mjs"),
  contents: readFileSync(join(root, "bench/edge.mjs"), "utf8"),
});

// workerd's CPU time (user + system), from /proc: every workerd below this process.
export function workerdPids() {
  const out = execFileSync("ps", ["-eo", "pid,ppid,comm"], { encoding: "utf8" });
  const rows = out.trim().split("\n").slice(1).map((l) => l.trim().split(/\s+/));
  const mine = new Set([String(process.pid)]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of rows) if (mine.has(ppid) && !mine.has(pid)) (mine.add(pid), (grew = true));
  }
  return rows.filter(([pid, , comm]) => mine.has(pid) && comm.startsWith("workerd")).map(([pid]) => pid);
}
const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return ticks * TICK_MS;
}

/** The value after `--name` on the command line, or `dflt`. */
export function option(name, dflt) {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}

/** Whether `--name` is on the command line. */
export const flag = (name) => process.argv.slice(2).includes(`--${name}`);

/** `send(method, path, token, body, expect)` to the Worker at `url`: the Response, its text as
 * `body_`; a status other than `expect` (when given) throws. A string body goes as it is. */
export const sender = (url) => async (method, path, token, body, expect) => {
  const r = await fetch(new URL(path, url), {
    method,
    headers: { "content-type": "application/scim+json", authorization: `Bearer ${token}` },
    body: body && (typeof body === "string" ? body : JSON.stringify(body)),
  });
  const text = await r.text();
  if (expect && r.status !== expect) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
  r.body_ = text;
  return r;
};

/** What Entra sends for user `i` with the default mappings. */
export const entraUser = (i) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  externalId: `ext-${i}`,
  userName: `user${i}@contoso.example`,
  active: true,
  displayName: `User Number ${i}`,
  title: "Engineer",
  emails: [{ primary: true, type: "work", value: `user${i}@contoso.example` }],
  name: { formatted: `User Number ${i}`, familyName: `Number ${i}`, givenName: "User" },
  addresses: [{ type: "work", formatted: "1 Main St", streetAddress: "1 Main St", locality: "Oslo", postalCode: "0150", country: "NO", primary: true }],
  phoneNumbers: [{ type: "work", value: `+47 555 ${String(i).padStart(5, "0")}` }],
  roles: [{ primary: "True", type: "WindowsAzureActiveDirectoryRole", value: "Writer" }],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { department: "R&D", employeeNumber: String(i) },
});

/**
 * Run `n` requests `concurrency` at a time (closed loop): req/s, raw p50 and p99 in ms, and, when
 * the requests return Responses, the D1 calls per request from their `Server-Timing` headers.
 */
export async function closedLoop(n, request, concurrency = 8) {
  const lat = [];
  const calls = { d1: 0, n: 0 };
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        const r = await request(i);
        lat.push(performance.now() - t);
        const st = r?.headers?.get?.("server-timing");
        if (st) {
          calls.n++;
          for (const m of st.matchAll(/(\w+);dur=[\d.]+;desc="(\d+) call/g)) if (m[1] in calls) calls[m[1]] += Number(m[2]);
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const p = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
  return { rps: n / secs, p50: p(0.5), p99: p(0.99), calls: calls.n ? { d1: calls.d1 / calls.n } : null };
}
