//! The token endpoint over `wrangler dev`: client secrets by Basic and in the body, every
//! RFC 6749 §5.2 error, the access token through the SCIM gate (expiry, revocation, another
//! tenant), the rate limit and the refusal budget, the log; and workload identity
//! federation with assertions this test signs against a key set it serves over HTTP.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use crate::harness::{limited_server, server, unique, Call, Resp, Server};
use crate::{new_tenant_on, url_encode};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A POST to tenant `sub`'s token endpoint with a form body.
fn token_call<'a>(s: &'a Server, sub: &str, form: &str) -> Call<'a> {
    s.call("POST", "/oauth/token")
        .host(&s.tenant_host(sub))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .raw_body(form)
}

/// `Authorization: Basic` as RFC 6749 §2.3.1 builds it: each part form-url-encoded first.
fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", url_encode(id), url_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// A new client secret of `sub`: (client id, secret, the 201's body).
fn new_secret(s: &Server, sub: &str) -> (String, String, Value) {
    let body = s
        .admin("POST", &format!("/admin/v1/tenants/{sub}/oauth/secrets"))
        .send()
        .expect(201)
        .json();
    let text = |k: &str| body[k].as_str().expect(k).to_string();
    (text("clientId"), text("clientSecret"), body)
}

/// An access token for the client secret, asked for as Entra asks (Basic).
fn access_token(s: &Server, sub: &str, id: &str, secret: &str) -> String {
    let r = token_call(s, sub, "grant_type=client_credentials")
        .header("Authorization", &basic(id, secret))
        .send();
    granted(r)["access_token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// Assert an RFC 6749 §5.1 success and return its body.
#[track_caller]
fn granted(r: Resp) -> Value {
    let r = r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() > 40));
    assert!(body["expires_in"].as_i64().is_some());
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
    body
}

/// Assert an RFC 6749 §5.2 error and return its code.
#[track_caller]
fn oauth_error(r: Resp, status: u16) -> String {
    let r = r.expect(status);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert!(body["error_description"].is_string(), "{body}");
    body["error"].as_str().expect("error").to_string()
}

/// `GET /Users` of `sub` with `token`: its status.
fn scim_status(s: &'static Server, sub: &str, token: &str) -> u16 {
    s.scim(sub, "GET", "/Users").bearer(token).send().status
}

#[test]
fn a_client_secret_by_basic_or_in_the_body_buys_a_token_that_serves_scim() {
    let s = server();
    let sub = new_tenant_on(s, "oauth");
    let (id, secret, created) = new_secret(s, &sub);
    let origin = format!("http://{sub}.localhost:{}", s.port);
    assert_eq!(created["tokenEndpoint"], format!("{origin}/oauth/token"));
    assert!(id.starts_with("cli_") && secret.starts_with("scim_cs_"));

    let by_basic = granted(
        token_call(s, &sub, "grant_type=client_credentials&scope=scim")
            .header("Authorization", &basic(&id, &secret))
            .send(),
    );
    assert_eq!(by_basic["expires_in"], 3600, "OAUTH_TOKEN_MINUTES' default");
    let token = by_basic["access_token"].as_str().expect("token");
    let users = s
        .scim(&sub, "GET", "/Users")
        .bearer(token)
        .send()
        .expect(200);
    assert_eq!(users.json()["totalResults"], 0);
    // A write too, read back with the same token.
    let created = s
        .scim(&sub, "POST", "/Users")
        .bearer(token)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "o@x.com"}))
        .send()
        .expect(201)
        .json();
    let path = format!("/Users/{}", created["id"].as_str().expect("id"));
    let read = s.scim(&sub, "GET", &path).bearer(token).send().expect(200);
    assert_eq!(read.json()["userName"], "o@x.com");

    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        url_encode(&id),
        url_encode(&secret)
    );
    let by_body = token_call(s, &sub, &form).send();
    // The tenant's place is known: the secret is checked and the token issued in one call.
    assert_eq!(crate::harness::d1_calls(&by_body), 1);
    let by_body = granted(by_body);
    assert_ne!(by_body["access_token"], by_basic["access_token"]);
    // The path form: the same endpoint under /tenants/<sub>.
    granted(
        s.call("POST", &format!("/tenants/{sub}/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .raw_body(&form)
            .send(),
    );

    // The admin API shows the client and its secret, never the secret itself.
    let shown = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}/oauth"))
        .send()
        .expect(200);
    let v = shown.json();
    assert_eq!(v["clientId"], id.as_str());
    assert_eq!(v["federation"], Value::Null);
    assert_eq!(v["secrets"].as_array().map(Vec::len), Some(1));
    assert!(v["secrets"][0]["lastUsedAt"].is_string());
    assert!(!shown.text.contains(&secret));
    // Access tokens are not Secret Tokens: the token list stays empty.
    let tokens = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}/tokens"))
        .send()
        .expect(200);
    assert_eq!(tokens.json()["items"], json!([]));
}

#[test]
fn metadata_and_discovery_name_the_token_endpoint() {
    let s = server();
    let sub = new_tenant_on(s, "meta");
    let origin = format!("http://{sub}.localhost:{}", s.port);
    let meta = s
        .get("/.well-known/oauth-authorization-server")
        .host(&s.tenant_host(&sub))
        .send()
        .expect(200)
        .json();
    assert_eq!(meta["issuer"], origin.as_str());
    assert_eq!(meta["token_endpoint"], format!("{origin}/oauth/token"));
    assert_eq!(meta["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256"])
    );
    let path_form = s
        .get(&format!(
            "/tenants/{sub}/.well-known/oauth-authorization-server"
        ))
        .send()
        .expect(200)
        .json();
    let base = format!("http://127.0.0.1:{}/tenants/{sub}", s.port);
    assert_eq!(path_form["token_endpoint"], format!("{base}/oauth/token"));
    let unknown = s
        .get("/.well-known/oauth-authorization-server")
        .host(&s.tenant_host("nobody-here"))
        .send();
    assert_eq!(unknown.status, 404);
    let token = crate::new_token(&sub);
    let spc = s
        .scim(&sub, "GET", "/ServiceProviderConfig")
        .bearer(&token)
        .send()
        .expect(200)
        .json();
    let kinds: Vec<&str> = spc["authenticationSchemes"]
        .as_array()
        .expect("schemes")
        .iter()
        .filter_map(|x| x["type"].as_str())
        .collect();
    assert_eq!(kinds, ["oauthbearertoken", "oauth2"]);
}

#[test]
fn every_malformed_or_refused_request_gets_its_rfc_6749_error_and_no_hint() {
    let s = server();
    let sub = new_tenant_on(s, "oerr");
    let (id, secret, _) = new_secret(s, &sub);
    let ok = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        url_encode(&id),
        url_encode(&secret)
    );
    let json_body = s
        .call("POST", "/oauth/token")
        .host(&s.tenant_host(&sub))
        .json(&json!({"grant_type": "client_credentials"}))
        .send();
    assert_eq!(oauth_error(json_body, 400), "invalid_request");
    let missing = token_call(s, &sub, &ok.replace("grant_type=client_credentials&", "")).send();
    assert_eq!(oauth_error(missing, 400), "invalid_request");
    let password = token_call(s, &sub, &ok.replace("client_credentials", "password")).send();
    assert_eq!(oauth_error(password, 400), "unsupported_grant_type");
    let twice = token_call(s, &sub, &ok)
        .header("Authorization", &basic(&id, &secret))
        .send();
    assert_eq!(oauth_error(twice, 400), "invalid_request");
    let repeated = token_call(s, &sub, &format!("{ok}&grant_type=client_credentials")).send();
    assert_eq!(oauth_error(repeated, 400), "invalid_request");

    // A wrong secret and a wrong id answer the same, word for word; Basic gets its challenge.
    let mut bodies = Vec::new();
    for (cid, sec) in [
        (id.as_str(), "scim_cs_wrong"),
        ("cli_wrong", secret.as_str()),
    ] {
        let r = token_call(s, &sub, "grant_type=client_credentials")
            .header("Authorization", &basic(cid, sec))
            .send();
        assert!(r
            .header("www-authenticate")
            .is_some_and(|w| w.starts_with("Basic")));
        bodies.push(r.text.clone());
        assert_eq!(oauth_error(r, 401), "invalid_client");
    }
    assert_eq!(bodies[0], bodies[1]);
    let in_body = token_call(s, &sub, &ok.replace(&secret, "scim_cs_wrong")).send();
    assert_eq!(in_body.header("www-authenticate"), None);
    assert_eq!(oauth_error(in_body, 401), "invalid_client");
    let none = token_call(s, &sub, "grant_type=client_credentials").send();
    assert_eq!(oauth_error(none, 401), "invalid_client");
    // Another tenant's client, or no such tenant: the same refusal.
    let other = new_tenant_on(s, "oerr");
    let elsewhere = token_call(s, &other, &ok).send();
    assert_eq!(oauth_error(elsewhere, 401), "invalid_client");
    let nobody = token_call(s, "nobody-here", &ok).send();
    assert_eq!(oauth_error(nobody, 401), "invalid_client");
    let get = s
        .get("/oauth/token")
        .host(&s.tenant_host(&sub))
        .send()
        .expect(405);
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(get.json()["error"], "invalid_request");
    // None of it issued anything: the secret still works.
    granted(token_call(s, &sub, &ok).send());
}

#[test]
fn revoking_a_secret_disabling_or_deleting_stops_its_tokens_at_once_and_tokens_stay_home() {
    let s = server();
    let sub = new_tenant_on(s, "orev");
    let other = new_tenant_on(s, "orev");
    let (id, secret, first) = new_secret(s, &sub);
    let (id2, secret2, _) = new_secret(s, &sub);
    assert_eq!(id, id2, "one client per tenant");
    let third = s
        .admin("POST", &format!("/admin/v1/tenants/{sub}/oauth/secrets"))
        .send();
    assert_eq!(third.status, 409, "{}", third.text);
    for days in [364, 1096] {
        let r = s
            .admin("POST", &format!("/admin/v1/tenants/{sub}/oauth/secrets"))
            .json(&json!({"expiresInDays": days}))
            .send();
        assert_eq!(r.status, 400, "{days}: {}", r.text);
    }
    let token = access_token(s, &sub, &id, &secret);
    let token2 = access_token(s, &sub, &id2, &secret2);
    assert_eq!(scim_status(s, &sub, &token), 200);
    assert_eq!(
        scim_status(s, &other, &token),
        401,
        "another tenant's token"
    );

    let secret_id = first["id"].as_str().expect("id");
    s.admin(
        "DELETE",
        &format!("/admin/v1/tenants/{sub}/oauth/secrets/{secret_id}"),
    )
    .send()
    .expect(204);
    assert_eq!(scim_status(s, &sub, &token), 401, "revoked with its secret");
    assert_eq!(
        scim_status(s, &sub, &token2),
        200,
        "the other secret's lives on"
    );
    let again = token_call(s, &sub, "grant_type=client_credentials")
        .header("Authorization", &basic(&id, &secret))
        .send();
    assert_eq!(oauth_error(again, 401), "invalid_client");

    s.admin("PATCH", &format!("/admin/v1/tenants/{sub}"))
        .json(&json!({"provisioningEnabled": false}))
        .send()
        .expect(200);
    assert_eq!(scim_status(s, &sub, &token2), 403);
    s.admin("PATCH", &format!("/admin/v1/tenants/{sub}"))
        .json(&json!({"provisioningEnabled": true}))
        .send()
        .expect(200);
    assert_eq!(scim_status(s, &sub, &token2), 200);
    s.admin("DELETE", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .expect(202);
    assert_eq!(scim_status(s, &sub, &token2), 404);
    let gone = token_call(s, &sub, "grant_type=client_credentials")
        .header("Authorization", &basic(&id2, &secret2))
        .send();
    assert_eq!(oauth_error(gone, 401), "invalid_client");
}

#[test]
fn the_log_records_issued_tokens_and_refusals_without_a_secret() {
    let s = server();
    let sub = new_tenant_on(s, "olog");
    let (id, secret, _) = new_secret(s, &sub);
    let token = access_token(s, &sub, &id, &secret);
    let wrong = token_call(s, &sub, "grant_type=client_credentials")
        .header("Authorization", &basic(&id, "scim_cs_wrong"))
        .send();
    assert_eq!(oauth_error(wrong, 401), "invalid_client");
    // Entries are written after their responses.
    let mut log = Value::Null;
    for _ in 0..50 {
        log = s
            .admin("GET", &format!("/admin/v1/tenants/{sub}/logs"))
            .send()
            .expect(200)
            .json();
        if log["items"].as_array().is_some_and(|i| i.len() >= 2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let items = log["items"].as_array().expect("items");
    let issued = items
        .iter()
        .find(|e| e["status"] == 200)
        .unwrap_or_else(|| panic!("no issued entry: {log}"));
    assert_eq!(issued["route"], "/oauth/token");
    assert_eq!(issued["method"], "POST");
    let summary = issued["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("access token issued for client secret …"),
        "{summary}"
    );
    assert!(summary.ends_with("valid 60 minutes"), "{summary}");
    let refused = items
        .iter()
        .find(|e| e["status"] == 401)
        .unwrap_or_else(|| panic!("no refusal: {log}"));
    assert_eq!(refused["route"], "/oauth/token");
    assert!(refused["detail"]
        .as_str()
        .is_some_and(|d| d.contains("client secret")));
    let text = log.to_string();
    for secret_text in [&secret, &token, &"scim_cs_wrong".to_string()] {
        assert!(
            !text.contains(secret_text.as_str()),
            "the log holds a secret"
        );
    }
}

#[test]
fn the_token_endpoint_has_its_own_rate_limit_and_shares_the_refusal_budget() {
    let s = limited_server();
    let sub = new_tenant_on(s, "olim");
    let (id, secret, _) = new_secret(s, &sub);
    // The refusal budget (wrangler.toml: 20 a minute per tenant and address): wrong secrets
    // spend it, then a stranger gets 429 unchecked, while the right secret still gets a token.
    // The local limiter counts in fixed windows: one that ends during a loop lets the next
    // start from nothing, so each loop may go on to a second window's limit.
    let until_429 = |sub: &str, id: &str, secret: &str, most: usize| {
        let mut statuses = Vec::new();
        while statuses.len() < most && statuses.last() != Some(&429) {
            let r = token_call(s, sub, "grant_type=client_credentials")
                .header("Authorization", &basic(id, secret))
                .send();
            statuses.push(r.status);
        }
        statuses
    };
    let statuses = until_429(&sub, &id, "scim_cs_wrong", 50);
    let refused = statuses.iter().take_while(|s| **s == 401).count();
    assert!(
        (20..=40).contains(&refused) && statuses.last() == Some(&429),
        "{statuses:?}"
    );
    let spent = token_call(s, &sub, "grant_type=client_credentials")
        .header("Authorization", &basic(&id, "scim_cs_wrong"))
        .send();
    assert!(spent.header("retry-after").is_some());
    assert_eq!(oauth_error(spent, 429), "temporarily_unavailable");
    let token = access_token(s, &sub, &id, &secret);
    assert_eq!(scim_status(s, &sub, &token), 200);

    // The endpoint's own limit (OAUTH_RATE_LIMIT, 30 a minute per tenant) for valid requests.
    let other = new_tenant_on(s, "olim");
    let (id, secret, _) = new_secret(s, &other);
    let statuses = until_429(&other, &id, &secret, 70);
    let granted = statuses.iter().take_while(|s| **s == 200).count();
    assert!(
        (30..=60).contains(&granted) && statuses.last() == Some(&429),
        "{statuses:?}"
    );
}

#[test]
fn an_access_token_ends_after_its_lifetime() {
    // The limited server issues tokens for DEV_OAUTH_TOKEN_SECONDS (2) seconds.
    let s = limited_server();
    let sub = new_tenant_on(s, "oexp");
    let (id, secret, _) = new_secret(s, &sub);
    let r = token_call(s, &sub, "grant_type=client_credentials")
        .header("Authorization", &basic(&id, &secret))
        .send();
    let body = granted(r);
    assert_eq!(body["expires_in"], 2);
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(scim_status(s, &sub, token), 200);
    std::thread::sleep(Duration::from_millis(2_500));
    let expired = s.scim(&sub, "GET", "/Users").bearer(token).send();
    let e = expired.scim_error(401);
    assert!(
        e["detail"].as_str().is_some_and(|d| d.contains("expired")),
        "{e}"
    );
}

// Workload identity federation ------------------------------------------------------------

/// A key set served over HTTP, as Entra's `discovery/v2.0/keys`, counting its fetches.
struct KeyServer {
    port: u16,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    fn start(keys: &[(&str, &RsaPrivateKey)]) -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let document = Arc::new(Mutex::new(jwks(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                count.fetch_add(1, Ordering::SeqCst);
                let body = doc.lock().map(|d| d.clone()).unwrap_or_default();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        KeyServer {
            port,
            document,
            fetches,
        }
    }

    fn set(&self, keys: &[(&str, &RsaPrivateKey)]) {
        *self.document.lock().expect("lock") = jwks(keys);
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/t/discovery/v2.0/keys", self.port)
    }

    fn fetched(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn jwks(keys: &[(&str, &RsaPrivateKey)]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, k)| {
            json!({"kty": "RSA", "use": "sig", "kid": kid,
                   "n": URL_SAFE_NO_PAD.encode(k.n().to_bytes_be()),
                   "e": URL_SAFE_NO_PAD.encode(k.e().to_bytes_be())})
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

/// Three keys, made once: the set starts with the first.
fn keys() -> &'static [RsaPrivateKey; 3] {
    static KEYS: OnceLock<[RsaPrivateKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = || RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("key");
        [make(), make(), make()]
    })
}

fn sign(key: &RsaPrivateKey, kid: &str, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!(
        "{}.{}",
        part(&json!({"alg": "RS256", "kid": kid, "typ": "JWT"})),
        part(claims)
    );
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What Entra's assertion for the federated credential would claim.
fn claims(issuer: &str, subject: &str, audience: &str) -> Value {
    let now = now_s();
    json!({"iss": issuer, "sub": subject, "aud": audience, "exp": now + 600, "nbf": now - 10,
           "iat": now - 10, "tid": "t", "ver": "2.0", "uti": unique("uti-")})
}

fn assertion_form(client_id: &str, jwt: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_assertion_type={}&client_assertion={}&scope={}",
        url_encode(client_id),
        url_encode(ASSERTION_TYPE),
        url_encode(jwt),
        url_encode("api://scim/.default")
    )
}

#[test]
fn a_federated_assertion_buys_a_token_once_and_only_as_configured() {
    let s = server();
    let sub = new_tenant_on(s, "wif");
    let [k1, k2, k3] = keys();
    let set = KeyServer::start(&[("k1", k1)]);
    let issuer = "https://login.microsoftonline.com/t/v2.0";
    let (subject, audience) = (unique("sub-"), format!("api://{sub}"));
    let put = |uri: &str| {
        s.admin("PUT", &format!("/admin/v1/tenants/{sub}/oauth/federation"))
            .json(&json!({"issuer": issuer, "subject": subject, "audience": audience, "jwksUri": uri}))
            .send()
    };
    assert_eq!(put("http://example.com/keys").status, 400, "only https");
    let shown = put(&set.uri()).expect(200).json();
    let client_id = shown["clientId"].as_str().expect("client id").to_string();
    assert_eq!(shown["federation"]["jwksUri"], set.uri().as_str());
    assert_eq!(shown["federation"]["subject"], subject.as_str());

    let good = claims(issuer, &subject, &audience);
    let jwt = sign(k1, "k1", &good);
    let body = granted(token_call(s, &sub, &assertion_form(&client_id, &jwt)).send());
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(scim_status(s, &sub, token), 200);
    assert_eq!(set.fetched(), 1, "the key set is fetched once, then cached");

    let refused = |jwt: &str| {
        let r = token_call(s, &sub, &assertion_form(&client_id, jwt)).send();
        assert_eq!(r.header("www-authenticate"), None);
        oauth_error(r, 401)
    };
    assert_eq!(refused(&jwt), "invalid_client", "a replay");
    let mut wrong_aud = claims(issuer, &subject, &audience);
    wrong_aud["aud"] = json!("api://another");
    assert_eq!(refused(&sign(k1, "k1", &wrong_aud)), "invalid_client");
    let wrong_sub = claims(issuer, "someone-else", &audience);
    assert_eq!(refused(&sign(k1, "k1", &wrong_sub)), "invalid_client");
    let mut expired = claims(issuer, &subject, &audience);
    expired["exp"] = json!(now_s() - 400);
    assert_eq!(refused(&sign(k1, "k1", &expired)), "invalid_client");
    let mut hs256 = sign(k1, "k1", &claims(issuer, &subject, &audience));
    hs256 = hs256.replacen(
        hs256.split('.').next().unwrap_or_default(),
        &URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "k1"}).to_string()),
        1,
    );
    assert_eq!(refused(&hs256), "invalid_client");
    // Signed by a key the set does not hold, under the set's own kid: the signature fails.
    assert_eq!(
        refused(&sign(k3, "k1", &claims(issuer, &subject, &audience))),
        "invalid_client"
    );
    assert_eq!(set.fetched(), 1, "none of these fetched the set again");

    // Keys rotate: an unknown kid fetches the set again, and then verifies.
    set.set(&[("k1", k1), ("k2", k2)]);
    let rotated = sign(k2, "k2", &claims(issuer, &subject, &audience));
    granted(token_call(s, &sub, &assertion_form(&client_id, &rotated)).send());
    assert_eq!(set.fetched(), 2, "refetched for the unknown kid");
    // A kid the set still lacks: refused, and no second fetch within the minute.
    assert_eq!(
        refused(&sign(k3, "k3", &claims(issuer, &subject, &audience))),
        "invalid_client"
    );
    assert_eq!(set.fetched(), 2, "at most one refetch a minute");

    // Another tenant does not accept this tenant's assertion; removing the federation stops
    // its tokens at once.
    let other = new_tenant_on(s, "wif");
    let elsewhere = token_call(
        s,
        &other,
        &assertion_form(&client_id, &sign(k1, "k1", &good)),
    )
    .send();
    assert_eq!(oauth_error(elsewhere, 401), "invalid_client");
    s.admin(
        "DELETE",
        &format!("/admin/v1/tenants/{sub}/oauth/federation"),
    )
    .send()
    .expect(204);
    assert_eq!(scim_status(s, &sub, token), 401);
    let after = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}/oauth"))
        .send()
        .expect(200)
        .json();
    assert_eq!(after["federation"], Value::Null);
    assert_eq!(after["clientId"], client_id.as_str());
}

#[test]
fn a_valid_assertion_still_gets_a_token_while_strangers_spend_the_refusal_budget() {
    let s = limited_server();
    let sub = new_tenant_on(s, "wifb");
    let [k1, _, k3] = keys();
    let set = KeyServer::start(&[("k1", k1)]);
    let issuer = "https://login.microsoftonline.com/t/v2.0";
    let (subject, audience) = (unique("sub-"), format!("api://{sub}"));
    let client_id = s
        .admin("PUT", &format!("/admin/v1/tenants/{sub}/oauth/federation"))
        .json(&json!({"issuer": issuer, "subject": subject, "audience": audience, "jwksUri": set.uri()}))
        .send()
        .expect(200)
        .json()["clientId"]
        .as_str()
        .expect("client id")
        .to_string();
    let good = || sign(k1, "k1", &claims(issuer, &subject, &audience));
    granted(token_call(s, &sub, &assertion_form(&client_id, &good())).send());
    // A stranger's assertions, signed by a key of its own: refused, until the budget is spent.
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let forged = sign(k3, "k1", &claims(issuer, &subject, &audience));
        statuses.push(
            token_call(s, &sub, &assertion_form(&client_id, &forged))
                .send()
                .status,
        );
    }
    assert_eq!(statuses.first(), Some(&401));
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Entra's next assertion verifies against the credential this isolate remembers.
    let r = token_call(s, &sub, &assertion_form(&client_id, &good())).send();
    let token = granted(r)["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(scim_status(s, &sub, &token), 200);
}
