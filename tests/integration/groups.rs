//! /Groups over HTTP: Entra's group lifecycle, member PATCH forms, concurrency, cleanup.

use serde_json::{json, Value};
use std::sync::Arc;

use crate::{one, url_encode, Tenant, PATCH};

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

impl Tenant {
    fn group(&self, id: &str) -> Value {
        self.get(&format!("/Groups/{id}")).expect(200).json()
    }

    fn member_ids(&self, id: &str) -> Vec<String> {
        let g = self.group(id);
        let mut ids: Vec<String> = g["members"]
            .as_array()
            .unwrap_or_else(|| panic!("no members array: {g}"))
            .iter()
            .map(|m| m["value"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// A group PATCH that must answer 204 with no body.
    fn patch_group(&self, id: &str, ops: Value) {
        let r = self
            .send(
                "PATCH",
                &format!("/Groups/{id}"),
                &json!({"schemas": [PATCH], "Operations": ops}),
            )
            .expect(204);
        assert!(r.text.is_empty(), "204 with a body: {}", r.text);
    }

    fn find_groups(&self, filter: &str) -> Vec<String> {
        let list = self
            .get(&format!(
                "/Groups?excludedAttributes=members&filter={}",
                url_encode(filter)
            ))
            .expect(200)
            .json();
        let resources = list["Resources"].as_array().cloned().unwrap_or_default();
        assert_eq!(list["totalResults"], resources.len(), "{list}");
        for r in &resources {
            assert!(
                r.get("members").is_none(),
                "excludedAttributes=members returned members: {r}"
            );
        }
        resources
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn new_users(&self, prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.create(json!({"userName": format!("{prefix}{i}@x.org"), "displayName": format!("{prefix} {i}")}))["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            })
            .collect()
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn entra_group_lifecycle() {
    let t = Tenant::new("grouplife");
    // Test Connection queries groups too: 200 with an empty ListResponse.
    assert!(t
        .find_groups(r#"displayName eq "7d420df3-9f3a-4c5c-9a5f-2b1a3c4d5e6f""#)
        .is_empty());
    assert!(t.find_groups(r#"displayName eq "Sales""#).is_empty());

    // Create (Entra's body, verbatim: extra schema URN, no members).
    let created = t
        .send("POST", "/Groups", &json!({
            "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Sales",
            "meta": {"resourceType": "Group"}
        }))
        .expect(201);
    assert_eq!(
        created.header("content-type"),
        Some("application/scim+json")
    );
    let g = created.json();
    let gid = g["id"].as_str().expect("id").to_string();
    assert_eq!(created.header("location"), g["meta"]["location"].as_str());
    assert_eq!(g["members"], json!([]));
    assert_eq!(g["schemas"], json!([GROUP]));
    assert_eq!(g["meta"]["resourceType"], "Group");
    assert_eq!(t.find_groups(r#"displayName eq "sales""#), one(&gid));
    assert_eq!(
        t.find_groups(r#"externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159""#),
        one(&gid)
    );
    // GET by id with excludedAttributes=members never returns members.
    let no_members = t
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .expect(200)
        .json();
    assert!(no_members.get("members").is_none(), "{no_members}");

    // Add three members in one op (Entra's form, $ref null).
    let users = t.new_users("member", 3);
    t.patch_group(
        &gid,
        json!([{"op": "Add", "path": "members",
        "value": users.iter().map(|u| json!({"$ref": null, "value": u})).collect::<Vec<_>>()}]),
    );
    assert_eq!(t.member_ids(&gid), sorted(users.clone()));
    let g = t.group(&gid);
    assert_eq!(g["meta"]["version"], "W/\"2\"");
    let m0 = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["value"] == users[0].as_str())
        .cloned()
        .expect("member");
    assert_eq!(m0["type"], "User");
    // RFC 7643 §2.4: display is the client's to set; Entra sends none, so none comes back.
    assert!(m0.get("display").is_none(), "{m0}");
    assert!(
        m0["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/Users/{}", users[0]))),
        "{m0}"
    );
    // The user's groups attribute lists it.
    let u0 = t.user(&users[0]);
    assert_eq!(u0["groups"].as_array().map(Vec::len), Some(1), "{u0}");
    assert_eq!(u0["groups"][0]["value"], gid.as_str());
    assert_eq!(u0["groups"][0]["display"], "Sales");
    assert_eq!(u0["groups"][0]["type"], "direct");
    assert_eq!(
        sorted(t.find(&format!(r#"groups[value eq "{gid}"]"#))),
        sorted(users.clone())
    );
    assert_eq!(
        sorted(t.find(&format!(r#"groups.value eq "{gid}""#))),
        sorted(users.clone())
    );

    // Entra's membership check: 0 or 1 result, decided in SQL.
    assert_eq!(
        t.find_groups(&format!(r#"id eq "{gid}" and members eq "{}""#, users[0])),
        one(&gid)
    );
    assert_eq!(
        t.find_groups(&format!(r#"members[value eq "{}"]"#, users[1])),
        one(&gid)
    );
    assert_eq!(
        t.find_groups(&format!(
            r#"id eq "{gid}" and members[value eq "{}"]"#,
            users[2]
        )),
        one(&gid)
    );
    assert!(t
        .find_groups(&format!(r#"id eq "{gid}" and members eq "{gid}""#))
        .is_empty());

    // Remove one member by each form.
    t.patch_group(
        &gid,
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": users[0]}]}]),
    );
    assert_eq!(
        t.member_ids(&gid),
        sorted(vec![users[1].clone(), users[2].clone()])
    );
    t.patch_group(
        &gid,
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[1])}]),
    );
    assert_eq!(t.member_ids(&gid), one(&users[2]));
    t.patch_group(&gid, json!([{"op": "remove", "path": "members"}]));
    assert!(t.member_ids(&gid).is_empty());
    assert!(t.user(&users[2]).get("groups").is_none());

    // Rename: 204, read back, found by the new name.
    t.patch_group(
        &gid,
        json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]),
    );
    assert_eq!(t.group(&gid)["displayName"], "Sales EMEA");
    assert_eq!(t.find_groups(r#"displayName eq "Sales EMEA""#), one(&gid));
    assert!(t.find_groups(r#"displayName eq "Sales""#).is_empty());

    // With attributes in the query, PATCH answers 200 with the resource.
    let r = t
        .send(
            "PATCH",
            &format!("/Groups/{gid}?excludedAttributes=members"),
            &json!({"schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": users[0]}]}]}),
        )
        .expect(200)
        .json();
    assert_eq!(r["id"], gid.as_str());
    assert!(r.get("members").is_none());
    assert_eq!(t.member_ids(&gid), one(&users[0]));

    // Delete: 204, then 404; the member's groups attribute is empty again.
    t.call("DELETE", &format!("/Groups/{gid}"))
        .send()
        .expect(204);
    t.get(&format!("/Groups/{gid}")).scim_error(404);
    t.call("DELETE", &format!("/Groups/{gid}"))
        .send()
        .scim_error(404);
    assert!(t.user(&users[0]).get("groups").is_none());
    assert!(t.find_groups(r#"displayName eq "Sales EMEA""#).is_empty());
}

#[test]
fn fifty_concurrent_member_adds_all_land() {
    let t = Arc::new(Tenant::new("groupconc"));
    let gid = t.create_group("Busy");
    let users = t.new_users("conc", 50);
    let handles: Vec<_> = users
        .iter()
        .map(|u| {
            let (t, gid, u) = (t.clone(), gid.clone(), u.clone());
            std::thread::spawn(move || {
                t.send(
                    "PATCH",
                    &format!("/Groups/{gid}"),
                    &json!({"schemas": [PATCH],
                    "Operations": [{"op": "Add", "path": "members", "value": [{"value": u}]}]}),
                )
                .status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 204);
    }
    assert_eq!(t.member_ids(&gid), sorted(users.clone()));
    assert_eq!(
        t.group(&gid)["meta"]["version"],
        "W/\"51\"",
        "one version per member PATCH"
    );

    // Concurrent removes of 25 members and adds of 25 others never undo each other.
    let newcomers = t.new_users("newcomer", 25);
    let leaving: Vec<String> = users[..25].to_vec();
    let mut handles = Vec::new();
    for (out, inn) in leaving.iter().zip(&newcomers) {
        for (op, who) in [("Remove", out), ("Add", inn)] {
            let (t, gid, who) = (t.clone(), gid.clone(), who.clone());
            handles.push(std::thread::spawn(move || {
                t.send(
                    "PATCH",
                    &format!("/Groups/{gid}"),
                    &json!({"schemas": [PATCH],
                    "Operations": [{"op": op, "path": "members", "value": [{"value": who}]}]}),
                )
                .status
            }));
        }
    }
    for h in handles {
        assert_eq!(h.join().expect("thread"), 204);
    }
    let mut expect: Vec<String> = users[25..].to_vec();
    expect.extend(newcomers);
    assert_eq!(t.member_ids(&gid), sorted(expect));
}

#[test]
fn unknown_members_are_skipped_and_the_rest_applies() {
    let t = Tenant::new("groupbad");
    let other = Tenant::new("groupbadother");
    let foreign = other.create(json!({"userName": "foreign@x.org"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let users = t.new_users("ok", 1);
    let gid = t
        .send(
            "POST",
            "/Groups",
            &json!({"displayName": "Strict", "members": [{"value": users[0]}]}),
        )
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(t.member_ids(&gid), one(&users[0]));
    // The group itself as a member is malformed: 400, nothing applied.
    let e = t
        .send(
            "PATCH",
            &format!("/Groups/{gid}"),
            &json!({"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Changed"},
            {"op": "Add", "path": "members", "value": [{"value": gid}]}]}),
        )
        .scim_error(400);
    assert_eq!(e["scimType"], "invalidValue", "{e}");
    let g = t.group(&gid);
    assert_eq!(
        (g["displayName"].clone(), g["meta"]["version"].clone()),
        (json!("Strict"), json!("W/\"1\""))
    );
    // An id this organisation does not have (unknown, or another organisation's user) is
    // skipped; the rest of the push applies (a 400 would make the identity provider drop it).
    for (i, bad) in ["no-such-id", foreign.as_str()].into_iter().enumerate() {
        t.send(
            "PATCH",
            &format!("/Groups/{gid}"),
            &json!({"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "displayName", "value": format!("Strict {i}")},
            {"op": "Add", "path": "members", "value": [{"value": bad}]}]}),
        )
        .expect(204);
    }
    assert_eq!(t.group(&gid)["displayName"], json!("Strict 1"));
    assert_eq!(t.member_ids(&gid), one(&users[0]));
    // Creating with an unknown member creates the group without it.
    let created = t
        .send(
            "POST",
            "/Groups",
            &json!({"displayName": "Skips", "members": [{"value": "nope"}, {"value": users[0]}]}),
        )
        .expect(201)
        .json();
    assert_eq!(created["members"].as_array().map(Vec::len), Some(1));
    // Duplicate displayName: 409 uniqueness, case-insensitively.
    let e = t
        .send("POST", "/Groups", &json!({"displayName": "STRICT 1"}))
        .scim_error(409);
    assert_eq!(e["scimType"], "uniqueness");
    // Members' sub-attributes are not writable.
    let e = t
        .send("PATCH", &format!("/Groups/{gid}"), &json!({"Operations": [
            {"op": "replace", "path": format!("members[value eq \"{}\"].display", users[0]), "value": "x"}]}))
        .scim_error(400);
    assert_eq!(e["scimType"], "mutability");
    // Another tenant cannot see or change the group.
    other.get(&format!("/Groups/{gid}")).scim_error(404);
    other
        .send(
            "PATCH",
            &format!("/Groups/{gid}"),
            &json!({"Operations": [{"op": "remove", "path": "members"}]}),
        )
        .scim_error(404);
    assert_eq!(t.member_ids(&gid), one(&users[0]));
    // A PATCH or PUT of a group that does not exist is 404, whatever its members.
    for (method, body) in [
        (
            "PATCH",
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "no-such-id"}]},
                                         {"op": "add", "path": "members", "value": [{"value": users[0]}]}]}),
        ),
        (
            "PUT",
            json!({"displayName": "Ghost", "members": [{"value": "no-such-id"}]}),
        ),
    ] {
        t.send(method, "/Groups/no-such-group", &body)
            .scim_error(404);
    }
}

/// A group and its members in one body across several operations: all members are resolved
/// together, and the display names are Unicode case-insensitive.
#[test]
fn group_names_compare_with_unicode_case_folding() {
    let t = Tenant::new("groupfold");
    let users = t.new_users("fold", 3);
    let gid = t.create_group("Équipe Straße");
    let e = t
        .send("POST", "/Groups", &json!({"displayName": "ÉQUIPE STRASSE"}))
        .scim_error(409);
    assert_eq!(e["scimType"], "uniqueness");
    assert_eq!(
        t.find_groups(r#"displayName eq "équipe strasse""#),
        one(&gid)
    );
    t.patch_group(
        &gid,
        json!([{"op": "add", "path": "members", "value": [{"value": users[0]}]},
               {"op": "add", "path": "members", "value": [{"value": users[1]}]},
               {"op": "add", "path": "members", "value": [{"value": users[2]}, {"value": users[0]}]}]),
    );
    assert_eq!(t.member_ids(&gid), sorted(users.clone()));
}

/// A user in 5,000 groups with long names: every group comes back on GET, and a list page of
/// users stops once their groups pass the page budget (10,000 references), saying so by its
/// length (RFC 7644 §3.4.2.4), without skipping anyone.
#[test]
fn a_user_in_five_thousand_groups_is_read_whole() {
    const GROUPS: usize = 5000;
    let t = Arc::new(Tenant::new("manygroups"));
    let users = t.new_users("member", 3);
    let members: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (t, members) = (t.clone(), members.clone());
            std::thread::spawn(move || {
                for i in (w..GROUPS).step_by(8) {
                    let name = format!("{i:05} {}", "long group name ".repeat(25));
                    t.send(
                        "POST",
                        "/Groups?excludedAttributes=members",
                        &json!({"displayName": name, "members": members}),
                    )
                    .expect(201);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("creator");
    }
    let u = t.user(&users[0]);
    let groups = u["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), GROUPS);
    assert!(groups
        .iter()
        .all(|g| g["display"].as_str().is_some_and(|d| d.len() > 400)));
    assert_eq!(
        groups[0]["display"].as_str().map(|d| &d[..5]),
        Some("00000")
    );
    let list = t.get("/Users?count=3").expect(200).json();
    assert_eq!(
        (list["totalResults"].clone(), list["itemsPerPage"].clone()),
        (json!(3), json!(2))
    );
    let next = t.get("/Users?count=3&startIndex=3").expect(200).json();
    assert_eq!(next["itemsPerPage"], 1);
    assert_eq!(
        next["Resources"][0]["groups"].as_array().map(Vec::len),
        Some(GROUPS)
    );
    let without = t
        .get("/Users?count=3&excludedAttributes=groups")
        .expect(200)
        .json();
    assert_eq!(without["itemsPerPage"], 3, "no budget without groups");
}

#[test]
fn deleting_a_user_removes_its_memberships() {
    let t = Tenant::new("groupclean");
    let users = t.new_users("leaver", 2);
    let gid = t
        .send("POST", "/Groups", &json!({"displayName": "Team", "members": users.iter().map(|u| json!({"value": u})).collect::<Vec<_>>()}))
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let nested = t
        .send(
            "POST",
            "/Groups",
            &json!({"displayName": "Parent", "members": [{"value": gid}]}),
        )
        .expect(201)
        .json();
    assert_eq!(nested["members"][0]["type"], "Group");
    let before = t.group(&gid)["meta"]["version"].clone();
    t.call("DELETE", &format!("/Users/{}", users[0]))
        .send()
        .expect(204);
    assert_eq!(t.member_ids(&gid), one(&users[1]));
    assert_ne!(
        t.group(&gid)["meta"]["version"],
        before,
        "member removal changes the version"
    );
    assert!(t
        .find_groups(&format!(r#"members[value eq "{}"]"#, users[0]))
        .is_empty());
    // Deleting the nested group removes it from its parent.
    let pid = nested["id"].as_str().expect("id");
    t.call("DELETE", &format!("/Groups/{gid}"))
        .send()
        .expect(204);
    assert!(t.member_ids(pid).is_empty());
}

#[test]
fn okta_forms_put_and_paging() {
    let t = Tenant::new("groupokta");
    let users = t.new_users("okta", 3);
    // Okta's create and its mixed PATCH: remove by filter and add in one body.
    let g = t
        .send(
            "POST",
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "Okta", "members": []}),
        )
        .expect(201)
        .json();
    let gid = g["id"].as_str().expect("id").to_string();
    t.patch_group(&gid, json!([{"op": "add", "path": "members", "value": [{"value": users[0], "display": "Okta One"}, {"value": users[1]}]}]));
    t.patch_group(
        &gid,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])},
            {"op": "add", "path": "members", "value": [{"value": users[2], "display": "Okta Three"}]}
        ]),
    );
    assert_eq!(
        t.member_ids(&gid),
        sorted(vec![users[1].clone(), users[2].clone()])
    );
    // A display the client sent is stored and returned as sent, and can be filtered on.
    let g = t.group(&gid);
    let three = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["value"] == users[2].as_str())
        .cloned()
        .expect("member");
    assert_eq!(three["display"], "Okta Three");
    assert_eq!(
        t.find_groups(r#"members[display eq "okta three"]"#),
        one(&gid)
    );
    // Rename via path-less replace whose value includes id.
    t.patch_group(
        &gid,
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Okta Renamed"}}]),
    );
    assert_eq!(t.group(&gid)["displayName"], "Okta Renamed");
    // PUT replaces name and members.
    let put = t
        .send(
            "PUT",
            &format!("/Groups/{gid}"),
            &json!({"displayName": "Put", "members": [{"value": users[0]}]}),
        )
        .expect(200)
        .json();
    assert_eq!(put["displayName"], "Put");
    assert_eq!(t.member_ids(&gid), one(&users[0]));
    // Paging groups.
    for i in 0..5 {
        t.send(
            "POST",
            "/Groups",
            &json!({"displayName": format!("Page {i}")}),
        )
        .expect(201);
    }
    let page = t
        .get("/Groups?startIndex=2&count=3&excludedAttributes=members")
        .expect(200)
        .json();
    assert_eq!(
        (
            page["totalResults"].clone(),
            page["itemsPerPage"].clone(),
            page["startIndex"].clone()
        ),
        (json!(6), json!(3), json!(2))
    );
    let searched = t
        .send("POST", "/Groups/.search", &json!({"filter": "displayName sw \"page\"", "sortBy": "displayName", "sortOrder": "descending", "count": 1}))
        .expect(200)
        .json();
    assert_eq!(searched["totalResults"], 5);
    assert_eq!(searched["Resources"][0]["displayName"], "Page 4");
}
