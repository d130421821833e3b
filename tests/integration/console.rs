//! The organisation admin's console over HTTP: one-time links, the session cookie, the CSRF
//! header, the security headers, and what a session can and cannot do. (The page itself is
//! driven in a real browser by tests/browser.)

use serde_json::{json, Value};

use crate::harness::{limited_server, server, Resp, Server};
use crate::{new_tenant, Tenant};

/// A console link for `sub`: its path on the server.
fn link(s: &Server, sub: &str) -> String {
    let r = s
        .admin("POST", &format!("/admin/v1/tenants/{sub}/console-links"))
        .send()
        .expect(201)
        .json();
    let url = r["url"].as_str().expect("url");
    assert!(
        r["expiresAt"].as_str().is_some_and(|e| e.ends_with('Z')),
        "{r}"
    );
    let prefix = format!("http://127.0.0.1:{}", s.port);
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not on {prefix}"))
        .to_string()
}

/// Open a link: the session cookie it sets.
fn open(s: &Server, path: &str) -> String {
    let r = s.get(path).send();
    // A page of this origin that moves on to /console itself: a redirect would carry the
    // cross-site navigation on, and the Strict cookie would not be sent.
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text
            .contains("<meta http-equiv=\"refresh\" content=\"0; url=/console\">"),
        "{}",
        r.text
    );
    assert!(r.text.contains("<a href=\"/console\">"), "{}", r.text);
    secured(&r);
    let cookie = r
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Plain HTTP on localhost: not `Secure` here (it is everywhere else).
    assert!(!cookie.contains("Secure"), "{cookie}");
    cookie.split(';').next().expect("name=value").to_string()
}

fn secured(r: &Resp) {
    let csp = r.header("content-security-policy").expect("CSP");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// The page's CSRF token, from its meta tag.
fn csrf_of(page: &str) -> String {
    let (_, rest) = page
        .split_once("name=\"csrf-token\" content=\"")
        .expect("csrf meta");
    rest.split('"').next().expect("token").to_string()
}

struct Console {
    server: &'static Server,
    cookie: String,
    csrf: String,
}

impl Console {
    fn open(server: &'static Server, sub: &str) -> Console {
        let cookie = open(server, &link(server, sub));
        let page = server.get("/console").header("Cookie", &cookie).send();
        assert_eq!(page.status, 200, "{}", page.text);
        secured(&page);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(!page.text.contains("<script>"), "no inline script");
        let csrf = csrf_of(&page.text);
        Console {
            server,
            cookie,
            csrf,
        }
    }

    fn call(&self, method: &str, path: &str) -> Resp {
        let r = self
            .server
            .call(method, &format!("/console/api/{path}"))
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .send();
        secured(&r);
        r
    }
}

#[test]
fn a_link_opens_a_session_for_its_organisation_only() {
    let s = server();
    let t = Tenant::new("console");
    let other = new_tenant("consoleother");
    let c = Console::open(s, &t.sub);
    let o = c.call("GET", "overview").expect(200).json();
    assert_eq!(o["tenant"]["subdomain"], json!(t.sub));
    assert_eq!(o["tenant"]["provisioningEnabled"], json!(true));
    assert_eq!(
        o["tenantUrl"],
        json!(format!("http://{}.localhost:{}/api/scim/v2", t.sub, s.port))
    );
    assert_eq!(o["tokens"].as_array().map(Vec::len), Some(1), "{o}");

    // Generate a token in the console: SCIM accepts it, and the log shows the call.
    let generated = c.call("POST", "tokens").expect(201).json();
    let token = generated["token"].as_str().expect("token").to_string();
    s.scim(&t.sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(200);
    // Two tokens are active now: a third is refused until one is revoked.
    c.call("POST", "tokens").admin_error(409);
    let id = generated["id"].as_str().expect("id");
    c.call("DELETE", &format!("tokens/{id}")).expect(204);
    s.scim(&t.sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(401);

    // The same link a second time, a session of A on B's console, no CSRF header: refused.
    let path = link(s, &t.sub);
    open(s, &path);
    let again = s.get(&path).send();
    assert_eq!(again.status, 410);
    secured(&again);
    assert!(again.text.contains("already been used"), "{}", again.text);
    let bare = s
        .call("GET", "/console/api/overview")
        .header("Cookie", &c.cookie)
        .send();
    assert_eq!(bare.status, 403, "{}", bare.text);
    let o = c.call("GET", "overview").json();
    assert_ne!(
        o["tenant"]["subdomain"],
        json!(other),
        "a session is one organisation's"
    );
    // Organisation A's session with B's CSRF token: refused.
    let b = Console::open(s, &other);
    let crossed = s
        .call("GET", "/console/api/overview")
        .header("Cookie", &c.cookie)
        .header("X-CSRF-Token", &b.csrf)
        .send();
    assert_eq!(crossed.status, 403, "{}", crossed.text);
    // Without a session: 401, and the page says how to get one.
    let page = s.get("/console").send();
    assert_eq!(page.status, 401);
    secured(&page);
    s.call("GET", "/console/api/overview")
        .send()
        .admin_error(401);
    // Assets are public and carry the same headers.
    let js = s.get("/console/console.js").send();
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    secured(&js);

    // Sign out ends the session at once.
    let out = c.call("POST", "signout");
    assert_eq!(out.status, 204);
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    c.call("GET", "overview").admin_error(401);
}

#[test]
fn disabling_or_deleting_the_organisation_takes_the_sessions_power() {
    let s = server();
    let t = Tenant::new("consoleoff");
    let c = Console::open(s, &t.sub);
    // A client secret made in the console is the tenant's, as the admin API shows it.
    let secret: Value = c.call("POST", "oauth/secrets").expect(201).json();
    let o: Value = c.call("GET", "overview").expect(200).json();
    assert_eq!(o["oauth"]["clientId"], secret["clientId"]);
    assert_eq!(o["oauth"]["secrets"][0]["id"], secret["id"]);
    assert!(o["oauth"]["secrets"][0].get("clientSecret").is_none());
    s.admin("PATCH", &format!("/admin/v1/tenants/{}", t.sub))
        .json(&json!({"provisioningEnabled": false}))
        .send()
        .expect(200);
    let o: Value = c.call("GET", "overview").expect(200).json();
    assert_eq!(o["tenant"]["provisioningEnabled"], json!(false));
    c.call("POST", "tokens").admin_error(403);
    c.call("POST", "oauth/secrets").admin_error(403);
    // Revoking stays possible.
    let id = secret["id"].as_str().expect("id");
    c.call("DELETE", &format!("oauth/secrets/{id}")).expect(204);
    s.admin("DELETE", &format!("/admin/v1/tenants/{}", t.sub))
        .send()
        .expect(202);
    c.call("GET", "overview").admin_error(401);
    c.call("POST", "tokens").admin_error(401);
}

#[test]
fn an_expired_link_is_refused() {
    // This server's links expire as they are made (CONSOLE_LINK_MINUTES = 0).
    let s = limited_server();
    let sub = crate::new_tenant_on(s, "consoleexp");
    let r = s.get(&link(s, &sub)).send();
    assert_eq!(r.status, 410, "{}", r.text);
    assert!(r.header("set-cookie").is_none());
}

/// The page in Debian's Chromium (tests/browser/console.mjs, playwright-core): a link clicked on
/// another site's page opens it signed in, Generate new makes a token SCIM accepts, its use and
/// a failure show, a 10 KB name wraps and a right-to-left one is isolated, Revoke ends the
/// token (and, presented again, it raises the failing alert the page shows), a client secret generated in the page buys an access token (and Revoke ends it), a
/// group mapped to a role and a default saved in the page reach the directory, a used link and
/// a call without the CSRF header are refused; it writes docs/console.png.
#[test]
fn the_console_works_in_chromium() {
    // A server of its own: the page maps a group to one of the app's roles, and the app's
    // roles are the whole deployment's.
    let s = crate::harness::own_server();
    let t = Tenant::on(s, "browser");
    s.admin("PUT", "/admin/v1/roles")
        .json(&json!(["Admin", "Writer", "Reader"]))
        .send()
        .expect(200);
    t.create_group("Engineers");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("node")
        .arg(format!("{root}/tests/browser/console.mjs"))
        .arg(format!("http://127.0.0.1:{}", s.port))
        .arg(&s.admin_token)
        .arg(&t.sub)
        .arg(format!("{root}/docs/console.png"))
        .output()
        .expect("run node");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ok: ")).count(),
        12,
        "{said}"
    );
}

/// The console of an organisation on each shard: the link and the session find its shard (the
/// link and the cookie name the organisation), and a token made there opens its SCIM endpoint.
#[test]
fn the_console_works_on_every_shard() {
    let s = server();
    for shard in crate::harness::SHARDS {
        let sub = crate::harness::unique("consoleshard");
        s.admin("POST", "/admin/v1/tenants")
            .json(&json!({"subdomain": sub, "shard": shard}))
            .send()
            .expect(201);
        let c = Console::open(s, &sub);
        let o: Value = c.call("GET", "overview").expect(200).json();
        assert_eq!(o["tenant"]["subdomain"], json!(sub), "{shard}");
        let made: Value = c.call("POST", "tokens").expect(201).json();
        let token = made["token"].as_str().expect("token");
        s.scim(&sub, "GET", "/Users")
            .bearer(token)
            .send()
            .expect(200);
        let o: Value = c.call("GET", "overview").expect(200).json();
        assert_eq!(o["tokens"].as_array().map(Vec::len), Some(1), "{shard}");
    }
}
