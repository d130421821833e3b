//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which attributes a
//! response carries. `id` (returned `always`) is never removed; unknown names select nothing.

use serde_json::{Map, Value};

use super::render::set_schemas;
use crate::scim::query::ListParams;
use crate::scim::schema::{find, AttrRef, Resolved, ResourceType, Returned, Schema, COMMON};

/// `attributes` / `excludedAttributes` of a request (RFC 7644 §3.4.2.5, §3.9).
pub struct Selection {
    rt: &'static ResourceType,
    /// `None` without an `attributes` parameter; with one, what its names select (possibly
    /// nothing: unknown names select nothing, and then only `id` is returned).
    attributes: Option<Vec<Selector>>,
    excluded: Vec<Selector>,
}

impl Selection {
    pub fn of(rt: &'static ResourceType, p: &ListParams) -> Selection {
        let attributes = p
            .attributes
            .as_deref()
            .filter(|s| s.split(',').any(|name| !name.trim().is_empty()))
            .map(|s| selectors(rt, s));
        Selection {
            rt,
            attributes,
            excluded: p
                .excluded_attributes
                .as_deref()
                .map(|s| selectors(rt, s))
                .unwrap_or_default(),
        }
    }

    /// Whether the request asked to shape the response at all.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_none() && self.excluded.is_empty()
    }

    /// Whether the response will contain this core attribute (so the store can skip reading
    /// it: `excludedAttributes=members`).
    pub fn wants(&self, name: &str) -> bool {
        let names = |sels: &[Selector], whole: bool| {
            sels.iter().any(|s| matches!(s, Selector::Attr(a) if !a.extension && a.attr.name == name && (!whole || a.sub.is_none())))
        };
        if names(&self.excluded, true) {
            return false;
        }
        let always = self
            .rt
            .schema
            .attr(name)
            .is_some_and(|a| a.returned == Returned::Always);
        match &self.attributes {
            None => true,
            Some(attributes) => always || names(attributes, false),
        }
    }

    pub fn apply(&self, r: &mut Map<String, Value>) {
        project(self.rt, r, self.attributes.as_deref(), &self.excluded);
    }
}

/// One entry of `attributes` / `excludedAttributes`.
#[derive(Debug, Clone)]
pub enum Selector {
    Attr(AttrRef),
    Extension(&'static Schema),
}

/// Parse a comma-separated attribute list (RFC 7644 §3.4.2.5). Unknown names are ignored: they
/// select nothing.
pub fn selectors(rt: &'static ResourceType, list: &str) -> Vec<Selector> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| match rt.resolve(s) {
            Resolved::Attr(a) => Some(Selector::Attr(a)),
            Resolved::Extension(schema) => Some(Selector::Extension(schema)),
            Resolved::Unknown => None,
        })
        .collect()
}

/// Apply `attributes` (keep only these, plus what is always returned; `None` when the request
/// had no such parameter) and `excludedAttributes` (drop these, never what is always returned)
/// to a rendered resource (RFC 7644 §3.4.2.5). `schemas` is kept and recomputed.
pub fn project(
    rt: &'static ResourceType,
    resource: &mut Map<String, Value>,
    attributes: Option<&[Selector]>,
    excluded: &[Selector],
) {
    if let Some(attributes) = attributes {
        keep_only(rt, resource, attributes);
    }
    for sel in excluded {
        exclude(resource, sel);
    }
    set_schemas(rt, resource);
}

/// `attributes=…` (RFC 7644 §3.4.2.5, §3.9): keep what is selected and what is always returned.
fn keep_only(
    rt: &'static ResourceType,
    resource: &mut Map<String, Value>,
    attributes: &[Selector],
) {
    let keys: Vec<String> = resource.keys().cloned().collect();
    for key in keys {
        if key == "schemas" {
            continue;
        }
        let Some(ext) = rt.extension(&key) else {
            match rt.schema.attr(&key).or_else(|| find(COMMON, &key)) {
                Some(attr) => {
                    let a = AttrRef {
                        schema: rt.schema,
                        extension: false,
                        attr,
                        sub: None,
                    };
                    keep_selected(resource, &key, &a, attributes);
                }
                None => {
                    resource.remove(&key);
                }
            }
            continue;
        };
        // An extension selected whole is kept whole; otherwise its attributes one by one.
        if attributes
            .iter()
            .any(|s| matches!(s, Selector::Extension(x) if x.id == ext.id))
        {
            continue;
        }
        let Some(obj) = resource.get_mut(&key).and_then(Value::as_object_mut) else {
            continue;
        };
        let inner: Vec<String> = obj.keys().cloned().collect();
        for k in inner {
            match ext.attr(&k) {
                Some(attr) => {
                    let a = AttrRef {
                        schema: ext,
                        extension: true,
                        attr,
                        sub: None,
                    };
                    keep_selected(obj, &k, &a, attributes);
                }
                None => {
                    obj.remove(&k);
                }
            }
        }
        if obj.is_empty() {
            resource.remove(&key);
        }
    }
}

/// `excludedAttributes=…` (RFC 7644 §3.4.2.5, §3.9): drop one selector, except what is always returned.
fn exclude(resource: &mut Map<String, Value>, sel: &Selector) {
    let a = match sel {
        Selector::Extension(schema) => {
            resource.remove(schema.id);
            return;
        }
        Selector::Attr(a) if a.attr.returned == Returned::Always => return,
        Selector::Attr(a) => a,
    };
    let container = if a.extension {
        resource.get_mut(a.schema.id).and_then(Value::as_object_mut)
    } else {
        Some(&mut *resource)
    };
    let Some(container) = container else { return };
    match a.sub {
        None => {
            container.remove(a.attr.name);
        }
        Some(sub) => {
            if let Some(v) = container.get_mut(a.attr.name) {
                remove_sub(v, sub.name);
            }
        }
    }
    if a.extension && container.is_empty() {
        resource.remove(a.schema.id);
    }
}

/// Keep `key` if it is always returned or selected whole; if only some of its sub-attributes
/// are selected, keep just those.
fn keep_selected(
    container: &mut Map<String, Value>,
    key: &str,
    a: &AttrRef,
    attributes: &[Selector],
) {
    if a.attr.returned == Returned::Always {
        return;
    }
    let same = |s: &&Selector| match s {
        Selector::Attr(s) => {
            s.extension == a.extension && s.schema.id == a.schema.id && s.attr.name == a.attr.name
        }
        Selector::Extension(_) => false,
    };
    let subs: Vec<Option<&'static str>> = attributes
        .iter()
        .filter(same)
        .map(|s| match s {
            Selector::Attr(s) => s.sub.map(|x| x.name),
            Selector::Extension(_) => None,
        })
        .collect();
    if subs.is_empty() {
        container.remove(key);
        return;
    }
    if subs.iter().any(Option::is_none) {
        return;
    }
    let keep: Vec<&str> = subs.into_iter().flatten().collect();
    let retain = |o: &mut Map<String, Value>| {
        o.retain(|k, _| keep.iter().any(|s| s.eq_ignore_ascii_case(k)))
    };
    match container.get_mut(key) {
        Some(Value::Object(o)) => retain(o),
        Some(Value::Array(items)) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(retain),
        _ => {}
    }
}

fn remove_sub(v: &mut Value, sub: &str) {
    match v {
        Value::Object(o) => {
            o.remove(sub);
        }
        Value::Array(items) => {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove(sub);
            }
        }
        _ => {}
    }
}
