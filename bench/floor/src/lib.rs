//! The floor: the least an authenticated SCIM request can cost on Workers, for `make bench`
//! to measure scim-edge against. It reads the same D1 tables scim-edge writes (the benchmark
//! seeds them through scim-edge), and does nothing a real endpoint could skip:
//!
//! - `GET  /{mode}/user?name=<folded userName>`: authenticate, then one indexed lookup;
//! - `POST /{mode}/user`: authenticate, then one insert of the body.
//!
//! Two ways to authenticate, the two designs the benchmark settles:
//! - `kv`: the token's grant from Workers KV (one KV get; the benchmark writes the grant first,
//!   so this is the warm path), then one D1 statement;
//! - `d1`: one D1 statement that checks the token and reads (or writes) in the same statement,
//!   scoped by it: no KV call.
//!
//! No SCIM parsing, no validation, no provisioning log: a floor, not an endpoint.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use worker::wasm_bindgen::JsValue;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[derive(Deserialize)]
struct Grant {
    tenant_id: String,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let mode = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let token = req
        .headers()
        .get("authorization")?
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string))
        .unwrap_or_default();
    let hash = hash(&token);
    let db = env.d1("DB")?;
    let tenant = match mode {
        "kv" => match env.kv("KV")?.get(&format!("floor:{hash}")).json::<Grant>().await? {
            Some(g) => Some(g.tenant_id),
            None => return Response::error("unauthorized", 401),
        },
        "d1" => None,
        _ => return Response::error("not found", 404),
    };
    // In `d1` mode the statement finds the tenant from the token's hash itself.
    let (scope, key) = match &tenant {
        Some(t) => ("?1", t.clone()),
        None => ("(SELECT tenant_id FROM tokens WHERE hash = ?1)", hash),
    };
    match req.method() {
        Method::Get => {
            let url = req.url()?;
            let name = url
                .query_pairs()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let sql = format!(
                "SELECT id, data FROM users WHERE tenant_id = {scope} AND user_name_key = ?2"
            );
            let row = db
                .prepare(&sql)
                .bind(&[JsValue::from_str(&key), JsValue::from_str(&name)])?
                .first::<serde_json::Value>(None)
                .await?;
            Response::from_json(&serde_json::json!({ "Resources": row.into_iter().collect::<Vec<_>>() }))
        }
        Method::Post => {
            let body: serde_json::Value = req.json().await?;
            let name = body["userName"].as_str().unwrap_or_default().to_string();
            let id = format!("floor-{}", hash_id(&name));
            let now = worker::Date::now().as_millis() as f64;
            let sql = format!(
                "INSERT INTO users (tenant_id, id, user_name, user_name_key, external_id, active, \
                 data, version, write_id, created_at, updated_at) \
                 SELECT {scope}, ?2, ?3, lower(?3), ?4, 1, ?5, 1, 'w', ?6, ?6 WHERE {scope} IS NOT NULL"
            );
            let changed = db
                .prepare(&sql)
                .bind(&[
                    JsValue::from_str(&key),
                    JsValue::from_str(&id),
                    JsValue::from_str(&name),
                    JsValue::from_str(body["externalId"].as_str().unwrap_or_default()),
                    JsValue::from_str(&body.to_string()),
                    JsValue::from_f64(now),
                ])?
                .run()
                .await?
                .meta()?
                .and_then(|m| m.changes)
                .unwrap_or(0);
            if changed == 0 {
                return Response::error("unauthorized", 401);
            }
            let mut r = Response::from_json(&serde_json::json!({ "id": id }))?;
            r = r.with_status(201);
            Ok(r)
        }
        _ => Response::error("method not allowed", 405),
    }
}

fn hash_id(name: &str) -> String {
    hash(name).chars().take(32).collect()
}
