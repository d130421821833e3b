//! Secret Tokens: generation, storage form, and comparison.
//!
//! A token is `scim_` followed by 32 random bytes (getrandom) in unpadded URL-safe base64: 256
//! bits of entropy, safe in a header, and a prefix that secret scanners can match. Only its
//! SHA-256 is stored; the plaintext is returned once, by the create call. A fast hash suffices
//! (no password-hashing KDF): the input is uniformly random, so there is nothing to brute-force.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Recognisable prefix of every Secret Token.
pub const PREFIX: &str = "scim_";

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// A freshly generated token: the plaintext (shown once), its stored hash and its display hint.
pub struct NewToken {
    pub plaintext: String,
    pub hash: String,
    pub hint: String,
}

/// The operating system's randomness failed; callers answer 500.
#[derive(Debug)]
pub struct RandomnessUnavailable(pub String);

pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomnessUnavailable> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomnessUnavailable(e.to_string()))?;
    Ok(buf)
}

/// Generate a new Secret Token.
pub fn generate() -> Result<NewToken, RandomnessUnavailable> {
    let plaintext = format!(
        "{PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?)
    );
    Ok(NewToken {
        hash: hash(&plaintext),
        hint: hint(&plaintext),
        plaintext,
    })
}

/// A random secret other than a Secret Token (a console link, a console session, its CSRF
/// token): a prefix and 32 random bytes, URL-safe. Stored, like tokens, only as [`hash`].
pub fn secret(prefix: &str) -> Result<String, RandomnessUnavailable> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?)
    ))
}

/// A random identifier for rows (`tok_…`, `ten_…`): 16 bytes, URL-safe, no secret.
pub fn random_id(prefix: &str) -> Result<String, RandomnessUnavailable> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<16>()?)
    ))
}

/// A random (version 4) UUID, for resource ids: identity providers treat ids as opaque strings,
/// and a UUID is what most of them expect to see.
pub fn random_uuid() -> Result<String, RandomnessUnavailable> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 hex digits: a dash before bytes 4, 6, 8 and 10.
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        push_hex(&mut out, *x);
    }
    Ok(out)
}

/// Append a byte as two lower-case hex digits.
fn push_hex(out: &mut String, b: u8) {
    for nibble in [b >> 4, b & 0xf] {
        out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
    }
}

/// The stored form of a token: lower-case hex SHA-256.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        push_hex(&mut out, b);
    }
    out
}

/// The last four characters, so an admin can tell tokens apart in a list.
pub fn hint(token: &str) -> String {
    let mut last: Vec<char> = token.chars().rev().take(4).collect();
    last.reverse();
    last.into_iter().collect()
}

/// Compare two secrets in constant time. Both are hashed first, so neither the content nor the
/// length of the expected secret leaks through timing.
pub fn secrets_equal(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// Compare two stored hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The credential of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme is
/// case-insensitive). `None` for any other scheme, an empty token, or inner white space.
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_random_and_hashed() {
        let a = generate().expect("randomness");
        let b = generate().expect("randomness");
        assert!(a.plaintext.starts_with(PREFIX));
        assert_eq!(a.plaintext.len(), PREFIX.len() + 43); // 32 bytes, unpadded base64
        assert!(a.plaintext[PREFIX.len()..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(a.hash, hash(&a.plaintext));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.plaintext[PREFIX.len()..]));
        assert_eq!(a.hint, &a.plaintext[a.plaintext.len() - 4..]);
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn comparisons() {
        assert!(secrets_equal("dev-admin-token", "dev-admin-token"));
        assert!(!secrets_equal("dev-admin-token", "dev-admin-tokeN"));
        assert!(!secrets_equal("", "dev-admin-token"));
        assert!(hashes_equal(&hash("x"), &hash("x")));
        assert!(!hashes_equal(&hash("x"), &hash("y")));
        assert!(!hashes_equal("ab", "abc"));
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer("Bearer scim_abc"), Some("scim_abc"));
        assert_eq!(bearer("bearer   scim_abc "), Some("scim_abc"));
        assert_eq!(bearer("BEARER scim_abc"), Some("scim_abc"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer a b"), None);
        assert_eq!(bearer("scim_abc"), None);
    }

    #[test]
    fn uuids_are_version_4() {
        let u = random_uuid().expect("randomness");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, random_uuid().expect("randomness"));
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let a = random_id("tok_").expect("randomness");
        assert!(a.starts_with("tok_") && a.len() == 4 + 22);
        assert_ne!(a, random_id("tok_").expect("randomness"));
    }
}
