//! Discovery endpoints (RFC 7644 §4) and root search (§3.4.3): each document's shape, and for
//! each a fact the engines really enforce.

use serde_json::{json, Value};

use crate::harness::server;
use crate::{url_encode, Tenant, PATCH};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

fn attr<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

#[test]
fn service_provider_config_tells_the_truth() {
    let t = Tenant::new("spc");
    let r = t.get("/ServiceProviderConfig").expect(200);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let spc = r.json();
    assert!(!has_null(&spc), "{spc}");
    assert_eq!(
        spc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["changePassword"]["supported"], false);
    assert_eq!(spc["filter"], json!({"supported": true, "maxResults": 200}));
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["etag"]["supported"], true);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    // documentationUri points at the documentation page, which the Worker serves.
    let doc = spc["documentationUri"].as_str().expect("documentationUri");
    let path = doc
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .expect("path");
    let readme = server().get(path).send().expect(200);
    assert_eq!(
        readme.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert!(readme.text.starts_with("# scim-edge"));
    assert!(readme.text.contains("/oauth/token"), "{}", readme.text);
    // Facts the engines enforce: maxResults caps a page; etag; sort.
    for i in 0..3 {
        t.create(json!({"userName": format!("spc{i}@x.org")}));
    }
    let page = t
        .get("/Users?count=100000&sortBy=userName&sortOrder=descending")
        .expect(200)
        .json();
    assert_eq!(page["itemsPerPage"], 3);
    assert_eq!(page["Resources"][0]["userName"], "spc2@x.org");
    let u = t.create(json!({"userName": "etag@x.org"}));
    let id = u["id"].as_str().expect("id");
    t.call("GET", &format!("/Users/{id}"))
        .header(
            "If-None-Match",
            u["meta"]["version"].as_str().expect("version"),
        )
        .send()
        .expect(304);
    // Only GET.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let r = t
            .call(method, "/ServiceProviderConfig")
            .header("Content-Type", "application/scim+json")
            .raw_body("{}")
            .send();
        assert_eq!(r.header("allow"), Some("GET"));
        r.scim_error(405);
    }
    // Discovery needs the tenant's token like everything else.
    server()
        .scim(&t.sub, "GET", "/ServiceProviderConfig")
        .send()
        .scim_error(401);
}

#[test]
fn resource_types_list_what_is_served() {
    let t = Tenant::new("rtypes");
    let list = t.get("/ResourceTypes").expect(200).json();
    assert!(!has_null(&list));
    assert_eq!(list["schemas"], json!([LIST]));
    assert_eq!(
        (list["totalResults"].clone(), list["itemsPerPage"].clone()),
        (json!(2), json!(2))
    );
    let user = t.get("/ResourceTypes/User").expect(200).json();
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], USER);
    assert_eq!(
        user["schemaExtensions"],
        json!([{"schema": ENTERPRISE, "required": false}])
    );
    assert!(user["meta"]["location"]
        .as_str()
        .is_some_and(|l| l.ends_with("/ResourceTypes/User")));
    assert_eq!(
        list["Resources"].as_array().map(|a| a.contains(&user)),
        Some(true)
    );
    let group = t.get("/ResourceTypes/Group").expect(200).json();
    assert_eq!(group["endpoint"], "/Groups");
    assert!(group.get("schemaExtensions").is_none());
    t.get("/ResourceTypes/Widget").scim_error(404);
    // Each advertised endpoint really serves its type, and extensions round-trip.
    let created = t.create(json!({"userName": "rt@x.org", ENTERPRISE: {"department": "D"}}));
    assert_eq!(created["schemas"], json!([USER, ENTERPRISE]));
    t.send(
        "POST",
        group["endpoint"].as_str().expect("endpoint"),
        &json!({"displayName": "RT"}),
    )
    .expect(201);
    // A filter on discovery endpoints is refused (RFC 7644 §4).
    t.get(&format!(
        "/ResourceTypes?filter={}",
        url_encode("name eq \"User\"")
    ))
    .scim_error(403);
    t.call("DELETE", "/ResourceTypes/User")
        .send()
        .scim_error(405);
}

#[test]
fn schemas_match_what_the_engines_enforce() {
    let t = Tenant::new("schemas");
    let list = t.get("/Schemas").expect(200).json();
    assert!(!has_null(&list), "no null values anywhere");
    let ids: Vec<&str> = list["Resources"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [USER, ENTERPRISE, GROUP]);
    let user = t.get(&format!("/Schemas/{USER}")).expect(200).json();
    assert_eq!(list["Resources"][0], user);
    t.get("/Schemas/urn:nope").scim_error(404);
    t.get(&format!("/Schemas?filter={}", url_encode("id pr")))
        .scim_error(403);

    // userName: required, caseExact false, uniqueness server — and so the engines behave.
    let user_name = attr(&user, "userName");
    assert_eq!(
        (
            user_name["required"].clone(),
            user_name["caseExact"].clone(),
            user_name["uniqueness"].clone()
        ),
        (json!(true), json!(false), json!("server"))
    );
    let u = t.create(json!({"userName": "Schema@X.org"}));
    let id = u["id"].as_str().expect("id");
    assert_eq!(t.find(r#"userName eq "schema@x.org""#).len(), 1);
    assert_eq!(
        t.send("POST", "/Users", &json!({"userName": "SCHEMA@x.org"}))
            .scim_error(409)["scimType"],
        "uniqueness"
    );
    t.send("POST", "/Users", &json!({"displayName": "no userName"}))
        .scim_error(400);

    // groups is readOnly: PATCH on it is refused with mutability (RFC 7644 §3.5.2).
    assert_eq!(attr(&user, "groups")["mutability"], "readOnly");
    let e = t
        .send("PATCH", &format!("/Users/{id}"), &json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "groups", "value": [{"value": "g"}]}]}))
        .scim_error(400);
    assert_eq!(e["scimType"], "mutability");

    // password is writeOnly, returned never: accepted, never returned.
    let password = attr(&user, "password");
    assert_eq!(
        (password["mutability"].clone(), password["returned"].clone()),
        (json!("writeOnly"), json!("never"))
    );
    let p = t.create(json!({"userName": "pw@x.org", "password": "hunter2"}));
    assert!(
        p.get("password").is_none()
            && !t
                .get(&format!("/Users/{}", p["id"].as_str().expect("id")))
                .text
                .contains("hunter2")
    );

    // roles.type has no canonicalValues (Entra then targets roles[primary eq "True"].value).
    let roles = attr(&user, "roles");
    let roles_type = roles["subAttributes"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "type"))
        .expect("type");
    assert!(roles_type.get("canonicalValues").is_none(), "{roles_type}");
    // The enterprise manager and the group members are complex with the sub-attributes the engines read.
    let enterprise = t.get(&format!("/Schemas/{ENTERPRISE}")).expect(200).json();
    let manager: Vec<&str> = attr(&enterprise, "manager")["subAttributes"]
        .as_array()
        .expect("subs")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(manager, ["value", "$ref", "displayName"]);
    let group = t.get(&format!("/Schemas/{GROUP}")).expect(200).json();
    assert_eq!(attr(&group, "displayName")["uniqueness"], "server");
    assert_eq!(attr(&group, "members")["multiValued"], true);
    t.call("POST", "/Schemas")
        .header("Content-Type", "application/scim+json")
        .raw_body("{}")
        .send()
        .scim_error(405);
}

#[test]
fn root_search_spans_users_and_groups() {
    let t = Tenant::new("rootsearch");
    for i in 0..3 {
        t.create(json!({"userName": format!("root{i}@x.org")}));
    }
    for i in 0..2 {
        t.send(
            "POST",
            "/Groups",
            &json!({"displayName": format!("Root group {i}")}),
        )
        .expect(201);
    }
    let all = t
        .send(
            "POST",
            "/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
        )
        .expect(200)
        .json();
    assert_eq!(
        (all["totalResults"].clone(), all["itemsPerPage"].clone()),
        (json!(5), json!(5))
    );
    let kinds: Vec<&str> = all["Resources"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["meta"]["resourceType"].as_str())
        .collect();
    assert_eq!(kinds, ["User", "User", "User", "Group", "Group"]);
    // Paging across the boundary between the types.
    let page = t
        .send(
            "POST",
            "/.search",
            &json!({"startIndex": 3, "count": 2, "attributes": ["id"]}),
        )
        .expect(200)
        .json();
    assert_eq!(
        (
            page["totalResults"].clone(),
            page["startIndex"].clone(),
            page["itemsPerPage"].clone()
        ),
        (json!(5), json!(3), json!(2))
    );
    assert_eq!(page["Resources"][0]["id"], all["Resources"][2]["id"]);
    assert_eq!(page["Resources"][1]["id"], all["Resources"][3]["id"]);
    assert_eq!(
        page["Resources"][1].as_object().map(|o| o.len()),
        Some(2),
        "id and schemas only: {}",
        page["Resources"][1]
    );
    // A filter on an attribute only groups have matches groups only; one valid for neither is 400.
    let groups = t
        .send(
            "POST",
            "/.search",
            &json!({"filter": "displayName sw \"Root group\""}),
        )
        .expect(200)
        .json();
    assert_eq!(groups["totalResults"], 2);
    let users = t
        .send(
            "POST",
            "/.search",
            &json!({"filter": "userName sw \"root\""}),
        )
        .expect(200)
        .json();
    assert_eq!(users["totalResults"], 3);
    t.send("POST", "/.search", &json!({"filter": "nosuch eq \"x\""}))
        .scim_error(400);
    t.get("/.search").scim_error(405);
}
