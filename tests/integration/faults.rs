//! D1 failing now and then, as it does at the edge ("D1 DB is overloaded"): an Entra-like cycle
//! through the built Worker with 5% (and 20%) of its D1 calls failing (`bench/faults.mjs`, which wraps the
//! Worker's bindings with `bench/edge.mjs` under workerd). Every fault must reach the client as
//! a retryable 503 with `Retry-After`, never a 500, and after the client's retries the directory
//! and the change feed must be exactly what a fault-free run leaves.

#[test]
fn injected_d1_faults_are_retryable_answers_and_lose_or_repeat_nothing() {
    cycle("0.05", "42");
}

/// One call in five failing, with the seed whose first faults hit the tenant's creation on its
/// shard and then the taking back of its catalog entry: the retry must finish the tenant, not
/// answer 409 for one never made.
#[test]
fn a_fifth_of_d1_calls_failing_loses_nothing_either() {
    cycle("0.2", "7");
}

fn cycle(rate: &str, seed: &str) {
    let out = std::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/faults.mjs"))
        .args(["--users", "80", "--rate", rate, "--seed", seed])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The cycle really met faults, and answered each with a 503 the client retried.
    let retried = stdout
        .lines()
        .find_map(|l| l.split("client retries: ").nth(1))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .expect("the retry count");
    assert!(retried > 0, "{stdout}");
    assert!(!stdout.contains("\"500\""), "{stdout}");
}
