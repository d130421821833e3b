//! The one place where a result becomes an HTTP response, and reading request bodies with a
//! cap.

use futures_util::StreamExt;
use serde_json::{json, Value};
use worker::{Headers, Request, Response};

use super::limit;
use scim_core::oauth::{Code, OAuthError};
use scim_core::scim::error::{Error, Result, SCIM_MEDIA_TYPE};

/// A successful answer, independent of the runtime: status, JSON body (or none), extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Which API a request belongs to decides the error body and the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Scim,
    Admin,
    /// The documentation page at `/docs` (the ServiceProviderConfig's `documentationUri`).
    Docs,
    /// A tenant's token endpoint and its metadata (`super::oauth`): RFC 6749 §5.2 errors.
    OAuth,
}

/// The single mapping from a handler's result to an HTTP response.
pub fn render(surface: Surface, result: Result<Reply>) -> worker::Result<Response> {
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => error_reply(surface, e),
    };
    let headers = Headers::new();
    let media_type = match surface {
        Surface::Scim => SCIM_MEDIA_TYPE,
        Surface::Admin | Surface::OAuth => "application/json",
        Surface::Docs => "text/markdown; charset=utf-8",
    };
    if surface == Surface::Admin {
        // Admin responses carry tenant data and, once, a plaintext token.
        headers.set("cache-control", "no-store")?;
    }
    if surface == Surface::OAuth && !reply.headers.iter().any(|(n, _)| *n == "cache-control") {
        // RFC 6749 §5.1: a token response, or its error, is never cached.
        headers.set("cache-control", "no-store")?;
        headers.set("pragma", "no-cache")?;
    }
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    let response = match reply.body {
        // The documentation page is the only text body; everything else is JSON.
        Some(Value::String(text)) if surface == Surface::Docs && reply.status == 200 => {
            headers.set("content-type", media_type)?;
            Response::from_bytes(text.into_bytes())?
        }
        Some(body) => {
            let json_type = if surface == Surface::Docs {
                SCIM_MEDIA_TYPE
            } else {
                media_type
            };
            headers.set("content-type", json_type)?;
            Response::from_bytes(body.to_string().into_bytes())?
        }
        None => Response::empty()?,
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}

fn error_reply(surface: Surface, e: Error) -> Reply {
    if let Some(cause) = &e.cause {
        // Logged with detail, answered without it.
        worker::console_error!("{} {}: {cause}", e.status, e.detail);
    }
    if surface == Surface::OAuth {
        let mut reply = oauth_reply(&oauth_error(&e));
        if let Some(allow) = e.allow {
            reply = reply.with_header("allow", allow);
        }
        return reply;
    }
    let body = match surface {
        Surface::Scim | Surface::Docs => e.scim_body(),
        Surface::Admin | Surface::OAuth => e.admin_body(),
    };
    let mut reply = Reply::json(e.status, body);
    if let Some(allow) = e.allow {
        reply = reply.with_header("allow", allow);
    }
    let retry_after = match e.status {
        503 => Some(e.retry_after.unwrap_or(1)),
        429 => Some(e.retry_after.unwrap_or(limit::RETRY_AFTER_SECS)),
        _ => None,
    };
    if let Some(secs) = retry_after {
        reply = reply.with_header("retry-after", secs.to_string());
    }
    if e.status == 401 {
        // RFC 6750 §3: a 401 names the scheme the client must use.
        reply = reply.with_header("www-authenticate", "Bearer realm=\"scim-edge\"");
    }
    reply
}

/// An RFC 6749 §5.2 error as the reply.
pub fn oauth_reply(e: &OAuthError) -> Reply {
    let mut reply = Reply::json(
        e.status,
        json!({"error": e.code.as_str(), "error_description": e.description}),
    );
    if e.basic && e.status == 401 {
        reply = reply.with_header(
            "www-authenticate",
            "Basic realm=\"oauth\", charset=\"UTF-8\"",
        );
    }
    if let Some(secs) = e.retry_after {
        reply = reply.with_header("retry-after", secs.to_string());
    }
    reply
}

/// The same error as any other failure of the endpoint would be: a routing or reading error
/// becomes an RFC 6749 §5.2 body too.
pub fn oauth_error(e: &Error) -> OAuthError {
    match e.status {
        429 | 503 => {
            OAuthError::unavailable(e.status, e.retry_after.unwrap_or(1), e.detail.clone())
        }
        s if s >= 500 => OAuthError {
            code: Code::TemporarilyUnavailable,
            status: s,
            description: "the token endpoint failed; retry in a moment".into(),
            basic: false,
            retry_after: None,
        },
        s => OAuthError {
            status: s,
            ..OAuthError::invalid_request(e.detail.clone())
        },
    }
}

/// Read a request body of at most `cap` bytes. A `Content-Length` above the cap is refused with
/// 413 before a byte is read, one within it is read whole; a body without one (chunked) is read
/// chunk by chunk and refused as soon as it passes the cap. Either way no request makes the
/// Worker buffer more than `cap`.
pub async fn read_body(req: &mut Request, cap: usize) -> Result<Vec<u8>> {
    let too_large = || Error::new(413, format!("the request body is larger than {cap} bytes"));
    if let Some(len) = header(req, "content-length") {
        match len.trim().parse::<u64>() {
            Ok(n) if n > u64::try_from(cap).unwrap_or(u64::MAX) => return Err(too_large()),
            Ok(0) => return Ok(Vec::new()),
            Ok(_) => {
                // Within the cap: the whole body in one read (the runtime holds a body to its
                // `Content-Length`), instead of a read per chunk.
                let bytes = req
                    .bytes()
                    .await
                    .map_err(|e| Error::invalid(format!("could not read the request body: {e}")))?;
                return if bytes.len() > cap {
                    Err(too_large())
                } else {
                    Ok(bytes)
                };
            }
            Err(_) => return Err(Error::invalid("Content-Length is not a number")),
        }
    }
    // No body at all (a GET, or an empty POST) is an empty body.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::invalid(format!("could not read the request body: {e}")))?;
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Largest admin API request body (webhooks' routes included): its bodies are a few hundred
/// bytes.
pub const ADMIN_BODY_BYTES: usize = 8 * 1024;

/// A JSON body of at most `cap` bytes (the admin API's and the console's), or `None` when
/// there is none.
pub async fn json_body<T: super::body::Field>(req: &mut Request, cap: usize) -> Result<Option<T>> {
    let bytes = read_body(req, cap).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    super::body::decode(&bytes).map(Some)
}

/// The request's method, when it is one the `worker` crate names. The crate reads any other
/// (`PROPFIND`, `MKCOL`, `SEARCH`) as GET, so a route matching on `req.method()` alone would
/// serve it as a GET, side effects included: [`super::handle`] answers those 405 first.
pub fn method(req: &Request) -> Option<worker::Method> {
    let named = req.method();
    req.inner()
        .method()
        .eq_ignore_ascii_case(named.as_ref())
        .then_some(named)
}

/// A request header, if present and readable.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}
