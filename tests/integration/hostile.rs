//! Requests that once crashed the isolate or cost without bound, sent as a client would: each
//! is answered (a SCIM 4xx where the request is wrong, the RFC's answer where it is merely
//! odd), quickly, and while one organisation sends them, another is served as usual.

use serde_json::{json, Value};
use std::time::Duration;

use crate::harness::{limited_server, server, workerd_server, Server, Upload, LOW_RATE_LIMIT};
use crate::{url_encode, Tenant, PATCH};

const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const HUNDRED_MB: usize = 100 * 1024 * 1024;

/// The five requests of the hardening issue, each of which panicked the Worker ("byte index 4
/// is not a char boundary"), and a URN-shaped variant of the last.
fn crashers(t: &Tenant, user_id: &str) {
    let long = format!("{}é", "a".repeat(41));
    let urnish = format!("{}é", &CORE_USER[..41]);
    for sort in ["abcé", long.as_str(), urnish.as_str()] {
        let e = t
            .get(&format!("/Users?sortBy={}", url_encode(sort)))
            .scim_error(400);
        assert_eq!(e["scimType"], "invalidValue", "{e}");
    }
    // Unknown names in `attributes` select nothing (RFC 7644 §3.4.2.5); `id` always comes.
    let list = t
        .get(&format!("/Users?attributes={}", url_encode("abcé")))
        .expect(200)
        .json();
    assert_eq!(list["schemas"], json!([LIST]));
    for r in list["Resources"].as_array().expect("resources") {
        assert!(r["id"].is_string() && r.get("userName").is_none(), "{r}");
    }
    // An unknown attribute in a body is ignored, as Entra's unmapped attributes must be.
    let created = t
        .send(
            "POST",
            "/Users",
            &json!({"userName": crate::harness::unique("u"), "abcé": 1}),
        )
        .expect(201)
        .json();
    let id = created["id"].as_str().expect("id");
    assert!(t.user(id).get("abcé").is_none());
    let ops =
        json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "abcé", "value": 1}]});
    t.send("PATCH", "/Users/x", &ops).scim_error(404);
    let before = t.user(user_id);
    let after = t
        .send("PATCH", &format!("/Users/{user_id}"), &ops)
        .expect(200)
        .json();
    assert_eq!(after, before, "an unknown path changes nothing");
}

#[test]
fn the_requests_that_crashed_the_worker_are_answered() {
    let t = Tenant::new("crash");
    let user = t.create(json!({"userName": "probe@example.com"}));
    crashers(&t, user["id"].as_str().expect("id"));
    // And the isolate is still the same healthy one.
    t.get("/Users").expect(200);
}

/// Host headers a client may send that name no tenant, in the spellings the runtime lets
/// through (it answers a host it cannot serialise, such as `a!b`, itself): the Worker cuts the
/// request's URL on its own, and each is answered as a request to no tenant, never with a 500.
#[test]
fn odd_host_headers_are_answered_not_failed() {
    let s = server();
    let port = s.port;
    for host in [
        format!("UPPER.LocalHost:{port}"),
        format!("under_score.localhost:{port}"),
        format!("nobody.localhost.:{port}"),
        format!("xn--bcher-kva.localhost:{port}"),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
    ] {
        let r = s.call("GET", "/api/scim/v2/Users").host(&host).send();
        assert!(
            matches!(r.status, 401 | 404),
            "{host}: {} {}",
            r.status,
            r.text
        );
    }
}

#[test]
fn numbers_past_every_limit_are_clamped_not_overflowed() {
    let t = Tenant::new("numbers");
    t.create(json!({"userName": "n@example.com"}));
    for q in [
        "startIndex=9223372036854775807",
        "startIndex=99999999999999999999999&count=99999999999999999999",
        "startIndex=-9223372036854775808&count=-1",
    ] {
        let list = t.get(&format!("/Users?{q}")).expect(200).json();
        assert_eq!(list["totalResults"], 1, "{q}: {list}");
        assert!(
            list["itemsPerPage"].as_u64().is_some_and(|n| n <= 1),
            "{q}: {list}"
        );
    }
    let far = t
        .get("/Users?startIndex=9223372036854775807")
        .expect(200)
        .json();
    assert_eq!(far["Resources"], json!([]));
    assert_eq!(
        far["startIndex"], 9_007_199_254_740_991u64,
        "clamped to 2^53 - 1"
    );
    for body in [
        json!({"startIndex": 9223372036854775807u64}),
        json!({"startIndex": 18446744073709551615u64, "count": 1e300}),
        json!({"startIndex": -1e300}),
    ] {
        let list = t.send("POST", "/Users/.search", &body).expect(200).json();
        assert_eq!(list["totalResults"], 1, "{body}: {list}");
        t.send("POST", "/.search", &body).expect(200);
    }
    let e = t.get("/Users?count=1e3").scim_error(400);
    assert_eq!(e["scimType"], "invalidValue");
}

/// How a 100 MB body is sent, and what the answer must show.
#[derive(Clone, Copy)]
struct Upload100 {
    chunked: bool,
    /// Whether the answer must come before the body was sent. Under plain workerd it does; the
    /// `wrangler dev` proxy delivers the Worker's answer only once the whole body has arrived.
    early: bool,
}

/// A 100 MB body to each surface: refused with 413 and the surface's error body.
fn refuse_big_bodies(s: &Server, t: &Tenant, user_id: &str, group_id: &str, how: Upload100) {
    let Upload100 { chunked, early } = how;
    let host = s.tenant_host(&t.sub);
    let bearer = format!("Bearer {}", t.token);
    let scim = [
        ("POST", "/api/scim/v2/Users".to_string()),
        ("PUT", format!("/api/scim/v2/Users/{user_id}")),
        ("PATCH", format!("/api/scim/v2/Users/{user_id}")),
        ("POST", "/api/scim/v2/Users/.search".to_string()),
        ("POST", "/api/scim/v2/.search".to_string()),
        ("POST", "/api/scim/v2/Groups".to_string()),
        ("PATCH", format!("/api/scim/v2/Groups/{group_id}")),
    ];
    for (method, path) in scim {
        let headers = [
            ("Host", host.as_str()),
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/scim+json"),
        ];
        let up = s.upload(method, &path, &headers, HUNDRED_MB, chunked);
        check_refused(&up, method, &path, early);
        let body = up.json();
        assert_eq!(body["schemas"], json!([ERROR]), "{method} {path}: {body}");
        assert_eq!(body["status"], "413");
        assert_eq!(up.header("content-type"), Some("application/scim+json"));
    }
    let admin = format!("Bearer {}", s.admin_token);
    for (method, path) in [
        ("POST", "/admin/v1/tenants".to_string()),
        ("PATCH", format!("/admin/v1/tenants/{}", t.sub)),
        ("POST", format!("/admin/v1/tenants/{}/tokens", t.sub)),
    ] {
        let headers = [
            ("Authorization", admin.as_str()),
            ("Content-Type", "application/json"),
        ];
        let up = s.upload(method, &path, &headers, HUNDRED_MB, chunked);
        check_refused(&up, method, &path, early);
        assert_eq!(
            up.json(),
            json!({"status": 413, "error": "payloadTooLarge",
                   "message": "the request body is larger than 8192 bytes"})
        );
    }
}

#[track_caller]
fn check_refused(up: &Upload, method: &str, path: &str, early: bool) {
    assert_eq!(up.status, 413, "{method} {path}: {up:?}");
    assert!(
        !early || up.sent_before_answer < HUNDRED_MB,
        "{method} {path}: answered only after the whole body ({:?})",
        up.elapsed
    );
}

/// Through `wrangler dev`, declared by Content-Length.
#[test]
fn hundred_megabyte_bodies_are_refused_on_every_surface() {
    let s = server();
    let t = Tenant::new("bigbody");
    let user = t.create(json!({"userName": "big@example.com"}));
    let group = t
        .send("POST", "/Groups", &json!({"displayName": "Big"}))
        .expect(201)
        .json();
    refuse_big_bodies(
        s,
        &t,
        user["id"].as_str().expect("id"),
        group["id"].as_str().expect("id"),
        Upload100 {
            chunked: false,
            early: false,
        },
    );
    // Nothing was created or changed by them.
    let users = t.get("/Users").expect(200).json();
    assert_eq!(users["totalResults"], 1);
    assert_eq!(t.user(user["id"].as_str().expect("id")), user);
}

/// Under plain workerd (as in production, no dev proxy in front): a body declared too large is
/// refused before it is sent, and a body without a length (chunked) is read only up to the cap.
/// (The `wrangler dev` proxy waits for the whole body before it passes the answer on, and turns
/// an answer that comes before the end of a chunked upload into its own 503, "Your worker
/// restarted mid-request".)
#[test]
fn oversized_bodies_are_refused_before_they_are_read() {
    let s = workerd_server();
    let t = Tenant::on(s, "chunked");
    let user = t.create(json!({"userName": "chunked@example.com"}));
    let group = t
        .send("POST", "/Groups", &json!({"displayName": "Chunked"}))
        .expect(201)
        .json();
    for chunked in [false, true] {
        refuse_big_bodies(
            s,
            &t,
            user["id"].as_str().expect("id"),
            group["id"].as_str().expect("id"),
            Upload100 {
                chunked,
                early: true,
            },
        );
    }
    // A chunked body under the cap is read whole.
    let host = s.tenant_host(&t.sub);
    let bearer = format!("Bearer {}", t.token);
    let body = json!({"userName": "x".repeat(60_000)}).to_string();
    let headers = [
        ("Host", host.as_str()),
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/scim+json"),
    ];
    // `upload` sends `a`s: build the request by hand for a real JSON body.
    let up = raw_chunked(s, "POST", "/api/scim/v2/Users", &headers, body.as_bytes());
    assert_eq!(up.0, 201, "{}", up.1);
}

/// Send `body` chunked (in 16 KB chunks) and return the status and the raw answer.
fn raw_chunked(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Transfer-Encoding: chunked\r\n\r\n");
    let mut bytes = req.into_bytes();
    for chunk in body.chunks(16 * 1024) {
        bytes.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend(chunk);
        bytes.extend(b"\r\n");
    }
    bytes.extend(b"0\r\n\r\n");
    stream.write_all(&bytes).expect("send");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// One organisation sends everything above, over and over, while another provisions users as
/// usual: every one of the second's requests succeeds, and its data reads back whole.
#[test]
fn other_organisations_are_served_while_one_sends_hostile_requests() {
    let s = server();
    let hostile = Tenant::new("hostile");
    let calm = Tenant::new("calm");
    let victim = hostile.create(json!({"userName": "victim@example.com"}));
    let victim_id = victim["id"].as_str().expect("id").to_string();
    let group = hostile
        .send("POST", "/Groups", &json!({"displayName": "Hostile"}))
        .expect(201)
        .json();
    let group_id = group["id"].as_str().expect("id").to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rounds = std::thread::scope(|scope| {
        let attacker = {
            let stop = stop.clone();
            let (hostile, victim_id, group_id) = (&hostile, &victim_id, &group_id);
            scope.spawn(move || {
                let mut rounds = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    crashers(hostile, victim_id);
                    refuse_big_bodies(
                        s,
                        hostile,
                        victim_id,
                        group_id,
                        Upload100 {
                            chunked: false,
                            early: false,
                        },
                    );
                    hostile
                        .get("/Users?startIndex=9223372036854775807")
                        .expect(200);
                    rounds += 1;
                }
                rounds
            })
        };
        let mut ids = Vec::new();
        for i in 0..25 {
            let u = calm.create(json!({
                "userName": format!("calm{i}@example.com"),
                "emails": [{"value": format!("calm{i}@example.com"), "type": "work", "primary": true}]
            }));
            let id = u["id"].as_str().expect("id").to_string();
            let patched = calm.patch(
                &id,
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            );
            assert_eq!(patched["active"], false);
            ids.push(id);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let rounds = attacker.join().expect("the hostile client ran");
        let list = calm.get("/Users?count=100").expect(200).json();
        assert_eq!(list["totalResults"], 25);
        let mut listed: Vec<String> = list["Resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter(|r| r["active"] == false)
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect();
        listed.sort();
        ids.sort();
        assert_eq!(listed, ids);
        rounds
    });
    assert!(rounds >= 1, "the hostile client completed {rounds} rounds");
}

/// The safety valve: above the organisation's limit, 429 with Retry-After and a SCIM Error;
/// another organisation is not affected.
#[test]
fn an_organisation_over_its_rate_limit_gets_429_and_others_do_not() {
    let s = limited_server();
    let busy = Tenant::on(s, "busy");
    let quiet = Tenant::on(s, "quiet");
    // The binding counts in windows of 10 s: a quick burst spans at most two, so a 429 comes
    // within twice the limit and one more.
    let mut passed = 0;
    let mut refused: Option<Value> = None;
    for _ in 0..=(LOW_RATE_LIMIT * 2) {
        let r = busy.call("GET", "/Users").send();
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("10"));
            refused = Some(r.scim_error(429));
            break;
        }
        r.expect(200);
        passed += 1;
    }
    assert!(passed >= 1, "the first request passes");
    let body = refused.unwrap_or_else(|| panic!("no 429 after {passed} requests"));
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("too many requests")),
        "{body}"
    );
    quiet.get("/Users").expect(200);
}
