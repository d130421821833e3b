// The host app's side of the change feed: read every event after a cursor, page by page, and
// hand each to `apply` in commit order. Uses only `fetch`, so it runs in a Worker and in Node.
//
// The cursor is the resume point: keep it only once the events up to it are applied (the
// Worker in worker.mjs writes it in the same D1 batch as their effects), and a crash or a
// retry neither skips nor repeats an event.

/** One page of the feed after `cursor` (`""`: from the oldest kept). The cursor is opaque. */
export async function page({ origin, adminToken, cursor, subdomain, limit = 100 }) {
  const path = subdomain ? `/admin/v1/tenants/${subdomain}/events` : "/admin/v1/events";
  const url = new URL(path, origin);
  url.searchParams.set("after", cursor);
  url.searchParams.set("limit", String(limit));
  const r = await fetch(url, { headers: { authorization: `Bearer ${adminToken}` } });
  if (r.status === 429 || r.status >= 500) {
    throw new Error(`feed unavailable (${r.status}); retry later from cursor ${cursor}`);
  }
  if (!r.ok) throw new Error(`feed: ${r.status} ${await r.text()}`);
  return r.json(); // {items, next}: `next` resumes after the page (a feed has no last page)
}

/**
 * Read from `cursor` to the end of the feed. `applyPage(items, next)` receives each page's
 * events and the cursor that follows them; it must store both together. Returns the last
 * cursor.
 */
export async function drain({ origin, adminToken, cursor = "", subdomain, applyPage, limit = 100 }) {
  for (;;) {
    const p = await page({ origin, adminToken, cursor, subdomain, limit });
    if (p.items.length > 0) await applyPage(p.items, p.next);
    cursor = p.next;
    // A page shorter than asked for: caught up (for now).
    if (p.items.length < limit) return cursor;
  }
}
