//! Integration tests over HTTP against a real `wrangler dev` (see `harness`).

mod admin;
mod alerts;
mod console;
mod discovery;
mod faults;
mod groups;
mod harness;
mod host_app;
mod hostile;
mod keys;
mod oauth;
mod operator;
mod roles;
mod scim_access;
mod security;
mod shards;
#[path = "../support/url.rs"]
mod url;
mod users;
mod webhooks;

use serde_json::{json, Value};

use harness::{server, unique, Resp, Server};
pub use url::url_encode;

pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Create a tenant through the admin API and return its subdomain.
pub fn new_tenant(prefix: &str) -> String {
    new_tenant_on(server(), prefix)
}

pub fn new_tenant_on(s: &Server, prefix: &str) -> String {
    let sub = unique(prefix);
    s.admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": sub, "name": format!("{sub} Corp")}))
        .send()
        .expect(201);
    sub
}

/// A new admin API key of server `s` with `scopes` (bound to `tenant` if given): its plaintext
/// and its 201 body.
pub fn key_with(s: &Server, scopes: &[&str], tenant: Option<&str>) -> (String, Value) {
    let mut ask = json!({"name": unique("key"), "scopes": scopes});
    if let Some(t) = tenant {
        ask["tenant"] = json!(t);
    }
    let body = s
        .admin("POST", "/admin/v1/keys")
        .json(&ask)
        .send()
        .expect(201)
        .json();
    let key = body["key"].as_str().expect("key").to_string();
    (key, body)
}

/// Generate a Secret Token for a tenant and return its plaintext.
pub fn new_token(sub: &str) -> String {
    token_response(server(), sub)["token"]
        .as_str()
        .expect("token in response")
        .to_string()
}

pub fn token_response(s: &Server, sub: &str) -> Value {
    s.admin("POST", &format!("/admin/v1/tenants/{sub}/tokens"))
        .send()
        .expect(201)
        .json()
}

/// A tenant with a token, and shorthands for SCIM calls on it.
pub struct Tenant {
    pub sub: String,
    pub token: String,
    pub server: &'static Server,
}

impl Tenant {
    pub fn new(prefix: &str) -> Tenant {
        Tenant::on(server(), prefix)
    }

    /// A tenant on another test server.
    pub fn on(s: &'static Server, prefix: &str) -> Tenant {
        let sub = new_tenant_on(s, prefix);
        let token = token_response(s, &sub)["token"]
            .as_str()
            .expect("token in response")
            .to_string();
        Tenant {
            sub,
            token,
            server: s,
        }
    }

    pub fn call(&self, method: &str, path: &str) -> crate::harness::Call<'static> {
        self.server
            .scim(&self.sub, method, path)
            .bearer(&self.token)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path).send()
    }

    pub fn send(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.call(method, path)
            .header("Content-Type", "application/scim+json; charset=utf-8")
            .raw_body(&body.to_string())
            .send()
    }

    pub fn patch(&self, id: &str, ops: Value) -> Value {
        let r = self
            .send(
                "PATCH",
                &format!("/Users/{id}"),
                &json!({"schemas": [PATCH], "Operations": ops}),
            )
            .expect(200);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        r.json()
    }

    pub fn user(&self, id: &str) -> Value {
        self.get(&format!("/Users/{id}")).expect(200).json()
    }

    pub fn create(&self, body: Value) -> Value {
        self.send("POST", "/Users", &body).expect(201).json()
    }

    /// Create an empty group; its id.
    pub fn create_group(&self, display_name: &str) -> String {
        self.send("POST", "/Groups", &json!({ "displayName": display_name }))
            .expect(201)
            .json()["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// The ids a filter finds, after checking the ListResponse's counts agree.
    pub fn find(&self, filter: &str) -> Vec<String> {
        let q: String = url_encode(filter);
        let list = self.get(&format!("/Users?filter={q}")).expect(200).json();
        let resources = list["Resources"].as_array().cloned().unwrap_or_default();
        assert_eq!(list["totalResults"], resources.len(), "{list}");
        assert_eq!(list["itemsPerPage"], resources.len(), "{list}");
        resources
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// The result of a filter that finds exactly this id.
pub fn one(id: &str) -> Vec<String> {
    vec![id.to_string()]
}
