//! A real `wrangler dev` for the integration tests, started once per test binary (and, for the
//! tests that need them, a second one with a low rate limit and the build under plain workerd).
//!
//! Each serves the Worker already built in `build/` (by `make build`, which `make test` runs
//! first), from a config generated without the `[build]` section (so wrangler does not rebuild at
//! start-up), on a free port, with a fresh `--persist-to` directory, migrations applied, and a
//! random ADMIN_TOKEN. At process exit every process group (wrangler, node, workerd) is stopped.

use serde_json::Value;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    pub admin_token: String,
    /// The path that runs the scheduled handler once.
    pub scheduled: &'static str,
    agent: ureq::Agent,
    /// Its work directory (its config, and its local D1 state under `state`).
    dir: PathBuf,
}

/// How a test server runs the built Worker.
#[derive(Clone, Copy)]
enum Kind {
    /// `wrangler dev`, with this many SCIM requests per organisation per 10 s, and these
    /// `[vars]` overridden.
    Dev {
        rate_limit: u32,
        vars: &'static [(&'static str, &'static str)],
        /// Set `OPERATOR_ORIGIN` to the server's own origin (`http://127.0.0.1:<port>`).
        operator_origin: bool,
    },
    /// The build under workerd alone (Miniflare, as `bench/` runs it): no `wrangler dev` proxy
    /// in front, and no rate-limit binding.
    Workerd,
}

/// The rate limit of the main server: high enough that no test meets it by accident.
const MAIN_RATE_LIMIT: u32 = 1_000_000;

/// The rate limit of the server that tests the 429 valve (per organisation per 10 s).
pub const LOW_RATE_LIMIT: u32 = 20;

static SERVER: OnceLock<Server> = OnceLock::new();
static LIMITED: OnceLock<Server> = OnceLock::new();
static WORKERD: OnceLock<Server> = OnceLock::new();
static APART: OnceLock<Server> = OnceLock::new();
/// Process groups and work directories to remove at exit.
static CHILDREN: Mutex<Vec<(i32, PathBuf)>> = Mutex::new(Vec::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The `wrangler dev` most tests use.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        start(Kind::Dev {
            rate_limit: MAIN_RATE_LIMIT,
            vars: &[],
            operator_origin: false,
        })
    })
}

/// A `wrangler dev` of its own for the test that reads the databases from a second process
/// ([`Server::count_in`]): a second workerd opening the same SQLite files makes the server's
/// own statements meet `SQLITE_BUSY`, so no other test may be writing there meanwhile.
pub fn apart_server() -> &'static Server {
    APART.get_or_init(|| {
        start(Kind::Dev {
            rate_limit: MAIN_RATE_LIMIT,
            vars: &[],
            operator_origin: false,
        })
    })
}

/// A `wrangler dev` of its own for a test that changes what is the whole deployment's (the
/// app's declared roles), so that no other test meets its settings: a new one at each call.
pub fn own_server() -> &'static Server {
    own_server_with(&[])
}

/// A `wrangler dev` of its own with these settings besides the harness's (a new one at each
/// call), for a test whose Cron runs must not reach other tests' organisations.
pub fn own_server_with(vars: &'static [(&'static str, &'static str)]) -> &'static Server {
    Box::leak(Box::new(start(Kind::Dev {
        rate_limit: MAIN_RATE_LIMIT,
        vars,
        operator_origin: false,
    })))
}

/// A second `wrangler dev` whose limits are low: [`LOW_RATE_LIMIT`], wrangler.toml's refusal
/// budget, upkeep that keeps no event past its next run and at most [`LOW_LOG_MAX`] log entries
/// per organisation, console links that expire as they are made, and access tokens that end
/// after two seconds; its `OPERATOR_ORIGIN` is its own origin.
pub fn limited_server() -> &'static Server {
    LIMITED.get_or_init(|| {
        start(Kind::Dev {
            rate_limit: LOW_RATE_LIMIT,
            vars: &[
                ("EVENT_RETENTION_DAYS", "0"),
                ("LOG_MAX_ENTRIES", "5"),
                ("CONSOLE_LINK_MINUTES", "0"),
                ("DEV_OAUTH_TOKEN_SECONDS", "2"),
            ],
            operator_origin: true,
        })
    })
}

/// `LOG_MAX_ENTRIES` on the [`limited_server`].
pub const LOW_LOG_MAX: usize = 5;

/// The build under plain workerd, for what the `wrangler dev` proxy distorts (it answers 503
/// when a Worker responds before a chunked request body has finished arriving).
pub fn workerd_server() -> &'static Server {
    WORKERD.get_or_init(|| start(Kind::Workerd))
}

/// A subdomain no other test uses (each run starts on an empty database).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", COUNTER.fetch_add(1, Ordering::SeqCst))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// wrangler.toml without `[build]`, with paths made absolute so it can live in a temp dir, and
/// the rate limit set for this server.
fn test_config(dir: &Path, rate_limit: u32) -> PathBuf {
    // The main server's tests send wrong and missing tokens from one address all the time:
    // its refusal budget is as high as its valve. The limited server keeps wrangler.toml's.
    let refusals = (rate_limit == MAIN_RATE_LIMIT).then_some(MAIN_RATE_LIMIT);
    let root = root();
    let source = std::fs::read_to_string(root.join("wrangler.toml")).expect("wrangler.toml");
    let mut out = String::new();
    let mut in_build = false;
    let mut valve = false;
    let mut refusal_budget = false;
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_build = trimmed == "[build]";
        }
        if in_build {
            continue;
        }
        if trimmed.starts_with("name =") {
            valve = trimmed.contains("\"SCIM_RATE_LIMIT\"");
            refusal_budget = trimmed.contains("\"SCIM_REFUSAL_LIMIT\"");
        }
        if trimmed.starts_with("main =") {
            out.push_str(&format!(
                "main = \"{}\"\n",
                root.join("build/index.js").display()
            ));
        } else if trimmed.starts_with("directory =") {
            out.push_str(&format!(
                "directory = \"{}\"\n",
                root.join("assets").display()
            ));
        } else if trimmed.starts_with("migrations_dir =") {
            out.push_str(&format!(
                "migrations_dir = \"{}\"\n",
                root.join("migrations").display()
            ));
        } else if let Some(limit) =
            refusals.filter(|_| refusal_budget && trimmed.starts_with("simple ="))
        {
            out.push_str(&format!("simple = {{ limit = {limit}, period = 60 }}\n"));
        } else if valve && trimmed.starts_with("simple =") {
            out.push_str(&format!(
                "simple = {{ limit = {rate_limit}, period = 10 }}\n"
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    // Every feature is tested on a shard that is not `DB`: organisations created without a
    // shard spread over all three.
    for b in SHARDS.iter().skip(1) {
        out.push_str(&shard_block(b, &root));
    }
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, out).expect("write test config");
    path
}

/// The test servers' shards: `DB` (the directory) and two more.
pub const SHARDS: [&str; 3] = ["DB", "SHARD_2", "SHARD_3"];

/// A `[[d1_databases]]` block for shard `binding`, as the Makefile's `SHARDS=` adds.
fn shard_block(binding: &str, root: &Path) -> String {
    let n: u32 = binding
        .trim_start_matches("SHARD_")
        .parse()
        .expect("SHARD_<n>");
    format!(
        "\n[[d1_databases]]\nbinding = \"{binding}\"\ndatabase_name = \"scim-edge-shard-{n}\"\n\
         database_id = \"00000000-0000-0000-0000-{n:012}\"\nmigrations_dir = \"{}\"\n",
        root.join("migrations").display()
    )
}

fn wrangler(dir: &Path) -> Command {
    let mut cmd = Command::new(root().join("node_modules/.bin/wrangler"));
    cmd.current_dir(dir)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_UPDATE_CHECK", "false")
        .env("NO_COLOR", "1");
    cmd
}

/// Stop process group `pgid` (a helper a test started, in a group of its own) at exit.
pub fn stop_at_exit(pgid: i32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.push((pgid, PathBuf::new()));
    }
}

extern "C" fn stop_servers() {
    let children = match CHILDREN.lock() {
        Ok(c) => c.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for (pgid, _) in &children {
        // SAFETY: plain syscalls on process groups this process created.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for (pgid, dir) in &children {
        // SAFETY: as above.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn start(kind: Kind) -> Server {
    let root = root();
    assert!(
        root.join("build/index.js").exists() && root.join("build/index_bg.wasm").exists(),
        "the Worker is not built: run `make build` (make test does) before the integration tests"
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("scim-edge-it-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    // SAFETY: registering a plain extern "C" function, once.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(stop_servers);
    });
    let rate_limit = match kind {
        Kind::Dev { rate_limit, .. } => rate_limit,
        Kind::Workerd => MAIN_RATE_LIMIT,
    };
    let config = test_config(&dir, rate_limit);
    let state = dir.join("state");

    for binding in SHARDS {
        let migrate = wrangler(&dir)
            .args([
                "d1",
                "migrations",
                "apply",
                binding,
                "--local",
                "--persist-to",
            ])
            .arg(&state)
            .arg("-c")
            .arg(&config)
            .output()
            .expect("run wrangler d1 migrations apply");
        assert!(
            migrate.status.success(),
            "migrations of {binding} failed:\n{}\n{}",
            String::from_utf8_lossy(&migrate.stdout),
            String::from_utf8_lossy(&migrate.stderr)
        );
    }

    'attempt: for attempt in 1..=2 {
        let port = free_port();
        let admin_token = scim_core::tenancy::token::random_id("adm_").expect("randomness");
        let log =
            std::fs::File::create(dir.join(format!("server-{attempt}.log"))).expect("log file");
        let mut command = match kind {
            Kind::Dev {
                vars,
                operator_origin,
                ..
            } => {
                let mut cmd = wrangler(&dir);
                cmd.args([
                    "dev",
                    "--local",
                    "--ip",
                    "127.0.0.1",
                    "--show-interactive-dev-session=false",
                    "--test-scheduled",
                ])
                .arg("--port")
                .arg(port.to_string())
                .arg("--inspector-port")
                .arg(free_port().to_string())
                .arg("--persist-to")
                .arg(&state)
                .arg("-c")
                .arg(&config)
                .arg("--var")
                .arg(format!("ADMIN_TOKEN:{admin_token}"))
                // As `.dev.vars.example` sets it: the tests' key sets are served over http.
                .arg("--var")
                .arg("DEV_ALLOW_LOOPBACK:true")
                .arg("--var")
                .arg(format!("WEBHOOK_KEY:{admin_token}-webhooks"))
                // Retries a test can wait for: the third attempt 3 s after the first.
                .arg("--var")
                .arg("WEBHOOK_RETRY_SCHEDULE:1,2");
                for (name, value) in vars {
                    cmd.arg("--var").arg(format!("{name}:{value}"));
                }
                if operator_origin {
                    cmd.arg("--var")
                        .arg(format!("OPERATOR_ORIGIN:http://127.0.0.1:{port}"));
                }
                cmd
            }
            Kind::Workerd => {
                let mut cmd = Command::new("node");
                cmd.current_dir(&root)
                    .arg(root.join("tests/integration/workerd.mjs"))
                    .arg(port.to_string())
                    .arg(&state)
                    .arg(&admin_token)
                    .arg(SHARDS.len().to_string());
                cmd
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn the test server");
        if let Ok(mut children) = CHILDREN.lock() {
            children.push((child.id() as i32, dir.clone()));
        }

        // Redirects are answers to check, not to follow.
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .build();
        let server = Server {
            port,
            admin_token,
            scheduled: match kind {
                Kind::Dev { .. } => "/__scheduled",
                Kind::Workerd => "/cdn-cgi/handler/scheduled",
            },
            agent,
            dir: dir.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let said = std::fs::read_to_string(dir.join(format!("server-{attempt}.log")))
                    .unwrap_or_default();
                // Once more on other ports: another server starting at the same moment may have
                // taken the free port this one was given.
                assert!(attempt < 2, "the test server exited ({status}):\n{said}");
                eprintln!("the test server exited ({status}); starting it again:\n{said}");
                continue 'attempt;
            }
            if server.get("/admin/v1/tenants").send_raw().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the test server did not answer within 120 s:\n{}",
                std::fs::read_to_string(dir.join(format!("server-{attempt}.log")))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        return server;
    }
    unreachable!("the second attempt returns or panics")
}

impl Server {
    pub fn call(&self, method: &str, path: &str) -> Call<'_> {
        Call {
            server: self,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call("GET", path)
    }

    /// The Host header of a tenant host, as a browser or Entra would send it (with the port).
    pub fn tenant_host(&self, sub: &str) -> String {
        format!("{sub}.localhost:{}", self.port)
    }

    /// A request to the admin API with the admin token.
    pub fn admin(&self, method: &str, path: &str) -> Call<'_> {
        let token = self.admin_token.clone();
        self.call(method, path).bearer(&token)
    }

    /// A SCIM request on tenant `sub`'s host.
    pub fn scim(&'static self, sub: &str, method: &str, path: &str) -> Call<'static> {
        let host = self.tenant_host(sub);
        self.call(method, &format!("/api/scim/v2{path}"))
            .host(&host)
    }
}

pub struct Call<'a> {
    server: &'a Server,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn host(self, host: &str) -> Self {
        self.header("Host", host)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self.header("Content-Type", "application/json")
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }

    fn send_raw(&self) -> Option<Resp> {
        let url = format!("http://127.0.0.1:{}{}", self.server.port, self.path);
        let mut req = self.server.agent.request(&self.method, &url);
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        let result = match &self.body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(_)) => return None,
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                response
                    .header(&n)
                    .map(|v| (n.to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        let text = response.into_string().unwrap_or_default();
        Some(Resp {
            status,
            headers,
            text,
        })
    }

    pub fn send(self) -> Resp {
        let resp = self
            .send_raw()
            .unwrap_or_else(|| panic!("{} {}: no HTTP answer", self.method, self.path));
        self.record(&resp);
        resp
    }

    /// Keep an admin API response for the check against the OpenAPI document
    /// (`tests/openapi/check.py`, run by `make integration` after these tests): every one
    /// served on the admin host, whatever the test made of it.
    fn record(&self, resp: &Resp) {
        let on_tenant_host = self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"));
        if !self.path.starts_with("/admin/v1") || on_tenant_host {
            return;
        }
        let line = serde_json::json!({
            "method": self.method,
            "path": self.path,
            "request": self.body,
            "status": resp.status,
            "contentType": resp.header("content-type"),
            "body": resp.text,
        });
        if let Ok(mut file) = RECORD.lock() {
            let file = file.get_or_insert_with(|| {
                let path = std::env::var("ADMIN_RESPONSES").unwrap_or_else(|_| {
                    format!(
                        "{}/target/admin-responses.jsonl",
                        env!("CARGO_MANIFEST_DIR")
                    )
                });
                std::fs::File::create(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
            });
            use std::io::Write;
            writeln!(file, "{line}").expect("record an admin response");
        }
    }
}

/// Where the admin responses go, created (emptied) by the first one of this run.
static RECORD: Mutex<Option<std::fs::File>> = Mutex::new(None);

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    /// Assert the status, and return self for more checks.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Assert a SCIM Error (RFC 7644 §3.12) with this status, and return its body.
    #[track_caller]
    pub fn scim_error(self, status: u16) -> Value {
        let resp = self.expect(status);
        assert_eq!(resp.header("content-type"), Some("application/scim+json"));
        let body = resp.json();
        assert_eq!(
            body["schemas"],
            serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(body["status"], Value::String(status.to_string()), "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "detail missing: {body}"
        );
        if status == 401 {
            assert!(
                resp.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer")),
                "401 without WWW-Authenticate: Bearer"
            );
        }
        body
    }

    /// Assert an admin API error with this status, and return its body.
    #[track_caller]
    pub fn admin_error(self, status: u16) -> Value {
        let resp = self.expect(status);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let body = resp.json();
        assert_eq!(body["status"], Value::from(status), "{body}");
        assert!(body["error"].is_string(), "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body
    }
}

/// What a raw upload got back.
#[derive(Debug)]
pub struct Upload {
    pub status: u16,
    pub head: String,
    pub body: String,
    pub elapsed: Duration,
    /// Body bytes written when the answer arrived: fewer than the whole body means the server
    /// answered without waiting for it (the kernel buffers only a few MB of a stalled upload).
    pub sent_before_answer: usize,
}

impl Upload {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Server {
    /// Send a request whose body is `total` bytes of `a` (declared by Content-Length, or
    /// chunked), written by another thread while this one waits for the answer: a server that
    /// refuses early answers long before the body could have arrived.
    pub fn upload(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        total: usize,
        chunked: bool,
    ) -> Upload {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {total}\r\n\r\n"));
        }
        let started = Instant::now();
        stream.write_all(head.as_bytes()).expect("send head");
        let mut writer = stream.try_clone().expect("clone stream");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let progress = std::sync::Arc::new(AtomicUsize::new(0));
        let written = progress.clone();
        let feeder = std::thread::spawn(move || {
            let block = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < total && !stop.load(Ordering::SeqCst) {
                let n = block.len().min(total - sent);
                let ok = if chunked {
                    writer
                        .write_all(format!("{n:x}\r\n").as_bytes())
                        .and_then(|_| writer.write_all(&block[..n]))
                        .and_then(|_| writer.write_all(b"\r\n"))
                } else {
                    writer.write_all(&block[..n])
                };
                if ok.is_err() {
                    return; // the server closed the connection: it stopped reading
                }
                sent += n;
                written.store(sent, Ordering::SeqCst);
            }
            if chunked {
                let _ = writer.write_all(b"0\r\n\r\n");
            }
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let (head, body) = loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break split_response(&raw).expect("an HTTP response"),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if let Some((head, body)) = split_response(&raw) {
                let want = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(usize::MAX);
                if body.len() >= want {
                    break (head, body);
                }
            }
        };
        let elapsed = started.elapsed();
        let sent_before_answer = progress.load(Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = feeder.join();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Upload {
            status,
            head,
            body,
            elapsed,
            sent_before_answer,
        }
    }
}

/// The head and body of a raw HTTP response, once the head is complete.
fn split_response(raw: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// The `Server-Timing` header's count of D1 calls.
impl Server {
    /// What the server has printed so far (`wrangler dev`'s output: the Worker's `console.log`
    /// lines among its own).
    pub fn output(&self) -> String {
        (1..=2)
            .filter_map(|n| std::fs::read_to_string(self.dir.join(format!("server-{n}.log"))).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A number one SQL statement reads from shard `binding`'s local database, straight from
    /// its file (`wrangler d1 execute`), not through the Worker: what a test checks the Worker
    /// against. Only on a server no other test writes to ([`apart_server`], [`own_server`]),
    /// once its writes are done.
    ///
    /// A read's log entry is written after its response (`wait_until`), so the dev server may
    /// hold the file's write lock a moment after the test's last request: a read from outside
    /// that meets it (`SQLITE_BUSY`, seen once in CI) is tried again, not taken for an answer.
    pub fn count_in(&self, binding: &str, sql: &str) -> i64 {
        let out = self.execute_in(binding, sql);
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from d1 execute");
        let row = &v[0]["results"][0];
        row.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("no number in {v}"))
    }

    /// Run `sql` on shard `binding`'s local database from outside, as [`Server::count_in`]
    /// reads (and with its caveats: only on a server no other test writes to), tried again
    /// while the dev server holds the file's lock; its output, asserted successful.
    pub fn execute_in(&self, binding: &str, sql: &str) -> std::process::Output {
        let mut tries = 0;
        let out = loop {
            let out = self.d1_execute(binding, sql);
            let busy = String::from_utf8_lossy(&out.stderr).contains("SQLITE_BUSY")
                || String::from_utf8_lossy(&out.stdout).contains("SQLITE_BUSY");
            tries += 1;
            if !busy || tries == 20 {
                break out;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn d1_execute(&self, binding: &str, sql: &str) -> std::process::Output {
        wrangler(&self.dir)
            .args([
                "d1",
                "execute",
                binding,
                "--local",
                "--json",
                "--persist-to",
            ])
            .arg(self.dir.join("state"))
            .arg("-c")
            .arg(self.dir.join("wrangler.toml"))
            .arg("--command")
            .arg(sql)
            .output()
            .expect("run wrangler d1 execute")
    }
}

pub fn d1_calls(r: &Resp) -> u32 {
    let st = r.header("server-timing").expect("Server-Timing");
    let d1 = st.split(", ").find(|m| m.starts_with("d1;")).expect("d1");
    let calls = d1.split("desc=\"").nth(1).expect("desc");
    calls
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}
