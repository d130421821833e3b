//! The house rules of `lib.rs`, checked on the source itself: a test that fails when a file
//! imports across the layering rule, and one that fails when a production function grows past
//! a screen ([`MAX_FUNCTION_LINES`]).
//!
//! The compiler already holds part of it: the pure core is a crate of its own (`core/`) that
//! cannot name `worker` or anything above it. Within this crate the floors are folders, so the
//! rest is read from the text: every line that is not a comment, every path it names.

use std::path::{Path, PathBuf};

/// What each floor of this crate must not name.
const RULES: [(&str, &[&str]); 3] = [
    // The edge talks to the services only; what it renders of the store's types, the services
    // re-export.
    ("src/http", &["crate::store", "store::"]),
    // No runtime below the edge, and nothing above.
    (
        "src/service",
        &[
            "crate::http",
            "worker::",
            "use worker",
            "wasm_bindgen",
            "super::super",
        ],
    ),
    (
        "src/store",
        &[
            "crate::http",
            "crate::service",
            "worker::",
            "use worker",
            "wasm_bindgen",
            "super::super",
            // Outcomes, not statuses: the services map a StoreError to their surface's error.
            "ScimType",
            "scim::error::Error",
            "scim::error::{",
        ],
    ),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` that break `forbidden`, as `line: text`.
fn breaches(text: &str, forbidden: &[&str]) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| forbidden.iter().any(|f| line.contains(f)))
        .map(|(n, line)| format!("{}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn every_floor_imports_only_the_floors_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for (dir, forbidden) in RULES {
        let mut paths = Vec::new();
        files(&root.join(dir), &mut paths);
        assert!(!paths.is_empty(), "no source under {dir}");
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("source file");
            for b in breaches(&text, forbidden) {
                found.push(format!("{}:{b}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports across the rule:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_and_skips_a_comment() {
    let edge = RULES[0].1;
    assert_eq!(
        breaches("use crate::store::gate::Gated;\n", edge),
        ["1: use crate::store::gate::Gated;"]
    );
    assert!(breaches("//! the gate (`store::gate`)\n", edge).is_empty());
    assert_eq!(
        breaches("let x = 1;\n    worker::Date::now()", RULES[1].1).len(),
        1
    );
}

/// The longest a production function may be, from its `fn` line to its closing brace.
const MAX_FUNCTION_LINES: usize = 80;

/// Whether `path` is compiled for tests only: its parent declares it under `#[cfg(test)]` (or
/// `cfg(any(test, …))`, the host test helpers).
fn test_only(path: &Path) -> bool {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) else {
        return false;
    };
    let parent = ["mod.rs", "lib.rs"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists() && p.as_path() != path);
    let Some(text) = parent.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, l)| {
        l.trim_end().ends_with(&format!("mod {stem};"))
            && i > 0
            && lines
                .get(i - 1)
                .is_some_and(|p| p.contains("cfg(test)") || p.contains("cfg(any(test"))
    })
}

/// The code of `line` without comments, string and character literals (`raw` carries a raw
/// string's closing quote across lines, `quoted` an ordinary string).
fn code(line: &str, raw: &mut Option<String>, quoted: &mut bool) -> String {
    let chars: Vec<char> = line.chars().collect();
    let (mut out, mut i) = (String::new(), 0);
    while let Some(&c) = chars.get(i) {
        let rest: String = chars.get(i..).unwrap_or_default().iter().collect();
        if let Some(close) = raw.clone() {
            if rest.starts_with(&close) {
                *raw = None;
                i += close.len();
            } else {
                i += 1;
            }
        } else if *quoted {
            match c {
                '\\' => i += 2,
                '"' => {
                    *quoted = false;
                    i += 1;
                }
                _ => i += 1,
            }
        } else if rest.starts_with("//") {
            break;
        } else if let Some(hashes) = rest.strip_prefix('r').and_then(|r| {
            let n = r.chars().take_while(|&h| h == '#').count();
            r.get(n..).filter(|q| q.starts_with('"')).map(|_| n)
        }) {
            *raw = Some(format!("\"{}", "#".repeat(hashes)));
            i += hashes + 2;
        } else if c == '"' {
            *quoted = true;
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
        } else if c == '\'' && chars.get(i + 1) == Some(&'\\') {
            i += chars
                .iter()
                .skip(i + 2)
                .position(|&q| q == '\'')
                .map_or(2, |p| p + 3);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Each production function of `text` (outside `#[cfg(test)]` modules) and its length.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let (mut raw, mut quoted) = (None, false);
    let (mut depth, mut test_depth, mut cfg_test) = (0usize, None, false);
    let (mut pending, mut open, mut found) = (None, Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            cfg_test = true;
        }
        let words: Vec<&str> = trimmed
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .collect();
        if let Some(at) = words.iter().position(|w| *w == "fn") {
            let before = words.get(..at).unwrap_or_default();
            let qualifiers = ["", "pub", "crate", "super", "const", "async", "unsafe"];
            if before.iter().all(|w| qualifiers.contains(w)) && pending.is_none() {
                pending = words.get(at + 1).map(|name| (name.to_string(), n));
            }
        }
        for c in code(line, &mut raw, &mut quoted).chars() {
            match c {
                '{' => {
                    depth += 1;
                    if cfg_test && test_depth.is_none() {
                        test_depth = Some(depth);
                    }
                    cfg_test = false;
                    if let Some((name, start)) = pending.take() {
                        open.push((name, start, depth));
                    }
                }
                '}' => {
                    if open.last().is_some_and(|(_, _, d)| *d == depth) {
                        if let Some((name, start, _)) = open.pop() {
                            if test_depth.is_none() {
                                found.push((name, n - start + 1));
                            }
                        }
                    }
                    if test_depth == Some(depth) {
                        test_depth = None;
                    }
                    depth = depth.saturating_sub(1);
                }
                ';' => {
                    pending = None;
                    cfg_test = false;
                }
                _ => {}
            }
        }
    }
    found
}

#[test]
fn no_production_function_is_longer_than_a_screen() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    files(&root.join("src"), &mut paths);
    files(&root.join("core/src"), &mut paths);
    let mut long = Vec::new();
    for path in paths.iter().filter(|p| !test_only(p)) {
        let text = std::fs::read_to_string(path).expect("source file");
        for (name, lines) in function_lengths(&text) {
            if lines > MAX_FUNCTION_LINES {
                long.push(format!("{}: {name} ({lines} lines)", path.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "longer than {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_check_counts_a_function_and_skips_tests_and_strings() {
    let text = "pub async fn a() {\n    let s = \"{\";\n    let c = '}';\n}\n\
                #[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\n\
                fn b() -> u8 { r#\"}\"#; 1 }\n";
    assert_eq!(
        function_lengths(text),
        [("a".to_string(), 4), ("b".to_string(), 1)]
    );
}
