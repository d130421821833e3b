// The organisation admin's console: every call sends the session cookie (same origin) and the
// CSRF token of the page in X-CSRF-Token. No framework, no inline script (the page's CSP).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const r = await fetch(`/console/api/${path}`, {
    method,
    credentials: "same-origin",
    headers: { "x-csrf-token": csrf, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (r.status === 401) {
    window.location.reload();
    throw new Error("signed out");
  }
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) {
    const err = new Error(data?.message ?? `HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return data;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** Characters that change how text reads without showing themselves: bidirectional controls
 * (a right-to-left override makes "\u202Emoc.emca@evil" read "live@acme.com") and zero-width ones. */
const HIDDEN = /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;

/** Such characters shown for what they are: ⟨U+202E⟩. */
const reveal = (s) => s.replace(HIDDEN, (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);

/** Client-supplied text (a name, a path, a warning): in its own <bdi>, so that its direction
 * cannot reorder the text around it, with its hidden controls shown. */
function bdi(text) {
  const b = document.createElement("bdi");
  b.textContent = reveal(text);
  return b;
}

/** A cell of our words and client-supplied parts: `parts` are strings (ours) and
 * {client: text} (theirs, each isolated). */
function mixed(parts) {
  const td = document.createElement("td");
  td.append(...parts.map((p) => (typeof p === "string" ? p : bdi(p.client))));
  return td;
}

/** A summary with the resource's name (which the identity provider chose) isolated. */
function named(text, name) {
  const at = name ? text.indexOf(name) : -1;
  if (at < 0) return [text];
  return [text.slice(0, at), { client: name }, text.slice(at + name.length)];
}

/** A table's one row when it has nothing to list. */
function nothing(body, text, columns) {
  const tr = document.createElement("tr");
  tr.append(cell(text, "muted"));
  tr.firstChild.colSpan = columns;
  body.append(tr);
}

/** Fill table body `id` with a row per item (`row` makes it), or one row saying `empty`. */
function fill(id, items, empty, columns, row) {
  const body = $(id);
  body.replaceChildren();
  if (items.length === 0) nothing(body, empty, columns);
  for (const item of items) body.append(row(item));
}

/** A cell holding a Revoke button, labelled for screen readers and the tests. */
function revokeCell(label, onClick) {
  const revoke = document.createElement("button");
  revoke.type = "button";
  revoke.className = "danger";
  revoke.textContent = "Revoke";
  revoke.setAttribute("aria-label", label);
  revoke.addEventListener("click", onClick);
  const actions = document.createElement("td");
  actions.append(revoke);
  return actions;
}

let tokens = [];

function renderTokens() {
  fill("tokens", tokens, "No active token: generate one for your identity provider.", 4, (t) => {
    const tr = document.createElement("tr");
    tr.dataset.tokenId = t.id;
    const actions = revokeCell(`Revoke the token ending in ${t.hint}`, () => revokeToken(t));
    tr.append(cell(`…${t.hint}`), cell(when(t.createdAt)), cell(when(t.lastUsedAt), "last-used"), actions);
    return tr;
  });
}

/** A revealed credential that was just revoked is no longer worth copying: hide it. */
function unreveal(notice, hint) {
  const value = $(`${notice}-value`);
  if (value.value.endsWith(hint)) {
    value.value = "";
    $(notice).hidden = true;
  }
}

async function revokeToken(t) {
  if (!window.confirm(`Revoke the token ending in ${t.hint}? Requests with it will be refused at once.`)) return;
  await api("DELETE", `tokens/${encodeURIComponent(t.id)}`);
  unreveal("new-token", t.hint);
  $("tokens-message").textContent = `The token ending in ${t.hint} was revoked.`;
  await load();
}

async function generate() {
  if (tokens.length >= 2) {
    const older = [...tokens].sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0];
    const ok = window.confirm(
      `Two tokens are active. Revoke the older one (ending in ${older.hint}, created ${when(older.createdAt)}) and generate a new one?`,
    );
    if (!ok) return;
    await api("DELETE", `tokens/${encodeURIComponent(older.id)}`);
  }
  const created = await api("POST", "tokens");
  $("new-token-value").value = created.token;
  $("new-token").hidden = false;
  $("new-token-value").focus();
  $("new-token-value").select();
  $("tokens-message").textContent = "A new token was generated.";
  await load();
}

let oauth = { secrets: [] };

/** Within 30 days of its expiry a secret is flagged: Entra's job stops when it expires. */
const expiringSoon = (iso) => new Date(iso).getTime() - Date.now() < 30 * 24 * 3600 * 1000;

function renderMethods() {
  const methods = [
    ["Secret Token", tokens.length, `${tokens.length} active`],
    ["OAuth2 client credentials grant", oauth.secrets.length, `${oauth.secrets.length} client secret${oauth.secrets.length === 1 ? "" : "s"}`],
    ["Workload Identity Federation", oauth.federation ? 1 : 0, oauth.federation ? "set up" : "not set up"],
  ];
  $("methods").replaceChildren(
    ...methods.map(([name, n, state]) => {
      const li = document.createElement("li");
      li.className = n > 0 ? "on" : "";
      li.textContent = `${name}: ${state}`;
      return li;
    }),
  );
}

function renderOAuth() {
  $("token-endpoint").value = oauth.tokenEndpoint;
  $("client-id").value = oauth.clientId ?? "";
  for (const el of document.querySelectorAll(".token-endpoint-text")) el.textContent = oauth.tokenEndpoint;
  for (const el of document.querySelectorAll(".client-id-text")) el.textContent = oauth.clientId ?? "(the Client Identifier above)";
  fill("secrets", oauth.secrets, "No client secret: generate one for the OAuth2 client credentials grant.", 5, (s) => {
    const tr = document.createElement("tr");
    tr.dataset.secretId = s.id;
    const actions = revokeCell(`Revoke the client secret ending in ${s.hint}`, () =>
      revokeSecret(s).catch((e) => ($("oauth-message").textContent = e.message)),
    );
    const expires = cell(when(s.expiresAt), expiringSoon(s.expiresAt) ? "expiring" : "");
    tr.append(cell(`…${s.hint}`), cell(when(s.createdAt)), expires, cell(when(s.lastUsedAt)), actions);
    return tr;
  });
  const f = oauth.federation;
  $("fed-issuer").value = f?.issuer ?? "";
  $("fed-subject").value = f?.subject ?? "";
  $("fed-audience").value = f?.audience ?? "";
  $("fed-jwks").value = f?.jwksUri ?? "";
  $("remove-federation").disabled = !f;
}

async function generateSecret() {
  const created = await api("POST", "oauth/secrets");
  $("new-secret-value").value = created.clientSecret;
  $("new-secret-expiry").textContent = when(created.expiresAt);
  // The secret is shown once: reveal it with its Client Identifier before the reload,
  // which may fail and must not lose either.
  $("client-id").value = created.clientId;
  for (const el of document.querySelectorAll(".client-id-text")) el.textContent = created.clientId;
  $("new-secret").hidden = false;
  $("oauth-message").textContent = "A new client secret was generated.";
  await load();
  $("new-secret-value").focus();
  $("new-secret-value").select();
}

async function revokeSecret(s) {
  if (!window.confirm(`Revoke the client secret ending in ${s.hint}? Its access tokens will be refused at once.`)) return;
  await api("DELETE", `oauth/secrets/${encodeURIComponent(s.id)}`);
  unreveal("new-secret", s.hint);
  $("oauth-message").textContent = `The client secret ending in ${s.hint} was revoked.`;
  await load();
}

async function saveFederation(event) {
  event.preventDefault();
  const form = new FormData($("federation"));
  await api("PUT", "oauth/federation", Object.fromEntries([...form.entries()].map(([k, v]) => [k, String(v).trim()])));
  $("federation-message").textContent = "The federated credential was saved.";
  await load();
}

async function removeFederation() {
  if (!window.confirm("Remove the federated credential? Access tokens issued for it will be refused at once.")) return;
  await api("DELETE", "oauth/federation");
  $("federation-message").textContent = "The federated credential was removed.";
  await load();
}

function renderSummary(s) {
  const items = [
    ["Active users", s.users.active],
    ["Inactive users", s.users.inactive],
    ["Groups", s.groups],
    ["Last success", when(s.lastSuccessAt)],
    ["Failures, 24 h", s.last24h.failures],
    ["Requests, 24 h", s.last24h.requests],
  ];
  $("summary").replaceChildren(
    ...items.map(([k, v]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = String(v);
      div.append(dt, dd);
      return div;
    }),
  );
}

async function loadActivity() {
  const query = $("failures-only").checked ? "?outcome=failure" : "";
  const page = await api("GET", `logs${query}`);
  fill("activity", page.items, "Nothing yet.", 4, (e) => {
    const tr = document.createElement("tr");
    tr.className = e.outcome;
    // Refusals come aggregated (a minute of one address's refused requests): their summary
    // says how many, from where.
    const what =
      e.outcome !== "failure"
        ? named(e.summary ?? "", e.resourceName)
        : e.count > 1 || e.summary?.startsWith("Refused")
          ? [explain(e), " ", e.summary ?? ""]
          : [explain(e)];
    const warn = e.warnings?.length ? [" (", ...e.warnings.flatMap((w, i) => (i ? ["; ", { client: w }] : [{ client: w }])), ")"] : [];
    tr.append(
      cell(when(e.at)),
      mixed([`${e.method} `, { client: e.route }]),
      cell(String(e.status), "status"),
      mixed([...what, ...warn]),
    );
    return tr;
  });
}

/** A failure in words an IT admin acts on. */
function explain(e) {
  const why = {
    401: e.route === "/oauth/token"
      ? "Refused: the client identifier, client secret or federated assertion was not accepted. Check them in the identity provider."
      : "Refused: the Secret Token is wrong, revoked or missing. Paste a current token into the identity provider.",
    403: "Refused: provisioning is disabled for this organisation.",
    400: "The identity provider sent something this service cannot accept.",
    404: "Not found: the identity provider asked for something this organisation does not have.",
    409: "Conflict: a user or group with the same name already exists.",
    412: "The resource changed meanwhile; the identity provider retries.",
    413: "The request was too large.",
    429: "Too many requests at once; the identity provider retries later.",
  }[e.status];
  // The server's own words where they add to the explanation (what was invalid, and why).
  const specific = e.detail && ![401, 403, 429].includes(e.status);
  const detail = specific ? ` ${e.detail.charAt(0).toUpperCase()}${e.detail.slice(1)}` : "";
  return `${why ?? "The request failed."}${detail}`;
}

/** What each alert the Cron raised means to the organisation's admin. */
const ALERT_TITLES = {
  provisioning_failing: "Provisioning is failing",
  provisioning_stalled: "Provisioning has stopped",
  credential_expiring: "A client secret expires soon",
};

/** The alerts raised now, one banner each above the page. */
function renderAlerts(list) {
  const box = $("alerts");
  box.replaceChildren(
    ...list.map((a) => {
      const p = document.createElement("p");
      const title = document.createElement("strong");
      title.textContent = ALERT_TITLES[a.kind] ?? a.kind;
      p.append(title, ` since ${when(a.raisedAt)}: ${a.reason ?? ""}`);
      return p;
    }),
  );
  box.hidden = list.length === 0;
}

async function load() {
  const o = await api("GET", "overview");
  $("org-name").textContent = o.tenant.name;
  const badge = $("provisioning");
  badge.textContent = o.tenant.provisioningEnabled ? "provisioning enabled" : "provisioning disabled";
  badge.className = `badge ${o.tenant.provisioningEnabled ? "on" : "off"}`;
  $("generate").disabled = !o.tenant.provisioningEnabled;
  $("generate-secret").disabled = !o.tenant.provisioningEnabled;
  $("save-federation").disabled = !o.tenant.provisioningEnabled;
  $("tenant-url").value = o.tenantUrl;
  for (const el of document.querySelectorAll(".tenant-url-text")) el.textContent = o.tenantUrl;
  tokens = o.tokens;
  oauth = o.oauth;
  renderTokens();
  renderOAuth();
  renderMethods();
  renderSummary(o.summary);
  renderAlerts(o.summary.alerts ?? []);
  await loadRoles();
  await loadActivity();
}

/** A role picker: "no role" first, then the app's roles in their order. */
function rolePicker(roles, chosen, label) {
  const select = document.createElement("select");
  select.setAttribute("aria-label", label);
  for (const r of ["", ...roles]) {
    const o = document.createElement("option");
    o.value = r;
    o.textContent = r || "(no role)";
    o.selected = r === (chosen ?? "");
    select.append(o);
  }
  return select;
}

/** Choices made in the roles form and not yet saved: a reload that another action starts
 * (a revoke, a new secret) must not put the saved values back over them; and only the
 * latest of overlapping reloads renders, so an older answer cannot undo a save. */
let rolesEdited = false;
let rolesTicket = 0;

async function loadRoles() {
  const ticket = ++rolesTicket;
  const r = await api("GET", "roles");
  if (rolesEdited || ticket !== rolesTicket) return;
  const declared = r.roles.length > 0;
  $("roles-none").hidden = declared;
  $("roles").hidden = !declared;
  $("more-groups").hidden = !r.moreGroups;
  const mapped = new Map(r.items.map((m) => [m.groupId, m.role]));
  fill("role-groups", r.groups, "No groups yet: your identity provider has not pushed any.", 2, (g) => {
    const tr = document.createElement("tr");
    tr.dataset.group = g.id;
    const td = document.createElement("td");
    td.append(rolePicker(r.roles, mapped.get(g.id), `Role of group ${g.displayName}`));
    tr.append(cell(g.displayName), td);
    return tr;
  });
  $("default-role").replaceChildren(...rolePicker(r.roles, r.defaultRole, "Default role").children);
}

async function saveRoles(event) {
  event.preventDefault();
  const mappings = [...$("role-groups").querySelectorAll("tr[data-group]")]
    .map((tr) => ({ groupId: tr.dataset.group, role: tr.querySelector("select").value }))
    .filter((m) => m.role);
  const defaultRole = $("default-role").value || null;
  await api("PUT", "roles", { mappings, defaultRole });
  rolesEdited = false;
  $("roles-message").textContent = "The roles were saved.";
  await loadRoles();
}

function copyFrom(id, button) {
  const input = $(id);
  input.select();
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  };
  if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, () => document.execCommand("copy") && done());
  else if (document.execCommand("copy")) done();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-copy]")) b.addEventListener("click", () => copyFrom(b.dataset.copy, b));
  $("generate").addEventListener("click", () => generate().catch((e) => ($("tokens-message").textContent = e.message)));
  $("generate-secret").addEventListener("click", () => generateSecret().catch((e) => ($("oauth-message").textContent = e.message)));
  $("federation").addEventListener("submit", (e) => saveFederation(e).catch((err) => ($("federation-message").textContent = err.message)));
  $("remove-federation").addEventListener("click", () => removeFederation().catch((e) => ($("federation-message").textContent = e.message)));
  $("failures-only").addEventListener("change", () => loadActivity());
  $("roles").addEventListener("change", () => (rolesEdited = true));
  $("roles").addEventListener("submit", (e) => saveRoles(e).catch((err) => ($("roles-message").textContent = err.message)));
  $("sign-out").addEventListener("click", async () => {
    await api("POST", "signout");
    window.location.replace("/console");
  });
  load().catch((e) => ($("tokens-message").textContent = e.message));
});
