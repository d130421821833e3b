//! Query-string encoding shared by the test binaries (`application/x-www-form-urlencoded`,
//! RFC 3986 unreserved characters kept, space as `+`), so the fuzzer and the integration tests
//! send queries the same way a client does.

/// Percent-encode `s` for a query-string key or value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
