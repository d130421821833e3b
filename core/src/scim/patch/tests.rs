use super::values::SCAN_BELOW;
use super::*;
use crate::scim::error::Result;
use crate::scim::error::ScimType;
use crate::scim::resource::from_request;
use crate::scim::resource::{Data, MAX_VALUES};
use crate::scim::schema::USER_TYPE;
use serde_json::json;

fn run(before: Value, ops: Value) -> Result<Data> {
    let data = from_request(&USER_TYPE, &before)?;
    let ops = parse(&USER_TYPE, &json!({ "Operations": ops }))?;
    apply(&USER_TYPE, &data, &ops)
}

fn emails(d: &Data) -> Value {
    d.get("emails").cloned().unwrap_or(Value::Null)
}

#[test]
fn add_merges_a_value_already_present_under_unicode_case_folding() {
    let d = run(
        json!({"userName": "u", "emails": [{"value": "ÄLICE@x.de", "type": "work"}]}),
        json!([{"op": "add", "path": "emails", "value": [
            {"value": "älice@X.DE", "type": "work", "display": "A"},
            {"value": "älice@x.de", "type": "home"}
        ]}]),
    )
    .expect("applies");
    assert_eq!(
        emails(&d),
        json!([{"value": "älice@X.DE", "type": "work", "display": "A"},
               {"value": "älice@x.de", "type": "home"}])
    );
}

#[test]
fn the_last_new_primary_wins_in_both_matching_paths() {
    // Fewer than SCAN_BELOW new values scan; more build an index: same answer.
    for n in [2, SCAN_BELOW.saturating_add(2)] {
        let new: Vec<Value> = (0..n)
            .map(|i| json!({"value": format!("v{i}@x"), "primary": true}))
            .collect();
        let d = run(
            json!({"userName": "u", "emails": [{"value": "old@x", "primary": true}]}),
            json!([{"op": "add", "path": "emails", "value": new}]),
        )
        .expect("applies");
        let primaries: Vec<&str> = d["emails"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e.get("primary") == Some(&json!(true)))
            .filter_map(|e| e["value"].as_str())
            .collect();
        assert_eq!(
            primaries,
            vec![format!("v{}@x", n.saturating_sub(1))],
            "{n}"
        );
        assert_eq!(
            d["emails"].as_array().map(Vec::len),
            Some(n.saturating_add(1))
        );
    }
}

#[test]
fn remove_with_a_value_list_removes_only_those() {
    let d = run(
        json!({"userName": "u", "emails": [{"value": "a@x"}, {"value": "B@x"}, {"value": "c@x"}]}),
        json!([{"op": "Remove", "path": "emails", "value": [{"value": "b@X"}, "c@x", {"display": "no value"}]}]),
    )
    .expect("applies");
    assert_eq!(emails(&d), json!([{"value": "a@x"}]));
}

#[test]
fn multi_valued_attributes_hold_at_most_max_values() {
    let many = |n: usize, tag: &str| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"value": format!("{tag}{i}@x")}))
            .collect()
    };
    let e = run(
        json!({"userName": "u"}),
        json!([{"op": "add", "path": "emails", "value": many(MAX_VALUES.saturating_add(1), "a")}]),
    )
    .expect_err("too many");
    assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
    let e = run(
        json!({"userName": "u", "emails": many(MAX_VALUES, "a")}),
        json!([{"op": "add", "path": "emails", "value": many(1, "b")}]),
    )
    .expect_err("one more is too many");
    assert!(e.detail.contains("at most 1000"), "{}", e.detail);
    let e = run(
        json!({"userName": "u", "emails": many(MAX_VALUES, "a")}),
        json!([{"op": "add", "path": "emails[type eq \"new\"].value", "value": "z@x"}]),
    )
    .expect_err("a value created by a filtered add counts too");
    assert_eq!(e.status, 400);
    let full = run(
        json!({"userName": "u", "emails": many(MAX_VALUES, "a")}),
        json!([{"op": "add", "path": "emails", "value": many(3, "a")}]),
    )
    .expect("values already present are merged, not added");
    assert_eq!(full["emails"].as_array().map(Vec::len), Some(MAX_VALUES));
}

#[test]
fn filtered_paths_compare_with_unicode_folding() {
    let d = run(
        json!({"userName": "u", "emails": [{"value": "STRASSE@x.de", "type": "work"}]}),
        json!([{"op": "remove", "path": "emails[value eq \"straße@X.DE\"]"}]),
    )
    .expect("applies");
    assert!(d.get("emails").is_none(), "{d:?}");
}

fn refused(before: Value, ops: Value) -> (u16, Option<ScimType>, String) {
    let e = run(before, ops).expect_err("refused");
    (e.status, e.scim_type, e.detail)
}

#[test]
fn the_body_and_each_operation_are_checked_before_anything_applies() {
    let body = |b: Value| parse(&USER_TYPE, &b).map(|ops| ops.len());
    assert_eq!(
        body(json!({"operations": []})).ok(),
        Some(0),
        "key in any case"
    );
    for (bad, why) in [
        (json!([]), ScimType::InvalidSyntax),
        (json!({"Operations": {}}), ScimType::InvalidSyntax),
        (
            json!({"Operations": [{"op": "move", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"Operations": [{"path": "title", "value": "x"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"Operations": [{"op": "add", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"Operations": [{"op": "add", "value": "x"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"Operations": [{"op": "remove"}]}),
            ScimType::NoTarget,
        ),
        (
            json!({"Operations": [{"op": "add", "path": 7, "value": 1}]}),
            ScimType::InvalidPath,
        ),
        (
            json!({"Operations": [{"op": "add", "path": "emails[", "value": 1}]}),
            ScimType::InvalidPath,
        ),
        (
            json!({"Operations": [{"op": "add", "path": "title[value eq \"x\"]", "value": 1}]}),
            ScimType::InvalidPath,
        ),
    ] {
        let e = body(bad.clone()).expect_err("refused");
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(why)),
            "{bad}: {}",
            e.detail
        );
    }
    let too_many: Vec<Value> = (0..=super::MAX_OPERATIONS)
        .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
        .collect();
    assert!(body(json!({ "Operations": too_many })).is_err());
    let e =
        body(json!({"Operations": [{"op": "add", "path": "title", "value": "x"}, {"op": "zap"}]}))
            .expect_err("second refused");
    assert!(e.detail.starts_with("operation 2: "), "{}", e.detail);
}

#[test]
fn paths_resolve_to_their_targets() {
    let target = |p: &str| parse_path(&USER_TYPE, p).expect("parses");
    assert!(
        matches!(target("name.givenName"), Target::Attr { attr, filter: None, sub: Some(s) }
        if attr.attr.name == "name" && s.name == "givenName")
    );
    assert!(
        matches!(target("emails[type eq \"work\"].value"), Target::Attr { filter: Some(_), sub: Some(s), .. }
        if s.name == "value")
    );
    assert!(matches!(
        target("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
        Target::Extension(_)
    ));
    assert!(matches!(
        target("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
        Target::Attr { attr, .. } if attr.extension && attr.attr.name == "manager"
    ));
    assert!(matches!(target("notAnAttribute"), Target::Unknown(_)));
    assert!(matches!(
        target("emails[type eq \"work\"].nope"),
        Target::Unknown(_)
    ));
}

#[test]
fn entra_ops_in_any_case_pathless_keys_and_string_booleans() {
    let d = run(
        json!({"userName": "u", "active": true}),
        json!([
            {"op": "Replace", "value": {
                "active": "False",
                "name.givenName": "Ada",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",
                "id": "ignored", "schemas": ["ignored"],
                "notMapped": "ignored"
            }},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "ada@x"}
        ]),
    )
    .expect("applies");
    assert_eq!(d["active"], json!(false));
    assert_eq!(d["name"]["givenName"], json!("Ada"));
    assert_eq!(
        d["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"],
        json!("7")
    );
    assert!(
        d.get("id").is_none() && d.get("notMapped").is_none(),
        "{d:?}"
    );
    assert_eq!(emails(&d), json!([{"type": "work", "value": "ada@x"}]));
}

#[test]
fn filters_select_set_and_remove_values() {
    let before = json!({"userName": "u", "emails": [
        {"value": "w@x", "type": "work", "primary": true},
        {"value": "h@x", "type": "home"}
    ]});
    let d = run(
        before.clone(),
        json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h2@x"}]),
    )
    .expect("applies");
    assert_eq!(emails(&d)[1], json!({"value": "h2@x", "type": "home"}));
    let d = run(
        before.clone(),
        json!([{"op": "remove", "path": "emails[primary eq true].primary"}]),
    )
    .expect("applies");
    assert_eq!(emails(&d)[0], json!({"value": "w@x", "type": "work"}));
    let d = run(
        before.clone(),
        json!([{"op": "remove", "path": "emails[type ne \"work\"]"}]),
    )
    .expect("applies");
    assert_eq!(
        emails(&d),
        json!([{"value": "w@x", "type": "work", "primary": true}])
    );
    // A filter of anything but equalities describes no value to create (RFC 7644 noTarget).
    let (status, why, _) = refused(
        before,
        json!([{"op": "add", "path": "emails[value co \"zz\"].type", "value": "other"}]),
    );
    assert_eq!((status, why), (400, Some(ScimType::NoTarget)));
}

#[test]
fn a_failing_operation_leaves_the_resource_as_it_was() {
    let data =
        from_request(&USER_TYPE, &json!({"userName": "u", "title": "before"})).expect("valid");
    let ops = parse(
        &USER_TYPE,
        &json!({"Operations": [
            {"op": "replace", "path": "title", "value": "after"},
            {"op": "replace", "path": "id", "value": "x"}
        ]}),
    )
    .expect("parses");
    let e = apply(&USER_TYPE, &data, &ops).expect_err("id is read-only");
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert_eq!(data.get("title"), Some(&json!("before")));
    let (status, why, _) = refused(
        json!({"userName": "u"}),
        json!([{"op": "remove", "path": "userName"}]),
    );
    assert_eq!(
        (status, why),
        (400, Some(ScimType::InvalidValue)),
        "userName is required"
    );
}

#[test]
fn extensions_merge_and_remove_whole() {
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let before = json!({"userName": "u", ext: {"department": "R&D", "employeeNumber": "1"}});
    let d = run(
        before.clone(),
        json!([{"op": "replace", "path": ext, "value": {"department": "Ops"}}]),
    )
    .expect("applies");
    assert_eq!(d[ext], json!({"department": "Ops", "employeeNumber": "1"}));
    let d = run(before.clone(), json!([{"op": "remove", "path": ext}])).expect("applies");
    assert!(d.get(ext).is_none());
    let d = run(
        before,
        json!([{"op": "remove", "path": format!("{ext}:department")},
               {"op": "remove", "path": format!("{ext}:employeeNumber")}]),
    )
    .expect("applies");
    assert!(
        d.get(ext).is_none(),
        "an emptied extension is dropped: {d:?}"
    );
}

#[test]
fn member_operations_are_separated_from_attribute_operations() {
    use crate::scim::schema::GROUP_TYPE;
    let ops = parse(
        &GROUP_TYPE,
        &json!({"Operations": [
            {"op": "Add", "path": "members", "value": [{"value": "u1", "display": "U"}, "u2"]},
            {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": "members[value eq \"u4\"]"},
            {"op": "replace", "value": {"displayName": "New", "members": [{"value": "u5"}]}},
            {"op": "remove", "path": "members"}
        ]}),
    )
    .expect("parses");
    let (rest, members) = take_members(ops, "members").expect("splits");
    assert_eq!(
        rest.len(),
        1,
        "the displayName part of the path-less replace"
    );
    let shapes: Vec<String> = members
        .iter()
        .map(|m| match m {
            MemberOp::Add(l) => format!(
                "add {}",
                l.iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            MemberOp::Replace(l) => format!("replace {}", l.len()),
            MemberOp::Remove(ids) => format!("remove {}", ids.join(",")),
            MemberOp::RemoveAll => "remove all".into(),
            MemberOp::RemoveWhere(_) => "remove where".into(),
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "add u1,u2",
            "remove u3",
            "remove where",
            "replace 1",
            "remove all"
        ]
    );
    let MemberOp::Add(added) = &members[0] else {
        panic!("add first")
    };
    assert_eq!(added[0].display.as_deref(), Some("U"));
    for bad in [
        json!({"op": "replace", "path": "members.display", "value": "x"}),
        json!({"op": "add", "path": "members[value eq \"u\"]", "value": "x"}),
        json!({"op": "add", "path": "members", "value": [{"display": "no id"}]}),
        json!({"op": "add", "path": "members", "value": [7]}),
    ] {
        let ops = parse(&GROUP_TYPE, &json!({ "Operations": [bad.clone()] })).expect("parses");
        let e = take_members(ops, "members").expect_err("refused");
        assert_eq!(e.status, 400, "{bad}");
    }
}

#[test]
fn only_a_change_of_active_alone_is_read_as_one() {
    use super::only_active;
    let ops = |body: serde_json::Value| parse(&USER_TYPE, &body).expect("ops");
    let of = |list: serde_json::Value| only_active(&ops(json!({"Operations": list})));
    assert_eq!(
        of(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        Some(false)
    );
    assert_eq!(
        of(json!([{"op": "replace", "path": "active", "value": true}])),
        Some(true)
    );
    assert_eq!(
        of(json!([{"op": "replace", "value": {"active": false}}])),
        Some(false)
    );
    assert_eq!(
        of(json!([{"op": "add", "path": "active", "value": "True"}])),
        Some(true)
    );
    for other in [
        json!([{"op": "Replace", "path": "active", "value": "maybe"}]),
        json!([{"op": "Remove", "path": "active"}]),
        json!([{"op": "replace", "value": {"active": false, "displayName": "x"}}]),
        json!([{"op": "Replace", "path": "displayName", "value": "x"}]),
        json!([{"op": "Replace", "path": "active", "value": "False"},
               {"op": "Replace", "path": "displayName", "value": "x"}]),
    ] {
        assert_eq!(of(other.clone()), None, "{other}");
    }
}

/// `set` written into `data` as the store's `json_set` writes it: the leaf at its path, its
/// parent object (`name`, the extension's) created when missing.
fn set_leaf(data: &mut Data, set: &LeafSet) {
    let mut at = data;
    if set.attr.extension {
        at = at
            .entry(set.attr.schema.id.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("an extension is an object");
    }
    let mut key = set.attr.attr.name;
    if let Some(sub) = set.attr.sub {
        at = at
            .entry(key.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a complex attribute is an object");
        key = sub.name;
    }
    at.insert(key.to_string(), set.value.clone());
}

#[test]
fn leaf_sets_are_what_apply_does_whatever_the_user_holds() {
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let users = [
        json!({"userName": "a"}),
        json!({"userName": "b", "displayName": "B", "title": "T", "active": false,
               "name": {"givenName": "G", "familyName": "F"},
               "emails": [{"value": "b@x.org", "type": "work", "primary": true}],
               ENT: {"department": "D", "manager": {"value": "m1"}}}),
        json!({"userName": "c", "name": {"formatted": "C C"}, ENT: {"employeeNumber": "7"}}),
    ];
    let bodies = [
        // Entra's attribute updates: each by its path.
        json!([{"op": "Replace", "path": "displayName", "value": "New"},
               {"op": "Replace", "path": "name.givenName", "value": "Gabe"},
               {"op": "Add", "path": format!("{ENT}:department"), "value": "R&D"}]),
        // The same leaf twice: the last value counts.
        json!([{"op": "replace", "path": "title", "value": "one"},
               {"op": "replace", "path": "title", "value": "two"}]),
        // Path-less (Okta's, Entra's), with an unknown key and a read-only one echoed back.
        json!([{"op": "replace", "value": {"displayName": "X", "name.familyName": "Y",
               "urn:example:unknown:attr": 1, "id": "ignored", "schemas": []}}]),
        // Unchanged values are still sets.
        json!([{"op": "replace", "path": "displayName", "value": "B"}]),
        json!([{"op": "replace", "path": "locale", "value": "nb-NO"},
               {"op": "replace", "path": "fooBar", "value": "unknown, ignored"}]),
    ];
    for body in &bodies {
        let ops = parse(&USER_TYPE, &json!({ "Operations": body })).expect("ops");
        let sets = leaf_sets(&USER_TYPE, &ops).unwrap_or_else(|| panic!("leaf sets: {body}"));
        for user in &users {
            let data = from_request(&USER_TYPE, user).expect("user");
            let applied = apply(&USER_TYPE, &data, &ops).expect("applies");
            let mut written = data.clone();
            for set in &sets {
                set_leaf(&mut written, set);
            }
            assert_eq!(
                Value::Object(written),
                Value::Object(applied),
                "{body} on {user}"
            );
        }
    }
    let ops = parse(&USER_TYPE, &json!({ "Operations": &bodies[1] })).expect("ops");
    assert_eq!(leaf_sets(&USER_TYPE, &ops).map(|s| s.len()), Some(1));
}

#[test]
fn anything_but_leaf_sets_reads_first() {
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    for body in [
        json!([{"op": "Remove", "path": "title"}]),
        json!([{"op": "Replace", "path": "title", "value": ""}]),
        json!([{"op": "Replace", "path": "title", "value": null}]),
        json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@b.c"}]),
        json!([{"op": "Add", "path": "emails", "value": [{"value": "a@b.c"}]}]),
        json!([{"op": "Replace", "path": "name", "value": {"givenName": "G"}}]),
        json!([{"op": "Replace", "path": format!("{ENT}:manager"), "value": "m2"}]),
        json!([{"op": "Replace", "path": format!("{ENT}:manager.value"), "value": "m2"}]),
        json!([{"op": "Replace", "path": ENT, "value": {"department": "D"}}]),
        json!([{"op": "Replace", "path": "id", "value": "x"}]),
        json!([{"op": "Replace", "path": "password", "value": "secret"}]),
        json!([{"op": "Replace", "path": "active", "value": "maybe"}]),
        json!([{"op": "replace", "value": {"displayName": "X", "emails": [{"value": "a@b.c"}]}}]),
        json!([{"op": "replace", "path": "fooBar", "value": "only unknown"}]),
        json!([{"op": "replace", "path": "displayName", "value": "X"}, {"op": "remove", "path": "title"}]),
    ] {
        let ops = parse(&USER_TYPE, &json!({ "Operations": body })).expect("ops");
        assert_eq!(leaf_sets(&USER_TYPE, &ops), None, "{body}");
    }
}
