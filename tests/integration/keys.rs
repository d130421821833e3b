//! The admin API's scoped keys: every route with a key that has its scope and one that lacks
//! it, a key bound to one tenant against another on every route, revocation at once.

use serde_json::{json, Value};

use crate::harness::{server, unique, Resp, Server};
use crate::{key_with, Tenant};

const EVERY: [&str; 9] = [
    "tenants:read",
    "tenants:write",
    "credentials:write",
    "directory:read",
    "events:read",
    "logs:read",
    "roles:write",
    "keys:write",
    "webhooks:write",
];

/// A request a table row makes, with `key`.
fn ask(s: &Server, key: &str, method: &str, path: &str, body: &Option<Value>) -> Resp {
    let call = s.call(method, path).bearer(key);
    match body {
        Some(b) => call.json(b).send(),
        None => call.send(),
    }
}

/// One admin route as a table row: method, path, body, the scope it needs, and what it
/// answers a key that has it.
struct Row {
    method: &'static str,
    path: String,
    body: Option<Value>,
    scope: &'static str,
    status: u16,
}

fn row(
    method: &'static str,
    path: String,
    body: Option<Value>,
    scope: &'static str,
    status: u16,
) -> Row {
    Row {
        method,
        path,
        body,
        scope,
        status,
    }
}

/// Every route of tenant `t` (with a user and a group), and of the deployment when `whole`.
fn routes(t: &Tenant, user: &str, group: &str, shard: &str, whole: bool) -> Vec<Row> {
    let base = format!("/admin/v1/tenants/{}", t.sub);
    let fed = json!({
        "issuer": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
        "subject": "00000000-0000-0000-0000-000000000002",
        "audience": "api://scim-edge",
        "jwksUri": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/discovery/v2.0/keys",
    });
    let mut rows = vec![
        row("GET", base.clone(), None, "tenants:read", 200),
        row(
            "PATCH",
            base.clone(),
            Some(json!({"name": "Renamed"})),
            "tenants:write",
            200,
        ),
        row(
            "POST",
            format!("{base}/move"),
            Some(json!({"shard": shard})),
            "tenants:write",
            409,
        ),
        row("DELETE", format!("{base}/move"), None, "tenants:write", 409),
        row("GET", format!("{base}/tokens"), None, "tenants:read", 200),
        row(
            "POST",
            format!("{base}/tokens"),
            None,
            "credentials:write",
            201,
        ),
        row(
            "DELETE",
            format!("{base}/tokens/tok_nope"),
            None,
            "credentials:write",
            404,
        ),
        row("GET", format!("{base}/oauth"), None, "tenants:read", 200),
        row(
            "POST",
            format!("{base}/oauth/secrets"),
            None,
            "credentials:write",
            201,
        ),
        row(
            "DELETE",
            format!("{base}/oauth/secrets/sec_nope"),
            None,
            "credentials:write",
            404,
        ),
        row(
            "PUT",
            format!("{base}/oauth/federation"),
            Some(fed),
            "credentials:write",
            200,
        ),
        row(
            "DELETE",
            format!("{base}/oauth/federation"),
            None,
            "credentials:write",
            204,
        ),
        row(
            "POST",
            format!("{base}/console-links"),
            None,
            "credentials:write",
            201,
        ),
        row("GET", format!("{base}/events"), None, "events:read", 200),
        row("GET", format!("{base}/users"), None, "directory:read", 200),
        row(
            "GET",
            format!("{base}/users/{user}"),
            None,
            "directory:read",
            200,
        ),
        row("GET", format!("{base}/groups"), None, "directory:read", 200),
        row(
            "GET",
            format!("{base}/groups/{group}"),
            None,
            "directory:read",
            200,
        ),
        row(
            "GET",
            format!("{base}/groups/{group}/members"),
            None,
            "directory:read",
            200,
        ),
        row("GET", format!("{base}/logs"), None, "logs:read", 200),
        row("GET", format!("{base}/summary"), None, "logs:read", 200),
        row(
            "GET",
            format!("{base}/role-mappings"),
            None,
            "tenants:read",
            200,
        ),
        row(
            "PUT",
            format!("{base}/role-mappings"),
            Some(json!([])),
            "roles:write",
            200,
        ),
        row(
            "PUT",
            format!("{base}/default-role"),
            Some(json!({"role": null})),
            "roles:write",
            200,
        ),
    ];
    if whole {
        let new = json!({"subdomain": unique("keyed")});
        rows.extend([
            row("GET", "/admin/v1/tenants".into(), None, "tenants:read", 200),
            row(
                "POST",
                "/admin/v1/tenants".into(),
                Some(new),
                "tenants:write",
                201,
            ),
            row("GET", "/admin/v1/shards".into(), None, "tenants:read", 200),
            row(
                "PATCH",
                "/admin/v1/shards/DB".into(),
                Some(json!({"open": true})),
                "tenants:write",
                200,
            ),
            row("GET", "/admin/v1/purges".into(), None, "tenants:read", 200),
            row("GET", "/admin/v1/events".into(), None, "events:read", 200),
            // Declaring roles is the whole deployment's: tests/integration/roles.rs, on a
            // server of its own.
            row("GET", "/admin/v1/roles".into(), None, "tenants:read", 200),
            row("GET", "/admin/v1/keys".into(), None, "keys:write", 200),
            row(
                "POST",
                "/admin/v1/keys".into(),
                Some(json!({"name": "k", "scopes": ["keys:write"]})),
                "keys:write",
                201,
            ),
            row(
                "DELETE",
                "/admin/v1/keys/key_nope".into(),
                None,
                "keys:write",
                404,
            ),
            // Creating one is tests/integration/webhooks.rs's (to a receiver of its own).
            row(
                "GET",
                "/admin/v1/webhooks".into(),
                None,
                "webhooks:write",
                200,
            ),
            row(
                "POST",
                "/admin/v1/webhooks/wh_nope/test".into(),
                None,
                "webhooks:write",
                404,
            ),
            row(
                "GET",
                "/admin/v1/webhooks/wh_nope/deliveries".into(),
                None,
                "webhooks:write",
                404,
            ),
        ]);
    }
    rows
}

/// A tenant with a Secret Token, a user in a group; and the user's and group's ids.
fn populated(prefix: &str) -> (Tenant, String, String) {
    let t = Tenant::new(prefix);
    let user = t.create(json!({"userName": "ada@example.com"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let group = t.create_group("Engineers");
    (t, user, group)
}

fn shard_of(s: &Server, sub: &str) -> String {
    let t = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .expect(200)
        .json();
    t["shard"].as_str().expect("shard").to_string()
}

#[test]
fn every_route_needs_its_scope_and_a_key_with_it_alone_is_served() {
    let s = server();
    let (t, user, group) = populated("scoped");
    let shard = shard_of(s, &t.sub);
    for r in routes(&t, &user, &group, &shard, true) {
        // Every scope but the one it needs: 403, naming it, and nothing done.
        let others: Vec<&str> = EVERY.iter().copied().filter(|n| *n != r.scope).collect();
        let (lacking, _) = key_with(s, &others, None);
        let refused = ask(s, &lacking, r.method, &r.path, &r.body).admin_error(403);
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("'{}'", r.scope)),
            "{} {}: {refused}",
            r.method,
            r.path
        );
        // That one scope alone: served.
        let (only, _) = key_with(s, &[r.scope], None);
        let got = ask(s, &only, r.method, &r.path, &r.body);
        assert_eq!(
            got.status, r.status,
            "{} {} with {}: {}",
            r.method, r.path, r.scope, got.text
        );
    }
    // Nothing a refused request asked for happened: the name is the one the served PATCH set.
    let back = s
        .admin("GET", &format!("/admin/v1/tenants/{}", t.sub))
        .send()
        .expect(200)
        .json();
    assert_eq!(back["name"], "Renamed");
}

#[test]
fn a_key_bound_to_one_tenant_finds_no_other() {
    let s = server();
    let (home, user, group) = populated("home");
    let (away, away_user, away_group) = populated("away");
    let (key, made) = key_with(s, &EVERY, Some(&home.sub));
    assert_eq!(made["tenant"], home.sub.as_str());
    // Every route of another tenant: 404, word for word as for a tenant that does not exist.
    let missing = s
        .admin("GET", "/admin/v1/tenants/no-such-tenant")
        .send()
        .admin_error(404);
    let absent = missing["message"]
        .as_str()
        .unwrap_or_default()
        .replace("no-such-tenant", &away.sub);
    let shard = shard_of(s, &away.sub);
    for r in routes(&away, &away_user, &away_group, &shard, false) {
        let body = ask(s, &key, r.method, &r.path, &r.body).admin_error(404);
        assert_eq!(body["message"], absent.as_str(), "{} {}", r.method, r.path);
    }
    let untouched = s
        .admin("GET", &format!("/admin/v1/tenants/{}", away.sub))
        .send()
        .expect(200)
        .json();
    assert_ne!(untouched["name"], "Renamed");
    // Its own: served.
    let shard = shard_of(s, &home.sub);
    for r in routes(&home, &user, &group, &shard, false) {
        let got = ask(s, &key, r.method, &r.path, &r.body);
        assert_eq!(
            got.status, r.status,
            "{} {}: {}",
            r.method, r.path, got.text
        );
    }
    // The list of tenants is its own; what is no tenant's is refused.
    let list = ask(s, &key, "GET", "/admin/v1/tenants", &None)
        .expect(200)
        .json();
    let subs: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["subdomain"].as_str())
        .collect();
    assert_eq!(subs, [home.sub.as_str()]);
    let new = Some(json!({"subdomain": unique("bound")}));
    for (method, path, body) in [
        ("POST", "/admin/v1/tenants", &new),
        ("GET", "/admin/v1/shards", &None),
        ("PATCH", "/admin/v1/shards/DB", &Some(json!({"open": true}))),
        ("GET", "/admin/v1/purges", &None),
    ] {
        let refused = ask(s, &key, method, path, body).admin_error(403);
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or_default()
                .contains("bound"),
            "{refused}"
        );
    }
    // The feed of everything is its tenant's alone, though the other tenant has events too.
    let feed = ask(s, &key, "GET", "/admin/v1/events?limit=200", &None)
        .expect(200)
        .json();
    let items = feed["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|e| e["tenant"]["subdomain"] == home.sub.as_str()),
        "{feed}"
    );
    // Its keys: it makes keys of its own tenant only, never stronger than itself.
    let other = json!({"name": "x", "scopes": ["logs:read"], "tenant": away.sub});
    ask(s, &key, "POST", "/admin/v1/keys", &Some(other)).admin_error(404);
    let (narrow, _) = key_with(s, &["logs:read"], Some(&home.sub));
    let stronger = json!({"name": "x", "scopes": ["logs:read", "directory:read"]});
    let refused = s
        .call("POST", "/admin/v1/keys")
        .bearer(&narrow)
        .json(&stronger)
        .send()
        .admin_error(403);
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("keys:write"),
        "{refused}"
    );
    let keys = ask(s, &key, "GET", "/admin/v1/keys?limit=200", &None)
        .expect(200)
        .json();
    let tenants: Vec<&Value> = keys["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| &k["tenant"])
        .collect();
    assert!(
        !tenants.is_empty() && tenants.iter().all(|t| *t == home.sub.as_str()),
        "{keys}"
    );
}

#[test]
fn a_key_is_shown_once_listed_by_its_hint_and_revoked_at_once() {
    let s = server();
    let (key, made) = key_with(s, &["tenants:read"], None);
    assert!(key.starts_with("scim_ak_"));
    assert_eq!(made["scopes"], json!(["tenants:read"]));
    assert_eq!(made["tenant"], Value::Null);
    assert_eq!(made["hint"], &key[key.len() - 4..]);
    let id = made["id"].as_str().expect("id").to_string();
    // Used once: the list shows when, and never the key.
    ask(s, &key, "GET", "/admin/v1/tenants", &None).expect(200);
    let mut listed = None;
    let mut after = String::new();
    loop {
        let page = s
            .admin("GET", &format!("/admin/v1/keys?limit=100&after={after}"))
            .send()
            .expect(200);
        assert!(!page.text.contains(&key), "a key is shown once");
        let page = page.json();
        let items = page["items"].as_array().expect("items");
        listed = listed.or_else(|| items.iter().find(|k| k["id"] == id.as_str()).cloned());
        match page["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    let listed = listed.expect("listed");
    assert_eq!(listed["name"], made["name"]);
    assert!(listed["lastUsedAt"].is_string(), "{listed}");
    assert!(listed.get("key").is_none());
    // A malformed request is a 400 that says why.
    let bad = s
        .admin("POST", "/admin/v1/keys")
        .json(&json!({"name": "x", "scopes": ["everything"]}))
        .send()
        .admin_error(400);
    assert!(
        bad["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'everything'"),
        "{bad}"
    );
    s.admin("POST", "/admin/v1/keys")
        .json(&json!({"name": "x", "scopes": []}))
        .send()
        .admin_error(400);
    s.admin("POST", "/admin/v1/keys")
        .json(&json!({"name": "x", "scopes": ["logs:read"], "role": 1}))
        .send()
        .admin_error(400);
    // Revoked: the next request with it is 401, and the revocation is not repeatable.
    s.admin("DELETE", &format!("/admin/v1/keys/{id}"))
        .send()
        .expect(204);
    ask(s, &key, "GET", "/admin/v1/tenants", &None).admin_error(401);
    s.admin("DELETE", &format!("/admin/v1/keys/{id}"))
        .send()
        .admin_error(404);
    // A deleted tenant's keys go with it.
    let t = Tenant::new("doomed");
    let (bound, _) = key_with(s, &["tenants:read"], Some(&t.sub));
    s.admin("DELETE", &format!("/admin/v1/tenants/{}", t.sub))
        .send()
        .expect(202);
    ask(s, &bound, "GET", "/admin/v1/tenants", &None).admin_error(401);
}

/// Looking a key up costs a D1 call, so wrong keys spend the address's refusal budget
/// (wrangler.toml's, on the limited server): past it, 429 with no D1 call, while the right key
/// from elsewhere, and `ADMIN_TOKEN`, still work.
#[test]
fn wrong_keys_spend_the_refusal_budget_and_then_cost_no_d1_call() {
    let s = crate::harness::limited_server();
    let (good, _) = key_with(s, &["tenants:read"], None);
    let address = "198.51.100.77";
    let mut last = None;
    for i in 0..40 {
        let r = s
            .get("/admin/v1/tenants")
            .bearer(&format!("scim_ak_wrong{i}"))
            .header("CF-Connecting-IP", address)
            .send();
        if r.status == 429 {
            last = Some(r);
            break;
        }
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(
            crate::harness::d1_calls(&r),
            1,
            "a wrong key is looked up once"
        );
    }
    let spent = last.expect("the budget runs out");
    assert_eq!(
        crate::harness::d1_calls(&spent),
        0,
        "no D1 call past the budget"
    );
    assert!(spent.header("retry-after").is_some());
    s.get("/admin/v1/tenants").bearer(&good).send().expect(200);
    s.admin("GET", "/admin/v1/tenants")
        .header("CF-Connecting-IP", address)
        .send()
        .expect(200);
}
