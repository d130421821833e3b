//! /Users over HTTP: Entra's user lifecycle as Entra sends it, and the RFC behaviour around it.

use serde_json::{json, Value};

use crate::harness::server;
use crate::{one, url_encode, Tenant, PATCH};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn entra_create_body(user_name: &str, external_id: &str) -> Value {
    // Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint", "Create User",
    // verbatim but for the names.
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": format!("{external_id}@testuser.com")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    })
}

#[test]
fn entra_user_lifecycle() {
    let t = Tenant::new("lifecycle");
    // Test Connection: a random GUID on the matching attribute -> 200, empty ListResponse.
    assert!(t
        .find(r#"userName eq "7d420df3-9f3a-4c5c-9a5f-2b1a3c4d5e6f""#)
        .is_empty());

    // Filter first, then create (how Entra matches a user before creating it).
    let user_name = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee";
    assert!(t.find(&format!(r#"userName eq "{user_name}""#)).is_empty());
    let created = t
        .send("POST", "/Users", &entra_create_body(user_name, "0a21f0f2"))
        .expect(201);
    assert_eq!(
        created.header("content-type"),
        Some("application/scim+json")
    );
    let body = created.json();
    let id = body["id"].as_str().expect("id").to_string();
    assert_eq!(
        created.header("location"),
        body["meta"]["location"].as_str()
    );
    assert_eq!(created.header("etag"), body["meta"]["version"].as_str());
    assert_eq!(
        body["meta"]["location"],
        format!(
            "http://{}/api/scim/v2/Users/{id}",
            server().tenant_host(&t.sub)
        )
    );
    assert_eq!(body["meta"]["resourceType"], "User");
    assert_eq!(body["active"], true);
    assert_eq!(body["userName"], user_name);
    assert!(
        body.get("roles").is_none(),
        "an empty roles array is unassigned: {body}"
    );
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );

    // Read back, and find it by each of Entra's matching attributes.
    assert_eq!(t.user(&id), body);
    assert_eq!(
        t.find(&format!(r#"userName eq "{}""#, user_name.to_uppercase())),
        one(&id)
    );
    assert_eq!(t.find(r#"externalId eq "0a21f0f2""#), one(&id));
    assert_eq!(
        t.find(r#"emails[type eq "work"].value eq "0a21f0f2@testuser.com""#),
        one(&id)
    );
    assert_eq!(t.find(&format!(r#"id eq "{id}""#)), one(&id));

    // Multi-valued and complex replace (TUT, verbatim).
    t.patch(&id, json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
    ]));
    let u = t.user(&id);
    assert_eq!(
        u["emails"],
        json!([{"primary": true, "type": "work", "value": "updatedEmail@microsoft.com"}])
    );
    assert_eq!(u["name"]["familyName"], "updatedFamilyName");
    assert_eq!(u["name"]["givenName"], "givenName");
    assert_eq!(u["meta"]["version"], "W/\"2\"");
    assert_eq!(
        t.find(r#"emails[type eq "work"].value eq "updatedemail@microsoft.com""#),
        one(&id)
    );
    assert!(t
        .find(r#"emails[type eq "work"].value eq "0a21f0f2@testuser.com""#)
        .is_empty());

    // First set of a single value is Add (COMPAT).
    t.patch(
        &id,
        json!([{"op": "Add", "path": "nickName", "value": "Babs"}]),
    );
    assert_eq!(t.user(&id)["nickName"], "Babs");

    // Replace several attributes, default dialect (COMPAT, verbatim).
    t.patch(&id, json!([
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "TestBcwqnm@test.microsoft.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": format!("{ENT}:employeeNumber"), "value": "Eqpj"}
    ]));
    let u = t.user(&id);
    assert_eq!(
        (u["displayName"].clone(), u["externalId"].clone()),
        (json!("Pvlo"), json!("Eqpj"))
    );
    assert_eq!(u[ENT]["employeeNumber"], "Eqpj");
    assert_eq!(
        u["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENT])
    );
    assert_eq!(t.find(r#"externalId eq "Eqpj""#), one(&id));

    // The same with aadOptscim062020: a path-less replace with dotted and URN keys (verbatim).
    t.patch(&id, json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"},
        {"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
                                    format!("{ENT}:employeeNumber"): "Aklq"}}
    ]));
    let u = t.user(&id);
    assert_eq!(u["displayName"], "Bjfe");
    assert_eq!(
        u["name"],
        json!({"formatted": "givenName familyName", "givenName": "Kkom", "familyName": "Unua"})
    );
    assert_eq!(u[ENT]["employeeNumber"], "Aklq");
    assert_eq!(u["emails"][0]["value"], "TestMhvaes@test.microsoft.com");

    // Manager: set as a string id, change, clear (LOGICAPP SCIM_Update_Manager_Test).
    let boss = t.create(json!({"userName": "boss@contoso.com"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let boss2 = t.create(json!({"userName": "boss2@contoso.com"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let base = format!("http://{}/api/scim/v2", server().tenant_host(&t.sub));
    t.patch(
        &id,
        json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": boss}]),
    );
    assert_eq!(
        t.user(&id)[ENT]["manager"],
        json!({"value": boss, "$ref": format!("{base}/Users/{boss}")})
    );
    // Entra's reference check: `id eq X and manager eq Y`, with attributes=id.
    let q = url_encode(&format!("id eq \"{id}\" and manager eq \"{boss}\""));
    let check = t
        .get(&format!("/Users?filter={q}&attributes=id"))
        .expect(200)
        .json();
    assert_eq!(
        check["Resources"],
        json!([{"id": id, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}])
    );
    t.patch(
        &id,
        json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": boss2}]),
    );
    assert_eq!(t.user(&id)[ENT]["manager"]["value"], boss2.as_str());
    t.patch(
        &id,
        json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": ""}]),
    );
    assert!(t.user(&id)[ENT].get("manager").is_none());
    // The older array form with $ref.
    t.patch(
        &id,
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": boss}]}]),
    );
    assert_eq!(t.user(&id)[ENT]["manager"]["value"], boss.as_str());

    // Roles: Ardoq's roles[primary eq "True"].value, created when missing, then the JSON-string form.
    t.patch(
        &id,
        json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]),
    );
    assert_eq!(
        t.user(&id)["roles"],
        json!([{"primary": true, "value": "Admin"}])
    );
    assert_eq!(
        t.find(r#"roles[primary eq "True"].value eq "Admin""#),
        one(&id)
    );
    t.patch(
        &id,
        json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "Reader"}]),
    );
    assert_eq!(
        t.user(&id)["roles"],
        json!([{"primary": true, "value": "Reader"}])
    );
    t.patch(&id, json!([{"op": "Add", "path": "roles", "value": [
        {"value": "{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}]));
    assert_eq!(
        t.user(&id)["roles"][1],
        json!({"value": "25", "display": "Role1234"})
    );

    // Disable with Entra's string boolean, next to an attribute this server does not have.
    let disabled = t.patch(&id, json!([
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:custom:2.0:User:costCode", "value": "x"},
        {"op": "Replace", "path": "active", "value": "False"}
    ]));
    assert_eq!(disabled["active"], false);
    assert_eq!(t.user(&id)["active"], false);
    // Soft-deleted users stay visible to GET and to filters (else Entra re-creates and loops on 409).
    assert_eq!(
        t.find(r#"userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee""#),
        one(&id)
    );
    assert_eq!(t.find(r#"externalId eq "Eqpj""#), one(&id));
    assert_eq!(t.find(r#"active eq false"#), one(&id));
    // Re-enable: the string "True"; and the aadOptscim062020 boolean form.
    t.patch(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    );
    assert_eq!(t.user(&id)["active"], true);
    t.patch(
        &id,
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    assert_eq!(t.user(&id)["active"], false);

    // An empty Operations list is a no-op 200 (the validator sends one).
    let before = t.user(&id);
    assert_eq!(t.patch(&id, json!([])), before);

    // Hard delete: 204, then 404 everywhere.
    let del = t.call("DELETE", &format!("/Users/{id}")).send().expect(204);
    assert!(del.text.is_empty());
    t.get(&format!("/Users/{id}")).scim_error(404);
    t.call("DELETE", &format!("/Users/{id}"))
        .send()
        .scim_error(404);
    t.send("PATCH", &format!("/Users/{id}"), &json!({"Operations": []}))
        .scim_error(404);
    assert!(t.find(r#"externalId eq "Eqpj""#).is_empty());
    assert!(t
        .find(r#"roles[primary eq "True"].value eq "Reader""#)
        .is_empty());
}

#[test]
fn manager_ref_follows_the_manager_s_existence() {
    let t = Tenant::new("mgrref");
    let boss = t.create(json!({"userName": "boss@x.org"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let sub = t.create(json!({"userName": "sub@x.org", ENT: {"manager": {"value": boss}}}));
    let id = sub["id"].as_str().expect("id");
    assert!(
        sub[ENT]["manager"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/Users/{boss}"))),
        "{sub}"
    );
    t.call("DELETE", &format!("/Users/{boss}"))
        .send()
        .expect(204);
    assert_eq!(t.user(id)[ENT]["manager"], json!({"value": boss}));
}

#[test]
fn duplicate_user_name_is_409_uniqueness_case_insensitively() {
    let t = Tenant::new("dupuser");
    t.create(json!({"userName": "Jane@Contoso.com"}));
    for name in ["Jane@Contoso.com", "jane@contoso.com", "JANE@CONTOSO.COM"] {
        let e = t
            .send("POST", "/Users", &json!({"userName": name}))
            .scim_error(409);
        assert_eq!(e["scimType"], "uniqueness", "{e}");
    }
    // Renaming onto a taken name is 409 too, and changes nothing.
    let other = t.create(json!({"userName": "john@contoso.com"}));
    let id = other["id"].as_str().expect("id");
    let e = t
        .send("PATCH", &format!("/Users/{id}"), &json!({"Operations": [{"op": "replace", "path": "userName", "value": "JANE@contoso.com"}]}))
        .scim_error(409);
    assert_eq!(e["scimType"], "uniqueness");
    assert_eq!(t.user(id)["userName"], "john@contoso.com");
    // The same userName in another tenant is fine.
    Tenant::new("dupother").create(json!({"userName": "jane@contoso.com"}));
}

#[test]
fn bad_requests_are_scim_errors() {
    let t = Tenant::new("badreq");
    let e = t
        .call("POST", "/Users")
        .header("Content-Type", "application/scim+json")
        .raw_body("{\"userName\": ")
        .send()
        .scim_error(400);
    assert_eq!(e["scimType"], "invalidSyntax");
    t.call("POST", "/Users")
        .header("Content-Type", "application/scim+json")
        .raw_body("")
        .send()
        .scim_error(400);
    t.call("POST", "/Users")
        .header("Content-Type", "text/plain")
        .raw_body("{\"userName\": \"x\"}")
        .send()
        .scim_error(415);
    let e = t
        .send("POST", "/Users", &json!({"displayName": "no userName"}))
        .scim_error(400);
    assert_eq!(e["scimType"], "invalidValue");
    let e = t
        .send(
            "POST",
            "/Users",
            &json!({"userName": "x", "active": "perhaps"}),
        )
        .scim_error(400);
    assert_eq!(e["scimType"], "invalidValue");
    // Above the 256 KB cap: 413; just under it: accepted.
    let big = json!({"userName": "big", "displayName": "x".repeat(262_145)});
    t.send("POST", "/Users", &big).scim_error(413);
    let under = json!({"userName": "under", "displayName": "x".repeat(250_000)});
    t.send("POST", "/Users", &under).expect(201);
    // Plain application/json and no Content-Type are accepted.
    t.call("POST", "/Users")
        .header("Content-Type", "application/json")
        .raw_body("{\"userName\": \"plain\"}")
        .send()
        .expect(201);
    t.call("POST", "/Users")
        .raw_body("{\"userName\": \"untyped\"}")
        .send()
        .expect(201);

    // Unknown ids.
    t.get("/Users/2819c223-7f76-453a-919d-413861904646")
        .scim_error(404);
    t.send("PUT", "/Users/nope", &json!({"userName": "x"}))
        .scim_error(404);

    // Filters: syntax errors, unknown attributes, unsupported comparisons -> 400 invalidFilter.
    for f in [
        "userName eq",
        "nosuch eq \"x\"",
        "active gt true",
        "userName eq \"x\" and (",
        "name eq \"x\"",
    ] {
        let e = t
            .get(&format!("/Users?filter={}", url_encode(f)))
            .scim_error(400);
        assert_eq!(e["scimType"], "invalidFilter", "{f}: {e}");
    }
    let e = t.get("/Users?count=ten").scim_error(400);
    assert_eq!(e["scimType"], "invalidValue");

    // PATCH errors apply nothing.
    let id = t.create(json!({"userName": "p@x.org", "title": "Before"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    for (ops, scim_type) in [
        (
            json!([{"op": "replace", "path": "title", "value": "After"}, {"op": "Delete", "path": "title"}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "After"}, {"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "After"}, {"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "After"}, {"op": "remove"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "After"}, {"op": "add", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
    ] {
        let e = t
            .send(
                "PATCH",
                &format!("/Users/{id}"),
                &json!({"schemas": [PATCH], "Operations": ops}),
            )
            .scim_error(400);
        assert_eq!(e["scimType"], scim_type, "{e}");
        let u = t.user(&id);
        assert_eq!(
            (u["title"].clone(), u["meta"]["version"].clone()),
            (json!("Before"), json!("W/\"1\""))
        );
    }
}

#[test]
fn paging_is_stable_and_counts_before_paging() {
    let t = Tenant::new("paging");
    let mut created = Vec::new();
    for i in 0..27 {
        let u = t.create(json!({"userName": format!("pager{i:02}@x.org"), "title": if i % 3 == 0 { "Odd" } else { "Even" }}));
        created.push(u["id"].as_str().expect("id").to_string());
    }
    let mut seen = Vec::new();
    for (start, expect_items) in [(1, 10), (11, 10), (21, 7), (28, 0)] {
        let page = t
            .get(&format!("/Users?startIndex={start}&count=10"))
            .expect(200)
            .json();
        assert_eq!(page["totalResults"], 27);
        assert_eq!(page["startIndex"], start);
        assert_eq!(page["itemsPerPage"], expect_items);
        for r in page["Resources"].as_array().expect("array") {
            seen.push(r["id"].as_str().expect("id").to_string());
        }
    }
    assert_eq!(
        seen, created,
        "pages in creation order, no gaps, no repeats"
    );
    // count=0: only the total. startIndex < 1 is 1.
    let only = t.get("/Users?count=0").expect(200).json();
    assert_eq!(
        (only["totalResults"].clone(), only["itemsPerPage"].clone()),
        (json!(27), json!(0))
    );
    assert_eq!(
        t.get("/Users?startIndex=-4&count=1").expect(200).json()["startIndex"],
        1
    );
    // Filtered paging counts the filter's matches, not the page.
    let odd = t
        .get(&format!(
            "/Users?filter={}&count=2",
            url_encode("title eq \"odd\"")
        ))
        .expect(200)
        .json();
    assert_eq!(
        (odd["totalResults"].clone(), odd["itemsPerPage"].clone()),
        (json!(9), json!(2))
    );
    // Sorting.
    let sorted = t
        .get("/Users?sortBy=userName&sortOrder=descending&count=2&attributes=userName")
        .expect(200)
        .json();
    assert_eq!(sorted["Resources"][0]["userName"], "pager26@x.org");
    assert_eq!(sorted["Resources"][1]["userName"], "pager25@x.org");
    assert!(sorted["Resources"][0].get("title").is_none());
    t.get("/Users?sortBy=nosuch").scim_error(400);
    // POST /.search runs the same query.
    let searched = t
        .send("POST", "/Users/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "filter": "userName sw \"pager1\"", "attributes": ["userName"], "sortBy": "userName", "startIndex": 1, "count": 3}))
        .expect(200)
        .json();
    assert_eq!(searched["totalResults"], 10);
    assert_eq!(searched["Resources"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        searched["Resources"][0],
        json!({"id": created[10], "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "pager10@x.org"})
    );
}

#[test]
fn concurrent_patches_on_one_user_all_take_effect() {
    let t = std::sync::Arc::new(Tenant::new("concurrent"));
    let id = t.create(json!({"userName": "busy@x.org"}))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let paths: Vec<String> = [
        "title",
        "nickName",
        "displayName",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "profileUrl",
        "name.givenName",
        "name.familyName",
        "name.middleName",
        "name.honorificPrefix",
        "name.honorificSuffix",
        "name.formatted",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
        ]
        .iter()
        .map(|a| format!("{ENT}:{a}")),
    )
    .chain(["externalId".to_string()])
    .collect();
    assert_eq!(paths.len(), 20);
    let handles: Vec<_> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let (t, id, path) = (t.clone(), id.clone(), path.clone());
            std::thread::spawn(move || {
                let r = t.send(
                    "PATCH",
                    &format!("/Users/{id}"),
                    &json!({"schemas": [PATCH],
                    "Operations": [{"op": "Replace", "path": path, "value": format!("v{i}")}]}),
                );
                (path, r.status, r.text)
            })
        })
        .collect();
    for h in handles {
        let (path, status, text) = h.join().expect("thread");
        assert_eq!(status, 200, "{path}: {text}");
    }
    let u = t.user(&id);
    for (i, path) in paths.iter().enumerate() {
        let want = json!(format!("v{i}"));
        let got = if let Some(a) = path.strip_prefix(&format!("{ENT}:")) {
            u[ENT][a].clone()
        } else if let Some(sub) = path.strip_prefix("name.") {
            u["name"][sub].clone()
        } else {
            u[path.as_str()].clone()
        };
        assert_eq!(got, want, "{path} was lost: {u}");
    }
    assert_eq!(u["meta"]["version"], "W/\"21\"", "one version per write");
}

#[test]
fn etags_and_preconditions() {
    let t = Tenant::new("etags");
    let u = t.create(json!({"userName": "e@x.org", "title": "T"}));
    let id = u["id"].as_str().expect("id");
    let path = format!("/Users/{id}");
    let r = t
        .call("GET", &path)
        .header("If-None-Match", "W/\"1\"")
        .send()
        .expect(304);
    assert!(r.text.is_empty());
    t.call("GET", &path)
        .header("If-None-Match", "W/\"9\"")
        .send()
        .expect(200);
    let ops = json!({"Operations": [{"op": "replace", "path": "title", "value": "U"}]});
    t.call("PATCH", &path)
        .header("If-Match", "W/\"9\"")
        .header("Content-Type", "application/scim+json")
        .raw_body(&ops.to_string())
        .send()
        .scim_error(412);
    let r = t
        .call("PATCH", &path)
        .header("If-Match", "W/\"1\"")
        .header("Content-Type", "application/scim+json")
        .raw_body(&ops.to_string())
        .send()
        .expect(200);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    t.call("DELETE", &path)
        .header("If-Match", "W/\"1\"")
        .send()
        .scim_error(412);
    t.user(id);
    // PUT replaces everything writable (Okta's update): what the body leaves out is gone.
    let put = t.send("PUT", &path, &json!({"userName": "e@x.org", "displayName": "E", "id": "ignored", "meta": {"version": "x"}})).expect(200).json();
    assert_eq!(put["id"], id);
    assert_eq!(put["displayName"], "E");
    assert!(put.get("title").is_none(), "{put}");
    assert_eq!(put["active"], true);
    assert_eq!(t.user(id)["meta"]["version"], "W/\"3\"");
    t.call("DELETE", &path)
        .header("If-Match", "W/\"3\"")
        .send()
        .expect(204);
}

#[test]
fn attributes_and_excluded_attributes_on_every_response() {
    let t = Tenant::new("projection");
    let body = json!({"userName": "proj@x.org", "displayName": "P", "emails": [{"value": "proj@x.org", "type": "work"}], ENT: {"department": "D"}});
    let r = t
        .call("POST", "/Users?attributes=userName")
        .header("Content-Type", "application/scim+json")
        .raw_body(&body.to_string())
        .send()
        .expect(201)
        .json();
    assert_eq!(
        r,
        json!({"id": r["id"], "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "proj@x.org"})
    );
    let id = r["id"].as_str().expect("id");
    let g = t
        .get(&format!("/Users/{id}?excludedAttributes=emails,meta,{ENT}"))
        .expect(200)
        .json();
    assert!(
        g.get("emails").is_none() && g.get("meta").is_none() && g.get(ENT).is_none(),
        "{g}"
    );
    assert_eq!(g["displayName"], "P");
    let p = t
        .send(
            "PATCH",
            &format!("/Users/{id}?attributes=displayName"),
            &json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Q"}]}),
        )
        .expect(200)
        .json();
    assert_eq!(
        p,
        json!({"id": id, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "Q"})
    );
}

#[test]
fn users_never_cross_tenants() {
    let a = Tenant::new("isoa");
    let b = Tenant::new("isob");
    let u = a.create(json!({"userName": "shared@x.org", "externalId": "same"}));
    let id = u["id"].as_str().expect("id");
    b.get(&format!("/Users/{id}")).scim_error(404);
    assert!(b.find(r#"userName eq "shared@x.org""#).is_empty());
    assert!(b.find(&format!("id eq \"{id}\"")).is_empty());
    b.send(
        "PATCH",
        &format!("/Users/{id}"),
        &json!({"Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
    )
    .scim_error(404);
    b.call("DELETE", &format!("/Users/{id}"))
        .send()
        .scim_error(404);
    assert_eq!(a.user(id)["userName"], "shared@x.org");
    // Deleting tenant A removes its users with it (a small organisation is purged at once).
    let purge = server()
        .admin("DELETE", &format!("/admin/v1/tenants/{}", a.sub))
        .send()
        .expect(202)
        .json();
    assert_eq!(
        (purge["status"].clone(), purge["remaining"].clone()),
        (json!("purged"), json!(0))
    );
    let a2 = Tenant {
        sub: a.sub.clone(),
        token: a.token.clone(),
        server: server(),
    };
    a2.get(&format!("/Users/{id}")).scim_error(404);
}

/// Unicode case folding: `ÄLICE@x.de` and `älice@x.de` are one userName (409 on the second),
/// and Entra's lookups find it in any case.
#[test]
fn user_names_compare_with_unicode_case_folding() {
    let t = Tenant::new("userfold");
    let alice = t.create(json!({
        "userName": "ÄLICE@x.de",
        "emails": [{"value": "ÄLICE@x.de", "type": "work", "primary": true}]
    }));
    let id = alice["id"].as_str().expect("id");
    let e = t
        .send("POST", "/Users", &json!({"userName": "älice@X.DE"}))
        .scim_error(409);
    assert_eq!(e["scimType"], "uniqueness");
    assert_eq!(t.find(r#"userName eq "älice@x.de""#), one(id));
    assert_eq!(
        t.find(r#"emails[type eq "work"].value eq "Älice@X.de""#),
        one(id)
    );
    let straße = t.create(json!({"userName": "STRASSE@x.de"}));
    assert_eq!(
        t.find(r#"userName eq "straße@x.de""#),
        one(straße["id"].as_str().expect("id"))
    );
    // Renaming onto a taken folded name is refused too.
    let e = t
        .send(
            "PUT",
            &format!("/Users/{}", straße["id"].as_str().expect("id")),
            &json!({"userName": "älice@x.de"}),
        )
        .scim_error(409);
    assert_eq!(e["scimType"], "uniqueness");
}

/// A PUT that omits `active` keeps the stored value: a disabled account comes back only on an
/// explicit `active: true`.
#[test]
fn a_put_without_active_leaves_a_disabled_user_disabled() {
    let t = Tenant::new("putactive");
    let u = t.create(json!({"userName": "off@x.org"}));
    let id = u["id"].as_str().expect("id");
    t.patch(
        id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    let put = t
        .send(
            "PUT",
            &format!("/Users/{id}"),
            &json!({"userName": "off@x.org", "displayName": "Off"}),
        )
        .expect(200)
        .json();
    assert_eq!(put["active"], false);
    assert_eq!(
        (
            t.user(id)["active"].clone(),
            t.user(id)["displayName"].clone()
        ),
        (json!(false), json!("Off"))
    );
    let on = t
        .send(
            "PUT",
            &format!("/Users/{id}"),
            &json!({"userName": "off@x.org", "active": true}),
        )
        .expect(200)
        .json();
    assert_eq!(on["active"], true);
    assert_eq!(t.user(id)["active"], true);
}

/// Okta's import pages through users by `startIndex`. Each page seeks past the previous page's
/// last user (remembered by the isolate), so sequential paging reads every user exactly once,
/// and a user deleted behind the client does not make it skip one ahead.
#[test]
fn sequential_pages_read_every_user_once_even_after_a_deletion_behind() {
    let t = crate::Tenant::new("pages");
    let ids: Vec<String> = (0..12)
        .map(|i| {
            let u = t.create(json!({"userName": format!("page{i}@example.com")}));
            u["id"].as_str().expect("id").to_string()
        })
        .collect();
    let page = |start: usize| -> Vec<String> {
        let p = t
            .get(&format!(
                "/Users?startIndex={start}&count=5&attributes=userName"
            ))
            .expect(200)
            .json();
        p["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_string())
            .collect()
    };
    let mut seen = page(1);
    seen.extend(page(6));
    seen.extend(page(11));
    assert_eq!(seen, ids, "every user once, in creation order");
    // Again from the start; after the first page, a user on it is deleted.
    let mut again = page(1);
    t.call("DELETE", &format!("/Users/{}", ids[1]))
        .send()
        .expect(204);
    again.extend(page(6));
    again.extend(page(11));
    assert_eq!(
        again, ids,
        "the deletion behind the client skips no one ahead"
    );
}
