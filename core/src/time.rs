//! Timestamps as RFC 3339 UTC strings (`2026-11-26T08:06:44.123Z`), without a date crate.
//!
//! The store keeps instants as Unix milliseconds (INTEGER columns sort and compare cheaply); this
//! module renders them for `createdAt`, `lastUsedAt` and SCIM `meta` (RFC 7643 §2.3.5 dateTime).
//! The fixed width (always milliseconds, always `Z`) makes the strings sort like the instants.

/// The instants that format as four-digit years: 0000-01-01T00:00:00.000Z to
/// 9999-12-31T23:59:59.999Z. Bounding the input keeps every step of the calendar arithmetic far
/// from `i64`'s limits.
pub const MIN_MS: i64 = -62_167_219_200_000;
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Format Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (clamped to years 0000–9999).
pub fn rfc3339(unix_ms: i64) -> String {
    let unix_ms = unix_ms.clamp(MIN_MS, MAX_MS);
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        tod.div_euclid(3600),
        tod.rem_euclid(3600).div_euclid(60),
        tod.rem_euclid(60)
    )
}

/// A run of ASCII digits as a number; `None` for anything else (signs included).
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse an RFC 3339 / xsd:dateTime instant (`2026-01-01T00:00:00Z`, with optional fractional
/// seconds and a `Z` or `±hh:mm` offset; a date alone means its midnight UTC) into Unix
/// milliseconds. Used for filters such as `meta.created gt "…"` (RFC 7644 §3.4.2.2).
///
/// Client text: every piece is taken with `str::get` (never a slice that could split a
/// character) and combined with checked arithmetic.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = text.trim();
    let date = t.get(..10)?;
    if date.get(4..5) != Some("-") || date.get(7..8) != Some("-") {
        return None;
    }
    let (y, mo, d) = (
        digits(date.get(0..4)?)?,
        digits(date.get(5..7)?)?,
        digits(date.get(8..10)?)?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let day_ms = days_from_civil(y, mo, d).checked_mul(86_400_000)?;
    let rest = t.get(10..)?;
    if rest.is_empty() {
        return Some(day_ms);
    }
    let clock = rest.strip_prefix(['T', 't', ' '])?;
    if clock.get(2..3) != Some(":") || clock.get(5..6) != Some(":") {
        return None;
    }
    let (h, mi, s) = (
        digits(clock.get(0..2)?)?,
        digits(clock.get(3..5)?)?,
        digits(clock.get(6..8)?)?,
    );
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut zone = clock.get(8..)?;
    let mut ms = 0i64;
    if let Some(fraction) = zone.strip_prefix('.') {
        let len = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        let (fraction, after) = fraction.split_at_checked(len)?;
        // Milliseconds from the first three fractional digits.
        let padded: String = fraction.chars().chain("000".chars()).take(3).collect();
        ms = digits(&padded)?;
        if fraction.is_empty() {
            return None;
        }
        zone = after;
    }
    let offset_min = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.get(3..4) != Some(":") {
                return None;
            }
            let (oh, om) = (digits(zone.get(1..3)?)?, digits(zone.get(4..6)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            oh.checked_mul(60)?.checked_add(om)?.checked_mul(sign)?
        }
    };
    let clock_s = h
        .checked_mul(3600)?
        .checked_add(mi.checked_mul(60)?)?
        .checked_add(s)?
        .checked_sub(offset_min.checked_mul(60)?)?;
    day_ms
        .checked_add(clock_s.checked_mul(1000)?)?
        .checked_add(ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = (y.rem_euclid(4) == 0 && y.rem_euclid(100) != 0) || y.rem_euclid(400) == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
// Bounded: callers pass a four-digit year and a valid month and day, so every term is < 2^32.
#[allow(clippy::arithmetic_side_effects)]
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, public domain).
// Bounded: `rfc3339` clamps to years 0000–9999, so |z| < 2^22 and every term is < 2^32.
#[allow(clippy::arithmetic_side_effects)]
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_680_404_123), "2026-11-26T08:06:44.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_what_it_formats_and_common_variants() {
        for ms in [0, 951_782_400_000, 1_795_680_404_123, -1] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            parse_rfc3339("2026-11-26T08:06:44Z"),
            Some(1_795_680_404_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T09:06:44.1234+01:00"),
            Some(1_795_680_404_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T03:06:44-05:00"),
            Some(1_795_680_404_000)
        );
        assert_eq!(parse_rfc3339("2026-11-26"), Some(1_795_651_200_000));
        for bad in [
            "",
            "2026",
            "2026-13-01T00:00:00Z",
            "2026-02-30",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zjunk",
            "26-01-01",
            "2026-01-01T00:00:00+1:000",
            "+026-01-01",
            "2026-01-01T00:00:00é",
            "2026-01-01T00:00:00.",
            "éé26-01-01",
            "2026-0é-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn agrees_with_a_day_by_day_walk() {
        // Walk every day from 1970 to 2100 and check month/day roll-over against a naive calendar.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for day in 0..47_482i64 {
            assert_eq!(civil_from_days(day), (y, m, d), "day {day}");
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), day);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
