//! OAuth 2.0 as the token endpoint reads it: a client credentials grant (RFC 6749 §4.4) and
//! the errors it may answer (§5.2), independent of where it runs.
//!
//! Microsoft's "Submit a request to publish your application in Microsoft Entra application
//! gallery" requires SCIM applications to accept the client credentials flow, with a client
//! id and secret per customer. Entra sends the credentials in `Authorization: Basic`; the body
//! form (`client_id`, `client_secret`) must work too (RFC 6749 §2.3.1). Workload identity
//! federation ("Workload Identity Federation: A New Authentication Method for SCIM
//! Provisioning") sends a signed JWT instead (`client_assertion`, RFC 7523 §2.2), read by
//! [`jwt`].

pub mod jwt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The one grant type served.
pub const GRANT_TYPE: &str = "client_credentials";

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An RFC 6749 §5.2 error code (and the two the endpoint adds for its own state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    /// Too many token requests (429), or the organisation is briefly unavailable (503).
    TemporarilyUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::InvalidClient => "invalid_client",
            Code::UnsupportedGrantType => "unsupported_grant_type",
            Code::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A refused token request: the RFC 6749 §5.2 body and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: Code,
    pub status: u16,
    pub description: String,
    /// The client authenticated with HTTP Basic: a 401 carries `WWW-Authenticate` (§5.2).
    pub basic: bool,
    pub retry_after: Option<u32>,
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(Code::InvalidRequest, 400, description)
    }

    /// Client authentication failed. One description for every cause, so that the answer
    /// never says which part was wrong (the id, the secret, its expiry, the assertion).
    pub fn invalid_client(basic: bool) -> OAuthError {
        OAuthError {
            basic,
            ..OAuthError::new(Code::InvalidClient, 401, "client authentication failed")
        }
    }

    pub fn unavailable(
        status: u16,
        retry_after: u32,
        description: impl Into<String>,
    ) -> OAuthError {
        OAuthError {
            retry_after: Some(retry_after),
            ..OAuthError::new(Code::TemporarilyUnavailable, status, description)
        }
    }

    fn new(code: Code, status: u16, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            status,
            description: description.into(),
            basic: false,
            retry_after: None,
        }
    }
}

/// How the client authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// A client id and secret, in `Authorization: Basic` (`basic`) or in the body.
    Secret {
        id: String,
        secret: String,
        basic: bool,
    },
    /// A JWT client assertion (RFC 7523 §2.2); `client_id` is optional there.
    Assertion { id: Option<String>, jwt: String },
}

impl Client {
    /// Whether the client used HTTP Basic (its refusals carry `WWW-Authenticate`).
    pub fn basic(&self) -> bool {
        matches!(self, Client::Secret { basic: true, .. })
    }
}

/// Largest form accepted: a client assertion is a few kilobytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Read a token request: its `Content-Type`, its `Authorization` header and its body.
///
/// RFC 6749 §3.2: parameters are a form (`application/x-www-form-urlencoded`), none may appear
/// twice, an empty one counts as absent, unknown ones are ignored (`scope` among them: it is
/// optional and never required here). §2.3: a client uses one authentication method, so two
/// credentials in one request (Basic and a body secret, a secret and an assertion) are
/// `invalid_request`.
pub fn parse(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Client, OAuthError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "a token request is a form: Content-Type application/x-www-form-urlencoded",
        ));
    }
    let form = Form::parse(body)?;
    let basic = match authorization.map(str::trim).filter(|a| !a.is_empty()) {
        Some(header) => Some(basic_credentials(header)?),
        None => None,
    };
    match form.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(GRANT_TYPE) => {}
        Some(_) => {
            return Err(OAuthError::new(
                Code::UnsupportedGrantType,
                400,
                "only grant_type=client_credentials is served",
            ))
        }
    }
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let methods = [basic.is_some(), body_secret.is_some(), assertion.is_some()];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client credential in one request; send exactly one",
        ));
    }
    if let Some((id, secret)) = basic {
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok(Client::Secret {
            id,
            secret,
            basic: true,
        });
    }
    if let Some(jwt) = assertion {
        if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion needs client_assertion_type={ASSERTION_TYPE}"
            )));
        }
        return Ok(Client::Assertion {
            id: body_id.map(str::to_string),
            jwt: jwt.to_string(),
        });
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(Client::Secret {
            id: id.to_string(),
            secret: secret.to_string(),
            basic: false,
        }),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret needs its client_id",
        )),
        _ => Err(OAuthError::invalid_client(false)),
    }
}

/// The id and secret of `Authorization: Basic …`: RFC 6749 §2.3.1 form-url-encodes each before
/// RFC 7617 joins them with `:` and base64-encodes the pair. Another scheme, or a header that
/// does not decode, is a failed client authentication.
fn basic_credentials(header: &str) -> Result<(String, String), OAuthError> {
    let refused = || OAuthError::invalid_client(true);
    let (scheme, value) = header.split_once(' ').ok_or_else(refused)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "the token endpoint takes client credentials in Authorization: Basic, or in the body",
        ));
    }
    let decoded = STANDARD.decode(value.trim()).map_err(|_| refused())?;
    let pair = String::from_utf8(decoded).map_err(|_| refused())?;
    let (id, secret) = pair.split_once(':').ok_or_else(refused)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| refused())
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if id.is_empty() || secret.is_empty() {
        return Err(refused());
    }
    Ok((id, secret))
}

/// A form's parameters, each at most once.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if v.is_empty() {
                continue;
            }
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter '{}' appears more than once",
                    k.chars().take(40).collect::<String>()
                )));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Form(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_and_body_credentials_are_read_and_basic_is_form_decoded() {
        let c = parse(
            FORM,
            Some(&basic("cli%3Aa", "s%2Bb+c")),
            b"grant_type=client_credentials&scope=x",
        );
        assert_eq!(
            c,
            Ok(Client::Secret {
                id: "cli:a".into(),
                secret: "s+b c".into(),
                basic: true
            })
        );
        let c = parse(
            Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
            None,
            b"grant_type=client_credentials&client_id=cli&client_secret=s%26t",
        );
        assert_eq!(
            c,
            Ok(Client::Secret {
                id: "cli".into(),
                secret: "s&t".into(),
                basic: false
            })
        );
        let c = parse(
            FORM,
            None,
            format!("grant_type=client_credentials&client_id=cli&client_assertion_type={ASSERTION_TYPE}&client_assertion=a.b.c").as_bytes(),
        );
        assert_eq!(
            c,
            Ok(Client::Assertion {
                id: Some("cli".into()),
                jwt: "a.b.c".into()
            })
        );
    }

    #[test]
    fn every_malformed_request_gets_its_rfc_6749_error() {
        let code = |ct: Option<&str>, auth: Option<&str>, body: &str| {
            parse(ct, auth.map(str::to_string).as_deref(), body.as_bytes())
                .map_err(|e| (e.code.as_str(), e.status, e.basic))
        };
        let ok = "grant_type=client_credentials&client_id=a&client_secret=b";
        assert!(code(FORM, None, ok).is_ok());
        assert_eq!(
            code(Some("application/json"), None, ok),
            Err(("invalid_request", 400, false))
        );
        assert_eq!(code(None, None, ok), Err(("invalid_request", 400, false)));
        assert_eq!(
            code(FORM, None, "client_id=a&client_secret=b"),
            Err(("invalid_request", 400, false))
        );
        assert_eq!(
            code(
                FORM,
                None,
                "grant_type=password&client_id=a&client_secret=b"
            ),
            Err(("unsupported_grant_type", 400, false))
        );
        assert_eq!(
            code(FORM, None, &format!("{ok}&grant_type=client_credentials")),
            Err(("invalid_request", 400, false))
        );
        let two = basic("a", "b");
        assert_eq!(
            code(FORM, Some(&two), ok),
            Err(("invalid_request", 400, false))
        );
        assert_eq!(
            code(
                FORM,
                None,
                &format!("{ok}&client_assertion_type={ASSERTION_TYPE}&client_assertion=x")
            ),
            Err(("invalid_request", 400, false))
        );
        assert_eq!(
            code(
                FORM,
                None,
                "grant_type=client_credentials&client_assertion=x"
            ),
            Err(("invalid_request", 400, false))
        );
        assert_eq!(
            code(
                FORM,
                Some(&two),
                "grant_type=client_credentials&client_id=z"
            ),
            Err(("invalid_request", 400, false))
        );
        // No credential, or one that does not decode: the client did not authenticate.
        assert_eq!(
            code(FORM, None, "grant_type=client_credentials&client_id=a"),
            Err(("invalid_client", 401, false))
        );
        for bad in [
            "Basic !!!",
            "Basic",
            "Basic YWJj",
            &basic("", "b"),
            &basic("a", ""),
        ] {
            assert_eq!(
                code(FORM, Some(bad), "grant_type=client_credentials"),
                Err(("invalid_client", 401, true)),
                "{bad}"
            );
        }
        assert_eq!(
            code(FORM, Some("Bearer x"), "grant_type=client_credentials"),
            Err(("invalid_request", 400, false))
        );
        // An empty parameter is an absent one.
        assert!(code(FORM, None, &format!("{ok}&scope=&client_assertion=")).is_ok());
    }
}
