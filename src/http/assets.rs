//! The files the Worker serves as they are: the console's page, script and style, and the
//! admin API's OpenAPI document. They live in `assets/` and are deployed beside the wasm as the
//! Worker's static assets (Cloudflare's "Static Assets", the `ASSETS` binding of wrangler.toml)
//! instead of being compiled into it, where they cost about 18 KB of the module's gzip. The
//! Worker runs first on every request (`run_worker_first`): a file is reached only through the
//! route that serves it, with that route's authentication and headers.

use super::app::App;
use scim_core::scim::error::{Error, Result};

/// The binding of the static assets (wrangler.toml's `[assets]`).
const BINDING: &str = "ASSETS";

/// The text of `path` (`/console/page.html`) among the assets.
pub async fn text(app: &App, path: &str) -> Result<String> {
    let missing = |why: String| Error::internal(format!("asset {path}: {why}"));
    let assets = app
        .env
        .assets(BINDING)
        .map_err(|e| missing(format!("no {BINDING} binding ({e})")))?;
    // Any origin: the binding reads only the path. A GET through `outgoing`, not
    // `fetch(url, None)`, whose `RequestInit` conversion is what `outgoing` avoids.
    let url = format!("https://assets.invalid{path}");
    let request = super::outgoing(&url, &worker::web_sys::RequestInit::new())
        .map_err(|e| missing(e.to_string()))?;
    let mut response = assets
        .fetch_request(request)
        .await
        .map_err(|e| missing(e.to_string()))?;
    if response.status_code() != 200 {
        return Err(missing(format!("status {}", response.status_code())));
    }
    response.text().await.map_err(|e| missing(e.to_string()))
}
