//! The SCIM filter language (RFC 7644 §3.4.2.2): a parser into a typed, schema-resolved AST.
//!
//! The AST is the contract between protocol and storage: the store translates it to
//! parameterized SQL, the PATCH engine evaluates it in memory on one multi-valued element; no
//! filter text ever reaches SQL.
//!
//! Accepted beyond the strict ABNF, because identity providers send it:
//! - operator and attribute names in any case; `and`/`or`/`not` likewise;
//! - unquoted (legacy) values: `externalId eq jyoung` (old Entra docs);
//! - a sub-attribute after a value path followed by a comparison, Entra's matching form
//!   `emails[type eq "work"].value eq "x"`, read as `emails[type eq "work" and value eq "x"]`.
//!
//! Limits guard the isolate: at most [`MAX_LEN`] bytes, [`MAX_DEPTH`] nesting levels and
//! [`MAX_TERMS`] comparisons.

use serde_json::Value;

use super::error::{quote, Error, ScimType};
use super::schema::{AttrRef, Resolved, ResourceType};

pub const MAX_LEN: usize = 4096;
pub const MAX_DEPTH: usize = 24;
pub const MAX_TERMS: usize = 40;

/// Comparison operators (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Co => "co",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
        }
    }
}

/// A comparison value: a JSON literal (RFC 7644 §3.4.2.2 `compValue`).
pub type Literal = Value;

/// A parsed filter. Inside [`Filter::Has`], the inner filter's attributes are sub-attributes of
/// the outer attribute (`sub` is set on each [`AttrRef`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare {
        attr: AttrRef,
        op: Op,
        value: Literal,
    },
    Present {
        attr: AttrRef,
    },
    /// `attr[inner]`: some value of the (multi-valued or complex) attribute matches `inner`.
    Has {
        attr: AttrRef,
        inner: Box<Filter>,
    },
}

/// The filter as filter text that [`parse`] reads back to the same tree: attribute paths in
/// full (extension attributes URN-qualified), values as JSON, parentheses only where the tree
/// needs them (so a long `or` chain does not become deeply nested text). Inside `attr[…]`,
/// attributes are written as the sub-attribute names the grammar expects.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_filter(f, self, false)
    }
}

fn write_filter(
    f: &mut std::fmt::Formatter<'_>,
    filter: &Filter,
    inside: bool,
) -> std::fmt::Result {
    let path = |a: &AttrRef| match (inside, a.sub) {
        (true, Some(sub)) => sub.name.to_string(),
        _ => a.display(),
    };
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let and = matches!(filter, Filter::And(..));
            write_operand(f, a, and, false, inside)?;
            f.write_str(if and { " and " } else { " or " })?;
            write_operand(f, b, and, true, inside)
        }
        Filter::Not(a) => {
            f.write_str("not (")?;
            write_filter(f, a, inside)?;
            f.write_str(")")
        }
        Filter::Compare { attr, op, value } => {
            write!(f, "{} {} {value}", path(attr), op.as_str())
        }
        Filter::Present { attr } => write!(f, "{} pr", path(attr)),
        Filter::Has { attr, inner } => {
            write!(f, "{}[", attr.display())?;
            write_filter(f, inner, true)?;
            f.write_str("]")
        }
    }
}

/// One side of an `and`/`or`. `and` binds tighter than `or`, and both group to the left
/// (`a or b or c` is `(a or b) or c`): a child needs parentheses only where reading it back
/// would group it differently.
fn write_operand(
    f: &mut std::fmt::Formatter<'_>,
    child: &Filter,
    parent_and: bool,
    right: bool,
    inside: bool,
) -> std::fmt::Result {
    let parens = match child {
        Filter::Or(..) => parent_and || right,
        Filter::And(..) => parent_and && right,
        _ => false,
    };
    if parens {
        f.write_str("(")?;
    }
    write_filter(f, child, inside)?;
    if parens {
        f.write_str(")")?;
    }
    Ok(())
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidFilter, detail)
}

/// Parse a filter against a resource type's schemas.
pub fn parse(text: &str, rt: &'static ResourceType) -> Result<Filter, Error> {
    let mut p = Parser::new(text, rt, None)?;
    p.skip_ws();
    if p.at_end() {
        return Err(invalid("filter is empty"));
    }
    p.finish()
}

/// Parse the bracketed part of a PATCH path (`members[value eq "x"]`): a filter whose
/// attribute names are sub-attributes of `parent`.
pub fn parse_value_filter(
    text: &str,
    parent: AttrRef,
    rt: &'static ResourceType,
) -> Result<Filter, Error> {
    Parser::new(text, rt, Some(parent))?.finish()
}

/// A recursive-descent parser over the unread rest of the text. It advances by splitting
/// `rest` at positions that `str` methods found, so it never slices text at a byte index that
/// could fall inside a character.
struct Parser<'a> {
    src: &'a str,
    rest: &'a str,
    rt: &'static ResourceType,
    depth: usize,
    terms: usize,
    /// Set while parsing inside `attr[...]`.
    parent: Option<AttrRef>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | ':' | '.')
}

/// Split `s` where `stop` first matches (or at its end): the run before it, and the rest.
fn split_run(s: &str, stop: impl Fn(char) -> bool) -> (&str, &str) {
    match s.find(stop) {
        Some(i) => s.split_at_checked(i).unwrap_or((s, "")),
        None => (s, ""),
    }
}

impl<'a> Parser<'a> {
    fn new(
        text: &'a str,
        rt: &'static ResourceType,
        parent: Option<AttrRef>,
    ) -> Result<Parser<'a>, Error> {
        if text.len() > MAX_LEN {
            return Err(invalid(format!("filter is longer than {MAX_LEN} bytes")));
        }
        Ok(Parser {
            src: text,
            rest: text,
            rt,
            depth: 0,
            terms: 0,
            parent,
        })
    }

    /// The whole filter, then nothing but white space.
    fn finish(mut self) -> Result<Filter, Error> {
        let f = self.or()?;
        self.skip_ws();
        if !self.at_end() {
            return Err(self.error("unexpected text"));
        }
        Ok(f)
    }

    fn at_end(&self) -> bool {
        self.rest.is_empty()
    }

    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn error(&self, what: &str) -> Error {
        let near: String = self.rest.chars().take(24).collect();
        if near.is_empty() {
            return invalid(format!("{what} at the end of the filter"));
        }
        // A 1-based character position: what a person counts in the text they sent.
        let consumed = self.src.len().saturating_sub(self.rest.len());
        let position = self
            .src
            .get(..consumed)
            .map_or(0, |done| done.chars().count())
            .saturating_add(1);
        invalid(format!(
            "{what} at position {position} near '{}'",
            quote(&near)
        ))
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(tail) => {
                self.rest = tail;
                true
            }
            None => false,
        }
    }

    /// A run of name characters (attribute path, operator or keyword).
    fn word(&mut self) -> &'a str {
        let (word, tail) = split_run(self.rest, |c| !is_name_char(c));
        self.rest = tail;
        word
    }

    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let (word, tail) = split_run(self.rest, |c| !is_name_char(c));
        if word.eq_ignore_ascii_case(kw) {
            self.rest = tail;
            true
        } else {
            false
        }
    }

    fn count_term(&mut self) -> Result<(), Error> {
        self.terms = self.terms.saturating_add(1);
        if self.terms > MAX_TERMS {
            return Err(invalid(format!(
                "filter has more than {MAX_TERMS} comparisons"
            )));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth = self.depth.saturating_add(1);
        if self.depth > MAX_DEPTH {
            return Err(invalid(format!(
                "filter is nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, Error> {
        self.enter()?;
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        self.depth = self.depth.saturating_sub(1);
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, Error> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// The rest of `( filter )`, after its `(`.
    fn parenthesized(&mut self) -> Result<Filter, Error> {
        let inner = self.or()?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.error("expected ')'"));
        }
        Ok(inner)
    }

    fn unary(&mut self) -> Result<Filter, Error> {
        self.skip_ws();
        if self.eat('(') {
            return self.parenthesized();
        }
        let save = self.rest;
        if self.keyword("not") {
            self.skip_ws();
            if self.eat('(') {
                return Ok(Filter::Not(Box::new(self.parenthesized()?)));
            }
            // An attribute that happens to be called "not…": fall through.
            self.rest = save;
        }
        self.atom()
    }

    fn resolve(&self, path: &str) -> Result<AttrRef, Error> {
        if let Some(parent) = self.parent {
            if let Some(sub) = parent.attr.sub(path) {
                return Ok(AttrRef {
                    sub: Some(sub),
                    ..parent
                });
            }
            return Err(invalid(format!(
                "'{}' is not a sub-attribute of '{}'",
                quote(path),
                parent.display()
            )));
        }
        match self.rt.resolve(path) {
            Resolved::Attr(a) => Ok(a),
            _ => Err(invalid(format!(
                "unknown attribute '{}' in filter",
                quote(path)
            ))),
        }
    }

    fn atom(&mut self) -> Result<Filter, Error> {
        self.skip_ws();
        let path = self.word();
        if path.is_empty() {
            return Err(self.error("expected an attribute name"));
        }
        self.count_term()?;
        if self.eat('[') {
            if self.parent.is_some() {
                return Err(self.error("value filters cannot be nested"));
            }
            let attr = self.resolve(path)?;
            if attr.sub.is_some() || !attr.attr.is_complex() {
                return Err(invalid(format!(
                    "'{}' cannot take a value filter: it is not a complex attribute",
                    quote(path)
                )));
            }
            self.parent = Some(attr);
            let inner = self.or();
            self.parent = None;
            let mut inner = inner?;
            self.skip_ws();
            if !self.eat(']') {
                return Err(self.error("expected ']'"));
            }
            // Entra's `emails[type eq "work"].value eq "x"`: one more comparison.
            if self.eat('.') {
                self.count_term()?;
                let sub_name = self.word();
                let sub = attr.attr.sub(sub_name).ok_or_else(|| {
                    invalid(format!(
                        "'{}' is not a sub-attribute of '{}'",
                        quote(sub_name),
                        attr.display()
                    ))
                })?;
                let sub_ref = AttrRef {
                    sub: Some(sub),
                    ..attr
                };
                let extra = self.comparison(sub_ref)?;
                inner = Filter::And(Box::new(inner), Box::new(extra));
            }
            return Ok(Filter::Has {
                attr,
                inner: Box::new(inner),
            });
        }
        let attr = self.resolve(path)?;
        self.comparison(attr)
    }

    /// `pr`, or an operator and a value, after an attribute path.
    fn comparison(&mut self, attr: AttrRef) -> Result<Filter, Error> {
        self.skip_ws();
        let op_word = self.word();
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present { attr });
        }
        // `emails eq "x"` and `manager eq "x"` compare the `value` sub-attribute
        // (RFC 7644 §3.4.2.2: a complex attribute without a sub-attribute is its value).
        let attr = match (attr.sub, attr.attr.sub("value")) {
            (None, Some(value)) if attr.attr.is_complex() => AttrRef {
                sub: Some(value),
                ..attr
            },
            _ => attr,
        };
        let op = Op::parse(op_word).ok_or_else(|| {
            if op_word.is_empty() {
                self.error("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)")
            } else {
                invalid(format!("unknown operator '{}'", quote(op_word)))
            }
        })?;
        self.skip_ws();
        let value = self.value()?;
        Ok(Filter::Compare { attr, op, value })
    }

    /// A JSON string, number, `true`/`false`/`null`, or a legacy unquoted word.
    fn value(&mut self) -> Result<Literal, Error> {
        if self.rest.starts_with('"') {
            // Find the closing quote, honouring backslash escapes, then decode as JSON.
            let mut chars = self.rest.char_indices().skip(1);
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !closed {
                return Err(self.error("unterminated string"));
            }
            let end = chars.next().map_or(self.rest.len(), |(i, _)| i);
            let (lit, tail) = self.rest.split_at_checked(end).unwrap_or((self.rest, ""));
            // Read as a `Value`: a typed read would bring serde's type-mismatch messages
            // (and their float formatting) into the wasm for this one string.
            let Ok(Value::String(s)) = serde_json::from_str(lit) else {
                return Err(self.error("invalid string literal"));
            };
            self.rest = tail;
            return Ok(Value::String(s));
        }
        let (word, tail) = split_run(self.rest, |c| c.is_whitespace() || c == ')' || c == ']');
        if word.is_empty() {
            return Err(self.error("expected a value"));
        }
        self.rest = tail;
        Ok(match word.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ => match serde_json::from_str(word) {
                Ok(Value::Number(n)) => Value::Number(n),
                _ => Value::String(word.to_string()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER_TYPE;
    use serde_json::json;

    fn p(s: &str) -> Filter {
        parse(s, &USER_TYPE).unwrap_or_else(|e| panic!("{s}: {}", e.detail))
    }

    /// Render back to a canonical string, to compare structure compactly.
    fn show(f: &Filter) -> String {
        match f {
            Filter::And(a, b) => format!("({} and {})", show(a), show(b)),
            Filter::Or(a, b) => format!("({} or {})", show(a), show(b)),
            Filter::Not(a) => format!("not({})", show(a)),
            Filter::Compare { attr, op, value } => {
                format!("{} {} {value}", attr.display(), op.as_str())
            }
            Filter::Present { attr } => format!("{} pr", attr.display()),
            Filter::Has { attr, inner } => format!("{}[{}]", attr.display(), show(inner)),
        }
    }

    #[test]
    fn entra_lookups() {
        assert_eq!(
            show(&p(r#"userName eq "Test_User_1""#)),
            r#"userName eq "Test_User_1""#
        );
        assert_eq!(
            show(&p(r#"externalId eq "0a21f0f2""#)),
            r#"externalId eq "0a21f0f2""#
        );
        assert_eq!(
            show(&p(r#"emails[type eq "work"].value eq "a@b.c""#)),
            r#"emails[(emails.type eq "work" and emails.value eq "a@b.c")]"#
        );
        assert_eq!(
            show(&p("id eq 54D382A4 and manager eq 2819c223")),
            r#"(id eq "54D382A4" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "2819c223")"#
        );
    }

    #[test]
    fn full_grammar_with_precedence() {
        assert_eq!(
            show(&p(
                r#"title pr and userType eq "Employee" or not (active eq false)"#
            )),
            r#"((title pr and userType eq "Employee") or not(active eq false))"#
        );
        assert_eq!(
            show(&p(r#"a_x eq 1"#.replace("a_x", "displayName").as_str())),
            "displayName eq 1"
        );
        assert_eq!(
            show(&p(
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#
            )),
            r#"(userType eq "Employee" and (emails.value co "example.com" or emails.value co "example.org"))"#
        );
        assert_eq!(
            show(&p(
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
            )),
            r#"(emails[(emails.type eq "work" and emails.value co "@example.com")] or ims[(ims.type eq "xmpp" and ims.value co "@foo.com")])"#
        );
        assert_eq!(
            show(&p(
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#
            )),
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#
        );
        assert_eq!(
            show(&p(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#)),
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#
        );
        assert_eq!(
            show(&p(r#"USERNAME EQ "x" AND Active Eq True"#)),
            r#"(userName eq "x" and active eq true)"#
        );
        assert_eq!(
            show(&p(r#"roles[primary eq "True"]"#)),
            r#"roles[roles.primary eq "True"]"#
        );
        assert_eq!(
            show(&p(r#"userName eq "quote \" and \\ slash""#)),
            r#"userName eq "quote \" and \\ slash""#
        );
        assert_eq!(show(&p(r#"userName eq null"#)), "userName eq null");
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (f, needle) in [
            ("", "empty"),
            ("userName", "operator"),
            ("userName eq", "expected a value"),
            ("userName xx \"a\"", "unknown operator 'xx'"),
            ("nosuch eq \"a\"", "unknown attribute 'nosuch'"),
            ("userName eq \"a", "unterminated"),
            ("(userName eq \"a\"", "expected ')'"),
            ("userName eq \"a\")", "unexpected text"),
            ("emails[type eq \"work\"", "expected ']'"),
            ("emails[nosuch eq \"x\"]", "not a sub-attribute"),
            ("userName[value eq \"x\"]", "not a complex attribute"),
            (
                "emails[type eq \"work\"].nosuch eq \"x\"",
                "not a sub-attribute",
            ),
            ("userName eq \"a\" and", "expected an attribute name"),
        ] {
            let e = parse(f, &USER_TYPE).expect_err(f);
            assert_eq!(e.status, 400);
            assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
            assert!(e.detail.contains(needle), "{f:?}: {}", e.detail);
        }
    }

    #[test]
    fn display_reads_back_to_the_same_tree() {
        for text in [
            r#"userName eq "a \" b""#,
            r#"emails[type eq "work"].value eq "x@y""#,
            r#"id eq 54D382A4 and manager eq 2819c223"#,
            r#"title pr and userType eq "Employee" or not (active eq false)"#,
            r#"name[givenName sw "Al" or familyName ew "ce"]"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z" and displayName eq 1.5e3"#,
            r#"roles[primary eq "True"] or emails co "é""#,
        ] {
            let tree = p(text);
            let shown = tree.to_string();
            assert_eq!(p(&shown), tree, "{text} -> {shown}");
        }
        assert_eq!(
            p(r#"emails[type eq "work"].value eq "x""#).to_string(),
            r#"emails[type eq "work" and value eq "x"]"#
        );
        assert_eq!(
            p(r#"(displayName eq 1 or title pr) and not (title pr or userType pr and nickName pr)"#)
                .to_string(),
            r#"(displayName eq 1 or title pr) and not (title pr or userType pr and nickName pr)"#
        );
        let chain = vec![r#"userName eq "a""#; 40].join(" or ");
        assert_eq!(p(&chain).to_string(), chain, "a long chain stays flat");
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}userName eq \"a\"{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep, &USER_TYPE)
            .expect_err("deep")
            .detail
            .contains("nested"));
        let many = vec!["userName eq \"a\""; 41].join(" or ");
        assert!(parse(&many, &USER_TYPE)
            .expect_err("many")
            .detail
            .contains("comparisons"));
        let long = format!("userName eq \"{}\"", "a".repeat(5000));
        assert!(parse(&long, &USER_TYPE)
            .expect_err("long")
            .detail
            .contains("longer"));
    }

    #[test]
    fn value_filter_for_patch_paths() {
        let members = match USER_TYPE.resolve("emails") {
            Resolved::Attr(a) => a,
            _ => unreachable!(),
        };
        let f = parse_value_filter(r#"value eq "u1""#, members, &USER_TYPE).expect("parse");
        assert_eq!(show(&f), r#"emails.value eq "u1""#);
        let _ = json!(null);
    }
}
