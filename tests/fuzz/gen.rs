//! Input generators: text soup, attribute paths, grammar-shaped filters, JSON documents shaped
//! like SCIM resources and PATCH bodies, and query strings; plus character-level mutation.
//!
//! Every generator mixes the well-formed (real attribute names from the schema tables, valid
//! operators and values) with the hostile (non-ASCII and combining characters, URN prefixes,
//! dots, huge and empty strings, numbers at and past the integer limits), so that inputs reach
//! deep into the engines and still probe every edge.

use serde_json::{json, Map, Number, Value};

use scim_core::scim::schema::{
    Attr, ResourceType, Type, COMMON, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, GROUP_TYPE,
    USER_SCHEMA, USER_TYPE,
};

use crate::rng::Rng;
use crate::url::url_encode;

/// Characters that have broken parsers: multi-byte, combining, case-changing, invisible,
/// bidirectional, the limits of the code space.
const WEIRD: &[char] = &[
    'é',
    'ß',
    'ẞ',
    'İ',
    'ı',
    'Σ',
    'ς',
    'ǅ',
    'ﬀ',
    'Ä',
    'ä',
    'Ω',
    'K',
    'Å',
    '𝔘',
    '😀',
    '\u{301}',
    '\u{0}',
    '\u{7f}',
    '\u{FFFF}',
    '\u{FFFD}',
    '\u{10FFFF}',
    '\u{200B}',
    '\u{202E}',
    '\u{3000}',
    '\u{A0}',
    '\u{85}',
    '\u{2028}',
    'Ⅻ',
    '١',
    '０',
];

/// Characters with meaning in filters and paths.
const PUNCT: &[char] = &[
    '"', '(', ')', '[', ']', '.', ':', ',', '\\', '-', '_', '$', ' ', '/', '%', '+', '=', '&', '*',
    '\'', '{', '}',
];

/// The parameters of a list request (RFC 7644 §3.4.2, §3.4.3).
pub const LIST_PARAMS: &[&str] = &[
    "filter",
    "startIndex",
    "count",
    "sortBy",
    "sortOrder",
    "attributes",
    "excludedAttributes",
];

const OPS: &[&str] = &[
    "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "Eq", "Pr", "xx", "", "eqq",
];

const URNS: &[&str] = &[
    USER_SCHEMA,
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    "urn:ietf:params:scim:schemas:extension:custom:2.0:User",
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
    "urn:ietf:params:scim:api:messages:2.0:PatchOp",
    "urn:",
    "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
];

/// Names beyond the schema's that clients send or that are easy to get wrong.
const EXTRA_NAMES: &[&str] = &[
    "schemas",
    "Operations",
    "abcé",
    "Abteilungsgröße",
    "",
    "a.b.c",
    "name.",
    ".name",
    "emails[",
    "emails]",
    "urn:",
    "not",
    "and",
    "$ref",
];

/// Every attribute and sub-attribute name of the served schemas.
pub fn attribute_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = EXTRA_NAMES.to_vec();
    for rt in [&USER_TYPE, &GROUP_TYPE] {
        for schema in std::iter::once(rt.schema).chain(rt.extensions.iter().copied()) {
            for a in schema.attributes {
                names.push(a.name);
                names.extend(a.sub_attributes.iter().map(|s| s.name));
            }
        }
    }
    names.extend([
        "id",
        "externalId",
        "meta",
        "created",
        "lastModified",
        "version",
    ]);
    names
}

/// The paths a resource type resolves (`name.givenName`, `urn:…:User:manager.value`), and its
/// complex attributes with their sub-attribute names (for `attr[…]`).
struct Paths {
    valid: Vec<String>,
    complex: Vec<(String, Vec<&'static str>)>,
}

fn paths_of(rt: &'static ResourceType) -> Paths {
    let mut valid = Vec::new();
    let mut complex = Vec::new();
    let schemas =
        std::iter::once((rt.schema, false)).chain(rt.extensions.iter().map(|e| (*e, true)));
    for (schema, ext) in schemas {
        let attrs = schema
            .attributes
            .iter()
            .chain(if ext { &[][..] } else { COMMON });
        for a in attrs {
            let name = if ext {
                format!("{}:{}", schema.id, a.name)
            } else {
                a.name.to_string()
            };
            valid.push(name.clone());
            if !ext {
                valid.push(format!("{}:{}", schema.id, a.name));
            }
            for sub in a.sub_attributes {
                valid.push(format!("{name}.{}", sub.name));
            }
            if a.is_complex() {
                complex.push((name, a.sub_attributes.iter().map(|s| s.name).collect()));
            }
        }
    }
    Paths { valid, complex }
}

pub struct Gen {
    pub rng: Rng,
    names: Vec<&'static str>,
    user: Paths,
    group: Paths,
    /// Whether paths are drawn from the User type (else Group).
    pub for_user: bool,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            names: attribute_names(),
            user: paths_of(&USER_TYPE),
            group: paths_of(&GROUP_TYPE),
            for_user: true,
        }
    }

    fn paths(&self) -> &Paths {
        if self.for_user {
            &self.user
        } else {
            &self.group
        }
    }

    pub fn char(&mut self) -> char {
        let r = &mut self.rng;
        match r.below(20) {
            0..=7 => {
                *r.pick(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") as char
            }
            8..=12 => *r.pick(PUNCT),
            13..=16 => *r.pick(WEIRD),
            17 => ' ',
            _ => loop {
                if let Some(c) = char::from_u32(r.below(0x11_0000) as u32) {
                    break c;
                }
            },
        }
    }

    /// Random text: usually short, sometimes thousands of characters.
    pub fn soup(&mut self, typical: usize, rare: usize) -> String {
        let n = self.rng.len(typical, rare);
        (0..n).map(|_| self.char()).collect()
    }

    fn case_mangle(&mut self, s: &str) -> String {
        if !self.rng.chance(1, 4) {
            return s.to_string();
        }
        s.chars()
            .map(|c| {
                if self.rng.chance(1, 2) {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    /// One of `items`, sometimes in another case.
    fn word(&mut self, items: &[&'static str]) -> String {
        let w = *self.rng.pick(items);
        self.case_mangle(w)
    }

    pub fn name(&mut self) -> String {
        if self.rng.chance(1, 8) {
            return self.soup(10, 300);
        }
        let n = *self.rng.pick(&self.names);
        self.case_mangle(n)
    }

    /// An attribute path: `[urn:]attr[.sub]`, mostly of real names.
    pub fn path(&mut self) -> String {
        if self.rng.chance(2, 3) {
            let n = self.rng.below(self.paths().valid.len());
            let p = self.paths().valid[n].clone();
            return self.case_mangle(&p);
        }
        let mut p = String::new();
        if self.rng.chance(1, 5) {
            let urn = *self.rng.pick(URNS);
            p.push_str(&self.case_mangle(urn));
            if self.rng.chance(5, 6) {
                p.push(':');
            }
        }
        p.push_str(&self.name());
        if self.rng.chance(1, 3) {
            p.push('.');
            p.push_str(&self.name());
        }
        if self.rng.chance(1, 10) {
            self.mutate(&p)
        } else {
            p
        }
    }

    /// A filter comparison value as filter text.
    pub fn literal(&mut self) -> String {
        match self.rng.below(12) {
            0..=2 => json_text(&Value::String(self.soup(12, 2000))),
            3..=4 => json_text(&Value::String(
                (*self.rng.pick(&[
                    "alice@example.com",
                    "ÄLICE@x.de",
                    "u0",
                    "g0",
                    "Admin",
                    "work",
                    "True",
                    "bob",
                ]))
                .to_string(),
            )),
            5 => self.word(&["true", "false", "null", "True", "FALSE"]),
            6 => self.number().to_string(),
            7 => json_text(&Value::String(
                (*self.rng.pick(&[
                    "2026-01-01T00:00:00Z",
                    "2026-13-01",
                    "9999-12-31T23:59:59.999+23:59",
                    "0000-01-01",
                    "2026-02-29T24:00:00Z",
                ]))
                .to_string(),
            )),
            8 => self.soup(6, 40).replace([' ', ')', ']'], ""),
            _ => String::new(),
        }
    }

    pub fn number(&mut self) -> Value {
        let r = &mut self.rng;
        match r.below(8) {
            0 => json!(r.below(10)),
            1 => json!(-(r.below(1000) as i64)),
            2 => json!(i64::MAX),
            3 => json!(i64::MIN),
            4 => json!(u64::MAX),
            5 => json!(1.5e300),
            6 => Value::Number(Number::from_f64(-0.0).unwrap_or_else(|| Number::from(0))),
            _ => json!(r.below(usize::MAX) as f64 / 7.0),
        }
    }

    /// A filter in the RFC 7644 grammar, sometimes with a deliberate error.
    pub fn filter(&mut self, depth: usize) -> String {
        let pick = if depth == 0 { 2 } else { 7 };
        match self.rng.below(pick) {
            0 => format!("{} {} {}", self.path(), self.word(OPS), self.literal()),
            1 => format!("{} pr", self.path()),
            2 => format!(
                "{} {} {}",
                self.filter(depth - 1),
                self.word(&["and", "or", "AND", "Or"]),
                self.filter(depth - 1)
            ),
            3 => format!("not ({})", self.filter(depth - 1)),
            4 => format!("({})", self.filter(depth - 1)),
            5 => {
                let n = self.rng.below(self.paths().complex.len());
                let (attr, subs) = self.paths().complex[n].clone();
                let inner = self.sub_filter(&subs, depth - 1);
                let mut s = format!("{attr}[{inner}]");
                if self.rng.chance(1, 3) {
                    let sub = *self.rng.pick(&subs);
                    let op = *self.rng.pick(OPS);
                    s.push_str(&format!(".{sub} {op} {}", self.literal()));
                }
                s
            }
            _ => {
                let n = self.rng.below(60);
                let one = format!("{} eq {}", self.path(), self.literal());
                vec![one; n.max(1)].join(" or ")
            }
        }
    }

    /// A filter inside `attr[…]`, over the attribute's sub-attribute names.
    fn sub_filter(&mut self, subs: &[&'static str], depth: usize) -> String {
        let sub = if self.rng.chance(9, 10) {
            (*self.rng.pick(subs)).to_string()
        } else {
            self.name()
        };
        match self.rng.below(if depth == 0 { 2 } else { 4 }) {
            0 => {
                let op = self.word(OPS);
                format!("{sub} {op} {}", self.literal())
            }
            1 => format!("{sub} pr"),
            2 => format!(
                "{} and {}",
                self.sub_filter(subs, depth - 1),
                self.sub_filter(subs, depth - 1)
            ),
            _ => format!(
                "not ({}) or {}",
                self.sub_filter(subs, depth - 1),
                self.sub_filter(subs, depth - 1)
            ),
        }
    }

    /// Character-level mutations: insert, delete, replace, duplicate, truncate, or splice in a
    /// piece of grammar.
    pub fn mutate(&mut self, s: &str) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        for _ in 0..=self.rng.below(3) {
            let at = self.rng.below(chars.len() + 1);
            match self.rng.below(7) {
                0 => chars.insert(at, self.char()),
                1 if at < chars.len() => {
                    let end = (at + 1 + self.rng.below(8)).min(chars.len());
                    chars.drain(at..end);
                }
                2 if at < chars.len() => chars[at] = self.char(),
                3 if at < chars.len() => {
                    let end = (at + 1 + self.rng.below(16)).min(chars.len());
                    let piece: Vec<char> = chars[at..end].to_vec();
                    for (i, c) in piece.into_iter().enumerate() {
                        chars.insert(end + i, c);
                    }
                }
                4 => chars.truncate(at),
                _ => {
                    let piece = *self.rng.pick(&[
                        " and ", " or ", "not ", "[", "]", "(", ")", "\"", "\\", " pr", " eq ",
                        ".", ":", "é", "\\u00e9", "\\ud800",
                    ]);
                    for (i, c) in piece.chars().enumerate() {
                        chars.insert(at + i, c);
                    }
                }
            }
        }
        chars.into_iter().collect()
    }

    /// A random JSON value.
    pub fn json(&mut self, depth: usize) -> Value {
        let pick = if depth == 0 { 5 } else { 7 };
        match self.rng.below(pick) {
            0 | 1 => Value::String(self.soup(12, 3000)),
            2 => self.number(),
            3 => match self.rng.below(4) {
                0 => Value::Bool(true),
                1 => Value::Bool(false),
                2 => json!(self.case_mangle("True")),
                _ => Value::Null,
            },
            4 => Value::String(String::new()),
            5 => {
                let n = self.rng.len(4, 1200);
                Value::Array((0..n).map(|_| self.json(depth - 1)).collect())
            }
            _ => {
                let mut m = Map::new();
                for _ in 0..self.rng.len(5, 60) {
                    let k = self.key();
                    m.insert(k, self.json(depth - 1));
                }
                Value::Object(m)
            }
        }
    }

    /// An object key: a real attribute, a dotted or URN-prefixed path, or anything at all.
    pub fn key(&mut self) -> String {
        match self.rng.below(10) {
            0..=5 => self.name(),
            6 => self.path(),
            7 => format!("{}:{}", self.rng.pick(URNS), self.name()),
            8 => String::new(),
            _ => self.soup(8, 10_000),
        }
    }

    /// A value of the right shape for an attribute most of the time, any JSON otherwise.
    pub fn value_for(&mut self, attr: &Attr, depth: usize) -> Value {
        if self.rng.chance(1, 6) || depth == 0 {
            return self.json(depth.min(2));
        }
        if attr.multi_valued && self.rng.chance(4, 5) {
            let n = self.rng.len(3, 1100);
            let one = Attr {
                multi_valued: false,
                ..*attr
            };
            return Value::Array((0..n).map(|_| self.value_for(&one, depth - 1)).collect());
        }
        match attr.ty {
            Type::Complex => {
                let mut m = Map::new();
                for sub in attr.sub_attributes {
                    if self.rng.chance(2, 3) {
                        let k = self.case_mangle(sub.name);
                        m.insert(k, self.value_for(sub, depth - 1));
                    }
                }
                Value::Object(m)
            }
            Type::Boolean => match self.rng.below(4) {
                0 => json!(true),
                1 => json!(false),
                2 => json!(self.case_mangle("False")),
                _ => json!(""),
            },
            Type::DateTime => json!(self.rng.pick(&["2026-01-01T00:00:00Z", "x", ""])),
            Type::Integer | Type::Decimal => self.number(),
            _ => Value::String(self.soup(12, 400)),
        }
    }

    /// A resource body: real attributes with plausible values, and some noise.
    pub fn resource(&mut self, user: bool) -> Value {
        let rt = if user { &USER_TYPE } else { &GROUP_TYPE };
        let mut m = Map::new();
        if self.rng.chance(1, 2) {
            m.insert("schemas".into(), json!([rt.schema.id]));
        }
        for attr in rt.schema.attributes {
            if self.rng.chance(1, 3) {
                let k = self.case_mangle(attr.name);
                m.insert(k, self.value_for(attr, 3));
            }
        }
        for ext in rt.extensions {
            if self.rng.chance(1, 3) {
                let mut e = Map::new();
                for attr in ext.attributes {
                    if self.rng.chance(1, 2) {
                        e.insert(attr.name.to_string(), self.value_for(attr, 3));
                    }
                }
                m.insert(ext.id.to_string(), Value::Object(e));
            }
        }
        for _ in 0..self.rng.len(2, 40) {
            let k = self.key();
            m.insert(k, self.json(2));
        }
        let required = if user { "userName" } else { "displayName" };
        if self.rng.chance(9, 10) {
            m.insert(required.into(), Value::String(self.soup(12, 300)));
        }
        Value::Object(m)
    }

    /// A PATCH body (RFC 7644 §3.5.2) in any dialect, with well-formed and broken operations.
    pub fn patch(&mut self, user: bool) -> Value {
        let rt = if user { &USER_TYPE } else { &GROUP_TYPE };
        let attrs: Vec<&'static Attr> = rt
            .schema
            .attributes
            .iter()
            .chain(rt.extensions.iter().flat_map(|e| e.attributes.iter()))
            .collect();
        let n = self.rng.len(3, 1100);
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let mut op = Map::new();
            let kind = if self.rng.chance(1, 12) {
                *self.rng.pick(&["x", "", "delete", "ADD "])
            } else {
                *self.rng.pick(&[
                    "add", "replace", "remove", "Add", "Replace", "Remove", "REPLACE",
                ])
            };
            if self.rng.chance(19, 20) {
                op.insert(self.case_mangle("op"), json!(kind));
            }
            let attr = *self.rng.pick(&attrs);
            let subs: Vec<&'static str> = attr.sub_attributes.iter().map(|s| s.name).collect();
            let path = match self.rng.below(6) {
                0 => None,
                1 if !subs.is_empty() => {
                    let inner = self.sub_filter(&subs, 1);
                    let tail = if self.rng.chance(1, 3) {
                        format!(".{}", self.rng.pick(&subs))
                    } else {
                        String::new()
                    };
                    Some(format!("{}[{inner}]{tail}", attr.name))
                }
                2 => Some(format!(
                    "{}[value eq {}].{}",
                    attr.name,
                    self.literal(),
                    self.name()
                )),
                3 => Some(self.path()),
                _ => Some(attr.name.to_string()),
            };
            match &path {
                Some(p) if self.rng.chance(9, 10) => {
                    op.insert("path".into(), json!(p));
                }
                Some(_) => {
                    op.insert("path".into(), self.json(1));
                }
                None => {}
            }
            if self.rng.chance(9, 10) {
                let v = if path.is_none() {
                    self.resource(user)
                } else {
                    self.value_for(attr, 3)
                };
                op.insert("value".into(), v);
            }
            ops.push(Value::Object(op));
        }
        let key = if self.rng.chance(1, 20) {
            "Ops"
        } else {
            *self.rng.pick(&["Operations", "operations", "OPERATIONS"])
        };
        let mut body = Map::new();
        body.insert(
            "schemas".into(),
            json!(["urn:ietf:params:scim:api:messages:2.0:PatchOp"]),
        );
        body.insert(
            key.into(),
            if self.rng.chance(19, 20) {
                Value::Array(ops)
            } else {
                self.json(1)
            },
        );
        Value::Object(body)
    }

    /// A raw query string, percent-encoded the way clients do (and sometimes badly).
    pub fn query(&mut self) -> String {
        let keys: Vec<&str> = LIST_PARAMS
            .iter()
            .copied()
            .chain(["STARTINDEX", "aadOptscim062020", ""])
            .collect();
        let mut parts = Vec::new();
        for _ in 0..self.rng.len(4, 30) {
            let k = (*self.rng.pick(&keys)).to_string();
            let v = match k.to_ascii_lowercase().as_str() {
                "filter" => self.filter(3),
                "startindex" | "count" => match self.rng.below(5) {
                    0 => "9223372036854775807".to_string(),
                    1 => "-9223372036854775809".to_string(),
                    2 => "99999999999999999999999".to_string(),
                    3 => self.number().to_string(),
                    _ => self.soup(4, 30),
                },
                "sortby" => self.path(),
                "sortorder" => self.word(&["ascending", "descending", "x"]),
                _ => (0..self.rng.len(4, 50))
                    .map(|_| self.path())
                    .collect::<Vec<_>>()
                    .join(","),
            };
            parts.push(format!("{}={}", url_encode(&k), url_encode(&v)));
        }
        let q = parts.join("&");
        if self.rng.chance(1, 10) {
            self.mutate(&q)
        } else {
            q
        }
    }
}

/// A JSON value as text.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
