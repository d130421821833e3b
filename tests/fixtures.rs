//! Replays every request fixture in `tests/fixtures/<source>/` through the pure SCIM core and
//! checks the stored resource it must produce (or the error it must raise).
//!
//! Fixture shape: `{"source", "operation": "create"|"patch", "before"?, "request",
//! "expect" | "error": {"status", "scimType"}}`. Sources: `entra/` (bodies from
//! entra-dialect.md, verbatim where it quotes Microsoft), `okta/`, `rfc7644/` (RFC semantics).
//! `group_*` fixtures are replayed with the store on SQLite by `src/store/groups.rs`.

use serde_json::Value;
use std::path::Path;

use scim_edge::scim::schema::USER_TYPE;
use scim_edge::scim::{patch, resource};

fn replay(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let f: Value = serde_json::from_str(&text).map_err(|e| format!("bad fixture: {e}"))?;
    let request = &f["request"];
    let result = match f["operation"].as_str() {
        // Group fixtures need the store (membership rows): src/store/groups.rs replays them.
        Some(op) if op.starts_with("group_") => return Ok(()),
        Some("create") => resource::from_request(&USER_TYPE, request),
        Some("patch") => {
            let before = f["before"]
                .as_object()
                .cloned()
                .ok_or("patch fixture without 'before'")?;
            patch::parse(&USER_TYPE, request)
                .and_then(|ops| patch::apply(&USER_TYPE, &before, &ops))
        }
        other => return Err(format!("unknown operation {other:?}")),
    };
    match (result, f.get("expect"), f.get("error")) {
        (Ok(data), Some(expect), None) => {
            let got = Value::Object(data);
            if &got == expect {
                Ok(())
            } else {
                Err(format!("expected {expect}\n   got      {got}"))
            }
        }
        (Err(e), None, Some(err)) => {
            let want_status = err["status"].as_u64().unwrap_or(0) as u16;
            let want_type = err["scimType"].as_str();
            if e.status == want_status && e.scim_type.map(|t| t.as_str()) == want_type {
                Ok(())
            } else {
                Err(format!(
                    "expected error {err}, got {} {:?}: {}",
                    e.status, e.scim_type, e.detail
                ))
            }
        }
        (Ok(data), None, Some(err)) => {
            Err(format!("expected error {err}, got {}", Value::Object(data)))
        }
        (Err(e), Some(_), None) => Err(format!(
            "unexpected error {} {:?}: {}",
            e.status, e.scim_type, e.detail
        )),
        _ => Err("fixture needs exactly one of 'expect' and 'error'".into()),
    }
}

#[test]
fn every_fixture_produces_its_expected_resource() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut failures = Vec::new();
    let mut count = 0;
    for source in ["entra", "okta", "rfc7644"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(source))
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            count += 1;
            if let Err(why) = replay(&file) {
                failures.push(format!(
                    "{}:\n   {why}",
                    file.strip_prefix(&root).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(count >= 50, "only {count} fixtures found");
    assert!(
        failures.is_empty(),
        "{} of {count} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
