//! The key sets of federated credentials: fetched over HTTPS, cached per isolate, and used
//! to verify assertions' RS256 signatures with the platform's WebCrypto (`crypto.subtle`), so
//! no RSA code is compiled into the wasm.
//!
//! Entra's keys rotate at any time ("Workload Identity Federation: A New Authentication Method
//! for SCIM Provisioning": refetch on an unknown `kid`), so a set is kept for
//! [`FRESH_MS`], and an assertion naming a key the fresh set lacks fetches it again, at most
//! once per [`REFETCH_MS`] per URL, so a stream of forged `kid`s costs one fetch a minute.

use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{select, Either};
use worker::js_sys::{Array, Function, Promise, Reflect, Uint8Array, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::RequestInit;
use worker::{Delay, Fetch, Headers};

use super::app::App;
use crate::service::isolate::remember;
use crate::service::oauth::{jwks_uri_allowed, KeySet};
use scim_core::oauth::jwt::{key_set, Assertion, Jwk};
use scim_core::scim::error::{Error, Result};

/// How long a fetched key set is used before it is fetched again.
pub const FRESH_MS: i64 = 2 * 60 * 60 * 1000;

/// The least time between two fetches of one set (an unknown `kid` asks for one).
pub const REFETCH_MS: i64 = 60_000;

/// How long a fetch may take.
const FETCH_TIMEOUT_MS: u64 = 5_000;

/// Largest key set read (Entra's is a few kilobytes).
const MAX_SET_BYTES: usize = 64 * 1024;

/// Key sets remembered per isolate.
const MAX_SETS: usize = 1_000;

struct Cached {
    keys: Vec<Jwk>,
    fetched_at: i64,
    /// When the set was last fetched again for a kid it lacked (`i64::MIN`: never).
    refetched_at: i64,
}

thread_local! {
    /// Key set URL -> its keys and when they were fetched.
    static SETS: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

/// The key sets as a request at the edge reaches them.
pub struct EdgeKeys<'a> {
    pub app: &'a App,
}

impl KeySet for EdgeKeys<'_> {
    async fn verify(&self, uri: &str, assertion: &Assertion) -> Result<Option<&'static str>> {
        if !jwks_uri_allowed(uri, self.app.config.dev_allow_loopback) {
            return Ok(Some("the federated credential's key set URL is not https"));
        }
        let now = self.app.now;
        // The cached set when it is fresh, and when this URL was last fetched for a kid.
        let (fresh, refetched_at) = SETS.with(|m| {
            m.borrow().get(uri).map_or((None, i64::MIN), |c| {
                let fresh = now.saturating_sub(c.fetched_at) < FRESH_MS;
                (fresh.then(|| c.keys.clone()), c.refetched_at)
            })
        });
        let find = |keys: &[Jwk]| keys.iter().find(|k| k.kid == assertion.kid).cloned();
        let key = match fresh.as_deref().map(find) {
            Some(Some(k)) => Some(k),
            // A fresh set without the kid: fetched again, at most once a minute.
            Some(None) if now.saturating_sub(refetched_at) < REFETCH_MS => None,
            cached => {
                let keys = fetch(uri).await?;
                let key = find(&keys);
                let refetched_at = if cached.is_some() { now } else { refetched_at };
                SETS.with(|m| {
                    let c = Cached {
                        keys,
                        fetched_at: now,
                        refetched_at,
                    };
                    remember(&mut m.borrow_mut(), MAX_SETS, uri.to_string(), c)
                });
                key
            }
        };
        let Some(key) = key else {
            return Ok(Some("no key of the key set has the assertion's kid"));
        };
        let verified = rs256_verify(
            &key,
            assertion.signing_input.as_bytes(),
            &assertion.signature,
        )
        .await
        .unwrap_or(false);
        Ok((!verified).then_some("the assertion's signature does not verify"))
    }
}

/// Fetch a key set; a failure is a 503 (the grant is retried, the credential is not wrong).
async fn fetch(uri: &str) -> Result<Vec<Jwk>> {
    let unavailable = |why: String| Error {
        cause: Some(why),
        retry_after: Some(5),
        ..Error::new(
            503,
            "the federated credential's key set could not be fetched",
        )
    };
    let headers = Headers::new();
    headers
        .set("accept", "application/json")
        .map_err(|e| unavailable(e.to_string()))?;
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_headers(&headers.0);
    let req = crate::http::outgoing(uri, &init).map_err(|e| unavailable(e.to_string()))?;
    let fetch = Fetch::Request(req);
    let sent = Box::pin(fetch.send());
    let timeout = Box::pin(Delay::from(Duration::from_millis(FETCH_TIMEOUT_MS)));
    let mut response = match select(sent, timeout).await {
        Either::Left((r, _)) => r.map_err(|e| unavailable(e.to_string()))?,
        Either::Right(_) => return Err(unavailable(format!("no answer from {uri} in time"))),
    };
    if response.status_code() != 200 {
        return Err(unavailable(format!(
            "{uri} answered {}",
            response.status_code()
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if bytes.len() > MAX_SET_BYTES {
        return Err(unavailable(format!("the key set at {uri} is too large")));
    }
    let text = String::from_utf8(bytes).map_err(|_| unavailable("not UTF-8".into()))?;
    key_set(&text).map_err(|why| unavailable(why.to_string()))
}

/// Verify an RS256 signature with WebCrypto: `importKey("jwk", …)`, then `verify`.
async fn rs256_verify(
    key: &Jwk,
    input: &[u8],
    signature: &[u8],
) -> std::result::Result<bool, JsValue> {
    let subtle = Reflect::get(
        &Reflect::get(&worker::js_sys::global(), &"crypto".into())?,
        &"subtle".into(),
    )?;
    let method = |name: &str| -> std::result::Result<Function, JsValue> {
        Reflect::get(&subtle, &name.into())?.dyn_into::<Function>()
    };
    let jwk = JSON::parse(
        &json!({"kty": "RSA", "n": key.n, "e": key.e, "alg": "RS256", "ext": true}).to_string(),
    )?;
    let algorithm = JSON::parse(r#"{"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}"#)?;
    let usages = Array::of1(&"verify".into());
    let import_args = Array::of5(&"jwk".into(), &jwk, &algorithm, &JsValue::FALSE, &usages);
    let imported = method("importKey")?.apply(&subtle, &import_args)?;
    let crypto_key = JsFuture::from(imported.dyn_into::<Promise>()?).await?;
    let verify_args = Array::of4(
        &algorithm,
        &crypto_key,
        &Uint8Array::from(signature),
        &Uint8Array::from(input),
    );
    let verified = method("verify")?.apply(&subtle, &verify_args)?;
    Ok(JsFuture::from(verified.dyn_into::<Promise>()?)
        .await?
        .as_bool()
        .unwrap_or(false))
}
