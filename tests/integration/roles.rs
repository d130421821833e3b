//! Roles from groups over HTTP, on a server of their own (the app's roles are the whole
//! deployment's): the effective role and its source in the directory, after mappings, nested
//! groups, a default, SCIM membership changes and a group deleted; each change in the feed,
//! and the feed and the directory agreeing at the end.

use serde_json::{json, Value};

use crate::harness::{own_server, Server};
use crate::host_app::all_pages;
use crate::{key_with, Tenant, PATCH};

fn directory_role(s: &Server, sub: &str, id: &str) -> (Value, Value) {
    let u = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}/users/{id}"))
        .send()
        .expect(200)
        .json();
    (u["role"].clone(), u["roleSource"].clone())
}

fn feed(s: &Server, sub: &str) -> Vec<Value> {
    all_pages(s, &format!("/admin/v1/tenants/{sub}/events"), 100)
}

/// The users the feed says were re-roled, after its first `from` events.
fn re_roled(events: &[Value], from: usize) -> Vec<String> {
    events[from..]
        .iter()
        .filter(|e| {
            e["type"] == "user.updated"
                && e["data"]["changed"]
                    .as_array()
                    .is_some_and(|c| c.contains(&json!("role")))
        })
        .map(|e| e["resourceId"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn members_patch(t: &Tenant, group: &str, op: &str, id: &str) {
    let body = json!({"schemas": [PATCH], "Operations": [{"op": op, "path": "members", "value": [{"value": id}]}]});
    t.send("PATCH", &format!("/Groups/{group}"), &body)
        .expect(204);
}

fn user(t: &Tenant, name: &str, role: Option<&str>) -> String {
    let mut body = json!({"userName": name});
    if let Some(r) = role {
        body["roles"] =
            json!([{"value": r, "primary": true, "type": "WindowsAzureActiveDirectoryRole"}]);
    }
    t.create(body)["id"].as_str().expect("id").to_string()
}

#[test]
fn roles_come_from_attributes_nested_groups_and_the_default_and_the_feed_says_so() {
    let s = own_server();
    let t = Tenant::on(s, "roles");
    let sub = t.sub.clone();
    // Nothing declared: the primary roles value is the role, as always.
    let bob = user(&t, "bob@roles.example", Some("Admin"));
    assert_eq!(
        directory_role(s, &sub, &bob),
        (json!("Admin"), json!({"type": "attribute"}))
    );
    // Declaring: bad lists are refused; a good one reaches the tenant at once.
    s.admin("PUT", "/admin/v1/roles")
        .json(&json!(["Admin", "Admin"]))
        .send()
        .admin_error(400);
    s.admin("PUT", "/admin/v1/roles")
        .json(&json!({"roles": []}))
        .send()
        .admin_error(400);
    // It needs roles:write, and a key bound to one tenant may not.
    let (reader, _) = key_with(s, &["tenants:read"], None);
    let refused = s
        .call("PUT", "/admin/v1/roles")
        .bearer(&reader)
        .json(&json!(["A"]))
        .send()
        .admin_error(403);
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'roles:write'"),
        "{refused}"
    );
    let (bound, _) = key_with(s, &["roles:write"], Some(&sub));
    s.call("PUT", "/admin/v1/roles")
        .bearer(&bound)
        .json(&json!(["A"]))
        .send()
        .admin_error(403);
    let (writer, _) = key_with(s, &["roles:write"], None);
    let d = s
        .call("PUT", "/admin/v1/roles")
        .bearer(&writer)
        .json(&json!(["Admin", "Writer", "Reader"]))
        .send()
        .expect(200)
        .json();
    assert_eq!(d["roles"], json!(["Admin", "Writer", "Reader"]));
    assert_eq!(d["pending"], 0, "{d}");
    assert_eq!(
        s.admin("GET", "/admin/v1/roles").send().expect(200).json(),
        d
    );
    let alice = user(&t, "alice@roles.example", None);
    let carol = user(&t, "carol@roles.example", Some("Bogus"));
    assert_eq!(
        directory_role(s, &sub, &carol),
        (Value::Null, Value::Null),
        "Bogus is not declared"
    );
    let engineers = t.create_group("Engineers");
    let staff = t.create_group("Staff");
    let contractors = t.create_group("Contractors");
    members_patch(&t, &engineers, "add", &alice);
    members_patch(&t, &staff, "add", &engineers);

    // A mapping on the outer group gives alice its role through the inner one.
    let base = format!("/admin/v1/tenants/{sub}");
    let mark = feed(s, &sub).len();
    let bad = s
        .admin("PUT", &format!("{base}/role-mappings"))
        .json(&json!([{"groupId": staff, "role": "Owner"}]))
        .send()
        .admin_error(400);
    assert!(
        bad["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Owner"),
        "{bad}"
    );
    s.admin("PUT", &format!("{base}/role-mappings"))
        .json(&json!([{"groupId": "nope", "role": "Writer"}]))
        .send()
        .admin_error(400);
    let set = s
        .admin("PUT", &format!("{base}/role-mappings"))
        .json(&json!([{"groupId": staff, "role": "Writer"}, {"groupId": contractors, "role": "Reader"}]))
        .send()
        .expect(200)
        .json();
    assert_eq!(set["items"].as_array().map(Vec::len), Some(2), "{set}");
    assert_eq!(
        directory_role(s, &sub, &alice),
        (json!("Writer"), json!({"type": "group", "groupId": staff}))
    );
    assert_eq!(
        directory_role(s, &sub, &bob),
        (json!("Admin"), json!({"type": "attribute"})),
        "the attribute wins"
    );
    assert_eq!(re_roled(&feed(s, &sub), mark), vec![alice.clone()]);

    // The default reaches whoever has no other role; a role not declared is refused.
    s.admin("PUT", &format!("{base}/default-role"))
        .json(&json!({"role": "Nope"}))
        .send()
        .admin_error(400);
    let mark = feed(s, &sub).len();
    s.admin("PUT", &format!("{base}/default-role"))
        .json(&json!({"role": "Reader"}))
        .send()
        .expect(200);
    assert_eq!(
        directory_role(s, &sub, &carol),
        (json!("Reader"), json!({"type": "default"}))
    );
    assert_eq!(re_roled(&feed(s, &sub), mark), vec![carol.clone()]);

    // SCIM membership changes: the higher-precedence group wins; leaving it, the next.
    let mark = feed(s, &sub).len();
    members_patch(&t, &contractors, "add", &alice);
    assert_eq!(
        directory_role(s, &sub, &alice).0,
        json!("Writer"),
        "Writer outranks Reader"
    );
    assert!(
        re_roled(&feed(s, &sub), mark).is_empty(),
        "no change, no event"
    );
    members_patch(&t, &engineers, "remove", &alice);
    assert_eq!(
        directory_role(s, &sub, &alice),
        (
            json!("Reader"),
            json!({"type": "group", "groupId": contractors})
        )
    );
    assert_eq!(re_roled(&feed(s, &sub), mark), vec![alice.clone()]);
    // A user's own write: its one event names the role among what changed.
    let mark = feed(s, &sub).len();
    let ops =
        json!([{"op": "replace", "path": "roles", "value": [{"value": "Admin", "primary": true}]}]);
    t.patch(&carol, ops);
    assert_eq!(
        directory_role(s, &sub, &carol),
        (json!("Admin"), json!({"type": "attribute"}))
    );
    let events = feed(s, &sub);
    assert_eq!(events.len(), mark + 1, "one event for the write");
    assert_eq!(re_roled(&events, mark), vec![carol.clone()]);
    // A group deleted: its members lose its role, and its mapping goes.
    let mark = feed(s, &sub).len();
    t.call("DELETE", &format!("/Groups/{contractors}"))
        .send()
        .expect(204);
    assert_eq!(
        directory_role(s, &sub, &alice),
        (json!("Reader"), json!({"type": "default"}))
    );
    assert_eq!(re_roled(&feed(s, &sub), mark), vec![alice.clone()]);
    let left = s
        .admin("GET", &format!("{base}/role-mappings"))
        .send()
        .expect(200)
        .json();
    assert_eq!(left["items"].as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left["defaultRole"], "Reader");

    // A new declaration re-roles: without Reader, the default no longer counts.
    let mark = feed(s, &sub).len();
    s.admin("PUT", "/admin/v1/roles")
        .json(&json!(["Writer", "Admin"]))
        .send()
        .expect(200);
    assert_eq!(directory_role(s, &sub, &alice), (Value::Null, Value::Null));
    assert_eq!(re_roled(&feed(s, &sub), mark), vec![alice.clone()]);

    // The feed and the directory agree on every user.
    let events = feed(s, &sub);
    for id in [&alice, &bob, &carol] {
        let last = events
            .iter()
            .rev()
            .find(|e| e["resourceId"] == id.as_str())
            .expect("an event");
        let u = &last["data"]["user"];
        assert_eq!(
            (u["role"].clone(), u["roleSource"].clone()),
            directory_role(s, &sub, id),
            "{id}"
        );
    }
}
