//! Reaching a tenant's SCIM endpoint: routing by Host and by path prefix, authentication,
//! the provisioning switch, and the shape of every error.

use serde_json::{json, Value};

use crate::harness::{d1_calls, server};
use crate::{new_tenant, new_token};

const EMPTY_LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

#[track_caller]
fn assert_empty_list(resp: crate::harness::Resp) {
    let resp = resp.expect(200);
    assert_eq!(resp.header("content-type"), Some("application/scim+json"));
    assert_eq!(
        resp.json(),
        json!({"schemas": [EMPTY_LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
}

#[test]
fn routes_by_host_with_and_without_port_and_by_path_prefix() {
    let s = server();
    let sub = new_tenant("route");
    let token = new_token(&sub);
    // Host with the port, as Entra and curl send it.
    assert_empty_list(s.scim(&sub, "GET", "/Users").bearer(&token).send());
    // Host without the port, and in upper case.
    for host in [
        format!("{sub}.localhost"),
        format!("{}.LOCALHOST", sub.to_uppercase()),
    ] {
        assert_empty_list(
            s.call("GET", "/api/scim/v2/Users")
                .host(&host)
                .bearer(&token)
                .send(),
        );
    }
    // Path prefix on a non-tenant host.
    assert_empty_list(
        s.call("GET", &format!("/tenants/{sub}/api/scim/v2/Users"))
            .bearer(&token)
            .send(),
    );
    // Trailing slash, unknown query parameters (Entra's aadOptscim062020), and Entra's
    // Test Connection filter on both resource types: 200 with an empty ListResponse, never 404.
    let guid_filter = "filter=userName+eq+%227d420df3-9f3a-4c5c-9a5f-2b1a3c4d5e6f%22";
    for path in [
        "/Users/".to_string(),
        "/Users?aadOptscim062020".to_string(),
        format!("/Users?{guid_filter}"),
        "/Groups?excludedAttributes=members&filter=displayName+eq+%22x%22".to_string(),
    ] {
        assert_empty_list(s.scim(&sub, "GET", &path).bearer(&token).send());
    }
    assert_empty_list(
        s.scim(&sub, "POST", "/Users/.search")
            .bearer(&token)
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}))
            .send(),
    );
}

#[test]
fn dotted_subdomains_are_one_tenant() {
    let s = server();
    let sub = format!("{}.us", crate::harness::unique("piedpiper"));
    s.admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": sub}))
        .send()
        .expect(201);
    let token = new_token(&sub);
    assert_empty_list(s.scim(&sub, "GET", "/Users").bearer(&token).send());
    assert_empty_list(
        s.call("GET", &format!("/tenants/{sub}/api/scim/v2/Users"))
            .bearer(&token)
            .send(),
    );
    // The last label alone is a different (unknown) tenant.
    s.scim("us", "GET", "/Users")
        .bearer(&token)
        .send()
        .scim_error(404);
}

#[test]
fn unknown_tenants_are_404() {
    let s = server();
    let sub = new_tenant("known");
    let token = new_token(&sub);
    for call in [
        s.scim("no-such-tenant", "GET", "/Users"),
        s.scim("no-such-tenant", "GET", "/Users").bearer(&token),
        s.call("GET", "/tenants/no-such-tenant/api/scim/v2/Users")
            .bearer(&token),
        // Not even a valid subdomain.
        s.scim("bad_name", "GET", "/Users").bearer(&token),
        s.scim("admin", "GET", "/Users").bearer(&token),
    ] {
        let e = call.send().scim_error(404);
        assert!(e.get("scimType").is_none(), "{e}");
    }
}

#[test]
fn missing_malformed_unknown_and_foreign_tokens_are_401() {
    let s = server();
    let a = new_tenant("autha");
    let b = new_tenant("authb");
    let token_a = new_token(&a);
    let token_b = new_token(&b);
    s.scim(&a, "GET", "/Users").send().scim_error(401);
    s.scim(&a, "GET", "/Users")
        .header("Authorization", &format!("Basic {token_a}"))
        .send()
        .scim_error(401);
    s.scim(&a, "GET", "/Users")
        .header("Authorization", "Bearer")
        .send()
        .scim_error(401);
    s.scim(&a, "GET", "/Users")
        .bearer("scim_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .scim_error(401);
    // Tenant A's token on tenant B, before and after A's token is cached by a use on A.
    s.scim(&b, "GET", "/Users")
        .bearer(&token_a)
        .send()
        .scim_error(401);
    s.scim(&a, "GET", "/Users")
        .bearer(&token_a)
        .send()
        .expect(200);
    s.scim(&a, "GET", "/Users")
        .bearer(&token_a)
        .send()
        .expect(200);
    s.scim(&b, "GET", "/Users")
        .bearer(&token_a)
        .send()
        .scim_error(401);
    s.call("GET", &format!("/tenants/{b}/api/scim/v2/Users"))
        .bearer(&token_a)
        .send()
        .scim_error(401);
    // The admin token is not a SCIM token.
    s.scim(&a, "GET", "/Users")
        .bearer(&s.admin_token)
        .send()
        .scim_error(401);
    // And B's own token still works.
    s.scim(&b, "GET", "/Users")
        .bearer(&token_b)
        .send()
        .expect(200);
}

#[test]
fn provisioning_switch_gives_403_then_200() {
    let s = server();
    let sub = new_tenant("switch");
    let token = new_token(&sub);
    // Authenticated before the switch, so a cache anywhere would have to forget it.
    s.scim(&sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(200);
    s.scim(&sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(200);
    let path = format!("/admin/v1/tenants/{sub}");
    s.admin("PATCH", &path)
        .json(&json!({"provisioningEnabled": false}))
        .send()
        .expect(200);
    let e = s
        .scim(&sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .scim_error(403);
    assert!(
        e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("provisioning is disabled"),
        "{e}"
    );
    // A bad token on a disabled tenant is still 401, not 403.
    s.scim(&sub, "GET", "/Users")
        .bearer("scim_nope")
        .send()
        .scim_error(401);
    s.admin("PATCH", &path)
        .json(&json!({"provisioningEnabled": true}))
        .send()
        .expect(200);
    assert_empty_list(s.scim(&sub, "GET", "/Users").bearer(&token).send());
}

#[test]
fn revoked_token_is_refused_at_once_and_stays_refused() {
    let s = server();
    let sub = new_tenant("revoke");
    let created = crate::token_response(server(), &sub);
    let token = created["token"].as_str().expect("token");
    for _ in 0..3 {
        s.scim(&sub, "GET", "/Users")
            .bearer(token)
            .send()
            .expect(200);
    }
    let id = created["id"].as_str().expect("id");
    s.admin("DELETE", &format!("/admin/v1/tenants/{sub}/tokens/{id}"))
        .send()
        .expect(204);
    s.scim(&sub, "GET", "/Users")
        .bearer(token)
        .send()
        .scim_error(401);
    // And it stays refused: nothing the earlier requests left behind lets it in.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.scim(&sub, "GET", "/Users")
        .bearer(token)
        .send()
        .scim_error(401);
}

/// Authentication rides in each operation's own D1 call: a read is one call, a create one, an
/// Entra disable (a PATCH of `active`) one, an attribute update one, a member add one, and a
/// request that reaches no resource one (the gate alone); the first request an isolate serves
/// for an organisation also looks up its id. A bad token gets 401 whatever the request, before
/// any validation, and writes nothing.
#[test]
fn one_d1_call_per_read_and_a_bad_token_reads_and_writes_nothing() {
    let s = server();
    let sub = new_tenant("gate");
    let token = new_token(&sub);
    let first = s
        .scim(&sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(200);
    // The isolate that created the organisation knows its shard; another asks the directory
    // once (its id and shard), then reads.
    assert!(
        matches!(d1_calls(&first), 1 | 2),
        "the read, after the directory at most once: {}",
        d1_calls(&first)
    );
    let user = json!({"userName": "gate@example.com", "externalId": "g-1"});
    let r = s
        .scim(&sub, "POST", "/Users")
        .bearer(&token)
        .json(&user)
        .send()
        .expect(201);
    assert_eq!(d1_calls(&r), 1, "create");
    let id = r.json()["id"].as_str().expect("id").to_string();
    let filter = "/Users?filter=userName%20eq%20%22gate@example.com%22";
    for path in [filter.to_string(), format!("/Users/{id}")] {
        let r = s.scim(&sub, "GET", &path).bearer(&token).send().expect(200);
        assert_eq!(d1_calls(&r), 1, "{path}");
    }
    let disable = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let before = s
        .scim(&sub, "GET", &format!("/Users/{id}"))
        .bearer(&token)
        .send();
    let r = s
        .scim(&sub, "PATCH", &format!("/Users/{id}"))
        .bearer(&token)
        .json(&disable)
        .send()
        .expect(200);
    assert_eq!(
        d1_calls(&r),
        1,
        "Entra's disable: one conditional batch that reads back"
    );
    let body = r.json();
    assert_eq!(body["active"], false, "{body}");
    assert_eq!(body["userName"], "gate@example.com");
    assert_ne!(r.header("etag"), before.header("etag"), "a new version");
    // Again: still one call, nothing changes, no second event.
    let again = s
        .scim(&sub, "PATCH", &format!("/Users/{id}"))
        .bearer(&token)
        .json(&disable)
        .send()
        .expect(200);
    assert_eq!(d1_calls(&again), 1);
    assert_eq!(again.header("etag"), r.header("etag"), "unchanged");
    let events = s
        .admin(
            "GET",
            &format!("/admin/v1/tenants/{sub}/events?types=user.deactivated"),
        )
        .send()
        .expect(200)
        .json();
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    assert_eq!(
        events["items"][0]["data"]["changed"],
        json!(["active"]),
        "{events}"
    );
    assert_eq!(
        events["items"][0]["data"]["user"]["active"], false,
        "{events}"
    );
    let missing = s
        .scim(&sub, "PATCH", "/Users/00000000-0000-4000-8000-000000000000")
        .bearer(&token)
        .json(&disable)
        .send();
    assert_eq!(missing.status, 404);
    // Entra's attribute update (single-valued leaves by path): one call too, and what it says
    // changed is what did.
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let update = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Gate Keeper"},
            {"op": "Replace", "path": "name.givenName", "value": "Gate"},
            {"op": "Add", "path": format!("{ent}:department"), "value": "Security"}]});
    let r = s
        .scim(&sub, "PATCH", &format!("/Users/{id}"))
        .bearer(&token)
        .json(&update)
        .send()
        .expect(200);
    assert_eq!(d1_calls(&r), 1, "Entra's attribute update: one batch");
    let body = r.json();
    assert_eq!(
        (
            &body["displayName"],
            &body["name"]["givenName"],
            &body[ent]["department"]
        ),
        (&json!("Gate Keeper"), &json!("Gate"), &json!("Security")),
        "{body}"
    );
    assert_eq!(body["active"], false, "the disable stays: {body}");
    let read = s
        .scim(&sub, "GET", &format!("/Users/{id}"))
        .bearer(&token)
        .send()
        .expect(200);
    assert_eq!(read.json(), body, "read back");
    assert_eq!(read.header("etag"), r.header("etag"));
    let again = s
        .scim(&sub, "PATCH", &format!("/Users/{id}"))
        .bearer(&token)
        .json(&update)
        .send()
        .expect(200);
    assert_eq!(
        again.header("etag"),
        r.header("etag"),
        "unchanged: no new version"
    );
    let events = s
        .admin(
            "GET",
            &format!("/admin/v1/tenants/{sub}/events?types=user.updated"),
        )
        .send()
        .expect(200)
        .json();
    let changed: Vec<&Value> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["data"]["changed"])
        .collect();
    assert_eq!(
        changed,
        [&json!(["displayName", "name", ent])],
        "one event, naming what changed: {events}"
    );
    let r = s
        .scim(&sub, "POST", "/Groups")
        .bearer(&token)
        .json(&json!({"displayName": "Gate"}))
        .send()
        .expect(201);
    let group = r.json()["id"].as_str().expect("id").to_string();
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}]});
    let r = s
        .scim(&sub, "PATCH", &format!("/Groups/{group}"))
        .bearer(&token)
        .json(&add)
        .send()
        .expect(204);
    assert_eq!(d1_calls(&r), 1, "member add: one batch, no read before it");
    let r = s
        .scim(&sub, "GET", "/ServiceProviderConfig")
        .bearer(&token)
        .send()
        .expect(200);
    assert_eq!(d1_calls(&r), 1, "the gate alone");

    // Another organisation's valid token: refused before the body or the filter is looked at.
    let other = new_token(&new_tenant("gate-other"));
    s.scim(&sub, "GET", "/Users?filter=nonsense")
        .bearer(&other)
        .send()
        .scim_error(401);
    s.scim(&sub, "POST", "/Users")
        .bearer(&other)
        .raw_body("{not json")
        .send()
        .scim_error(401);
    s.scim(&sub, "POST", "/Users")
        .bearer(&other)
        .json(&json!({"userName": "intruder@example.com"}))
        .send()
        .scim_error(401);
    s.scim(&sub, "PATCH", &format!("/Users/{id}"))
        .bearer(&other)
        .json(
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "displayName", "value": "Intruder"}]}),
        )
        .send()
        .scim_error(401);
    s.scim(&sub, "DELETE", &format!("/Users/{id}"))
        .bearer(&other)
        .send()
        .scim_error(401);
    // Read back with the organisation's token: nothing of it happened.
    let users = s
        .scim(&sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(200)
        .json();
    assert_eq!(users["totalResults"], 1);
    assert_eq!(users["Resources"][0]["userName"], "gate@example.com");
    assert_eq!(users["Resources"][0]["active"], false);
    assert_eq!(
        users["Resources"][0]["displayName"], "Gate Keeper",
        "not the intruder's"
    );
}

#[test]
fn unknown_routes_and_wrong_methods_are_scim_errors() {
    let s = server();
    let sub = new_tenant("routes");
    let token = new_token(&sub);
    // Unknown SCIM endpoint, after authentication.
    s.scim(&sub, "GET", "/Widgets")
        .bearer(&token)
        .send()
        .scim_error(404);
    s.scim(&sub, "GET", "")
        .bearer(&token)
        .send()
        .scim_error(404);
    // Unauthenticated callers learn nothing about routes.
    s.scim(&sub, "GET", "/Widgets").send().scim_error(401);
    // Outside /api/scim/v2 on a tenant host, and unknown paths on the operator host.
    s.call("GET", "/")
        .host(&s.tenant_host(&sub))
        .send()
        .scim_error(404);
    s.call("GET", "/api/scim/v1/Users")
        .host(&s.tenant_host(&sub))
        .bearer(&token)
        .send()
        .scim_error(404);
    s.get("/").send().scim_error(404);
    s.get("/favicon.ico").send().scim_error(404);
    // Wrong methods: 405 with Allow.
    let r = s.scim(&sub, "DELETE", "/Users").bearer(&token).send();
    assert_eq!(r.header("allow"), Some("GET, POST"));
    r.scim_error(405);
    let r = s.scim(&sub, "GET", "/Users/.search").bearer(&token).send();
    assert_eq!(r.header("allow"), Some("POST"));
    r.scim_error(405);
    // A resource that does not exist.
    s.scim(&sub, "GET", "/Users/2819c223-7f76-453a-919d-413861904646")
        .bearer(&token)
        .send()
        .scim_error(404);
}
