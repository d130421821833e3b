//! Webhooks as Standard Webhooks v1 defines them: the secret's shape, the signature of a
//! message, which URLs may receive one, and the retry rules a delivery follows. Pure, so that
//! a signature is checked here against the specification's own example and the URL rules
//! against every address form on the host.
//!
//! Standard Webhooks (standardwebhooks.com, "Standard Webhooks specification"): a message is
//! signed as `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` with the
//! bytes that follow `whsec_` in the secret (base64); several signatures, space-separated,
//! while a secret rotates. The receiver's libraries refuse a timestamp more than five minutes
//! off, so every attempt is signed afresh.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret starts with, as Standard Webhooks has it.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a secret (the specification allows 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// A secret from its random bytes: `whsec_` + base64.
pub fn secret_text(bytes: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// A new secret: [`SECRET_BYTES`] from getrandom.
pub fn new_secret() -> Result<String, crate::tenancy::token::RandomnessUnavailable> {
    Ok(secret_text(&crate::tenancy::token::random_bytes::<
        SECRET_BYTES,
    >()?))
}

/// The AES-GCM key webhook secrets are sealed under, from the Worker secret `WEBHOOK_KEY`
/// (any long random text): SHA-256 of it, with a label that keeps the key to this one use.
pub fn sealing_key(material: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"scim-edge webhook secrets v1\0");
    h.update(material.as_bytes());
    h.finalize().into()
}

/// The signing key of a secret in its text form; `None` if it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// One `v1,…` signature of a message.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key (the current secret first, then
/// one still signing during a rotation).
pub fn signature_header<K: AsRef<[u8]>>(
    keys: &[K],
    id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    keys.iter()
        .map(|k| signature(k.as_ref(), id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a URL may not receive webhooks, in words for the 400.
pub type Refused = &'static str;

/// Whether `url` may receive webhooks: `https` to a public name or address. Refused: another
/// scheme, credentials in the URL, a private (RFC 1918, RFC 4193), loopback, link-local,
/// shared (RFC 6598), unspecified, multicast or documentation address in any spelling the
/// WHATWG URL parser would accept (`0x7f.1`, `2130706433`, `[::ffff:127.0.0.1]`), and
/// names that only resolve inside a network (`localhost`, `*.local`, `*.internal`,
/// single-label names), and international (punycode) names. With `allow_loopback` (development), `http://127.0.0.1`,
/// `http://localhost` and `http://[::1]` are accepted too.
pub fn check_url(url: &str, allow_loopback: bool) -> Result<(), Refused> {
    if url.len() > 2000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must be at most 2000 characters, without spaces");
    }
    let lower = url.to_ascii_lowercase();
    let (https, rest) = match (
        lower.strip_prefix("https://"),
        lower.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err("the URL must be https"),
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("the URL must not carry credentials");
    }
    let host = host_of(authority).ok_or("the URL has no host")?;
    // A URL parser percent-decodes a host and maps it through IDNA (full-width digits and
    // dots become ASCII ones) before it reads an address: a host in anything but the letters,
    // digits, dots and hyphens of a DNS name, or an IPv6 literal, could hide an address from
    // the checks below. (The fuzzer's `webhook_input` target holds this to the `url` crate's
    // reading of every URL accepted here.)
    let literal = host.starts_with('[');
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || (literal && b"[]:".contains(&b))
    };
    if !host.bytes().all(allowed) {
        return Err("the URL's host must be a DNS name in ASCII or an IP address");
    }
    // A punycode label is one IDNA validates and decodes before fetch reads the host: without
    // IDNA's tables in the Worker, an international name is refused rather than guessed at.
    if host.split('.').any(|label| label.starts_with("xn--")) {
        return Err(
            "the URL's host must be an ASCII name: international (punycode) names are not accepted",
        );
    }
    if !https {
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
        if !(allow_loopback && loopback) {
            return Err("the URL must be https");
        }
    } else if internal_name(host) || internal_address(host) {
        return Err(INTERNAL);
    }
    Ok(())
}

const INTERNAL: Refused =
    "the URL must not point at a private, loopback or link-local address or an internal name";

/// The host of an authority, without its port; `None` if empty or the port is not a port
/// number (at most 65535, as a URL parser reads it).
fn host_of(authority: &str) -> Option<&str> {
    let port_ok = |p: &str| all_digits(p) && p.parse::<u16>().is_ok();
    let host = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, port) = authority.split_at(end.checked_add(1)?);
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(port_ok)) {
            return None;
        }
        host
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port_ok(port) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    (!host.is_empty())
        .then_some(host.trim_end_matches('.'))
        .filter(|h| !h.is_empty())
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Names that resolve only inside a network, never to the vendor's public endpoint.
fn internal_name(host: &str) -> bool {
    const SUFFIXES: [&str; 7] = [
        ".localhost",
        ".local",
        ".internal",
        ".intranet",
        ".lan",
        ".home.arpa",
        ".in-addr.arpa",
    ];
    if host.starts_with('[') {
        return false;
    }
    !host.contains('.')
        || host == "localhost"
        || SUFFIXES.iter().any(|s| host.ends_with(s))
        // Cloudflare's own internal names.
        || host.ends_with(".cloudflare.internal")
}

/// An address literal (in any spelling a URL parser turns into one) that is not public.
fn internal_address(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // A zone (`%25eth0`) was refused with the other characters an address cannot have.
        return match v6.parse::<Ipv6Addr>() {
            Ok(a) => !public_v6(a),
            // A bracketed host that is no address: the URL parser refuses it anyway.
            Err(_) => true,
        };
    }
    // The WHATWG parser reads a host whose last label is numeric as an IPv4 address, in
    // decimal, octal or hex, with one to four parts: anything of that shape is an address.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = |l: &str| {
        l.strip_prefix("0x")
            .map_or(all_digits(l), |h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !numeric(last) {
        return false;
    }
    match whatwg_ipv4(host) {
        Some(a) => !public_v4(a),
        None => true,
    }
}

/// An IPv4 host as the WHATWG URL Standard's "IPv4 parser" reads it (parts in decimal, `0x`
/// hex or `0` octal; the last part fills the remaining bytes).
fn whatwg_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let values = parts
        .iter()
        .map(|p| {
            if let Some(hex) = p.strip_prefix("0x") {
                if hex.is_empty() {
                    Some(0)
                } else {
                    u64::from_str_radix(hex, 16).ok()
                }
            } else if p.len() > 1 && p.starts_with('0') {
                u64::from_str_radix(p.get(1..)?, 8).ok()
            } else {
                p.parse::<u64>().ok()
            }
        })
        .collect::<Option<Vec<u64>>>()?;
    let (last, init) = values.split_last()?;
    if init.iter().any(|v| *v > 255) {
        return None;
    }
    let rest_bits = 8u32.checked_mul(4u32.checked_sub(init.len() as u32)?)?;
    if *last >= 1u64.checked_shl(rest_bits)? {
        return None;
    }
    let mut n: u64 = 0;
    for (i, v) in init.iter().enumerate() {
        n |= v.checked_shl(24u32.checked_sub(8u32.checked_mul(i as u32)?)?)?;
    }
    Some(Ipv4Addr::from(u32::try_from(n | last).ok()?))
}

fn public_v4(a: Ipv4Addr) -> bool {
    let [x, y, ..] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || x == 0
        // Shared address space (RFC 6598) and the benchmarking block (RFC 2544).
        || (x == 100 && (64..128).contains(&y))
        || (x == 198 && (18..20).contains(&y))
        || x >= 240)
}

fn public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let first = a.segments().first().copied().unwrap_or_default();
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        // Unique local (fc00::/7), link-local (fe80::/10), documentation (2001:db8::/32).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && a.segments().get(1) == Some(&0x0db8))
        // The IPv4-compatible and NAT64 forms of an address hide a v4 one.
        || a.segments().get(..6) == Some(&[0, 0, 0, 0, 0, 0])
        || a.segments().get(..6) == Some(&[0x64, 0xff9b, 0, 0, 0, 0]))
}

/// Svix's schedule, which Standard Webhooks' guidance follows: seconds after the first
/// attempt's failure before each retry.
pub const DEFAULT_SCHEDULE: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// The longest delay a Queue message takes (Cloudflare Queues: `delaySeconds` up to 12 hours).
pub const MAX_DELAY_S: i64 = 43_200;

/// A retry schedule from its setting (`WEBHOOK_RETRY_SCHEDULE`: seconds, comma-separated).
pub fn parse_schedule(text: &str) -> Result<Vec<i64>, String> {
    text.split(',')
        .map(|s| match s.trim().parse::<i64>() {
            Ok(n) if (0..=MAX_DELAY_S).contains(&n) => Ok(n),
            _ => Err(format!(
                "WEBHOOK_RETRY_SCHEDULE: '{}' is not a number of seconds from 0 to {MAX_DELAY_S}",
                s.trim()
            )),
        })
        .collect()
}

/// What one attempt's answer means for the event, Standard Webhooks' rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `2xx`.
    Delivered,
    /// `410 Gone`: the receiver asks for no more; the endpoint is disabled.
    Gone,
    /// Anything else (a `3xx` is not followed), or no answer in time.
    Failed,
}

pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        _ => Verdict::Failed,
    }
}

/// The seconds a `Retry-After` asks for (RFC 9110 §10.2.3: delay-seconds or an HTTP-date),
/// honoured only on `429` and `503`; `None` if absent or unreadable.
pub fn retry_after(status: Option<u16>, header: Option<&str>, now_ms: i64) -> Option<i64> {
    if !matches!(status, Some(429 | 503)) {
        return None;
    }
    let value = header?.trim();
    if all_digits(value) {
        return value.parse::<i64>().ok().map(|s| s.min(MAX_DELAY_S));
    }
    let at = http_date(value)?;
    Some(
        at.saturating_sub(now_ms)
            .max(0)
            .saturating_div(1000)
            .min(MAX_DELAY_S),
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix milliseconds.
fn http_date(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut words = text.split_once(", ")?.1.split(' ');
    let (day, month, year, time) = (words.next()?, words.next()?, words.next()?, words.next()?);
    if words.next() != Some("GMT") {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == month)?.checked_add(1)?;
    crate::time::parse_rfc3339(&format!("{year}-{month:02}-{day}T{time}Z"))
}

/// When the attempt numbered `attempt` (1 is the first) failed, the seconds until the next
/// one; `None` when the schedule is spent and the event goes to the dead-letter list. A
/// `Retry-After` the receiver sent replaces the schedule's delay, never the count.
pub fn next_delay(schedule: &[i64], attempt: u32, asked: Option<i64>) -> Option<i64> {
    let planned = schedule.get(usize::try_from(attempt.checked_sub(1)?).ok()?)?;
    Some(asked.unwrap_or(*planned).clamp(0, MAX_DELAY_S))
}

/// The stable id of an event (`webhook-id`): where it was first committed and its place there,
/// which a move keeps, so that every retry and replay carries the same one.
pub fn event_id(birth: &str, seq: i64) -> String {
    format!("evt_{}_{seq}", birth.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_example() {
        // Standard Webhooks' own test vector (its libraries' test suites).
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let both = signature_header(
            &[key.clone(), key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(both.split(' ').count(), 2);
        assert!(secret_text(&[0; 32]).starts_with("whsec_"));
        assert_eq!(secret_key(&secret_text(&[7; 32])).unwrap(), vec![7; 32]);
        assert_eq!(secret_key("sk_nope"), None);
    }

    #[test]
    fn only_public_https_urls_receive_webhooks() {
        for ok in [
            "https://hooks.example.com/scim",
            "https://example.com:8443/x?y=1",
            "https://93.184.216.34/hook",
            "https://[2606:4700::1111]/hook",
            "https://api.example.com./hook",
        ] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://example.com/",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://localhost/",
            "https://app.localhost/",
            "https://printer.local/",
            "https://metadata.google.internal/",
            "https://intranet/",
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://10.0.0.8/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[fd00::1]/",
            "https://[fe80::1%25eth0]/",
            "https://256.1.1.1/",
            "https:///nohost",
            "https://example.com:port/",
            "https://example.com:99999/",
            "https://exa mple.com/",
            // What a URL parser decodes or maps into one of the above: percent-encoding and
            // IDNA's full-width digits and dots.
            "https://0x7f.0.0.%31/",
            "https://evil.%6c%6fcal/",
            "https://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            "https://127\u{3002}0.0.1/",
            "https://xn--nxasmq6b.local/",
            "https://xn--bcher-kva.example/hook",
            "https://XN--BCHER-KV.A.EX.MPLE/hook",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_url("http://127.0.0.1:9000/hook", true), Ok(()));
        assert!(check_url("http://127.0.0.1:9000/hook", false).is_err());
        assert!(check_url("http://10.0.0.1/hook", true).is_err());
    }

    #[test]
    fn the_schedule_and_the_receivers_answers() {
        assert_eq!(parse_schedule("5,300, 1800").unwrap(), vec![5, 300, 1800]);
        assert!(parse_schedule("5,x").is_err());
        assert!(parse_schedule("99999").is_err());
        let s = DEFAULT_SCHEDULE;
        assert_eq!(next_delay(&s, 1, None), Some(5));
        assert_eq!(next_delay(&s, 7, None), Some(36_000));
        assert_eq!(next_delay(&s, 8, None), None);
        assert_eq!(next_delay(&s, 2, Some(60)), Some(60));
        assert_eq!(next_delay(&s, 0, None), None);
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        assert_eq!(verdict(Some(302)), Verdict::Failed);
        assert_eq!(verdict(Some(410)), Verdict::Gone);
        assert_eq!(verdict(None), Verdict::Failed);
        assert_eq!(retry_after(Some(429), Some("120"), 0), Some(120));
        assert_eq!(retry_after(Some(500), Some("120"), 0), None);
        assert_eq!(
            retry_after(Some(503), Some("Thu, 01 Jan 1970 00:01:40 GMT"), 40_000),
            Some(60)
        );
        assert_eq!(retry_after(Some(503), Some("soon"), 0), None);
        assert_eq!(event_id("SHARD_2", 41), "evt_shard_2_41");
    }
}
