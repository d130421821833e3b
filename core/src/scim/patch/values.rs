//! The value rules PATCH applies to multi-valued attributes (RFC 7644 §3.5.2): which values a
//! value filter selects, when two values are the same one (so `add` does not duplicate it and
//! Entra's listed `remove` finds it), and which value a filter of equalities describes. Both
//! matching paths are linear: a scan for a few values, one index above that.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::scim::filter::{Filter, Op};
use crate::scim::fold::{self, fold};
use crate::scim::resource::normalize;
use crate::scim::schema::{Attr, Type};
use crate::scim::value::{as_bool, as_text as value_text};

/// Evaluate a value filter on one element of a multi-valued (or single complex) attribute.
pub fn matches(f: &Filter, element: &Value) -> bool {
    match f {
        Filter::And(a, b) => matches(a, element) && matches(b, element),
        Filter::Or(a, b) => matches(a, element) || matches(b, element),
        Filter::Not(a) => !matches(a, element),
        Filter::Present { attr: r } => match r.sub {
            Some(s) => element.get(s.name).is_some_and(|v| !v.is_null() && v != ""),
            None => true,
        },
        Filter::Has { .. } => false,
        Filter::Compare { attr: r, op, value } => {
            let Some(sub) = r.sub else { return false };
            compare(sub, element.get(sub.name), *op, value)
        }
    }
}

fn compare(sub: &Attr, actual: Option<&Value>, op: Op, expected: &Value) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    if expected.is_null() {
        return match op {
            Op::Eq => actual.is_none(),
            Op::Ne => actual.is_some(),
            _ => false,
        };
    }
    let Some(actual) = actual else {
        return op == Op::Ne;
    };
    if sub.ty == Type::Boolean {
        return match (as_bool(actual), as_bool(expected), op) {
            (Some(a), Some(e), Op::Eq) => a == e,
            (Some(a), Some(e), Op::Ne) => a != e,
            _ => false,
        };
    }
    let (Some(a), Some(e)) = (value_text(actual), value_text(expected)) else {
        return false;
    };
    // Equality without allocating (it runs once per value per operation); the other
    // operators compare folded copies.
    match op {
        Op::Eq => return text_eq(sub.case_exact, &a, &e),
        Op::Ne => return !text_eq(sub.case_exact, &a, &e),
        _ => {}
    }
    let (a, e) = if sub.case_exact {
        (a, e)
    } else {
        (Cow::Owned(fold(&a)), Cow::Owned(fold(&e)))
    };
    match op {
        Op::Eq | Op::Ne => false,
        Op::Co => a.contains(e.as_ref()),
        Op::Sw => a.starts_with(e.as_ref()),
        Op::Ew => a.ends_with(e.as_ref()),
        Op::Gt => a > e,
        Op::Ge => a >= e,
        Op::Lt => a < e,
        Op::Le => a <= e,
    }
}

fn text_eq(case_exact: bool, a: &str, b: &str) -> bool {
    if case_exact {
        a == b
    } else {
        fold::eq(a, b)
    }
}

/// Whether `b` is the same value as `a` (what [`ElementKey`] identifies, compared without
/// building keys).
fn same_element(attr: &Attr, a: &Value, b: &Value) -> bool {
    let case_exact = attr.sub("value").map_or(attr.case_exact, |s| s.case_exact);
    match (
        a.get("value").and_then(value_text),
        b.get("value").and_then(value_text),
    ) {
        (Some(x), Some(y)) => text_eq(case_exact, &x, &y) && a.get("type") == b.get("type"),
        (None, None) => a == b,
        _ => false,
    }
}

/// Below this many values per operation, matching scans the present values; above it, it
/// builds an index of them once. Either way an operation costs O(present + added) comparisons
/// that do not allocate, or hash lookups.
pub(super) const SCAN_BELOW: usize = 8;

/// Append values to a multi-valued attribute (RFC 7644 §3.5.2.1): a value already present
/// (same `value` under its case rule, same `type`) is merged rather than added twice, and a new
/// `primary` demotes the others, the last one winning. Linear: one index of the present values,
/// never a comparison of every pair.
pub(super) fn add_values(attr: &Attr, items: &mut Vec<Value>, new_items: Vec<Value>) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let last_primary = new_items.iter().rposition(is_primary);
    if last_primary.is_some() {
        for other in items.iter_mut().filter_map(Value::as_object_mut) {
            other.remove("primary");
        }
    }
    let mut index: Option<HashMap<ElementKey, usize>> =
        (new_items.len() >= SCAN_BELOW).then(|| {
            let mut index = HashMap::with_capacity(items.len().saturating_add(new_items.len()));
            for (i, item) in items.iter().enumerate() {
                index.entry(element_key(attr, item)).or_insert(i);
            }
            index
        });
    for (k, mut item) in new_items.into_iter().enumerate() {
        if Some(k) != last_primary && is_primary(&item) {
            // A later value of this request is the primary one.
            if let Some(o) = item.as_object_mut() {
                o.remove("primary");
            }
        }
        let found = match &mut index {
            Some(index) => {
                let key = element_key(attr, &item);
                let found = index.get(&key).copied();
                if found.is_none() {
                    index.insert(key, items.len());
                }
                found
            }
            None => items.iter().position(|e| same_element(attr, e, &item)),
        };
        match found.and_then(|i| items.get_mut(i)) {
            Some(existing) => merge(existing, item),
            None => items.push(item),
        }
    }
}

/// Remove the listed values (Entra's `remove` with a value list): one set of the listed keys,
/// one pass over the values. A listed `null` removes the values that have no `value`.
pub(super) fn remove_listed(attr: &Attr, items: &mut Vec<Value>, listed: &[Value]) {
    let mut keys = HashSet::with_capacity(listed.len());
    let mut valueless = false;
    for l in listed {
        match l.get("value").unwrap_or(l) {
            Value::Null => valueless = true,
            v => keys.extend(value_key(attr, v)),
        }
    }
    items.retain(|item| match item.get("value").filter(|v| !v.is_null()) {
        None => !valueless,
        Some(v) => value_key(attr, v).is_none_or(|k| !keys.contains(&k)),
    });
}

/// What identifies a value of a multi-valued attribute: its `value` (folded unless the
/// attribute's `value` is case-exact) and its `type`; a value without `value` is itself.
#[derive(Debug, PartialEq, Eq, Hash)]
enum ElementKey {
    Value(String, Option<String>),
    Whole(String),
}

fn element_key(attr: &Attr, item: &Value) -> ElementKey {
    match item.get("value").and_then(|v| value_key(attr, v)) {
        Some(v) => ElementKey::Value(v, item.get("type").map(Value::to_string)),
        None => ElementKey::Whole(item.to_string()),
    }
}

/// A `value` as compared: strings and numbers as text, folded for a case-insensitive value.
fn value_key(attr: &Attr, v: &Value) -> Option<String> {
    let text = value_text(v)?;
    let case_exact = attr.sub("value").map_or(attr.case_exact, |s| s.case_exact);
    Some(if case_exact {
        text.into_owned()
    } else {
        fold(&text)
    })
}

fn merge(existing: &mut Value, new: Value) {
    if let (Value::Object(e), Value::Object(n)) = (existing, new) {
        for (k, v) in n {
            e.insert(k, v);
        }
    }
}

/// The element a filter of `eq` conjunctions describes (`type eq "work"`, `primary eq "True"`),
/// with values of each sub-attribute's type; `None` for any other filter.
pub(super) fn element_from_equalities(attr: &Attr, filter: &Filter) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    fn walk(attr: &Attr, f: &Filter, m: &mut Map<String, Value>) -> Option<()> {
        match f {
            Filter::And(a, b) => {
                walk(attr, a, m)?;
                walk(attr, b, m)
            }
            Filter::Compare {
                attr: r,
                op: Op::Eq,
                value,
            } => {
                let sub = r.sub?;
                let v = normalize(sub, value.clone(), &format!("{}.{}", attr.name, sub.name))
                    .ok()??;
                m.insert(sub.name.to_string(), v);
                Some(())
            }
            _ => None,
        }
    }
    walk(attr, filter, &mut m)?;
    Some(m)
}
