//! The edge's half of sharding: which D1 bindings are shards (read from the Worker's
//! bindings, so adding one is declaring it, migrating it and deploying), the [`Databases`]
//! the services see, and what an isolate remembers of where each tenant lives.
//!
//! The catalog is read once per tenant per isolate ([`located`]); after that a SCIM
//! request goes straight to its shard, so a read stays one D1 call. A remembered shard can be
//! wrong only after the tenant moved or was deleted and its subdomain reused: its gate
//! then stays shut there, the SCIM surface asks the catalog again ([`relocate`]) and serves
//! the request where the tenant is now.

use std::cell::RefCell;
use std::collections::HashMap;
use worker::js_sys::{Array, Object};
use worker::wasm_bindgen::JsCast;
use worker::Env;

use crate::http::d1::D1;
use crate::http::meter::Meter;
use crate::service::isolate::remember;
use crate::service::shards::{self, is_shard, Databases, CATALOG};
use scim_core::scim::error::{Error, Result};

/// The shard bindings of `env`: `DB`, then every D1 binding named `SHARD_…`, in name order.
pub fn bindings_of(env: &Env) -> Vec<String> {
    let keys: Array = Object::keys(env.unchecked_ref::<Object>());
    let mut others: Vec<String> = keys
        .iter()
        .filter_map(|k| k.as_string())
        .filter(|k| k != CATALOG && is_shard(k) && env.d1(k).is_ok())
        .collect();
    others.sort();
    let mut all = vec![CATALOG.to_string()];
    all.extend(others);
    all
}

thread_local! {
    /// The shard bindings, read once: an isolate's bindings never change.
    static BINDINGS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// The shard bindings of this isolate's Worker.
pub fn bindings(env: &Env) -> Vec<String> {
    BINDINGS.with(|b| {
        b.borrow_mut()
            .get_or_insert_with(|| bindings_of(env))
            .clone()
    })
}

/// The D1 database of binding `binding`, its calls counted in `meter`.
pub fn open(env: &Env, meter: &Meter, binding: &str) -> Result<D1> {
    env.d1(binding)
        .map(|db| D1::new(db, meter.clone()))
        .map_err(|e| Error::internal(format!("D1 binding {binding}: {e}")))
}

/// The databases of a request (or of a scheduled run, which has no request).
pub struct Bindings<'a> {
    pub env: &'a Env,
    pub meter: &'a Meter,
    pub names: Vec<String>,
}

impl<'a> Bindings<'a> {
    pub fn of(env: &'a Env, meter: &'a Meter) -> Bindings<'a> {
        Bindings {
            env,
            meter,
            names: bindings(env),
        }
    }
}

impl Databases for Bindings<'_> {
    type Db = D1;

    fn catalog(&self) -> Result<D1> {
        open(self.env, self.meter, CATALOG)
    }

    fn bindings(&self) -> &[String] {
        &self.names
    }

    fn shard(&self, binding: &str) -> Result<D1> {
        if !self.names.iter().any(|b| b == binding) {
            return Err(Error::internal(format!(
                "the catalog places an organisation on shard {binding}, which this Worker \
                 has no D1 binding for"
            )));
        }
        open(self.env, self.meter, binding)
    }
}

/// Where a tenant lives, as this isolate last learnt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub id: String,
    pub shard: String,
}

/// Bound on the per-isolate map of tenants' places.
const MAX_PLACES: usize = 10_000;

thread_local! {
    /// Subdomain -> where the tenant lives, as looked up by this isolate.
    static PLACES: RefCell<HashMap<String, Place>> = RefCell::new(HashMap::new());
}

/// What this isolate remembers of tenant `sub`, without asking anything.
pub fn remembered(sub: &str) -> Option<Place> {
    PLACES.with(|m| m.borrow().get(sub).cloned())
}

/// Remember where tenant `sub` lives.
pub fn learn(sub: &str, place: Place) {
    PLACES.with(|m| remember(&mut m.borrow_mut(), MAX_PLACES, sub.to_string(), place));
}

/// Forget tenant `sub` (deleted, or found elsewhere).
pub fn forget(sub: &str) {
    PLACES.with(|m| m.borrow_mut().remove(sub));
}

/// Where tenant `sub` lives: remembered, else from the catalog (one statement, once
/// per tenant per isolate); `None` when there is no such tenant.
pub async fn located(all: &Bindings<'_>, sub: &str) -> Result<Option<Place>> {
    if let Some(p) = remembered(sub) {
        return Ok(Some(p));
    }
    relocate(all, sub).await
}

/// Where tenant `sub` lives according to the catalog now, remembered for next time.
pub async fn relocate(all: &Bindings<'_>, sub: &str) -> Result<Option<Place>> {
    let found = match shards::locate(all, sub).await {
        Ok(at) => Some(Place {
            id: at.org.id,
            shard: at.org.shard,
        }),
        Err(e) if e.status == 404 => None,
        Err(e) => return Err(e),
    };
    match &found {
        Some(p) => learn(sub, p.clone()),
        None => forget(sub),
    }
    Ok(found)
}
