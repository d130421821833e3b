// The organisation admin's console in a real browser (Debian's Chromium, driven by
// playwright-core), against a running scim-edge: node tests/browser/console.mjs <origin>
// <admin token> <subdomain> <screenshot path>. Prints one line per step; exits non-zero on the
// first failure. Run by the integration test `console::the_console_works_in_chromium`.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { createServer } from "node:http";

const [origin, adminToken, sub, screenshot] = process.argv.slice(2);
const admin = (method, path) =>
  fetch(`${origin}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } }).then(async (r) => {
    assert.ok(r.ok, `${method} ${path}: ${r.status}`);
    return r.status === 204 ? null : r.json();
  });
// Node cannot set Host: SCIM through the path form of the Tenant URL.
const scim = (token, path = "/Users") =>
  fetch(`${origin}/tenants/${sub}/api/scim/v2${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
const step = (text) => console.log(`ok: ${text}`);
const create = (token, body) =>
  fetch(`${origin}/tenants/${sub}/api/scim/v2/Users`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/scim+json" },
    body: JSON.stringify({ schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], ...body }),
  }).then((r) => r.status);

// The vendor's app, on another site: `localhost` where the console is on 127.0.0.1 (a site is
// the scheme and the registrable host; ports do not count). Its page links to the console link.
let vendorLink = "";
const vendor = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end(`<!doctype html><title>Vendor app</title><a id="open" href="${vendorLink}">Open SCIM provisioning</a>`);
});
await new Promise((r) => vendor.listen(0, "127.0.0.1", r));
const vendorOrigin = `http://localhost:${vendor.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Script errors only: the refusals this test provokes (and the browser's favicon request)
  // also reach the console, as failed loads.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  page.on("dialog", (d) => d.accept());

  // 1. The admin API makes a link; the admin clicks it in the vendor's app, on another site;
  // the page shows the organisation (signed in: the Strict cookie reached /console).
  const { url } = await admin("POST", `/tenants/${sub}/console-links`);
  vendorLink = url;
  await page.goto(vendorOrigin);
  await Promise.all([page.waitForURL(`${origin}/console`), page.click("#open")]);
  assert.equal(new URL(page.url()).pathname, "/console");
  assert.equal(await page.$("h1:has-text('Signed out')"), null, "signed in after a cross-site click");
  await page.waitForFunction(() => document.getElementById("tenant-url").value !== "");
  const tenantUrl = await page.inputValue("#tenant-url");
  assert.match(tenantUrl, new RegExp(`^http://${sub.replace(".", "\\.")}\\.localhost:\\d+/api/scim/v2$`));
  assert.equal(await page.textContent("#org-subdomain"), sub);
  assert.match(await page.textContent(".tenant-url-text"), /\/api\/scim\/v2$/);
  step("a link clicked on another site's page opens the console with the organisation and its Tenant URL");

  // 2. Generate new (from the keyboard): the token works for SCIM, is listed with a last use,
  // and its call shows.
  await page.focus("#generate");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#new-token:not([hidden])");
  const token = await page.inputValue("#new-token-value");
  assert.match(token, /^scim_/);
  assert.equal(await scim(token), 200);
  let lastUsed = "never";
  for (let i = 0; i < 40 && lastUsed === "never"; i++) {
    await new Promise((r) => setTimeout(r, 250));
    await page.reload();
    await page.waitForSelector("#tokens tr[data-token-id]");
    const rows = await page.$$eval("#tokens tr[data-token-id]", (trs) =>
      trs.map((tr) => ({ hint: tr.cells[0].textContent, used: tr.querySelector(".last-used").textContent })),
    );
    lastUsed = rows.find((r) => token.endsWith(r.hint.replace("…", "")))?.used ?? "never";
  }
  assert.notEqual(lastUsed, "never", "the new token shows its last use");
  await page.waitForFunction(() => [...document.querySelectorAll("#activity tr")].some((tr) => tr.textContent.includes("GET /Users")));
  step("Generate new: SCIM answers 200 with the token, the list shows its last use, Recent activity shows the call");

  // 2b. Names the identity provider chose: one 10 KB word wraps, a right-to-left override stays
  // inside its own name, at a laptop's width and a phone's.
  const long = `${"w".repeat(10_000)}@acme.com`;
  const rtl = "\u202Emoc.emca@evil\u200B";
  assert.equal(await create(token, { userName: long }), 201);
  assert.equal(await create(token, { userName: rtl }), 201);
  // The entries are written just after the responses: reload until the page lists them. The
  // name's hidden controls are shown for what they are, and isolated in its own <bdi>.
  const shown = "⟨U+202E⟩moc.emca@evil⟨U+200B⟩";
  for (let i = 0; i < 40; i++) {
    await page.reload();
    const seen = await page
      .waitForFunction((n) => [...document.querySelectorAll("#activity bdi")].some((b) => b.textContent === n), shown, { timeout: 1_000 })
      .then(() => true, () => false);
    if (seen) break;
  }
  const isolated = await page.$$eval(
    "#activity bdi",
    (bs, n) =>
      bs
        .filter((b) => b.textContent === n)
        .map((b) => ({ bidi: getComputedStyle(b).unicodeBidi, after: b.nextSibling?.textContent ?? "" })),
    shown,
  );
  assert.ok(isolated.length > 0, `the right-to-left name is shown in a <bdi>: ${errors.join("; ")} ${(await page.innerHTML("#activity")).slice(0, 1500)}`);
  for (const b of isolated) {
    assert.equal(b.bidi, "isolate");
    assert.match(b.after, /created/, "the words after the name are outside its <bdi>");
  }
  const hidden = await page.$$eval("#activity bdi", (bs) => bs.some((b) => /[\u200B\u202E]/.test(b.textContent)));
  assert.equal(hidden, false, "no hidden control reaches the page");
  for (const width of [1100, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `at ${width}px the page is ${overflow}px too wide`);
  }
  await page.setViewportSize({ width: 1100, height: 900 });
  step("a 10 KB name wraps, a right-to-left name is isolated with its controls shown, at a laptop's width and a phone's");

  // 3. A wrong token is a failure the page shows as one.
  assert.equal(await scim("not-a-token"), 401);
  let failure = null;
  for (let i = 0; i < 40 && !failure; i++) {
    await new Promise((r) => setTimeout(r, 250));
    await page.reload();
    await page.waitForSelector("#activity tr");
    await page.check("#failures-only");
    // The filtered list has replaced the full one when no success row is left.
    await page.waitForFunction(() => document.querySelectorAll("#activity tr.success").length === 0);
    failure = await page.$("#activity tr.failure");
  }
  assert.ok(failure, "a failure row");
  assert.match(await failure.textContent(), /401/);
  assert.match(await failure.textContent(), /Secret Token is wrong/);
  const successes = await page.$$("#activity tr.success");
  assert.equal(successes.length, 0, "failures only");
  step("a wrong token's 401 is listed as a failure, in words");

  // 4. Revoke in the page: SCIM with that token is refused.
  const hint = token.slice(-4);
  await page.click(`button[aria-label="Revoke the token ending in ${hint}"]`);
  await page.waitForFunction((h) => !document.querySelector(`button[aria-label="Revoke the token ending in ${h}"]`), hint);
  assert.equal(await scim(token), 401);
  step("Revoke: SCIM with the revoked token answers 401");

  // 4a. That request is the organisation's own identity provider still using a credential it
  // was told to stop using: once the Cron has run, the page shows the failing alert.
  let banner = "";
  for (let i = 0; i < 40 && !banner.includes("revoked"); i++) {
    await new Promise((r) => setTimeout(r, 250));
    assert.equal((await fetch(`${origin}/__scheduled`)).status, 200);
    await page.reload();
    await page.waitForFunction(() => document.getElementById("tenant-url").value !== "");
    banner = (await page.$eval("#alerts", (el) => (el.hidden ? "" : el.textContent))) ?? "";
  }
  assert.match(banner, /^Provisioning is failing since .*revoked or expired credential/);
  step("a revoked token still presented raises the failing alert, shown as a banner");

  // 4b. OAuth: Generate new client secret in the page; the Token Endpoint and Client
  // Identifier it shows buy an access token that serves SCIM; Revoke stops it.
  await page.click("#generate-secret");
  await page.waitForSelector("#new-secret:not([hidden])");
  const secret = await page.inputValue("#new-secret-value");
  const clientId = await page.inputValue("#client-id");
  const tokenEndpoint = await page.inputValue("#token-endpoint");
  assert.match(secret, /^scim_cs_/);
  assert.match(clientId, /^cli_/);
  assert.match(tokenEndpoint, new RegExp(`^http://${sub.replace(".", "\\.")}\\.localhost:\\d+/oauth/token$`));
  assert.match(await page.textContent("#new-secret-expiry"), /\d/);
  assert.equal(await page.textContent(".client-id-text"), clientId);
  // The list and the methods follow from the reload the generation starts.
  await page.waitForFunction(() => /OAuth2 client credentials grant: 1 client secret/.test(document.querySelector("#methods").textContent));
  // Node cannot set Host: the token endpoint through the path form.
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64");
  const granted = await fetch(`${origin}/tenants/${sub}/oauth/token`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials",
  });
  assert.equal(granted.status, 200);
  const { access_token: access, token_type: type, expires_in: expiresIn } = await granted.json();
  assert.equal(type, "Bearer");
  assert.ok(expiresIn >= 3600);
  assert.equal(await scim(access), 200);
  const secretHint = secret.slice(-4);
  await page.click(`button[aria-label="Revoke the client secret ending in ${secretHint}"]`);
  await page.waitForFunction((h) => !document.querySelector(`button[aria-label="Revoke the client secret ending in ${h}"]`), secretHint);
  assert.equal(await scim(access), 401);
  assert.equal(await page.isHidden("#new-secret"), true, "a revoked secret is no longer offered for copying");
  step("Generate new client secret: the page's Token Endpoint and Client Identifier buy an access token SCIM accepts; Revoke stops it");

  // 4c. Roles from groups: map the group to a role and choose a default; the directory
  // follows (the vendor declared Admin, Writer, Reader; the tenant has a group Engineers).
  await page.waitForSelector('select[aria-label="Role of group Engineers"]');
  await page.selectOption('select[aria-label="Role of group Engineers"]', "Writer");
  await page.selectOption("#default-role", "Reader");
  // A reload another action starts (here, directly) keeps the choices not yet saved.
  await page.evaluate(() => load());
  assert.equal(await page.inputValue('select[aria-label="Role of group Engineers"]'), "Writer");
  await page.click("#save-roles");
  await page.waitForFunction(() => document.querySelector("#roles-message").textContent.includes("saved"));
  const mapped = await admin("GET", `/tenants/${sub}/role-mappings`);
  assert.deepEqual(mapped.items.map((m) => [m.displayName, m.role]), [["Engineers", "Writer"]]);
  assert.equal(mapped.defaultRole, "Reader");
  const users = await admin("GET", `/tenants/${sub}/users`);
  assert.ok(users.items.length > 0 && users.items.every((u) => u.role === "Reader" && u.roleSource?.type === "default"), JSON.stringify(users.items.map((u) => [u.role, u.roleSource])));
  await page.reload();
  await page.waitForSelector('select[aria-label="Role of group Engineers"]');
  assert.equal(await page.inputValue('select[aria-label="Role of group Engineers"]'), "Writer");
  assert.equal(await page.inputValue("#default-role"), "Reader");
  step("Roles from groups: a group mapped to a role and a default saved in the page reach the directory; a reload before saving keeps them");

  // 5. The same link again is refused; a console call without the CSRF header is refused.
  const again = await context.newPage();
  const r = await again.goto(url);
  assert.equal(r.status(), 410);
  assert.match(await again.textContent("body"), /already been used/);
  const bare = await page.evaluate(() => fetch("/console/api/overview").then((r) => r.status));
  assert.equal(bare, 403);
  step("the link a second time: 410; a call without the CSRF header: 403");

  // 6. A screenshot of the page, as an admin sees it.
  await page.uncheck("#failures-only");
  await page.waitForTimeout(300);
  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot: ${screenshot}`);

  // Readable on a phone: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  step("a phone's width: no horizontal scrolling");

  // Sign out ends the session.
  await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
  await page.waitForSelector("h1:has-text('Signed out')");
  const out = await page.evaluate(() => fetch("/console/api/overview").then((r) => r.status));
  assert.equal(out, 401);
  step("sign out");
  assert.deepEqual(errors, [], "no script errors");
} finally {
  await browser.close();
  vendor.close();
}
