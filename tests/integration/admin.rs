//! The admin API: authentication, tenants, tokens.

use serde_json::{json, Value};

use crate::harness::{own_server, server, unique};
use crate::{new_tenant, new_token, token_response};

#[test]
fn admin_api_requires_the_admin_token() {
    let s = server();
    s.get("/admin/v1/tenants").send().admin_error(401);
    s.get("/admin/v1/tenants")
        .bearer("wrong-token")
        .send()
        .admin_error(401);
    s.get("/admin/v1/tenants")
        .header("Authorization", &format!("Basic {}", s.admin_token))
        .send()
        .admin_error(401);
    // The admin token is checked before routing: unknown admin paths do not leak.
    s.get("/admin/v1/nothing-here").send().admin_error(401);
    s.admin("GET", "/admin/v1/nothing-here")
        .send()
        .admin_error(404);
    // Bearer scheme is case-insensitive (RFC 6750 / RFC 9110 §11.1).
    s.get("/admin/v1/tenants")
        .header("Authorization", &format!("bearer {}", s.admin_token))
        .send()
        .expect(200);
}

#[test]
fn admin_api_is_not_served_on_tenant_hosts() {
    let s = server();
    let sub = new_tenant("adminhost");
    s.admin("GET", "/admin/v1/tenants")
        .host(&s.tenant_host(&sub))
        .send()
        .scim_error(404);
}

#[test]
fn tenant_lifecycle_create_list_get_patch_delete() {
    let s = server();
    let sub = unique("lifecycle");
    let created = s
        .admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": sub, "name": "Acme Corp"}))
        .send()
        .expect(201);
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.header("cache-control"), Some("no-store"));
    assert_eq!(
        created.header("location"),
        Some(format!("/admin/v1/tenants/{sub}").as_str())
    );
    let body = created.json();
    assert_eq!(body["subdomain"], sub.as_str());
    assert_eq!(body["name"], "Acme Corp");
    assert_eq!(body["provisioningEnabled"], true);
    assert_eq!(
        body["tenantUrl"],
        format!("http://{sub}.localhost:{}/api/scim/v2", s.port)
    );
    let created_at = body["createdAt"].as_str().expect("createdAt");
    assert!(
        created_at.len() == 24 && created_at.ends_with('Z') && created_at.starts_with("20"),
        "{created_at}"
    );

    // Read back: GET and list agree with what was created.
    let got = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .expect(200)
        .json();
    assert_eq!(got, body);
    let list = crate::host_app::all_pages(s, "/admin/v1/tenants", 100);
    let listed: Vec<&Value> = list
        .iter()
        .filter(|t| t["subdomain"] == sub.as_str())
        .collect();
    assert_eq!(listed, vec![&body]);

    // PATCH name and the provisioning switch, then read back.
    let patched = s
        .admin("PATCH", &format!("/admin/v1/tenants/{sub}"))
        .json(&json!({"name": "Acme Inc", "provisioningEnabled": false}))
        .send()
        .expect(200)
        .json();
    assert_eq!(patched["name"], "Acme Inc");
    assert_eq!(patched["provisioningEnabled"], false);
    assert_eq!(patched["createdAt"], body["createdAt"]);
    let got = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .json();
    assert_eq!(got["name"], "Acme Inc");
    assert_eq!(got["provisioningEnabled"], false);

    // DELETE, then it is gone everywhere: 202 with the purge, which an empty organisation
    // finishes at once.
    let token = new_token(&sub);
    let deleted = s
        .admin("DELETE", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .expect(202)
        .json();
    assert_eq!(deleted["subdomain"], json!(sub));
    assert_eq!(deleted["status"], "purged");
    assert_eq!(deleted["remaining"], 0);
    s.admin("GET", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .admin_error(404);
    s.admin("DELETE", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .admin_error(404);
    s.admin("GET", &format!("/admin/v1/tenants/{sub}/tokens"))
        .send()
        .admin_error(404);
    let list = crate::host_app::all_pages(s, "/admin/v1/tenants", 100);
    assert!(!list.iter().any(|t| t["subdomain"] == sub.as_str()));
    // Its SCIM endpoint is gone too, token and all.
    s.scim(&sub, "GET", "/Users")
        .bearer(&token)
        .send()
        .scim_error(404);
}

#[test]
fn tenant_defaults_and_dotted_subdomains() {
    let s = server();
    let sub = format!("{}.us", unique("piedpiper"));
    let body = s
        .admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": sub}))
        .send()
        .expect(201)
        .json();
    assert_eq!(body["name"], sub.as_str(), "name defaults to the subdomain");
    assert_eq!(body["provisioningEnabled"], true);
    assert_eq!(
        body["tenantUrl"],
        format!("http://{sub}.localhost:{}/api/scim/v2", s.port)
    );
    let off = unique("off");
    let body = s
        .admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": off, "provisioningEnabled": false}))
        .send()
        .expect(201)
        .json();
    assert_eq!(body["provisioningEnabled"], false);
}

#[test]
fn tenant_validation_errors() {
    let s = server();
    let post = |body: &str| {
        s.admin("POST", "/admin/v1/tenants")
            .header("Content-Type", "application/json")
            .raw_body(body)
            .send()
    };
    for bad in [
        "Acme",
        "admin",
        "www",
        "api",
        "acme..us",
        "-acme",
        "acme_corp",
        "",
        &"a".repeat(64),
    ] {
        let e = post(&json!({"subdomain": bad}).to_string()).admin_error(400);
        assert!(
            e["message"].as_str().unwrap_or("").contains("subdomain"),
            "{bad}: {e}"
        );
    }
    let e = post("{\"name\": \"No Subdomain\"}").admin_error(400);
    assert!(
        e["message"].as_str().unwrap_or("").contains("subdomain"),
        "{e}"
    );
    post("{not json").admin_error(400);
    post("").admin_error(400);
    let e = post(&json!({"subdomain": unique("typo"), "provisioningEnable": true}).to_string())
        .admin_error(400);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("provisioningEnable"),
        "{e}"
    );
    post(&json!({"subdomain": unique("blank"), "name": "  "}).to_string()).admin_error(400);
    post(&json!({"subdomain": unique("long"), "name": "x".repeat(201)}).to_string())
        .admin_error(400);
    post(&json!({"subdomain": unique("types"), "provisioningEnabled": "yes"}).to_string())
        .admin_error(400);

    // Duplicate subdomain: 409.
    let sub = new_tenant("dup");
    let e = post(&json!({"subdomain": sub}).to_string()).admin_error(409);
    assert!(e["message"].as_str().unwrap_or("").contains(&sub), "{e}");

    // PATCH validation.
    let path = format!("/admin/v1/tenants/{sub}");
    s.admin("PATCH", &path)
        .json(&json!({}))
        .send()
        .admin_error(400);
    s.admin("PATCH", &path)
        .json(&json!({"subdomain": "other"}))
        .send()
        .admin_error(400);
    s.admin("PATCH", &path)
        .json(&json!({"name": ""}))
        .send()
        .admin_error(400);
    s.admin("PATCH", "/admin/v1/tenants/no-such-tenant")
        .json(&json!({"name": "x"}))
        .send()
        .admin_error(404);
    // Nothing was changed by the refused calls.
    let got = s.admin("GET", &path).send().expect(200).json();
    assert_eq!(got["name"], format!("{sub} Corp"));

    // Wrong methods: 405 with Allow.
    let r = s.admin("PUT", &path).json(&json!({})).send();
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
    r.admin_error(405);
    let r = s.admin("DELETE", "/admin/v1/tenants").send();
    assert_eq!(r.header("allow"), Some("GET, POST"));
    r.admin_error(405);
}

#[test]
fn tokens_generate_list_and_revoke() {
    let s = server();
    let sub = new_tenant("tokens");
    let tokens_path = format!("/admin/v1/tenants/{sub}/tokens");
    // One page shape for every list: {items, next}.
    let empty = s.admin("GET", &tokens_path).send().expect(200).json();
    assert_eq!(empty, json!({"items": [], "next": null}));

    let created = s.admin("POST", &tokens_path).send().expect(201);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let first = created.json();
    let plaintext = first["token"].as_str().expect("token").to_string();
    assert!(
        plaintext.starts_with("scim_") && plaintext.len() >= 5 + 43,
        "{plaintext}"
    );
    assert_eq!(
        first["tenantUrl"],
        format!("http://{sub}.localhost:{}/api/scim/v2", s.port)
    );
    assert!(first["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("tok_")));
    assert!(first["createdAt"].is_string());

    let listed = s.admin("GET", &tokens_path).send().expect(200);
    assert!(
        !listed.text.contains(&plaintext) && !listed.text.contains(&plaintext[5..]),
        "the token list must never contain the token"
    );
    let listed = listed.json()["items"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let item = &listed[0];
    assert_eq!(item["id"], first["id"]);
    assert_eq!(item["hint"], &plaintext[plaintext.len() - 4..]);
    assert_eq!(item["createdAt"], first["createdAt"]);
    assert!(
        item.get("lastUsedAt").is_some(),
        "lastUsedAt is present (null until used)"
    );
    let mut keys: Vec<&String> = item.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["createdAt", "hint", "id", "lastUsedAt"]);

    // The token works, and its use is recorded (after the response, at most once a minute).
    s.scim(&sub, "GET", "/Users")
        .bearer(&plaintext)
        .send()
        .expect(200);
    let mut last_used = Value::Null;
    for _ in 0..40 {
        last_used = s.admin("GET", &tokens_path).send().json()["items"][0]["lastUsedAt"].clone();
        if !last_used.is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(last_used.is_string(), "lastUsedAt was not recorded");

    // Revoke: 204, refused at once, and a second revoke is 404.
    let id = first["id"].as_str().expect("id");
    s.admin("DELETE", &format!("{tokens_path}/{id}"))
        .send()
        .expect(204);
    s.scim(&sub, "GET", "/Users")
        .bearer(&plaintext)
        .send()
        .scim_error(401);
    s.admin("DELETE", &format!("{tokens_path}/{id}"))
        .send()
        .admin_error(404);
    s.admin("DELETE", &format!("{tokens_path}/tok_unknown"))
        .send()
        .admin_error(404);
    s.admin("POST", "/admin/v1/tenants/no-such-tenant/tokens")
        .send()
        .admin_error(404);
    assert_eq!(
        s.admin("GET", &tokens_path).send().json()["items"],
        json!([])
    );
}

#[test]
fn at_most_two_tokens_and_revoke_existing_rotates() {
    let s = server();
    let sub = new_tenant("rotate");
    let tokens_path = format!("/admin/v1/tenants/{sub}/tokens");
    let a = new_token(&sub);
    let b = new_token(&sub);
    assert_ne!(a, b);
    let e = s.admin("POST", &tokens_path).send().admin_error(409);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("revokeExisting"),
        "{e}"
    );
    assert_eq!(
        s.admin("GET", &tokens_path).send().json()["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Both work during the rotation window (and get cached).
    for t in [&a, &b] {
        s.scim(&sub, "GET", "/Users").bearer(t).send().expect(200);
    }

    let c = s
        .admin("POST", &tokens_path)
        .json(&json!({"revokeExisting": true}))
        .send()
        .expect(201)
        .json();
    let c = c["token"].as_str().expect("token").to_string();
    for t in [&a, &b] {
        s.scim(&sub, "GET", "/Users")
            .bearer(t)
            .send()
            .scim_error(401);
    }
    s.scim(&sub, "GET", "/Users").bearer(&c).send().expect(200);
    let listed = s.admin("GET", &tokens_path).send().json()["items"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["hint"], &c[c.len() - 4..]);

    // An explicit `revokeExisting: false` and an empty body both keep existing tokens.
    s.admin("POST", &tokens_path)
        .json(&json!({"revokeExisting": false}))
        .send()
        .expect(201);
    s.scim(&sub, "GET", "/Users").bearer(&c).send().expect(200);
    s.admin("POST", &tokens_path)
        .json(&json!({"revokeExisting": "yes"}))
        .send()
        .admin_error(400);
    // The refused call revoked nothing.
    s.scim(&sub, "GET", "/Users").bearer(&c).send().expect(200);
}

#[test]
fn generated_tokens_differ_between_calls() {
    let sub = new_tenant("random");
    let a = token_response(server(), &sub);
    let b = token_response(server(), &sub);
    assert_ne!(a["token"], b["token"]);
    assert_ne!(a["id"], b["id"]);
}

#[test]
fn the_admin_api_describes_itself_with_the_document_beside_the_code() {
    let s = server();
    s.get("/admin/v1/openapi.json").send().admin_error(401);
    let served = s.admin("GET", "/admin/v1/openapi.json").send().expect(200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let file: Value = serde_json::from_str(include_str!("../../assets/openapi.json"))
        .expect("the document parses");
    assert_eq!(served.json(), file);
    assert_eq!(file["openapi"], "3.1.0");
    // Any key may read it, whatever its scopes.
    let key = s
        .admin("POST", "/admin/v1/keys")
        .json(&json!({"name": "reader", "scopes": ["logs:read"]}))
        .send()
        .expect(201)
        .json();
    let key = key["key"].as_str().expect("key");
    s.get("/admin/v1/openapi.json")
        .bearer(key)
        .send()
        .expect(200);
    // Every scope an operation names is one the keys know.
    let known: Value = file["components"]["schemas"]["Scope"]["enum"].clone();
    for (path, item) in file["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if method == "parameters" {
                continue;
            }
            for scope in op["security"][0]["bearer"].as_array().expect("security") {
                assert!(
                    known.as_array().expect("enum").contains(scope),
                    "{method} {path}: {scope}"
                );
            }
        }
    }
}

/// A tenant create that never finished (listed in the catalog, no row on its shard: what a
/// create that answered 503 and was never retried leaves) is taken off the list by the Cron
/// Trigger, which frees its subdomain for a new create; one whose row exists but whose mark
/// was lost stays, marked. On a server of its own: the test writes its database from outside.
#[test]
fn the_cron_takes_off_a_tenant_create_that_never_finished() {
    let s = own_server();
    for sub in ["halfmade", "lostmark"] {
        s.admin("POST", "/admin/v1/tenants")
            .json(&json!({"subdomain": sub}))
            .send()
            .expect(201);
    }
    let made = "SELECT COALESCE(SUM(made), -1) AS n FROM catalog WHERE subdomain = ";
    assert_eq!(s.count_in("DB", &format!("{made}'lostmark'")), 1);
    s.execute_in(
        "DB",
        "UPDATE catalog SET made = 0, created_at = 0, updated_at = 0 \
         WHERE subdomain IN ('halfmade', 'lostmark'); \
         DELETE FROM tenants WHERE subdomain = 'halfmade'",
    );
    let listed = |sub: &str| {
        let page = s.admin("GET", "/admin/v1/tenants").send().expect(200);
        page.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["subdomain"] == sub)
    };
    assert!(listed("halfmade"));

    let r = s.get(&format!("{}?cron=*/15+*+*+*+*", s.scheduled)).send();
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!listed("halfmade"));
    s.admin("GET", "/admin/v1/tenants/halfmade")
        .send()
        .admin_error(404);
    assert!(listed("lostmark"));
    assert_eq!(s.count_in("DB", &format!("{made}'lostmark'")), 1);
    let said = "tenants: 1 unfinished creates taken off the list, 1 found made";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s.output().contains(said) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(s.output().contains(said), "{}", s.output());

    // The subdomain is free again, and the new tenant answers SCIM.
    s.admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": "halfmade", "name": "Anew"}))
        .send()
        .expect(201);
    let token = token_response(s, "halfmade")["token"]
        .as_str()
        .expect("token")
        .to_string();
    s.scim("halfmade", "GET", "/Users")
        .bearer(&token)
        .send()
        .expect(200);
    assert_eq!(s.count_in("DB", &format!("{made}'halfmade'")), 1);
}
