// A host app's backend Worker that mirrors its organisations' users from scim-edge's change
// feed into its own D1 database, on a Cron Trigger.
//
// Bindings: APP_DB (D1, the app's own database), SCIM_EDGE_ORIGIN (e.g.
// https://admin.example.com), SCIM_EDGE_ADMIN_TOKEN (a secret).
//
// Each page of events is applied in one D1 batch that also stores the cursor, so the mirror
// and the cursor always agree: a run that fails half-way resumes exactly where the last
// committed page ended.
import { drain } from "./consumer.mjs";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS app_users (organisation TEXT NOT NULL, id TEXT NOT NULL,
     user_name TEXT NOT NULL, active INTEGER NOT NULL, role TEXT, groups TEXT NOT NULL,
     PRIMARY KEY (organisation, id))`,
  `CREATE TABLE IF NOT EXISTS app_cursor (k INTEGER PRIMARY KEY CHECK (k = 1), cursor TEXT NOT NULL)`,
];

/** The statements that apply one event to the mirror. */
function statements(db, e) {
  const org = e.tenant.id;
  const user = e.data.user;
  switch (e.type) {
    case "user.created":
    case "user.updated":
    case "user.deactivated":
    case "user.reactivated":
      return [
        db
          .prepare(
            `INSERT INTO app_users (organisation, id, user_name, active, role, groups) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (organisation, id) DO UPDATE SET user_name = excluded.user_name,
               active = excluded.active, role = excluded.role, groups = excluded.groups`,
          )
          .bind(org, user.id, user.userName, user.active ? 1 : 0, user.role, JSON.stringify(user.groups.map((g) => g.displayName))),
      ];
    case "user.deleted":
      return [db.prepare("DELETE FROM app_users WHERE organisation = ? AND id = ?").bind(org, user.id)];
    default:
      // Groups and memberships: this app reads a user's groups from the user events' shape;
      // an app that keeps groups would handle group.* here.
      return [];
  }
}

export async function sync(env) {
  const db = env.APP_DB;
  await db.batch(SCHEMA.map((s) => db.prepare(s)));
  const row = await db.prepare("SELECT cursor FROM app_cursor WHERE k = 1").first();
  return drain({
    origin: env.SCIM_EDGE_ORIGIN,
    adminToken: env.SCIM_EDGE_ADMIN_TOKEN,
    cursor: row?.cursor ?? "",
    applyPage: async (events, next) => {
      const writes = events.flatMap((e) => statements(db, e));
      writes.push(
        db
          .prepare("INSERT INTO app_cursor (k, cursor) VALUES (1, ?) ON CONFLICT (k) DO UPDATE SET cursor = excluded.cursor")
          .bind(next),
      );
      await db.batch(writes);
    },
  });
}

export default {
  async scheduled(_event, env, ctx) {
    ctx.waitUntil(sync(env));
  },
  // GET /mirror: what the app has mirrored (for a look, and for the example's test).
  async fetch(request, env) {
    if (new URL(request.url).pathname !== "/mirror") return new Response("not found", { status: 404 });
    const cursor = await sync(env);
    const { results } = await env.APP_DB.prepare(
      "SELECT organisation, id, user_name AS userName, active, role, groups FROM app_users ORDER BY user_name",
    ).all();
    return Response.json({ cursor, users: results.map((u) => ({ ...u, active: !!u.active, groups: JSON.parse(u.groups) })) });
  },
};
