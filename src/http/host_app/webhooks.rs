//! Webhooks at the edge: the routes, the platform's side of delivering (WebCrypto sealing,
//! `fetch` with a timeout and no redirects, the Queue), the wake a SCIM write sends after
//! its response, the Queue's consumer, and the Cron Trigger's backstop. The rules are
//! [`crate::service::webhooks`]'s.
//!
//! ```text
//! POST   /admin/v1/webhooks                              {url, events?, tenant?}: 201 with the secret, once
//! GET    /admin/v1/webhooks                              {items, next}
//! GET    /admin/v1/webhooks/{id}
//! PATCH  /admin/v1/webhooks/{id}                         {url?, events?, enabled?}
//! DELETE /admin/v1/webhooks/{id}
//! POST   /admin/v1/webhooks/{id}/secrets                 rotate: 201 {secret, previousSecretUntil}
//! POST   /admin/v1/webhooks/{id}/test                    a signed webhook.test, now: {delivered, status, …}
//! GET    /admin/v1/webhooks/{id}/deliveries?after=&limit= every attempt, oldest first
//! POST   /admin/v1/webhooks/{id}/deliveries/{event}/replay  a dead letter, again, now
//! ```

use crate::http::body::from_body;
use std::cell::RefCell;
use std::time::Duration;

use futures_util::future::{select, Either};
use serde_json::{json, Value};
use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{RequestInit, RequestRedirect};
use worker::worker_sys::types::Queue;
use worker::{
    AbortController, Delay, Env, Fetch, Headers, MessageBatch, MessageExt, Method, Request,
};

use crate::http::app::{App, Config, Platform};
use crate::http::host_app::{page_json, Query};
use crate::http::meter::Meter;
use crate::http::reply::{json_body, Reply};
use crate::http::shards::Bindings;
use crate::service::host_app::Page;
use crate::service::keys::Principal;
use crate::service::webhooks::{
    self, Answer, Change, Courier, Message, NewHook, Push, Sealer, TIMEOUT_MS,
};
use scim_core::host_app::webhook as wh;
use scim_core::scim::error::{Error, Result};
use scim_core::time::rfc3339;

/// The Queue's binding (`[[queues.producers]]` in wrangler.toml).
pub const QUEUE: &str = "WEBHOOKS";
/// The dead-letter queue's name: what the consumer could not handle after its retries.
pub const DEAD_QUEUE: &str = "scim-edge-webhooks-dead";

/// A webhook route below `/admin/v1/webhooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At<'a> {
    List,
    One(&'a str),
    Secrets(&'a str),
    Test(&'a str),
    Deliveries(&'a str),
    Replay(&'a str, &'a str),
}

impl<'a> At<'a> {
    /// The route of `segments` (the path after `/admin/v1`), if it is one of these.
    pub fn parse(segments: &[&'a str]) -> Option<At<'a>> {
        Some(match *segments {
            ["webhooks"] => At::List,
            ["webhooks", id] => At::One(id),
            ["webhooks", id, "secrets"] => At::Secrets(id),
            ["webhooks", id, "test"] => At::Test(id),
            ["webhooks", id, "deliveries"] => At::Deliveries(id),
            ["webhooks", id, "deliveries", event, "replay"] => At::Replay(id, event),
            _ => return None,
        })
    }

    /// The methods it serves.
    pub fn allows(self) -> &'static str {
        match self {
            At::List => "GET, POST",
            At::One(_) => "GET, PATCH, DELETE",
            At::Deliveries(_) => "GET",
            At::Secrets(_) | At::Test(_) | At::Replay(..) => "POST",
        }
    }
}

struct Create {
    url: String,
    events: Option<Vec<String>>,
    tenant: Option<String>,
}
from_body!(Create {
    url,
    events,
    tenant
});

struct Update {
    url: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}
from_body!(Update {
    url,
    events,
    enabled
});

/// Serve webhook route `at`, for `me`.
pub async fn serve(app: &App, me: &Principal, mut req: Request, at: At<'_>) -> Result<Reply> {
    let all = app.databases();
    let (seal, courier) = (Seal::of(&app.config)?, Edge::of(&app.env));
    let settings = &app.config.webhooks;
    let push = Push {
        s: &all,
        rt: &app.rt,
        sealer: &seal,
        courier: &courier,
        settings,
    };
    let now = app.now;
    match (at, req.method()) {
        (At::List, Method::Post) => {
            let b: Create = required(&mut req).await?;
            let ask = NewHook {
                url: &b.url,
                events: b.events.as_deref(),
                tenant: b.tenant.as_deref(),
            };
            let made = webhooks::create(&all, &app.rt, &seal, settings, me, &ask).await?;
            forget_listeners();
            let mut j = webhooks::view(&made.hook, now);
            if let Some(o) = j.as_object_mut() {
                o.insert("secret".into(), json!(made.secret));
            }
            Ok(Reply::json(201, j))
        }
        (At::List, Method::Get) => {
            let q = Query::of(&req)?;
            let (hooks, next) = webhooks::list(&all, me, q.get("after"), q.limit()?).await?;
            let items = hooks.iter().map(|h| webhooks::view(h, now)).collect();
            Ok(page_json(Page { items, next }))
        }
        (At::One(id), Method::Get) => {
            let h = webhooks::get(&all, me, id).await?;
            Ok(Reply::json(200, webhooks::view(&h, now)))
        }
        (At::One(id), Method::Patch) => {
            let b: Update = required(&mut req).await?;
            let change = Change {
                url: b.url.as_deref(),
                events: b.events.as_deref(),
                enabled: b.enabled,
            };
            let (h, wake) = webhooks::update(&all, &app.rt, settings, me, id, &change).await?;
            forget_listeners();
            for m in wake {
                courier.send(&m, 0).await?;
            }
            Ok(Reply::json(200, webhooks::view(&h, now)))
        }
        (At::One(id), Method::Delete) => {
            webhooks::delete(&all, me, id).await?;
            forget_listeners();
            Ok(Reply::no_content())
        }
        (At::Secrets(id), Method::Post) => {
            let (secret, until) = webhooks::rotate(&all, &app.rt, &seal, me, id).await?;
            let j = json!({"secret": secret, "previousSecretUntil": rfc3339(until)});
            Ok(Reply::json(201, j))
        }
        (At::Test(id), Method::Post) => Ok(Reply::json(200, webhooks::test(&push, me, id).await?)),
        (At::Deliveries(id), Method::Get) => {
            let q = Query::of(&req)?;
            let (items, next) =
                webhooks::deliveries(&all, me, id, q.get("after"), q.limit()?).await?;
            Ok(page_json(Page { items, next }))
        }
        (At::Replay(id, event), Method::Post) => Ok(Reply::json(
            200,
            webhooks::replay(&push, me, id, event).await?,
        )),
        (at, _) => Err(Error::method_not_allowed(at.allows())),
    }
}

async fn required<T: crate::http::body::Field>(req: &mut Request) -> Result<T> {
    json_body(req, crate::http::reply::ADMIN_BODY_BYTES)
        .await?
        .ok_or_else(|| Error::invalid("a JSON request body is required"))
}

/// Webhook secrets sealed with AES-GCM (WebCrypto) under [`wh::sealing_key`] of
/// `WEBHOOK_KEY`, a random 96-bit IV each: stored as `v1.<iv>.<ciphertext>`, base64.
pub struct Seal {
    key: [u8; 32],
}

impl Seal {
    /// 503 while `WEBHOOK_KEY` is not set: nothing could be signed.
    pub fn of(config: &Config) -> Result<Seal> {
        if config.webhook_key.trim().is_empty() {
            return Err(Error::new(
                503,
                "webhooks need the Worker secret WEBHOOK_KEY (README, Webhooks)",
            ));
        }
        Ok(Seal {
            key: wh::sealing_key(config.webhook_key.trim()),
        })
    }

    async fn crypt(&self, method: &str, iv: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let failed = |e: JsValue| Error::internal(format!("WebCrypto {method}: {e:?}"));
        let subtle = Reflect::get(
            &Reflect::get(&worker::js_sys::global(), &"crypto".into()).map_err(failed)?,
            &"subtle".into(),
        )
        .map_err(failed)?;
        let call = |name: &str, args: &Array| -> std::result::Result<JsFuture, JsValue> {
            let f = Reflect::get(&subtle, &name.into())?.dyn_into::<Function>()?;
            Ok(JsFuture::from(
                f.apply(&subtle, args)?.dyn_into::<Promise>()?,
            ))
        };
        let algorithm = Object::new();
        Reflect::set(&algorithm, &"name".into(), &"AES-GCM".into()).map_err(failed)?;
        let import = Array::of5(
            &"raw".into(),
            &Uint8Array::from(&self.key[..]),
            &algorithm,
            &JsValue::FALSE,
            &Array::of1(&method.into()),
        );
        let key = call("importKey", &import)
            .map_err(failed)?
            .await
            .map_err(failed)?;
        Reflect::set(&algorithm, &"iv".into(), &Uint8Array::from(iv)).map_err(failed)?;
        let args = Array::of3(&algorithm, &key, &Uint8Array::from(data));
        let out = call(method, &args).map_err(failed)?.await.map_err(failed)?;
        Ok(Uint8Array::new(&out).to_vec())
    }
}

impl Sealer for Seal {
    async fn seal(&self, plain: &str) -> Result<String> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        let iv = scim_core::tenancy::token::random_bytes::<12>()
            .map_err(|e| Error::internal(format!("getrandom: {}", e.0)))?;
        let sealed = self.crypt("encrypt", &iv, plain.as_bytes()).await?;
        Ok(format!(
            "v1.{}.{}",
            STANDARD.encode(iv),
            STANDARD.encode(sealed)
        ))
    }

    async fn open(&self, sealed: &str) -> Result<String> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        let bad = || {
            Error::internal("a stored webhook secret cannot be opened (was WEBHOOK_KEY changed?)")
        };
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(iv), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let iv = STANDARD.decode(iv).map_err(|_| bad())?;
        let data = STANDARD.decode(data).map_err(|_| bad())?;
        let plain = self.crypt("decrypt", &iv, &data).await.map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

/// Receivers over `fetch`, and the Queue (none bound: messages are dropped with a warning,
/// and the Cron Trigger finds the lanes again once it is).
///
/// Both through the platform's own objects ([`crate::http::outgoing`], the Queue binding
/// itself), not the `worker` crate's wrappers: those convert their options with
/// `serde_wasm_bindgen`, which would be in the wasm for them alone.
pub struct Edge {
    queue: Option<Queue>,
}

impl Edge {
    pub fn of(env: &Env) -> Edge {
        let queue = Reflect::get(env, &QUEUE.into()).ok();
        Edge {
            queue: queue.filter(|q| q.is_object()).map(JsCast::unchecked_into),
        }
    }
}

/// Characters of a receiver's error kept in an attempt.
const MAX_ERROR: usize = 300;

impl Courier for Edge {
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Answer {
        let started = worker::Date::now().as_millis() as i64;
        let took = || (worker::Date::now().as_millis() as i64).saturating_sub(started);
        let fail = |e: String| Answer {
            error: Some(e.chars().take(MAX_ERROR).collect()),
            duration_ms: took(),
            ..Answer::default()
        };
        let h = Headers::new();
        for (name, value) in headers {
            if let Err(e) = h.set(name, value) {
                return fail(e.to_string());
            }
        }
        let _ = h.set("user-agent", "scim-edge-webhooks/1");
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&h.0);
        init.set_redirect(RequestRedirect::Manual);
        init.set_body(&JsValue::from_str(body));
        let req = match crate::http::outgoing(url, &init) {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        let abort = AbortController::default();
        let signal = abort.signal();
        let sent = Box::pin(async move { Fetch::Request(req).send_with_signal(&signal).await });
        let timeout = Box::pin(Delay::from(Duration::from_millis(TIMEOUT_MS as u64)));
        match select(sent, timeout).await {
            Either::Left((Ok(response), _)) => Answer {
                status: Some(response.status_code()),
                retry_after: response.headers().get("retry-after").ok().flatten(),
                error: None,
                duration_ms: took(),
            },
            Either::Left((Err(e), _)) => fail(e.to_string()),
            Either::Right(_) => {
                abort.abort();
                fail(format!("no answer within {} s", TIMEOUT_MS / 1000))
            }
        }
    }

    async fn send(&self, m: &Message, delay_s: i64) -> Result<()> {
        let Some(queue) = &self.queue else {
            worker::console_warn!("webhooks: no Queue bound as {QUEUE}; {m:?} dropped");
            return Ok(());
        };
        let delay = delay_s.clamp(0, wh::MAX_DELAY_S);
        let failed = |e: JsValue| {
            let e = worker::Error::from(e);
            Error::new(503, format!("the webhook Queue: {e}"))
        };
        let text = serde_json::to_string(m).map_err(|e| Error::internal(e.to_string()))?;
        let options = JSON::parse(&format!(
            r#"{{"contentType":"json","delaySeconds":{delay}}}"#
        ));
        let sent = queue.send(
            JSON::parse(&text).map_err(failed)?,
            options.map_err(failed)?,
        );
        JsFuture::from(sent.map_err(failed)?)
            .await
            .map(drop)
            .map_err(failed)
    }
}

/// How long this isolate trusts what it knows of which tenants endpoints listen to.
const LISTENERS_TTL_MS: i64 = 30_000;

thread_local! {
    /// Which tenants endpoints listen to (`None`: every tenant), and when that was read.
    static LISTENERS: RefCell<Option<(i64, Vec<Option<String>>)>> = const { RefCell::new(None) };
}

/// This isolate changed the endpoints: read them again before the next wake.
fn forget_listeners() {
    LISTENERS.with(|l| l.borrow_mut().take());
}

/// After a SCIM write of tenant `tenant_id` (after its response, `wait_until`): a `Wake` on
/// the Queue if an endpoint listens to it. Which tenants endpoints listen to is read from the
/// catalog at most every [`LISTENERS_TTL_MS`] per isolate, never on the response's path.
pub fn after_write(app: &App, tenant_id: &str) {
    let env = app.env.clone();
    let tenant = tenant_id.to_string();
    let now = app.now;
    app.ctx.wait_until(async move {
        let known = LISTENERS.with(|l| {
            l.borrow()
                .as_ref()
                .filter(|(at, _)| now.saturating_sub(*at) < LISTENERS_TTL_MS)
                .map(|(_, v)| v.clone())
        });
        let listened = match known {
            Some(v) => v,
            None => {
                let meter = Meter::default();
                match webhooks::listened(&Bindings::of(&env, &meter)).await {
                    Ok(v) => {
                        LISTENERS.with(|l| *l.borrow_mut() = Some((now, v.clone())));
                        v
                    }
                    Err(e) => {
                        worker::console_warn!("webhooks: {}", e.cause.unwrap_or(e.detail));
                        return;
                    }
                }
            }
        };
        if webhooks::listens(&listened, &tenant) {
            if let Err(e) = Edge::of(&env).send(&Message::Wake { tenant }, 0).await {
                worker::console_warn!("webhooks: {}", e.cause.unwrap_or(e.detail));
            }
        }
    });
}

/// The Queue's consumer: each distinct message of the batch once, acknowledged when handled,
/// retried by the Queue when not (after its retries, the dead-letter queue has it, and the
/// lane is still in D1 for the Cron Trigger to find). The dead-letter queue's own messages
/// are logged and acknowledged.
///
/// Bodies are read raw, as their JSON text (the typed messages would go through
/// `serde_wasm_bindgen`, which nothing else needs).
pub async fn consume(batch: MessageBatch<Value>, env: Env) -> worker::Result<()> {
    let text = |m: &worker::RawMessage| -> String {
        JSON::stringify(&m.body()).map_or_else(|_| "?".into(), String::from)
    };
    if batch.queue() == DEAD_QUEUE {
        for m in batch.raw_iter() {
            worker::console_error!("webhooks: gave up on {}", text(&m));
            m.ack();
        }
        return Ok(());
    }
    let config = match Config::of(&env).and_then(|c| Seal::of(&c).map(|s| (c, s))) {
        Ok(c) => c,
        Err(e) => {
            worker::console_error!("webhooks: {}", e.cause.unwrap_or(e.detail));
            batch.retry_all();
            return Ok(());
        }
    };
    let (config, seal) = config;
    let meter = Meter::default();
    let all = Bindings::of(&env, &meter);
    let rt = Platform::at_start();
    let courier = Edge::of(&env);
    let push = Push {
        s: &all,
        rt: &rt,
        sealer: &seal,
        courier: &courier,
        settings: &config.webhooks,
    };
    let mut done: Vec<Message> = Vec::new();
    for m in batch.raw_iter() {
        let body = text(&m);
        let Some(message) = Message::parse(&body) else {
            worker::console_error!("webhooks: a message of no known shape: {body}");
            m.ack();
            continue;
        };
        if done.contains(&message) {
            m.ack();
            continue;
        }
        match handle(&push, &message).await {
            Ok(()) => {
                done.push(message);
                m.ack();
            }
            Err(e) => {
                worker::console_warn!("webhooks: {message:?}: {}", e.cause.unwrap_or(e.detail));
                m.retry();
            }
        }
    }
    Ok(())
}

async fn handle(p: &Push<'_, Bindings<'_>, Platform, Seal, Edge>, m: &Message) -> Result<()> {
    match m {
        Message::Wake { tenant } => webhooks::wake(p, tenant).await,
        Message::Lane { webhook, tenant } => webhooks::run_lane(p, webhook, tenant).await,
    }
}

/// Time back a Cron run looks for tenants that wrote (a little over the run's period).
const BACKSTOP_LOOKBACK_MS: i64 = 20 * 60_000;

/// The Cron Trigger's part: lanes whose message was lost, tenants whose wake was.
pub async fn backstop(env: &Env) {
    let meter = Meter::default();
    let all = Bindings::of(env, &meter);
    let rt = Platform::at_start();
    let since = rt.now.saturating_sub(BACKSTOP_LOOKBACK_MS);
    match webhooks::backstop(&all, &rt, &Edge::of(env), since).await {
        Ok(0) => {}
        Ok(n) => worker::console_log!("webhooks: {n} lanes woken by the Cron Trigger"),
        Err(e) => worker::console_error!("webhooks: {}", e.cause.unwrap_or(e.detail)),
    }
}
