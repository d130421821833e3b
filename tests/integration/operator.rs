//! The operator's line over `wrangler dev`: one JSON line per request in the Worker's output,
//! with the fields Workers Logs indexes, and none of the client's secrets or values.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{server, unique, Server};
use crate::{key_with, Tenant};

/// The operator's lines the server printed whose field `field` is `value`.
fn lines(s: &Server, field: &str, value: &Value) -> Vec<Value> {
    s.output()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("route").is_some() && v.get(field) == Some(value))
        .collect()
}

/// Wait until such lines satisfy `done` (the output is written as the server runs, and not
/// always in the order the requests ended).
fn wait(s: &Server, field: &str, value: &Value, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let got = lines(s, field, value);
        if done(&got) || started.elapsed() > Duration::from_secs(20) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn each_request_logs_one_line_with_its_fields_and_none_of_the_clients_values() {
    let s = server();
    let t = Tenant::new("operator");
    let tenant = s
        .admin("GET", &format!("/admin/v1/tenants/{}", t.sub))
        .send()
        .expect(200)
        .json();
    let tenant_id = tenant["id"].clone();
    let secret_name = unique("never-logged");
    let user = t.create(json!({"userName": format!("{secret_name}@example.com"),
                               "name": {"givenName": "Ada"}}));
    let id = user["id"].as_str().expect("id");
    t.get(&format!("/Users/{id}")).expect(200);
    t.call(
        "GET",
        &format!("/Users?filter=userName%20eq%20%22{secret_name}%22"),
    )
    .send()
    .expect(200);
    t.send(
        "POST",
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
    )
    .expect(400);
    s.scim(&t.sub, "GET", "/Users")
        .bearer("scim_wrong-token-never-logged")
        .send()
        .expect(401);
    let (key, made) = key_with(s, &["directory:read"], None);
    s.admin("GET", &format!("/admin/v1/tenants/{}/users/{id}", t.sub))
        .bearer(&key)
        .send()
        .expect(200);

    let scim_lines = |ls: &[Value]| {
        ls.iter()
            .filter(|l| {
                l["route"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("/api/scim/v2")
            })
            .count()
    };
    let mine = wait(s, "tenant", &tenant_id, |ls| {
        scim_lines(ls) >= 5
            && ls
                .iter()
                .any(|l| l["route"] == "/admin/v1/tenants/{sub}/users/{id}")
    });
    let scim: Vec<&Value> = mine
        .iter()
        .filter(|l| {
            l["route"]
                .as_str()
                .unwrap_or("")
                .starts_with("/api/scim/v2")
        })
        .collect();
    assert_eq!(scim.len(), 5, "one line per SCIM request: {mine:#?}");
    let read = scim
        .iter()
        .find(|l| l["route"] == "/api/scim/v2/Users/{id}")
        .expect("the read's line");
    assert_eq!(read["method"], "GET");
    assert_eq!(read["status"], 200);
    assert_eq!(read["shard"], tenant["shard"]);
    assert_eq!(read["credential"], "secret_token");
    assert_eq!(read["d1Calls"], 1, "{read}");
    assert!(
        read["durationMs"].as_i64().is_some_and(|d| d >= 0),
        "{read}"
    );
    assert!(
        read["at"].as_str().is_some_and(|a| a.ends_with('Z')),
        "{read}"
    );
    assert!(read.get("requestId").is_some(), "{read}");
    let bad = scim
        .iter()
        .find(|l| l["status"] == 400)
        .expect("the 400's line");
    assert_eq!(bad["scimType"], "invalidValue", "{bad}");
    let refused = scim
        .iter()
        .find(|l| l["status"] == 401)
        .expect("the 401's line");
    assert_eq!(
        refused["credential"],
        Value::Null,
        "a refused token is nobody's"
    );
    let admin = mine
        .iter()
        .find(|l| l["route"] == "/admin/v1/tenants/{sub}/users/{id}")
        .expect("the admin read's line");
    assert_eq!(admin["credential"], "api_key");
    assert_eq!(admin["keyId"], made["id"]);
    assert_eq!(admin["status"], 200);

    // Nothing of the client's: no token, key, userName, id or filter in any of our lines.
    let all: String = lines(s, "tenant", &tenant_id)
        .iter()
        .map(Value::to_string)
        .collect();
    for secret in [
        t.token.as_str(),
        key.as_str(),
        "scim_wrong-token-never-logged",
        &secret_name,
        id,
        "Ada",
        t.sub.as_str(),
    ] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
}
