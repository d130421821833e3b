//! The fuzzer: generated and mutated inputs through the SCIM core and the store on SQLite.
//!
//! Why a loop of our own: coverage-guided engines (libFuzzer, AFL++, cargo-fuzz) need a nightly
//! toolchain or a C toolchain they download, and this project builds from the package
//! registries on stable Rust only. Inputs here are generated from the grammar and the schema
//! tables ([`gen`]), then mutated character by character, which reaches the deep paths that
//! random bytes rarely do; a seed reproduces every input exactly.
//!
//! ```text
//! cargo test --features host-sqlite --test fuzz                 short pass (make test)
//! FUZZ_INPUTS=10000000 cargo test --profile fuzz --features host-sqlite --test fuzz   (make fuzz)
//! ```
//! Environment: `FUZZ_INPUTS` (total over all targets, default 12,000), `FUZZ_SEED` (default
//! fixed; `random` for a new one each run), `FUZZ_TARGETS` (comma-separated names),
//! `FUZZ_THREADS` (default: the machine's cores).
//!
//! Before any generated input, every input in `tests/fuzz/regressions/<target>.json` (each one a
//! failure the fuzzer found, since fixed) is replayed. A failing input is printed with its seed
//! and written to `target/fuzz-failures/`, ready to be added to that file.

mod gen;
mod rng;
mod targets;
#[path = "../support/url.rs"]
mod url;

use serde_json::Value;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use gen::{json_text, Gen};
use targets::{excerpt, Db, Target, Verdict, TARGETS};

thread_local! {
    /// The message of the last panic on this thread (the hook stores it instead of printing).
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Counts for one target.
#[derive(Default)]
struct Tally {
    inputs: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Run one input; `Err` describes a failure (a panic, a 5xx, a broken property).
fn run_one(target: &Target, db: &Db, input: &Value) -> Result<Verdict, String> {
    targets::sent(input);
    match catch_unwind(AssertUnwindSafe(|| (target.run)(db, input))) {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "panic: {}",
            PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()
        )),
    }
}

fn report_failure(target: &Target, seed: u64, n: u64, input: &Value, why: &str) {
    let dir = root().join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{}-{seed}-{n}.json", target.name));
    let _ = std::fs::write(&file, json_text(input));
    eprintln!(
        "FAIL {} (seed {seed}, input {n}): {why}\n  input: {}\n  saved: {}",
        target.name,
        excerpt(&json_text(input)),
        file.display()
    );
}

/// Replay the saved regressions of a target; returns how many failed.
fn replay_regressions(target: &Target, db: &Db) -> usize {
    let path = root().join(format!("tests/fuzz/regressions/{}.json", target.name));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return 0;
    };
    let inputs: Vec<Value> = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("FAIL {}: {e}", path.display());
            return 1;
        }
    };
    let mut failed = 0;
    for (n, input) in inputs.iter().enumerate() {
        if let Err(why) = run_one(target, db, input) {
            report_failure(target, 0, n as u64, input, &format!("regression: {why}"));
            failed += 1;
        }
    }
    failed
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("{info}");
        PANIC.with(|p| *p.borrow_mut() = Some(msg));
    }));
    let total = env_u64("FUZZ_INPUTS", 12_000);
    let seed = match std::env::var("FUZZ_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        _ => env_u64("FUZZ_SEED", 0x5C1_ED6E),
    };
    let threads = env_u64(
        "FUZZ_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
    )
    .max(1);
    let only: Option<Vec<String>> = std::env::var("FUZZ_TARGETS")
        .ok()
        .map(|v| v.split(',').map(str::trim).map(String::from).collect());
    let chosen: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| only.as_ref().is_none_or(|o| o.iter().any(|n| n == t.name)))
        .collect();
    let per_target = total.div_ceil(chosen.len().max(1) as u64);
    println!(
        "fuzz: {} targets, {per_target} inputs each, {threads} threads, seed {seed}",
        chosen.len()
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>9} {:>10}",
        "target", "inputs", "accepted", "refused", "seconds", "inputs/s"
    );
    let failed = AtomicBool::new(false);
    let started = Instant::now();
    let mut grand = 0u64;
    for (ti, target) in chosen.iter().enumerate() {
        let tally = Tally::default();
        let t0 = Instant::now();
        if replay_regressions(target, &Db::new()) > 0 {
            failed.store(true, Ordering::SeqCst);
        }
        std::thread::scope(|s| {
            for th in 0..threads {
                let (tally, failed) = (&tally, &failed);
                let share = per_target / threads + u64::from(th < per_target % threads);
                let thread_seed = seed ^ ((ti as u64) << 40) ^ (th << 32);
                s.spawn(move || {
                    let db = Db::new();
                    let mut g = Gen::new(thread_seed);
                    for n in 0..share {
                        let input = (target.generate)(&mut g);
                        tally.inputs.fetch_add(1, Ordering::Relaxed);
                        match run_one(target, &db, &input) {
                            Ok(Verdict::Accepted) => {
                                tally.accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Verdict::Refused) => {
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(why) => {
                                report_failure(target, thread_seed, n, &input, &why);
                                failed.store(true, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                    if std::env::var_os("FUZZ_REASONS").is_some() {
                        let mut top: Vec<(String, u64)> =
                            targets::REASONS.with(|r| r.borrow_mut().drain().collect());
                        top.sort_by_key(|r| std::cmp::Reverse(r.1));
                        for (reason, n) in top.iter().take(25) {
                            println!("    {n:>7}  {reason}");
                        }
                    }
                });
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        let n = tally.inputs.load(Ordering::Relaxed);
        grand += n;
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>9.1} {:>10.0}",
            target.name,
            n,
            tally.accepted.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
            secs,
            n as f64 / secs.max(1e-9)
        );
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<16} {:>10} {:>31.1} {:>10.0}",
        "total",
        grand,
        secs,
        grand as f64 / secs.max(1e-9)
    );
    if failed.load(Ordering::SeqCst) {
        eprintln!("fuzz: FAILED (inputs above; reproduce with FUZZ_SEED={seed})");
        std::process::exit(1);
    }
    println!("fuzz: no panic, every refusal a SCIM 4xx whose logged detail keeps no value sent");
}
