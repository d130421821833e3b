//! Integration tests over HTTP against a real `wrangler dev` (see `harness`).

mod admin;
mod harness;
mod scim_access;
mod users;

use serde_json::{json, Value};

use harness::{server, unique};

/// Create a tenant through the admin API and return its subdomain.
pub fn new_tenant(prefix: &str) -> String {
    let sub = unique(prefix);
    server()
        .admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": sub, "name": format!("{sub} Corp")}))
        .send()
        .expect(201);
    sub
}

/// Generate a Secret Token for a tenant and return its plaintext.
pub fn new_token(sub: &str) -> String {
    token_response(sub)["token"]
        .as_str()
        .expect("token in response")
        .to_string()
}

pub fn token_response(sub: &str) -> Value {
    server()
        .admin("POST", &format!("/admin/v1/tenants/{sub}/tokens"))
        .send()
        .expect(201)
        .json()
}
