//! Translation of a parsed filter ([`scim_core::scim::filter::Filter`]) into a parameterized SQL
//! condition over `users u` or `groups g`, so that filtering, counting and paging all happen in
//! D1. Where each attribute is read from is [`super::storage`]'s map, not decided here.
//!
//! - Single-valued attributes map to a column (`externalId` → `u.external_id`) or to
//!   `json_extract(u.data, '$."name"."givenName"')`. Only schema-defined names are spliced into
//!   SQL text; every value is a bound parameter.
//! - The case-insensitive columns are compared through their Unicode case-folded keys
//!   (`userName` → `u.user_name_key`, a group's `displayName` → `g.display_name_key`, a
//!   multi-valued `value` → `v.value_key`), against the filter value folded in Rust
//!   ([`scim_core::scim::fold`]): `ÄLICE@x.de` and `älice@x.de` are one userName. Attributes that
//!   live only in the JSON document compare with `lower()`/`NOCASE`, which fold ASCII only.
//! - Multi-valued attributes with the standard sub-attributes (emails, phoneNumbers, roles, …)
//!   become `u.id IN (SELECT v.user_id FROM user_values v WHERE v.tenant_id = ? AND v.attr = ?
//!   AND …)`, which SQLite runs as an index seek on `user_values_by_value_key`; `addresses`
//!   uses `json_each`.
//! - `co`/`sw`/`ew` use `instr`/`substr`, never LIKE (D1 caps LIKE patterns at 50 bytes).
//! - String comparisons honour `caseExact` (RFC 7643 §2.3.1); a boolean matches `true`, `"True"`
//!   and `"false"` alike (Entra sends strings); dateTimes compare as instants.
//! - `not (…)` treats an absent attribute as not matching its inner filter (`NOT COALESCE(…, 0)`).

use super::{Result, StoreError};
use serde_json::Value;

use super::storage::{element, storage, Many, Storage};
use super::table::Table;
use super::Param;
use scim_core::scim::error::quote_json;
use scim_core::scim::filter::{Filter, Op};
use scim_core::scim::fold::fold;
use scim_core::scim::schema::{AttrRef, Type};
use scim_core::scim::value::as_bool;
use scim_core::time::parse_rfc3339;

/// A SQL condition and its parameters, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Condition {
    pub sql: String,
    pub params: Vec<Param>,
}

fn invalid(detail: impl Into<String>) -> StoreError {
    StoreError::Filter(detail.into())
}

/// A value expression and the rules that apply to it.
struct Expr {
    sql: String,
    ty: Type,
    case_exact: bool,
    /// The column holds the Unicode case folding of a case-insensitive value (`*_key`): it is
    /// compared, as is, with the folded filter value.
    folded: bool,
    /// The column holds Unix milliseconds (meta.created / meta.lastModified).
    millis: bool,
}

/// The JSON path of an attribute inside `u.data`.
fn json_path(a: &AttrRef) -> String {
    let mut path = String::from("$");
    if a.extension {
        path.push_str(&format!(".\"{}\"", a.schema.id));
    }
    path.push_str(&format!(".\"{}\"", a.attr.name));
    if let Some(sub) = a.sub {
        path.push_str(&format!(".\"{}\"", sub.name));
    }
    path
}

/// The expression for a single-valued attribute (or a sub-attribute of a single-valued complex).
fn single_expr(a: &AttrRef, table: Table) -> Result<Expr> {
    let leaf = a.leaf();
    let col = |sql: &str| Expr {
        sql: sql.to_string(),
        ty: leaf.ty,
        case_exact: leaf.case_exact,
        folded: false,
        millis: false,
    };
    let key_col = |sql: &str| Expr {
        folded: true,
        ..col(sql)
    };
    if leaf.is_complex() {
        return Err(invalid(format!(
            "'{}' is a complex attribute: compare one of its sub-attributes",
            a.display()
        )));
    }
    if leaf.returned == scim_core::scim::schema::Returned::Never {
        return Err(invalid(format!("'{}' cannot be filtered on", a.display())));
    }
    let t = table.alias();
    Ok(match storage(table, a) {
        Storage::Column(c) => match c.key {
            Some(key) => key_col(&format!("{t}.{key}")),
            None => col(&format!("{t}.{}", c.name)),
        },
        Storage::Row(sql) => col(&sql.replace("{t}", t)),
        Storage::Millis(sql) => Expr {
            millis: true,
            ..col(&sql.replace("{t}", t))
        },
        Storage::Json | Storage::Many(_) => {
            col(&format!("json_extract({t}.data, '{}')", json_path(a)))
        }
        Storage::Nowhere => {
            return Err(invalid(format!("'{}' cannot be filtered on", a.display())))
        }
    })
}

/// The expression for a sub-attribute inside a multi-valued subquery.
fn element_expr(a: &AttrRef, many: Many) -> Result<Expr> {
    let Some(sub) = a.sub else {
        return Err(invalid(format!(
            "'{}' needs a sub-attribute here",
            a.display()
        )));
    };
    let sql = element(many, sub.name).ok_or_else(|| {
        invalid(format!(
            "'{}.{}' cannot be filtered on",
            a.attr.name, sub.name
        ))
    })?;
    Ok(Expr {
        sql,
        ty: sub.ty,
        case_exact: sub.case_exact,
        folded: many == Many::Values && sub.name == "value" && !sub.case_exact,
        millis: false,
    })
}

/// Build the condition for `filter` over `table`, for the tenant whose id is `tenant_id`.
pub fn condition(filter: &Filter, tenant_id: &str, table: Table) -> Result<Condition> {
    let mut c = Condition::default();
    c.sql = Translator {
        tenant_id,
        table,
        params: &mut c.params,
    }
    .filter(filter, None)?;
    Ok(c)
}

/// Whether an index seek on an equality finds every row `filter` can match: `userName`,
/// `externalId`, `id` or a group's `displayName` eq, or eq on the `value` of a multi-valued
/// attribute kept in rows (Entra's `emails[type eq "work"].value`, `members[value eq …]`), in
/// every branch of an `or` or in one side of an `and`.
///
/// A page of such a filter is read from the seek and its few rows sorted; otherwise SQLite
/// may take the page's order (`created_at, id`) from `*_by_created` and walk the whole
/// tenant in that order, testing each row, to find the one match.
pub fn narrows(filter: &Filter, table: Table) -> bool {
    match filter {
        Filter::And(a, b) => narrows(a, table) || narrows(b, table),
        Filter::Or(a, b) => narrows(a, table) && narrows(b, table),
        Filter::Compare {
            attr, op: Op::Eq, ..
        } => match storage(table, attr) {
            Storage::Column(c) => c.seeks,
            Storage::Row(sql) => sql == "{t}.id",
            Storage::Many(Many::Values | Many::Members | Many::UserGroups) => {
                attr.sub.is_none_or(|s| s.name == "value")
            }
            _ => false,
        },
        Filter::Has { attr, inner } if attr.attr.multi_valued => {
            matches!(
                storage(table, attr),
                Storage::Many(Many::Values | Many::Members | Many::UserGroups)
            ) && value_eq(inner)
        }
        _ => false,
    }
}

/// Inside `attr[…]`: whether the condition pins `value` by equality.
fn value_eq(inner: &Filter) -> bool {
    match inner {
        Filter::And(a, b) => value_eq(a) || value_eq(b),
        Filter::Or(a, b) => value_eq(a) && value_eq(b),
        Filter::Compare {
            attr, op: Op::Eq, ..
        } => attr.leaf().name == "value",
        _ => false,
    }
}

/// Build a condition over one row of `memberships m` from a `members[…]` value filter (whose
/// attributes are sub-attributes of `members`).
pub fn member_condition(filter: &Filter, tenant_id: &str) -> Result<Condition> {
    let mut c = Condition::default();
    c.sql = Translator {
        tenant_id,
        table: Table::Groups,
        params: &mut c.params,
    }
    .filter(filter, Some(Many::Members))?;
    Ok(c)
}

struct Translator<'a> {
    tenant_id: &'a str,
    table: Table,
    params: &'a mut Vec<Param>,
}

impl Translator<'_> {
    fn bind(&mut self, p: Param) -> &'static str {
        self.params.push(p);
        "?"
    }

    /// `element` is set inside a multi-valued subquery: attributes are its sub-attributes.
    fn filter(&mut self, f: &Filter, element: Option<Many>) -> Result<String> {
        Ok(match f {
            Filter::And(a, b) => format!(
                "({} AND {})",
                self.filter(a, element)?,
                self.filter(b, element)?
            ),
            Filter::Or(a, b) => format!(
                "({} OR {})",
                self.filter(a, element)?,
                self.filter(b, element)?
            ),
            Filter::Not(a) => format!("(NOT COALESCE({}, 0))", self.filter(a, element)?),
            Filter::Compare { attr, op, value } => {
                if let Some(storage) = element {
                    let e = element_expr(attr, storage)?;
                    self.compare(&e, attr, *op, value)?
                } else if attr.attr.multi_valued {
                    self.multi(attr, |t, storage| {
                        let e = element_expr(attr, storage)?;
                        t.compare(&e, attr, *op, value)
                    })?
                } else {
                    let e = single_expr(attr, self.table)?;
                    self.compare(&e, attr, *op, value)?
                }
            }
            Filter::Present { attr } => {
                if let Some(storage) = element {
                    present(&element_expr(attr, storage)?)
                } else if attr.attr.multi_valued {
                    match attr.sub {
                        None => self.multi(attr, |_, _| Ok("1".to_string()))?,
                        Some(_) => self.multi(attr, |_, storage| {
                            Ok(present(&element_expr(attr, storage)?))
                        })?,
                    }
                } else if attr.leaf().is_complex() {
                    format!(
                        "(json_extract({}.data, '{}') IS NOT NULL)",
                        self.table.alias(),
                        json_path(attr)
                    )
                } else {
                    present(&single_expr(attr, self.table)?)
                }
            }
            Filter::Has { attr, inner } => {
                if attr.attr.multi_valued {
                    self.multi(attr, |t, storage| t.filter(inner, Some(storage)))?
                } else {
                    // A single-valued complex attribute (`name[givenName eq "x"]`): its
                    // sub-attributes are plain JSON paths.
                    self.filter(inner, None)?
                }
            }
        })
    }

    /// A condition over the values of a multi-valued attribute.
    fn multi(
        &mut self,
        attr: &AttrRef,
        inner: impl FnOnce(&mut Self, Many) -> Result<String>,
    ) -> Result<String> {
        let storage = match storage(self.table, attr) {
            Storage::Many(many) => many,
            _ => Many::Json,
        };
        let tenant = Param::Text(self.tenant_id.to_string());
        Ok(match storage {
            Many::Values => {
                let t = self.bind(tenant);
                let a = self.bind(Param::Text(attr.attr.name.to_string()));
                let cond = inner(self, storage)?;
                format!("u.id IN (SELECT v.user_id FROM user_values v WHERE v.tenant_id = {t} AND v.attr = {a} AND {cond})")
            }
            Many::Json => {
                let cond = inner(self, storage)?;
                format!(
                    "EXISTS (SELECT 1 FROM json_each({}.data, '$.\"{}\"') j WHERE {cond})",
                    self.table.alias(),
                    attr.attr.name
                )
            }
            Many::Members => {
                let t = self.bind(tenant);
                let cond = inner(self, storage)?;
                format!("g.id IN (SELECT m.group_id FROM memberships m WHERE m.tenant_id = {t} AND {cond})")
            }
            Many::UserGroups => {
                let t = self.bind(tenant);
                let cond = inner(self, storage)?;
                format!("u.id IN (SELECT m.member_id FROM memberships m WHERE m.tenant_id = {t} AND {cond})")
            }
        })
    }

    fn compare(&mut self, e: &Expr, attr: &AttrRef, op: Op, value: &Value) -> Result<String> {
        let x = &e.sql;
        if value.is_null() {
            return match op {
                Op::Eq => Ok(format!("({x} IS NULL)")),
                Op::Ne => Ok(format!("({x} IS NOT NULL)")),
                _ => Err(invalid(format!(
                    "'{}' cannot be compared with null using {}",
                    attr.display(),
                    op.as_str()
                ))),
            };
        }
        match e.ty {
            Type::Boolean => {
                let b = as_bool(value).ok_or_else(|| {
                    invalid(format!(
                        "'{}' is a boolean: compare it with true or false, not {}",
                        attr.display(),
                        quote_json(value)
                    ))
                })?;
                let p = self.bind(Param::Int(i64::from(b)));
                match op {
                    Op::Eq => Ok(format!("({x} = {p})")),
                    Op::Ne => Ok(format!("({x} IS NULL OR {x} <> {p})")),
                    _ => Err(invalid(format!(
                        "'{}' is a boolean: only eq and ne apply, not {}",
                        attr.display(),
                        op.as_str()
                    ))),
                }
            }
            Type::DateTime if e.millis => {
                let ms = value.as_str().and_then(parse_rfc3339).ok_or_else(|| {
                    invalid(format!(
                        "'{}' is a dateTime: {} is not an RFC 3339 instant",
                        attr.display(),
                        quote_json(value)
                    ))
                })?;
                let p = self.bind(Param::Int(ms));
                ordered(x, op, p, "").ok_or_else(|| {
                    invalid(format!(
                        "'{}' is a dateTime: {} does not apply",
                        attr.display(),
                        op.as_str()
                    ))
                })
            }
            Type::String | Type::Reference | Type::Binary | Type::DateTime => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(invalid(format!(
                            "'{}' is a string: compare it with a quoted value, not {}",
                            attr.display(),
                            quote_json(value)
                        )))
                    }
                };
                if e.folded {
                    self.compare_text(x, true, op, fold(&text))
                } else {
                    self.compare_text(x, e.case_exact, op, text)
                }
            }
            Type::Integer | Type::Decimal | Type::Complex => {
                Err(invalid(format!("'{}' cannot be compared", attr.display())))
            }
        }
    }

    fn compare_text(&mut self, x: &str, case_exact: bool, op: Op, text: String) -> Result<String> {
        let collate = if case_exact { "" } else { " COLLATE NOCASE" };
        let (lx, lp) = if case_exact {
            (x.to_string(), "?")
        } else {
            (format!("lower({x})"), "lower(?)")
        };
        Ok(match op {
            Op::Co | Op::Sw | Op::Ew if text.is_empty() => format!("({x} IS NOT NULL)"),
            Op::Co => {
                self.bind(Param::Text(text));
                format!("(instr({lx}, {lp}) > 0)")
            }
            Op::Sw => {
                self.bind(Param::Text(text.clone()));
                self.bind(Param::Text(text));
                format!("(substr({lx}, 1, length(?)) = {lp})")
            }
            Op::Ew => {
                self.bind(Param::Text(text.clone()));
                self.bind(Param::Text(text));
                format!("(substr({lx}, -length(?)) = {lp})")
            }
            Op::Ne => {
                self.bind(Param::Text(text));
                format!("({x} IS NULL OR {x} <> ?{collate})")
            }
            _ => {
                let p = self.bind(Param::Text(text));
                ordered(x, op, p, collate).unwrap_or_default()
            }
        })
    }
}

/// `eq`, `ne`, `gt`, `ge`, `lt`, `le` on an ordered value.
fn ordered(x: &str, op: Op, p: &str, collate: &str) -> Option<String> {
    Some(match op {
        Op::Eq => format!("({x} = {p}{collate})"),
        Op::Ne => format!("({x} IS NULL OR {x} <> {p}{collate})"),
        Op::Gt => format!("({x} > {p}{collate})"),
        Op::Ge => format!("({x} >= {p}{collate})"),
        Op::Lt => format!("({x} < {p}{collate})"),
        Op::Le => format!("({x} <= {p}{collate})"),
        Op::Co | Op::Sw | Op::Ew => return None,
    })
}

fn present(e: &Expr) -> String {
    let x = &e.sql;
    match e.ty {
        Type::String | Type::Reference | Type::Binary => format!("({x} IS NOT NULL AND {x} <> '')"),
        _ => format!("({x} IS NOT NULL)"),
    }
}

/// The ORDER BY expression for `sortBy` (RFC 7644 §3.4.2.3). A multi-valued attribute sorts by
/// its primary (else first) value.
pub fn sort_expr(a: &AttrRef, table: Table) -> Result<String> {
    let bad = |why: &str| StoreError::Sort(format!("cannot sort by '{}': {why}", a.display()));
    if a.attr.multi_valued {
        return match storage(table, a) {
            Storage::Many(Many::Values) => {
                let sub = element(Many::Values, a.sub.map_or("value", |s| s.name))
                    .ok_or_else(|| bad("not stored"))?;
                Ok(format!(
                    "(SELECT {sub} FROM user_values v WHERE v.tenant_id = u.tenant_id AND v.user_id = u.id \
                     AND v.attr = '{}' ORDER BY v.is_primary DESC, v.rowid LIMIT 1)",
                    a.attr.name
                ))
            }
            _ => Err(bad("not sortable")),
        };
    }
    let e = single_expr(a, table).map_err(|e| bad(&e.detail()))?;
    Ok(if e.case_exact || e.folded || e.ty != Type::String {
        e.sql
    } else {
        format!("{} COLLATE NOCASE", e.sql)
    })
}
