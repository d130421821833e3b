//! Unicode case folding: how `caseExact: false` strings compare (RFC 7643 §2.3.1, §7).
//!
//! SQLite's `NOCASE` and `lower()` fold ASCII only, so `ÄLICE@x.de` and `älice@x.de` would be
//! two users. Full Unicode case folding (the Unicode Character Database's CaseFolding.txt,
//! statuses C and F, through the `unicase` crate) makes them one: `Ä`→`ä`, `ß`→`ss`, `Σ`/`ς`→`σ`,
//! `K` (Kelvin)→`k`. The store keeps a folded copy of each case-insensitive column beside it
//! (`user_name_key`, …), compares and indexes that, and binds folded filter values; the PATCH
//! engine compares folded values in memory. Folding is per character, with no context, so a
//! table of single-character foldings (the migration that fills the keys of existing rows)
//! computes exactly what [`fold`] does.
//!
//! Not done: Unicode normalisation (NFC vs NFD). Identity providers send NFC; an NFD userName is
//! a different key.

use unicase::UniCase;

/// The case-folded form of `s`, for storage and comparison (not for display).
pub fn fold(s: &str) -> String {
    UniCase::new(s).to_folded_case()
}

/// Whether two strings are equal after case folding.
pub fn eq(a: &str, b: &str) -> bool {
    unicase::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_beyond_ascii() {
        assert_eq!(fold("ÄLICE@X.de"), "älice@x.de");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("STRASSE"), "strasse");
        assert_eq!(fold("ΣΊΣΥΦΟΣ"), fold("σίσυφος"));
        assert_eq!(fold("\u{212A}elvin"), "kelvin");
        assert!(eq("ÄLICE@x.de", "älice@X.DE"));
        assert!(!eq("alice", "älice"));
        assert_eq!(fold("plain ascii"), "plain ascii");
    }

    #[test]
    fn folding_is_per_character() {
        // What the migration's table relies on: folding a string folds each character alone.
        let s = "İstanbul ΣΑΣ straße ǅ ﬀ 𝔘 ᾈ";
        let by_char: String = s.chars().map(|c| fold(&c.to_string())).collect();
        assert_eq!(fold(s), by_char);
    }
}
