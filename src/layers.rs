//! The layering rule of `lib.rs`, checked on the source itself: a test that fails when a file
//! imports across the rule.
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
