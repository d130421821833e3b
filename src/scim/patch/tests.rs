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
