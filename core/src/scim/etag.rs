//! Entity tags (RFC 7644 §3.14): a resource's `meta.version` is the weak ETag `W/"<version>"`,
//! and `If-Match` / `If-None-Match` are compared against it with the weak comparison of RFC 9110
//! §8.8.3.2 (`W/"3"` matches `"3"`; `*` matches any version).

/// The weak ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Whether an `If-Match` / `If-None-Match` header value names this version.
pub fn names(header: &str, version: i64) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = opaque(&etag(version));
    header
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == want)
}

/// Whether a write at this version may go ahead under `If-Match` (no header: always).
pub fn if_match_allows(if_match: Option<&str>, version: i64) -> bool {
    if_match.is_none_or(|h| names(h, version))
}

/// Whether `If-Match` names one version (not `*`): only then must a delete check it.
pub fn names_a_version(if_match: Option<&str>) -> bool {
    if_match.is_some_and(|h| h.trim() != "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison() {
        assert_eq!(etag(3), "W/\"3\"");
        assert!(names("W/\"3\"", 3));
        assert!(names("\"3\"", 3));
        assert!(names("W/\"1\", W/\"3\"", 3));
        assert!(names("*", 3));
        assert!(!names("W/\"2\"", 3));
        assert!(if_match_allows(None, 3) && !if_match_allows(Some("W/\"2\""), 3));
        assert!(names_a_version(Some("W/\"2\"")) && !names_a_version(Some(" * ")));
    }
}
