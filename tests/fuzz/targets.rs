//! The fuzz targets: each generates an input (a JSON value, so that any input can be saved and
//! replayed) and runs it through the request path of the pure core, and where the request path
//! reaches the store, through the store's SQL on SQLite.
//!
//! Every target checks the same contract: no panic, and every refusal is a SCIM error with a
//! 4xx status, a well-formed RFC 7644 §3.12 body, and a detail of bounded size. Some also check
//! a round-trip property (see each target's doc).

use pollster::block_on;
use serde_json::{json, Map, Value};

use scim_core::scim::error::{Error, ERROR_SCHEMA};
use scim_core::scim::filter::{self, Filter};
use scim_core::scim::patch;
use scim_core::scim::query::ListParams;
use scim_core::scim::resource::{self, from_request, selectors, Data, Meta, RefType, Selection};
use scim_core::scim::schema::{Resolved, ResourceType, GROUP_TYPE, USER_TYPE};
use scim_edge::service;
use scim_edge::service::groups::Groups;
use scim_edge::service::log::RequestLog;
use scim_edge::service::resources::{Kind, ListRequest};
use scim_edge::service::testing::TestRuntime;
use scim_edge::service::users::Users;
use scim_edge::service::Scope;
use scim_edge::store::listing::ListQuery;
use scim_edge::store::log::LogEntry;
use scim_edge::store::resources::{self, Stored};
use scim_edge::store::sqlite::Sqlite;
use scim_edge::store::table::Table;
use scim_edge::store::tenants::{create_tenant, NewTenant};
use scim_edge::store::trail::Trail;
use scim_edge::store::{groups, users, Executor, Stmt};

use crate::gen::{json_text, Gen, LIST_PARAMS};

/// What one input did: it was accepted, or refused with a 4xx. Anything else is an `Err`.
pub enum Verdict {
    Accepted,
    Refused,
}

pub type Outcome = Result<Verdict, String>;

pub struct Target {
    pub name: &'static str,
    pub generate: fn(&mut Gen) -> Value,
    pub run: fn(&Db, &Value) -> Outcome,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "filter",
        generate: gen_filter,
        run: run_filter,
    },
    Target {
        name: "paths",
        generate: gen_paths,
        run: run_paths,
    },
    Target {
        name: "query",
        generate: gen_query,
        run: run_query,
    },
    Target {
        name: "resource",
        generate: gen_resource,
        run: run_resource,
    },
    Target {
        name: "patch",
        generate: gen_patch,
        run: run_patch,
    },
    Target {
        name: "patch_roundtrip",
        generate: gen_roundtrip,
        run: run_roundtrip,
    },
    Target {
        name: "token_request",
        generate: gen_token_request,
        run: run_token_request,
    },
    Target {
        name: "webhook_input",
        generate: gen_webhook_input,
        run: run_webhook_input,
    },
];

/// The longest error detail accepted: errors quote the client's input, but only a bounded
/// excerpt of it.
pub const MAX_DETAIL: usize = 2048;

const T: &str = "ten_fuzz";

/// A migrated SQLite database with one tenant, a few users and groups, per worker thread.
pub struct Db {
    pub sql: Sqlite,
    counter: std::cell::Cell<u64>,
}

impl Db {
    pub fn new() -> Db {
        let sql = Sqlite::migrated();
        block_on(create_tenant(
            &sql,
            NewTenant {
                id: T,
                subdomain: "fuzz",
                name: "fuzz",
                provisioning_enabled: true,
                now: 0,
            },
        ))
        .expect("tenant");
        let db = Db {
            sql,
            counter: std::cell::Cell::new(0),
        };
        for (i, body) in [
            json!({"userName": "alice@example.com", "externalId": "e1", "displayName": "Alice",
                   "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
                   "roles": [{"value": "Admin", "primary": "True"}],
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}}),
            json!({"userName": "ÄLICE@x.de", "active": false,
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "u0"}}),
            json!({"userName": "bob", "addresses": [{"locality": "Oslo"}]}),
        ]
        .iter()
        .enumerate()
        {
            let data = from_request(&USER_TYPE, body).expect("seed user");
            let none = Trail::default();
            block_on(users::insert(&db.sql, T, &format!("u{i}"), &data, 1, "w", &none))
                .expect("user");
        }
        // An OAuth client with a secret and a federated credential, for the token requests.
        let rt = TestRuntime::at(0);
        block_on(service::oauth::create_secret(&db.sql, &rt, T, None)).expect("secret");
        let f = service::oauth::Federation {
            issuer: "https://i".into(),
            subject: "s".into(),
            audience: "a".into(),
            jwks_uri: "https://keys".into(),
        };
        block_on(service::oauth::set_federation(&db.sql, &rt, T, &f, false)).expect("federation");
        let data = from_request(&GROUP_TYPE, &json!({"displayName": "Sales"})).expect("group");
        let member = groups::Member {
            id: "u0".into(),
            kind: RefType::User,
            display: Some("Alice".into()),
        };
        block_on(groups::insert(
            &db.sql,
            T,
            "g0",
            &data,
            vec![member],
            1,
            "w",
            &Trail::default(),
        ))
        .expect("group");
        // The seed's own membership event: each input starts with an empty feed.
        db.sql.execute_batch("DELETE FROM events").expect("clear");
        db
    }

    fn fresh_id(&self) -> String {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        format!("f{n}")
    }
}

thread_local! {
    /// The strings the current input sends ([`sent`]): what a log entry must not keep.
    static SENT: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Note the values `input` sends before it runs: its JSON strings, except that of a filter, a
/// path or an attribute list (syntax naming attributes) only the quoted literals count, and of
/// a raw query string only its parameters' values. Short
/// ones, URNs and those made of the characters of attribute paths alone (which could be an
/// attribute's name, or a word of a detail's own wording) are left out.
pub fn sent(input: &Value) {
    const SYNTAX: &[&str] = &[
        "filter",
        "text",
        "path",
        "attributes",
        "excludedAttributes",
        "sortBy",
        "sortOrder",
    ];
    fn walk(key: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            // A raw query string: its parameters' values, each as its parameter says (the
            // names are ours, and a detail may well say "filter ").
            Value::String(q) if key == "query" => {
                if let Ok(url) = worker::Url::parse(&format!("http://a.localhost/?{q}")) {
                    for (k, x) in url.query_pairs() {
                        walk(&k, &Value::String(x.into_owned()), out);
                    }
                }
            }
            Value::String(s) if SYNTAX.iter().any(|k| k.eq_ignore_ascii_case(key)) => {
                out.extend(s.split('"').skip(1).step_by(2).map(str::to_string));
            }
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|x| walk(key, x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(k, x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    walk("", input, &mut all);
    all.retain(|s| {
        s.chars().count() >= 6
            && !s.starts_with("urn:")
            && !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".$_:-".contains(c))
    });
    SENT.with(|c| *c.borrow_mut() = all);
}

/// `logged` without the `'…'`-quoted attribute paths of users and groups it keeps.
fn without_attribute_names(logged: &str) -> String {
    logged
        .split('\'')
        .enumerate()
        .filter(|(i, part)| {
            i % 2 == 0
                || ![&USER_TYPE, &GROUP_TYPE]
                    .iter()
                    .any(|t| matches!(t.resolve(part), Resolved::Attr(_)))
        })
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join("'")
}

/// A refusal must be a 4xx SCIM error with a well-formed body, whose detail as the provisioning
/// log stores it keeps no value the input sent (the log holds attribute names, never values).
pub fn refused(e: &Error) -> Outcome {
    let logged = service::log::redact(e, &[&USER_TYPE, &GROUP_TYPE]);
    // The attribute names it quotes are kept by design, as the client spelled them: a value
    // that happens to begin like one (a quote typed inside `x509Certificates.primary`) is not
    // kept because the name is.
    let outside_names = without_attribute_names(&logged);
    let kept = SENT.with(|c| {
        c.borrow().iter().find_map(|v| {
            let probe: String = v.chars().take(16).collect();
            outside_names.contains(&probe).then_some(probe)
        })
    });
    if let Some(probe) = kept {
        return Err(format!(
            "the log keeps a value the client sent ({probe:?}): {logged}"
        ));
    }
    if !(400..500).contains(&e.status) {
        return Err(format!(
            "status {} ({}; cause {:?})",
            e.status, e.detail, e.cause
        ));
    }
    let body = e.scim_body();
    if body["schemas"] != json!([ERROR_SCHEMA]) || body["status"] != json!(e.status.to_string()) {
        return Err(format!("malformed error body {body}"));
    }
    if e.detail.is_empty() || e.detail.len() > MAX_DETAIL {
        return Err(format!(
            "error detail of {} bytes: {}",
            e.detail.len(),
            excerpt(&e.detail)
        ));
    }
    if std::env::var_os("FUZZ_REASONS").is_some() {
        // The shape of the reason (client text cut off) for the histogram `main` prints.
        let shape: String = e
            .detail
            .split('\'')
            .step_by(2)
            .collect::<Vec<_>>()
            .join("'…'");
        let shape: String = shape.chars().take(70).collect();
        REASONS.with(|r| {
            *r.borrow_mut()
                .entry(format!("{} {shape}", e.status))
                .or_insert(0) += 1
        });
    }
    Ok(Verdict::Refused)
}

thread_local! {
    /// Refusal reasons seen on this thread (with `FUZZ_REASONS` set).
    pub static REASONS: std::cell::RefCell<std::collections::HashMap<String, u64>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A long text cut for the log (`FUZZ_FULL` prints it whole).
pub fn excerpt(s: &str) -> String {
    if std::env::var_os("FUZZ_FULL").is_some() {
        return s.to_string();
    }
    let cut: String = s.chars().take(300).collect();
    if cut.len() < s.len() {
        format!("{cut}… ({} bytes)", s.len())
    } else {
        cut
    }
}

fn table(rt: &ResourceType) -> Table {
    if rt.name == "User" {
        Table::Users
    } else {
        Table::Groups
    }
}

fn rt_of(input: &Value) -> &'static ResourceType {
    if input["type"] == "Group" {
        &GROUP_TYPE
    } else {
        &USER_TYPE
    }
}

/// Choose User or Group, and draw the paths that follow from that type.
fn type_name(g: &mut Gen) -> &'static str {
    g.for_user = g.rng.chance(2, 3);
    if g.for_user {
        "User"
    } else {
        "Group"
    }
}

/// Filters people actually send, to be mutated.
const SEED_FILTERS: &[&str] = &[
    r#"userName eq "Test_User_00aa00aa""#,
    r#"externalId eq "0a21f0f2""#,
    r#"emails[type eq "work"].value eq "a@b.c""#,
    r#"id eq "54D382A4" and manager eq "2819c223""#,
    r#"displayName eq "Sales" and members eq "u0""#,
    r#"members[value eq "u0"]"#,
    r#"title pr and userType eq "Employee" or not (active eq false)"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
    r#"roles[primary eq "True"].value eq "Admin""#,
    r#"groups[value eq "g0"]"#,
    r#"addresses[locality eq "oslo" and type eq "work"]"#,
    r#"name.givenName sw "Al" and userName ew ".com""#,
];

fn gen_filter(g: &mut Gen) -> Value {
    let ty = type_name(g);
    let text = match g.rng.below(10) {
        0..=3 => g.filter(3),
        4..=5 => {
            let f = g.filter(3);
            g.mutate(&f)
        }
        6..=7 => {
            let seed = *g.rng.pick(SEED_FILTERS);
            g.mutate(seed)
        }
        8 => g.soup(40, 5000),
        _ => {
            let n = g.rng.len(40, 400);
            let bytes: Vec<u8> = (0..n).map(|_| g.rng.below(256) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    json!({"type": ty, "text": text})
}

/// One page through the store, as a list request runs it.
fn list(db: &Db, rt: &'static ResourceType, q: &ListQuery, with_refs: bool) -> Outcome {
    match block_on(resources::list(&db.sql, table(rt), T, q, with_refs)) {
        Ok(_) => Ok(Verdict::Accepted),
        Err(e) => refused(&Error::from(e)),
    }
}

/// A filter: parsed, or refused as `invalidFilter`; once parsed, its rendering parses back to
/// the same tree, and its SQL runs on SQLite (or is refused with a 4xx, never a 500).
fn run_filter(db: &Db, input: &Value) -> Outcome {
    let rt = rt_of(input);
    let text = input["text"].as_str().unwrap_or_default();
    let f = match filter::parse(text, rt) {
        Ok(f) => f,
        Err(e) => return refused(&e),
    };
    let shown = f.to_string();
    // The rendering writes extension attributes URN-qualified and escapes control characters,
    // so it can be longer than the text it came from; past the parser's length limit it is
    // refused for its length alone, which says nothing about the tree.
    if shown.len() > filter::MAX_LEN {
        return list_filter(db, rt, &f);
    }
    match filter::parse(&shown, rt) {
        Ok(again) if same_tree(&again, &f) => {}
        Ok(again) => return Err(format!("round trip changed the tree: {shown} -> {again}")),
        Err(e) => return Err(format!("rendering '{shown}' does not parse: {}", e.detail)),
    }
    list_filter(db, rt, &f)
}

/// The first page of a filter's matches, with members and groups, on SQLite.
fn list_filter(db: &Db, rt: &'static ResourceType, f: &Filter) -> Outcome {
    let q = ListQuery {
        filter: Some(f),
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 10,
        after: None,
    };
    list(db, rt, &q, true)
}

/// Trees equal but for float literals, which may differ in the last place: serde_json (without
/// its `float_roundtrip` feature, which would cost the Worker 12 KB of gzip) parses some
/// shortest-form floats to a neighbouring value.
fn same_tree(a: &Filter, b: &Filter) -> bool {
    match (a, b) {
        (Filter::And(a1, a2), Filter::And(b1, b2)) | (Filter::Or(a1, a2), Filter::Or(b1, b2)) => {
            same_tree(a1, b1) && same_tree(a2, b2)
        }
        (Filter::Not(a), Filter::Not(b)) => same_tree(a, b),
        (Filter::Has { attr: x, inner: a }, Filter::Has { attr: y, inner: b }) => {
            x == y && same_tree(a, b)
        }
        (
            Filter::Compare {
                attr: x,
                op: p,
                value: v,
            },
            Filter::Compare {
                attr: y,
                op: q,
                value: w,
            },
        ) => {
            let close = match (v.as_f64(), w.as_f64()) {
                (Some(v), Some(w)) if v.is_finite() => (v - w).abs() <= v.abs() * 1e-15,
                _ => false,
            };
            x == y && p == q && (v == w || close)
        }
        _ => a == b,
    }
}

fn gen_paths(g: &mut Gen) -> Value {
    type_name(g);
    let path = match g.rng.below(4) {
        0 => g.soup(20, 3000),
        1 => {
            let p = g.path();
            format!("{p}[{}]", g.filter(1))
        }
        _ => g.path(),
    };
    json!({"path": path})
}

/// An attribute path wherever a client can send one: resolution, PATCH `path`,
/// `attributes`/`excludedAttributes` and `sortBy` (run on SQLite).
fn run_paths(db: &Db, input: &Value) -> Outcome {
    let path = input["path"].as_str().unwrap_or_default();
    let mut verdict = Verdict::Accepted;
    for rt in [&USER_TYPE, &GROUP_TYPE] {
        let _ = rt.resolve(path);
        let _ = selectors(rt, path);
        if let Err(e) = patch::parse_path(rt, path) {
            verdict = refused(&e)?;
        }
        let params = ListParams {
            sort_by: Some(path.to_string()),
            start_index: 1,
            count: 5,
            ..ListParams::default()
        };
        match ListRequest::parse(rt, &params) {
            Ok(request) => {
                if let Verdict::Refused = list(db, rt, &request.query(&params, None), false)? {
                    verdict = Verdict::Refused;
                }
            }
            Err(e) => verdict = refused(&e)?,
        }
    }
    Ok(verdict)
}

fn gen_query(g: &mut Gen) -> Value {
    let ty = type_name(g);
    if g.rng.chance(1, 4) {
        let mut body = Map::new();
        for &k in LIST_PARAMS {
            if g.rng.chance(1, 2) {
                let v = match k {
                    "filter" | "sortBy" => json!(g.filter(2)),
                    "attributes" | "excludedAttributes" if g.rng.chance(1, 2) => {
                        Value::Array((0..g.rng.len(3, 40)).map(|_| json!(g.path())).collect())
                    }
                    _ => g.json(1),
                };
                body.insert(k.to_string(), v);
            }
        }
        return json!({"type": ty, "search": body});
    }
    json!({"type": ty, "query": g.query()})
}

/// A list request from a query string (decoded as the Worker decodes it) or a SearchRequest
/// body: parameters, filter, sort, paging and projection, run on SQLite.
fn run_query(db: &Db, input: &Value) -> Outcome {
    let rt = rt_of(input);
    let params = match input.get("search") {
        Some(body) => ListParams::from_search(body),
        None => {
            let q = input["query"].as_str().unwrap_or_default();
            let url = match worker::Url::parse(&format!("http://a.localhost/api/scim/v2/Users?{q}"))
            {
                Ok(url) => url,
                Err(_) => return Ok(Verdict::Refused),
            };
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            ListParams::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    };
    let params = match params {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    let request = match ListRequest::parse(rt, &params) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let sel = Selection::of(rt, &params);
    let q = request.query(&params, None);
    let refs = table(rt).refs().attribute();
    let page = match block_on(resources::list(&db.sql, table(rt), T, &q, sel.wants(refs))) {
        Ok((_, page)) => page,
        Err(e) => return refused(&Error::from(e)),
    };
    for Stored {
        id, data, version, ..
    } in page
    {
        let mut r = render(rt, &id, &data, version);
        sel.apply(&mut r);
        if r.get("id") != Some(&json!(id)) {
            return Err(format!("projection dropped 'id': {}", Value::Object(r)));
        }
    }
    Ok(Verdict::Accepted)
}

fn render(rt: &'static ResourceType, id: &str, data: &Data, version: i64) -> Map<String, Value> {
    resource::render(
        rt,
        data,
        &Meta {
            id,
            version,
            created: 0,
            last_modified: 0,
            location: "http://a.localhost/api/scim/v2/Users/x",
            base: "http://a.localhost/api/scim/v2",
            manager_exists: true,
        },
    )
}

fn gen_resource(g: &mut Gen) -> Value {
    let user = type_name(g) == "User";
    let body = if g.rng.chance(1, 8) {
        g.json(3)
    } else {
        g.resource(user)
    };
    let attributes: String = (0..g.rng.len(3, 20))
        .map(|_| g.path())
        .collect::<Vec<_>>()
        .join(",");
    json!({"type": if user { "User" } else { "Group" }, "body": body, "attributes": attributes})
}

/// A POST/PUT body: normalised (normalising the result again changes nothing), rendered,
/// projected, and created through the service on SQLite (then deleted).
fn run_resource(db: &Db, input: &Value) -> Outcome {
    let rt = rt_of(input);
    let data = match from_request(rt, &input["body"]) {
        Ok(d) => d,
        Err(e) => return refused(&e),
    };
    match from_request(rt, &Value::Object(data.clone())) {
        Ok(again) if again == data => {}
        Ok(again) => {
            return Err(format!(
                "normalising twice changed the resource:\n once  {}\n twice {}",
                excerpt(&json_text(&Value::Object(data))),
                excerpt(&json_text(&Value::Object(again)))
            ))
        }
        Err(e) => return Err(format!("normalised data is refused: {}", e.detail)),
    }
    let list = input["attributes"].as_str().unwrap_or_default();
    for (attributes, excluded) in [(list, ""), ("", list)] {
        let mut r = render(rt, "x", &data, 1);
        let attributes = (!attributes.is_empty()).then(|| selectors(rt, attributes));
        resource::project(rt, &mut r, attributes.as_deref(), &selectors(rt, excluded));
        if r.get("id") != Some(&json!("x")) {
            return Err("projection dropped 'id'".into());
        }
    }
    create_and_delete(db, rt, &input["body"])
}

/// A request's log entry, as the edge opens it.
fn log(method: &str) -> RequestLog {
    RequestLog::new(LogEntry {
        at: 1,
        method: method.into(),
        route: "/fuzz".into(),
        status: 200,
        ..LogEntry::default()
    })
}

/// A committed write carried its log entry in its batch; anything else leaves the entry to be
/// written after the response. The feed and the log are then emptied, so that they do not
/// grow over millions of inputs.
fn check_logged(db: &Db, log: &RequestLog, committed: bool) -> Result<(), String> {
    let after = log.finish(Ok(200), &[&USER_TYPE, &GROUP_TYPE], 2);
    let rows = db.sql.count("SELECT COUNT(*) FROM logs");
    db.sql
        .execute_batch("DELETE FROM events; DELETE FROM logs;")
        .map_err(|e| e.to_string())?;
    match (committed, after.is_none(), rows) {
        (true, true, 1) | (false, false, 0) => Ok(()),
        other => Err(format!("log entry out of step with the write: {other:?}")),
    }
}

/// The body as a POST through the service on SQLite (members resolved for a group), then the
/// resource deleted: accepted, or refused with a 4xx.
fn create_and_delete(db: &Db, rt: &'static ResourceType, body: &Value) -> Outcome {
    let runtime = TestRuntime::at(2);
    let log = log("POST");
    let scope = Scope {
        db: &db.sql,
        rt: &runtime,
        tenant_id: T,
        log: Some(&log),
    };
    let created = if rt.name == "User" {
        block_on(Users::create(&scope, body)).map(|u| u.id)
    } else {
        block_on(Groups::create(&scope, body)).map(|g| g.id)
    };
    check_logged(db, &log, created.is_ok())?;
    let id = match created {
        Ok(id) => id,
        Err(e) => return refused(&e),
    };
    let deleted = if rt.name == "User" {
        block_on(service::resources::delete(&scope, Table::Users, &id, None))
    } else {
        block_on(service::resources::delete(&scope, Table::Groups, &id, None))
    };
    deleted.map_err(|e| format!("delete failed: {} {:?}", e.detail, e.cause))?;
    db.sql
        .execute_batch("DELETE FROM events; DELETE FROM logs;")
        .map_err(|e| e.to_string())?;
    Ok(Verdict::Accepted)
}

fn gen_patch(g: &mut Gen) -> Value {
    let user = type_name(g) == "User";
    json!({
        "type": if user { "User" } else { "Group" },
        "before": g.resource(user),
        "body": g.patch(user),
    })
}

/// The generated resource when it is valid, else the smallest valid one: every PATCH input
/// then reaches the PATCH engine.
fn valid_or_minimal(rt: &'static ResourceType, body: &Value) -> Data {
    from_request(rt, body)
        .or_else(|_| from_request(rt, &json!({"userName": "u", "displayName": "g"})))
        .unwrap_or_default()
}

/// A PATCH body through the service on SQLite, as a request runs it: on a user written from the
/// input's resource (then deleted), or on the database's group g0 (members resolved; a rename
/// keeps the only group's name unique).
fn run_patch(db: &Db, input: &Value) -> Outcome {
    let runtime = TestRuntime::at(4);
    let scope = Scope {
        db: &db.sql,
        rt: &runtime,
        tenant_id: T,
        log: None,
    };
    let body = &input["body"];
    if rt_of(input).name == "Group" {
        let patched = block_on(Groups::patch(&scope, "g0", body, None));
        db.sql
            .execute_batch("DELETE FROM events; DELETE FROM logs;")
            .map_err(|e| e.to_string())?;
        return match patched {
            Ok(_) => Ok(Verdict::Accepted),
            Err(e) => refused(&e),
        };
    }
    let before = valid_or_minimal(&USER_TYPE, &input["before"]);
    let id = db.fresh_id();
    let none = Trail::default();
    if let Err(e) = block_on(users::insert(&db.sql, T, &id, &before, 2, "w", &none)) {
        return refused(&Error::from(e));
    }
    let log = log("PATCH");
    let patched = block_on(Users::patch(
        &Scope {
            log: Some(&log),
            ..scope
        },
        &id,
        body,
        None,
    ));
    // The entry is in the batch exactly when the PATCH wrote (a no-op writes nothing).
    let wrote = db.sql.count("SELECT COUNT(*) FROM events") > 0;
    let changed = changed_of(db, &id)?;
    check_logged(db, &log, wrote)?;
    let delete = |id: &str| {
        block_on(resources::delete(
            &db.sql,
            Table::Users,
            T,
            id,
            None,
            3,
            &none,
        ))
        .map_err(|e| format!("delete failed: {e:?}"))
    };
    delete(&id)?;
    // The same PATCH on a copy, with `If-Match: *`: read first, then the conditional write.
    // Where the PATCH went without a read (`active` alone, single-valued leaves), both must
    // agree: the answer, the user, its version, what the feed says changed.
    let copy = db.fresh_id();
    if let Err(e) = block_on(users::insert(&db.sql, T, &copy, &before, 2, "w", &none)) {
        return refused(&Error::from(e));
    }
    let read_first = block_on(Users::patch(&scope, &copy, body, Some("*")));
    let same = match (&patched, &read_first) {
        (Ok(Some(a)), Ok(Some(b))) => a.data == b.data && a.version == b.version,
        (Err(a), Err(b)) => a.status == b.status && a.scim_type == b.scim_type,
        _ => false,
    };
    if !same || changed != changed_of(db, &copy)? {
        return Err(format!(
            "without a read and read first differ: {patched:?} / {read_first:?}"
        ));
    }
    db.sql
        .execute_batch("DELETE FROM events; DELETE FROM logs;")
        .map_err(|e| e.to_string())?;
    delete(&copy)?;
    match patched {
        Ok(_) => Ok(Verdict::Accepted),
        Err(e) => refused(&e),
    }
}

/// What the feed's events of user `id` say changed, in order.
fn changed_of(db: &Db, id: &str) -> Result<Vec<Value>, String> {
    let stmt = Stmt::new(
        "SELECT json_extract(data, '$.changed') AS c FROM events WHERE resource_id = ? ORDER BY seq",
        vec![id.into()],
    );
    let out = block_on(db.sql.query(stmt)).map_err(|e| format!("events: {e:?}"))?;
    Ok(out.rows.into_iter().map(|r| r["c"].clone()).collect())
}

/// The multi-valued attributes whose values a filter on `value` selects.
const VALUED: &[&str] = &[
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "entitlements",
    "roles",
    "x509Certificates",
];

fn gen_roundtrip(g: &mut Gen) -> Value {
    let attr = *g.rng.pick(VALUED);
    let mut value = json!({"value": g.soup(12, 200)});
    if g.rng.chance(1, 2) {
        value["type"] = json!(g.soup(5, 20));
    }
    if g.rng.chance(1, 3) {
        value["display"] = json!(g.soup(5, 20));
    }
    json!({"before": g.resource(true), "attr": attr, "add": value})
}

/// RFC 7644 §3.5.2.1 then §3.5.2.2: adding a value that is not there, then removing
/// `attr[value eq "v"]`, gives back the resource as it was.
fn run_roundtrip(_db: &Db, input: &Value) -> Outcome {
    let before = valid_or_minimal(&USER_TYPE, &input["before"]);
    let attr = input["attr"].as_str().unwrap_or("emails");
    let value = &input["add"]["value"];
    let Some(v) = value.as_str().filter(|v| !v.is_empty()) else {
        return Ok(Verdict::Refused);
    };
    let present = before
        .get(attr)
        .and_then(Value::as_array)
        .is_some_and(|items| {
            items.iter().any(|i| {
                i["value"]
                    .as_str()
                    .is_some_and(|x| scim_core::scim::fold::eq(x, v) || x == v)
            })
        });
    if present {
        return Ok(Verdict::Refused);
    }
    let add = json!({"Operations": [{"op": "add", "path": attr, "value": [input["add"]]}]});
    let remove = json!({"Operations": [{"op": "remove",
        "path": format!("{attr}[value eq {}]", json_text(&json!(v)))}]});
    let step = |data: &Data, body: &Value| {
        patch::parse(&USER_TYPE, body).and_then(|ops| patch::apply(&USER_TYPE, data, &ops))
    };
    let added = match step(&before, &add) {
        Ok(d) => d,
        Err(e) => return refused(&e),
    };
    let removed = step(&added, &remove).map_err(|e| format!("remove refused: {}", e.detail))?;
    if removed != before {
        return Err(format!(
            "add then remove did not restore the resource:\n before {}\n after  {}",
            excerpt(&json_text(&Value::Object(before))),
            excerpt(&json_text(&Value::Object(removed)))
        ));
    }
    Ok(Verdict::Accepted)
}

/// The client id the fuzz tenant's OAuth client gets (the test runtime's ids count up).
const FUZZ_CLIENT: &str = "cli_2";

fn gen_token_request(g: &mut Gen) -> Value {
    let b64 =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let std64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let content_type = match g.rng.below(6) {
        0 => g.soup(10, 200),
        1 => "application/json".to_string(),
        _ => "application/x-www-form-urlencoded; charset=utf-8".to_string(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let keys = [
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion_type",
        "client_assertion",
        "scope",
    ];
    // Half of them well formed but for their values: each parameter once, one credential.
    let skeleton: Vec<String> = match g.rng.below(6) {
        0 => vec!["grant_type", "client_id", "client_secret"],
        1 => vec![
            "grant_type",
            "client_id",
            "client_assertion_type",
            "client_assertion",
        ],
        2 => vec![
            "grant_type",
            "client_assertion_type",
            "client_assertion",
            "scope",
        ],
        _ => Vec::new(),
    }
    .into_iter()
    .map(str::to_string)
    .collect();
    let extra = if skeleton.is_empty() {
        g.rng.len(2, 8)
    } else {
        0
    };
    let random: Vec<String> = (0..extra)
        .map(|_| match g.rng.below(8) {
            0 => g.soup(5, 60),
            n => keys[(n - 1) % keys.len()].to_string(),
        })
        .collect();
    for key in skeleton.into_iter().chain(random) {
        let value = match key.as_str() {
            "grant_type" if g.rng.chance(3, 4) => "client_credentials".to_string(),
            "client_id" if g.rng.chance(1, 2) => FUZZ_CLIENT.to_string(),
            "client_assertion_type" if g.rng.chance(3, 4) => {
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()
            }
            "client_assertion" => {
                let header = match g.rng.below(3) {
                    0 => json_text(&g.json(2)),
                    _ => json!({"alg": "RS256", "kid": g.soup(4, 40)}).to_string(),
                };
                let claims = json_text(&g.json(3));
                let sig = g.soup(20, 400);
                g.mutate(&format!("{}.{}.{}", b64(&header), b64(&claims), b64(&sig)))
            }
            _ => g.soup(10, 300),
        };
        pairs.push((key, value));
    }
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::url::url_encode(k),
                crate::url::url_encode(v)
            )
        })
        .collect();
    let authorization = match g.rng.below(5) {
        0 => Value::Null,
        1 => json!(g.soup(10, 300)),
        2 => json!(format!("Basic {}", g.soup(10, 100))),
        _ => json!(format!(
            "Basic {}",
            std64(&format!("{}:{}", g.soup(3, 40), g.soup(5, 80)))
        )),
    };
    let body = if g.rng.chance(1, 10) {
        g.mutate(&body.join("&"))
    } else {
        body.join("&")
    };
    json!({"contentType": content_type, "authorization": authorization, "body": body,
           "keySet": if g.rng.chance(1, 4) { json_text(&g.json(3)) } else { String::new() }})
}

/// A key set that verifies nothing: nothing a generator makes is ever a valid signature.
struct NoKeys;

impl service::oauth::KeySet for NoKeys {
    async fn verify(
        &self,
        _: &str,
        _: &scim_core::oauth::jwt::Assertion,
    ) -> scim_core::scim::error::Result<Option<&'static str>> {
        Ok(Some("the fuzzer's key set verifies nothing"))
    }
}

/// A token request through the core's parser, the JWT decoder and the grant on SQLite (the
/// tenant has a client with a secret and a federated credential): a refusal is an RFC 6749
/// error with a bounded description, and nothing generated is ever granted (accepted: it was
/// well formed and the grant refused it).
fn run_token_request(db: &Db, input: &Value) -> Outcome {
    use scim_core::oauth::{jwt, parse, Client};
    let text = |k: &str| input[k].as_str();
    if let Some(set) = text("keySet").filter(|s| !s.is_empty()) {
        let _ = jwt::key_set(set);
    }
    let parsed = parse(
        text("contentType"),
        text("authorization"),
        text("body").unwrap_or_default().as_bytes(),
    );
    let client = match parsed {
        Ok(c) => c,
        Err(e) => {
            if !(400..500).contains(&e.status) || e.description.len() > MAX_DETAIL {
                return Err(format!("a refusal out of bounds: {e:?}"));
            }
            return Ok(Verdict::Refused);
        }
    };
    if let Client::Assertion { jwt: token, .. } = &client {
        if let Ok(a) = jwt::decode(token) {
            let expected = jwt::Expected {
                issuer: "https://i",
                subject: "s",
                audience: "a",
            };
            let _ = jwt::check(&a.claims, expected, 0);
        }
    }
    let rt = TestRuntime::at(1_000);
    match block_on(service::oauth::grant(
        &db.sql, &rt, &NoKeys, T, &client, 3_600_000,
    )) {
        Ok(_) => Err("a generated credential was granted a token".into()),
        // Accepted: the request was well formed and reached the grant, which refused it.
        Err(r) if r.error.status == 401 && r.error.code.as_str() == "invalid_client" => {
            Ok(Verdict::Accepted)
        }
        Err(r) => Err(format!(
            "the grant failed otherwise: {:?} ({})",
            r.error, r.why
        )),
    }
}

/// Addresses that must never receive a webhook, and public ones, for [`gen_webhook_input`].
const V4: [u32; 12] = [
    0x7f00_0001, // 127.0.0.1
    0x0a00_0008, // 10.0.0.8
    0xc0a8_0101, // 192.168.1.1
    0xac10_0504, // 172.16.5.4
    0xa9fe_a9fe, // 169.254.169.254
    0x6440_0001, // 100.64.0.1
    0,           // 0.0.0.0
    0xffff_ffff, // 255.255.255.255
    0xe000_0001, // 224.0.0.1
    0xc000_0201, // 192.0.2.1
    0x0808_0808, // 8.8.8.8
    0x5db8_d822, // 93.184.216.34
];

const V6: [&str; 12] = [
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "fd00::1",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
    "2606:4700::1111",
    "2a00:1450:4001::200e",
];

const NAMES: [&str; 10] = [
    "hooks.example.com",
    "example.com.",
    "xn--bcher-kva.example",
    "localhost",
    "app.localhost",
    "printer.local",
    "metadata.google.internal",
    "intranet",
    "LOCALHOST.",
    "a.b.c.d.example.org",
];

/// An IPv4 address as a URL may spell it: one to four parts, each in decimal, hex or octal.
fn spell_v4(g: &mut Gen, a: u32) -> String {
    let bytes = a.to_be_bytes();
    let parts: Vec<u64> = match g.rng.below(4) {
        0 => vec![u64::from(a)],
        1 => vec![u64::from(bytes[0]), u64::from(a & 0x00ff_ffff)],
        2 => vec![
            u64::from(bytes[0]),
            u64::from(bytes[1]),
            u64::from(a & 0xffff),
        ],
        _ => bytes.iter().map(|b| u64::from(*b)).collect(),
    };
    parts
        .iter()
        .map(|p| match g.rng.below(4) {
            0 => format!("0x{p:x}"),
            1 => format!("0X{p:X}"),
            2 => format!("0{p:o}"),
            _ => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// What a URL parser decodes back: some characters percent-encoded, or mapped to full width.
fn disguise(g: &mut Gen, host: &str) -> String {
    match g.rng.below(6) {
        0 => host
            .chars()
            .map(|c| {
                if g.rng.chance(1, 3) {
                    format!("%{:02X}", c as u32 & 0xff)
                } else {
                    c.to_string()
                }
            })
            .collect(),
        1 => host
            .chars()
            .map(|c| match c {
                '0'..='9' if g.rng.chance(1, 2) => {
                    char::from_u32(0xff10 + (c as u32 - '0' as u32)).unwrap_or(c)
                }
                '.' if g.rng.chance(1, 2) => *g.rng.pick(&['\u{3002}', '\u{ff0e}', '\u{ff61}']),
                'a'..='z' if g.rng.chance(1, 4) => {
                    char::from_u32(0xff41 + (c as u32 - 'a' as u32)).unwrap_or(c)
                }
                _ => c,
            })
            .collect(),
        2 => host.to_ascii_uppercase(),
        _ => host.to_string(),
    }
}

fn gen_webhook_input(g: &mut Gen) -> Value {
    let scheme = *g.rng.pick(&[
        "https://",
        "https://",
        "https://",
        "http://",
        "HTTPS://",
        "https:/",
        "https:\\\\",
        "ftp://",
        "",
    ]);
    let user = if g.rng.chance(1, 10) { "user:pw@" } else { "" };
    let host = match g.rng.below(4) {
        0 => g.rng.pick(&NAMES).to_string(),
        1 => {
            let a = if g.rng.chance(1, 4) {
                g.rng.next_u64() as u32
            } else {
                *g.rng.pick(&V4)
            };
            spell_v4(g, a)
        }
        2 => format!("[{}]", g.rng.pick(&V6)),
        _ => g.soup(5, 40),
    };
    let host = disguise(g, &host);
    let port = *g
        .rng
        .pick(&["", "", "", ":443", ":8443", ":99999", ":", ":x"]);
    let path = *g
        .rng
        .pick(&["/hook", "", "/a?b=1#c", "\\@127.0.0.1/", "@127.0.0.1/"]);
    let mut url = format!("{scheme}{user}{host}{port}{path}");
    if g.rng.chance(1, 4) {
        url = g.mutate(&url);
    }
    let retry = match g.rng.below(5) {
        0 => (g.rng.next_u64() % 100_000).to_string(),
        1 => "Wed, 21 Oct 2015 07:28:00 GMT".to_string(),
        2 => "Sun, 06 Nov 2033 08:49:37 GMT".to_string(),
        3 => format!("-{}", g.rng.below(100)),
        _ => g.soup(5, 60),
    };
    let schedule = if g.rng.chance(1, 2) {
        (0..g.rng.len(1, 12))
            .map(|_| (g.rng.next_u64() % 60_000).to_string())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        g.soup(5, 60)
    };
    json!({
        "url": url,
        "loopback": g.rng.chance(1, 4),
        "status": *g.rng.pick(&[200_u16, 301, 410, 429, 500, 503]),
        "retryAfter": retry,
        "schedule": schedule,
    })
}

/// A public IPv4 address, by the standard library's own tests (an oracle apart from the core's).
fn public_v4(a: std::net::Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_multicast()
        || first == 0
        || first >= 240
        || (first == 100 && (second & 0xc0) == 64))
}

fn public_v6(a: std::net::Ipv6Addr) -> bool {
    let s = a.segments();
    let embedded = a.to_ipv4().or_else(|| {
        (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
            std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)
        })
    });
    if let Some(v4) = embedded {
        return public_v4(v4);
    }
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0xdb8))
}

/// A webhook URL, a receiver's `Retry-After` and a retry schedule through the core. A URL the
/// core accepts is read by a WHATWG URL parser (the `url` crate, as fetch reads it: percent
/// decoding, IDNA, every IPv4 spelling) and must be `https` (or, with `loopback`, plain
/// `http` to 127.0.0.1, `[::1]` or localhost), carry no credentials, and name a public host: no
/// private, loopback, link-local, shared, documentation or multicast address, no single-label
/// or `.local`/`.localhost`/`.internal` name. A delay is never negative nor above the
/// maximum, and only 429 and 503 have one; a schedule read is non-empty and in range.
fn run_webhook_input(_: &Db, input: &Value) -> Outcome {
    use scim_core::host_app::webhook::{check_url, parse_schedule, retry_after, MAX_DELAY_S};
    let status = input["status"].as_u64().and_then(|s| u16::try_from(s).ok());
    match retry_after(status, input["retryAfter"].as_str(), 1_765_000_000_000) {
        Some(d) if !(0..=MAX_DELAY_S).contains(&d) => return Err(format!("a delay of {d} s")),
        Some(_) if !matches!(status, Some(429 | 503)) => {
            return Err(format!("a delay after a {status:?}"))
        }
        _ => {}
    }
    if let Ok(v) = parse_schedule(input["schedule"].as_str().unwrap_or_default()) {
        if v.is_empty() || v.iter().any(|d| !(0..=MAX_DELAY_S).contains(d)) {
            return Err(format!("a schedule read as {v:?}"));
        }
    }
    let text = input["url"].as_str().unwrap_or_default();
    let loopback = input["loopback"].as_bool() == Some(true);
    if check_url(text, loopback).is_err() {
        return Ok(Verdict::Refused);
    }
    let url = ::url::Url::parse(text).map_err(|e| format!("accepted, but unreadable: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("accepted with credentials".into());
    }
    let https = url.scheme() == "https";
    let fine = match url.host() {
        _ if !(https || (loopback && url.scheme() == "http")) => false,
        Some(::url::Host::Domain(d)) if !https => d.trim_end_matches('.') == "localhost",
        Some(::url::Host::Ipv4(a)) if !https => a == std::net::Ipv4Addr::LOCALHOST,
        Some(::url::Host::Ipv6(a)) if !https => a.is_loopback(),
        Some(::url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d.contains('.')
                && d != "localhost"
                && ![".localhost", ".local", ".internal"]
                    .iter()
                    .any(|s| d.ends_with(s))
        }
        Some(::url::Host::Ipv4(a)) => public_v4(a),
        Some(::url::Host::Ipv6(a)) => public_v6(a),
        None => false,
    };
    if !fine {
        return Err(format!("accepted, but fetch would reach {:?}", url.host()));
    }
    Ok(Verdict::Accepted)
}
