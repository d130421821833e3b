//! A real `wrangler dev` for the integration tests, started once per test binary.
//!
//! It serves the Worker already built in `build/` (by `make build`, which `make test` runs
//! first), from a config generated without the `[build]` section (so wrangler does not rebuild at
//! start-up), on a free port, with a fresh `--persist-to` directory, migrations applied, and a
//! random ADMIN_TOKEN. At process exit the whole process group (wrangler and workerd) is stopped.

use serde_json::Value;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    pub admin_token: String,
    agent: ureq::Agent,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static PGID: AtomicI32 = AtomicI32::new(0);
static WORK_DIR: OnceLock<PathBuf> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn server() -> &'static Server {
    SERVER.get_or_init(start)
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

/// wrangler.toml without `[build]`, with paths made absolute so it can live in a temp dir.
fn test_config(dir: &Path) -> PathBuf {
    let root = root();
    let source = std::fs::read_to_string(root.join("wrangler.toml")).expect("wrangler.toml");
    let mut out = String::new();
    let mut in_build = false;
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_build = trimmed == "[build]";
        }
        if in_build {
            continue;
        }
        if trimmed.starts_with("main =") {
            out.push_str(&format!(
                "main = \"{}\"\n",
                root.join("build/index.js").display()
            ));
        } else if trimmed.starts_with("migrations_dir =") {
            out.push_str(&format!(
                "migrations_dir = \"{}\"\n",
                root.join("migrations").display()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, out).expect("write test config");
    path
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

extern "C" fn stop_server() {
    let pgid = PGID.load(Ordering::SeqCst);
    if pgid > 0 {
        // SAFETY: plain syscalls on a process group this process created.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(500));
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    if let Some(dir) = WORK_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn start() -> Server {
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
    let _ = WORK_DIR.set(dir.clone());
    // SAFETY: registering a plain extern "C" function.
    unsafe {
        libc::atexit(stop_server);
    }
    let config = test_config(&dir);
    let state = dir.join("state");

    let migrate = wrangler(&dir)
        .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
        .arg(&state)
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run wrangler d1 migrations apply");
    assert!(
        migrate.status.success(),
        "migrations failed:\n{}\n{}",
        String::from_utf8_lossy(&migrate.stdout),
        String::from_utf8_lossy(&migrate.stderr)
    );

    let port = free_port();
    let inspector = free_port();
    let admin_token = scim_edge::tenancy::token::random_id("adm_").expect("randomness");
    let log = std::fs::File::create(dir.join("wrangler.log")).expect("log file");
    let mut child = wrangler(&dir)
        .args([
            "dev",
            "--local",
            "--ip",
            "127.0.0.1",
            "--show-interactive-dev-session=false",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--inspector-port")
        .arg(inspector.to_string())
        .arg("--persist-to")
        .arg(&state)
        .arg("-c")
        .arg(&config)
        .arg("--var")
        .arg(format!("ADMIN_TOKEN:{admin_token}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("spawn wrangler dev");
    PGID.store(child.id() as i32, Ordering::SeqCst);

    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let server = Server {
        port,
        admin_token,
        agent,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "wrangler dev exited ({status}):\n{}",
                std::fs::read_to_string(dir.join("wrangler.log")).unwrap_or_default()
            );
        }
        if server.get("/admin/v1/tenants").send_raw().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wrangler dev did not answer within 120 s:\n{}",
            std::fs::read_to_string(dir.join("wrangler.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    server
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
        self.send_raw()
            .unwrap_or_else(|| panic!("{} {}: no HTTP answer", self.method, self.path))
    }
}

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
