//! JWT client assertions (RFC 7523 §2.2, §3) as workload identity federation sends them:
//! Entra signs a JWT for the application's federated credential ("Workload Identity
//! Federation: A New Authentication Method for SCIM Provisioning") and the token endpoint
//! accepts it as the client's authentication when its claims name the organisation's
//! configured issuer, subject and audience and its signature verifies against a key of the
//! issuer's key set.
//!
//! This module reads the token and checks the claims; the signature is checked by the
//! platform's WebCrypto at the edge (no RSA code in the wasm), over [`Assertion::signing_input`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// The signature algorithms accepted: RS256 (RSASSA-PKCS1-v1_5 with SHA-256), what Entra signs
/// with. Anything else, `none` included, is refused before any key is looked at.
pub const ALGORITHMS: [&str; 1] = ["RS256"];

/// Clock skew allowed on `exp` and `nbf`.
pub const SKEW_MS: i64 = 5 * 60 * 1000;

/// Largest assertion read (Entra's are about 1.5 KB).
pub const MAX_JWT_BYTES: usize = 8 * 1024;

/// A decoded assertion, its signature not yet verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// The key id (`kid`) of the header: which key of the set signed it.
    pub kid: String,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
    pub claims: Claims,
}

/// The claims the endpoint checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    /// Unix milliseconds.
    pub exp: i64,
    pub nbf: Option<i64>,
    /// The assertion's own id: `jti` (RFC 7519 §4.1.7), or `uti`, which Entra's tokens carry
    /// instead. Remembered until the assertion expires, so it is accepted once.
    pub id: String,
}

/// What the organisation configured: the claims an assertion must carry.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: &'a str,
}

/// Why an assertion was refused (for the provisioning log; the client is told only that its
/// authentication failed).
pub type Refusal = &'static str;

/// Split and decode a compact JWS (RFC 7515 §7.1) and read its header and claims.
pub fn decode(jwt: &str) -> Result<Assertion, Refusal> {
    if jwt.len() > MAX_JWT_BYTES {
        return Err("the assertion is too long");
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the assertion is not a signed JWT (three parts)");
    };
    let header = json_part(h).ok_or("the assertion's header is not base64url JSON")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err("the assertion's algorithm is not RS256");
    }
    if header.get("crit").is_some() {
        return Err("the assertion has critical header parameters");
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("the assertion's header names no key (kid)")?;
    let payload = json_part(p).ok_or("the assertion's claims are not base64url JSON")?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "the assertion's signature is not base64url")?;
    Ok(Assertion {
        kid: kid.to_string(),
        signing_input: format!("{h}.{p}"),
        signature,
        claims: claims(&payload)?,
    })
}

fn json_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// A NumericDate (RFC 7519 §2, seconds, possibly fractional) as Unix milliseconds.
fn instant(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    let seconds = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?;
    seconds.checked_mul(1000)
}

fn claims(payload: &Value) -> Result<Claims, Refusal> {
    let text = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let aud = match payload.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(all)) => all
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Claims {
        iss: text("iss").ok_or("the assertion has no issuer (iss)")?,
        sub: text("sub").ok_or("the assertion has no subject (sub)")?,
        aud,
        exp: instant(payload.get("exp")).ok_or("the assertion has no expiry (exp)")?,
        nbf: instant(payload.get("nbf")),
        id: text("jti")
            .or_else(|| text("uti"))
            .filter(|id| !id.is_empty() && id.len() <= 200)
            .ok_or("the assertion has no id (jti or uti) to accept it once")?,
    })
}

/// Check the claims against the organisation's configuration at `now` (Unix ms), with
/// [`SKEW_MS`] of clock skew either way (RFC 7523 §3: `iss`, `sub`, `aud`, `exp`, `nbf`).
pub fn check(claims: &Claims, expected: Expected<'_>, now: i64) -> Result<(), Refusal> {
    if claims.iss != expected.issuer {
        return Err("the assertion's issuer is not the configured one");
    }
    if claims.sub != expected.subject {
        return Err("the assertion's subject is not the configured one");
    }
    if !claims.aud.iter().any(|a| a == expected.audience) {
        return Err("the assertion's audience is not the configured one");
    }
    if claims.exp.saturating_add(SKEW_MS) <= now {
        return Err("the assertion has expired");
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(SKEW_MS) > now)
    {
        return Err("the assertion is not valid yet (nbf)");
    }
    Ok(())
}

/// One RSA public key of a key set (RFC 7517 §4, §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    /// Modulus and exponent, base64url, as the set gives them.
    pub n: String,
    pub e: String,
}

/// The RSA signing keys of a JWK Set document (keys of another type, or marked for
/// encryption, or without a `kid`, are skipped).
pub fn key_set(document: &str) -> Result<Vec<Jwk>, Refusal> {
    let doc: Value = serde_json::from_str(document).map_err(|_| "the key set is not JSON")?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the key set has no keys array")?;
    Ok(keys
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| {
            let field = |name: &str| k.get(name).and_then(Value::as_str).map(str::to_string);
            Some(Jwk {
                kid: field("kid")?,
                n: field("n")?,
                e: field("e")?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn jwt(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", part(&header), part(&claims))
    }

    fn good_claims() -> Value {
        json!({"iss": "https://login.microsoftonline.com/t/v2.0", "sub": "s", "aud": ["api://x", "other"],
               "exp": 2_000, "nbf": 1_000, "uti": "u1"})
    }

    const EXPECTED: Expected<'static> = Expected {
        issuer: "https://login.microsoftonline.com/t/v2.0",
        subject: "s",
        audience: "api://x",
    };

    #[test]
    fn an_rs256_assertion_decodes_and_its_claims_check() {
        let a = decode(&jwt(
            json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
            good_claims(),
        ))
        .expect("decodes");
        assert_eq!(a.kid, "k1");
        assert_eq!(a.signature, b"sig");
        assert_eq!(a.claims.id, "u1");
        assert_eq!((a.claims.exp, a.claims.nbf), (2_000_000, Some(1_000_000)));
        assert!(a.signing_input.matches('.').count() == 1);
        assert_eq!(check(&a.claims, EXPECTED, 1_500_000), Ok(()));
        // Five minutes of skew either way, and no more.
        assert_eq!(check(&a.claims, EXPECTED, 1_000_000 - SKEW_MS), Ok(()));
        assert!(check(&a.claims, EXPECTED, 1_000_000 - SKEW_MS - 1).is_err());
        assert!(check(&a.claims, EXPECTED, 2_000_000 + SKEW_MS - 1).is_ok());
        assert!(check(&a.claims, EXPECTED, 2_000_000 + SKEW_MS).is_err());
    }

    #[test]
    fn wrong_claims_and_headers_are_refused() {
        let claims = decode(&jwt(json!({"alg": "RS256", "kid": "k"}), good_claims()))
            .expect("decodes")
            .claims;
        for (field, value) in [("iss", "https://evil"), ("sub", "t"), ("aud", "api://y")] {
            let mut c = claims.clone();
            match field {
                "iss" => c.iss = value.into(),
                "sub" => c.sub = value.into(),
                _ => c.aud = vec![value.into()],
            }
            assert!(check(&c, EXPECTED, 1_500_000).is_err(), "{field}");
        }
        for header in [
            json!({"alg": "none", "kid": "k"}),
            json!({"alg": "HS256", "kid": "k"}),
            json!({"alg": "RS256"}),
            json!({"alg": "RS256", "kid": "k", "crit": ["x"]}),
        ] {
            assert!(
                decode(&jwt(header.clone(), good_claims())).is_err(),
                "{header}"
            );
        }
        for drop in ["iss", "sub", "exp", "uti"] {
            let mut c = good_claims();
            c.as_object_mut().map(|o| o.remove(drop));
            assert!(
                decode(&jwt(json!({"alg": "RS256", "kid": "k"}), c)).is_err(),
                "{drop}"
            );
        }
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!.!.!",
            &"x".repeat(MAX_JWT_BYTES + 1),
        ] {
            assert!(decode(bad).is_err());
        }
    }

    #[test]
    fn a_key_set_gives_its_rsa_signing_keys() {
        let set = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "nn", "e": "AQAB", "use": "sig"},
            {"kty": "RSA", "kid": "b", "n": "nn", "e": "AQAB", "use": "enc"},
            {"kty": "EC", "kid": "c", "x": "x", "y": "y"},
            {"kty": "RSA", "n": "nn", "e": "AQAB"},
            {"kty": "RSA", "kid": "d", "n": "n2", "e": "AQAB"}
        ]});
        let keys = key_set(&set.to_string()).expect("set");
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["a", "d"]);
        assert!(key_set("{}").is_err() && key_set("nope").is_err());
    }
}
