//! Webhook delivery on SQLite with a scripted receiver: events in commit order per
//! organisation, one in flight, a failing organisation holding back only its own events, the
//! schedule, the dead-letter list and its replay, `410`, and signatures that verify.

use pollster::block_on;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::VecDeque;

use super::webhooks::{self, Answer, Courier, Message, NewHook, Push, Sealer, Settings};
use crate::service::keys::Principal;
use crate::service::resources::Kind;
use crate::service::testing::{TestRuntime, TestShards};
use crate::service::users::Users;
use crate::service::{tenants, Scope};
use crate::store::sqlite::Sqlite;
use crate::store::Executor;
use scim_core::host_app::webhook as wh;
use scim_core::scim::error::Result;

struct Plain;

impl Sealer for Plain {
    async fn seal(&self, plain: &str) -> Result<String> {
        Ok(format!("sealed:{plain}"))
    }
    async fn open(&self, sealed: &str) -> Result<String> {
        Ok(sealed.trim_start_matches("sealed:").to_string())
    }
}

/// A receiver answering from a script (200 once it runs out), and the Queue it was given.
#[derive(Default)]
struct Script {
    answers: RefCell<VecDeque<u16>>,
    posts: RefCell<Vec<(String, Value)>>,
    sent: RefCell<Vec<(Message, i64)>>,
    secret: RefCell<String>,
}

impl Courier for Script {
    async fn post(&self, _url: &str, headers: &[(&'static str, String)], body: &str) -> Answer {
        let h = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (id, ts) = (
            h("webhook-id"),
            h("webhook-timestamp").parse::<i64>().unwrap(),
        );
        let key = wh::secret_key(&self.secret.borrow()).unwrap();
        let expected = wh::signature(&key, &id, ts, body);
        assert!(
            h("webhook-signature").split(' ').any(|s| s == expected),
            "signed with the secret"
        );
        self.posts
            .borrow_mut()
            .push((id, serde_json::from_str(body).unwrap()));
        let status = self.answers.borrow_mut().pop_front().unwrap_or(200);
        Answer {
            status: Some(status),
            duration_ms: 3,
            ..Answer::default()
        }
    }
    async fn send(&self, m: &Message, delay_s: i64) -> Result<()> {
        self.sent.borrow_mut().push((m.clone(), delay_s));
        Ok(())
    }
}

fn push<'a>(
    all: &'a TestShards,
    rt: &'a TestRuntime,
    script: &'a Script,
    settings: &'a Settings,
) -> Push<'a, TestShards, TestRuntime, Plain, Script> {
    Push {
        s: all,
        rt,
        sealer: &Plain,
        courier: script,
        settings,
    }
}

fn user(all: &TestShards, rt: &TestRuntime, tenant: &str, shard: &str, name: &str) {
    let db = crate::service::shards::Databases::shard(all, shard).unwrap();
    let s = Scope {
        db: &db,
        rt,
        tenant_id: tenant,
        log: None,
    };
    block_on(Users::create(&s, &json!({"userName": name}))).expect("user");
}

fn names(script: &Script) -> Vec<String> {
    script
        .posts
        .borrow()
        .iter()
        .map(|(_, b)| {
            b["data"]["data"]["user"]["userName"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn each_organisation_in_order_a_failure_holding_back_only_its_own() {
    let all = TestShards::new(Sqlite::migrated(), 1);
    let rt = TestRuntime::at(1_000_000);
    let a = block_on(tenants::create(&all, &rt, "acme", None, None, Some("DB"))).unwrap();
    let b = block_on(tenants::create(
        &all,
        &rt,
        "beta",
        None,
        None,
        Some("SHARD_2"),
    ))
    .unwrap();
    user(&all, &rt, &a.id, "DB", "before@acme");
    rt.now.set(2_000_000);
    let settings = Settings {
        schedule: vec![5, 300],
        allow_loopback: false,
    };
    let script = Script::default();
    let made = block_on(webhooks::create(
        &all,
        &rt,
        &Plain,
        &settings,
        &Principal::bootstrap(),
        &NewHook {
            url: "https://hooks.example.com/in",
            events: None,
            tenant: None,
        },
    ))
    .expect("created");
    *script.secret.borrow_mut() = made.secret.clone();
    assert!(
        made.hook.secret.starts_with("sealed:whsec_"),
        "stored sealed, never as given"
    );
    for n in ["a1", "a2", "a3"] {
        user(&all, &rt, &a.id, "DB", &format!("{n}@acme"));
    }
    let wake =
        |t: &str| block_on(webhooks::wake(&push(&all, &rt, &script, &settings), t)).expect("wake");
    wake(&a.id);
    assert_eq!(
        names(&script),
        ["a1@acme", "a2@acme", "a3@acme"],
        "only events after its creation, in order"
    );
    let ids: Vec<String> = script
        .posts
        .borrow()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    assert!(ids.iter().all(|i| i.starts_with("evt_db_")));
    assert_eq!(script.posts.borrow()[0].1["type"], "user.created");

    // acme's next event fails twice; beta's goes through meanwhile; acme's later one waits.
    script.posts.borrow_mut().clear();
    script.answers.borrow_mut().push_back(500);
    user(&all, &rt, &a.id, "DB", "a4@acme");
    wake(&a.id);
    assert_eq!(
        script.sent.borrow().last().cloned(),
        Some((
            Message::Lane {
                webhook: made.hook.id.clone(),
                tenant: a.id.clone()
            },
            5
        ))
    );
    user(&all, &rt, &a.id, "DB", "a5@acme");
    user(&all, &rt, &b.id, "SHARD_2", "b1@beta");
    wake(&a.id);
    wake(&b.id);
    assert_eq!(
        names(&script),
        ["a4@acme", "b1@beta"],
        "acme's a5 waits behind a4; beta is not held"
    );
    script.answers.borrow_mut().push_back(503);
    let run = || {
        block_on(webhooks::run_lane(
            &push(&all, &rt, &script, &settings),
            &made.hook.id,
            &a.id,
        ))
        .expect("run")
    };
    rt.now.set(rt.now.get() + 5_000);
    run();
    rt.now.set(rt.now.get() + 300_000);
    run();
    assert_eq!(
        names(&script),
        ["a4@acme", "b1@beta", "a4@acme", "a4@acme", "a5@acme"]
    );
    let posts = script.posts.borrow().clone();
    assert_eq!(posts[0].0, posts[2].0, "the same webhook-id on every retry");
    assert_eq!(posts[0].0, posts[3].0);
    let (list, _) = block_on(webhooks::deliveries(
        &all,
        &Principal::bootstrap(),
        &made.hook.id,
        None,
        100,
    ))
    .unwrap();
    let outcomes: Vec<&str> = list.iter().filter_map(|d| d["outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "delivered",
            "delivered",
            "delivered",
            "retrying",
            "delivered",
            "retrying",
            "delivered",
            "delivered"
        ]
    );
    let hook = block_on(webhooks::get(&all, &Principal::bootstrap(), &made.hook.id)).unwrap();
    assert_eq!(
        hook.failing_since, None,
        "a success ends the run of failures"
    );
}

#[test]
fn a_spent_schedule_dead_letters_the_event_replay_sends_it_and_410_disables() {
    let all = TestShards::new(Sqlite::migrated(), 0);
    let rt = TestRuntime::at(1_000_000);
    let a = block_on(tenants::create(&all, &rt, "acme", None, None, None)).unwrap();
    let settings = Settings {
        schedule: vec![1],
        allow_loopback: false,
    };
    let script = Script::default();
    let root = Principal::bootstrap();
    let made = block_on(webhooks::create(
        &all,
        &rt,
        &Plain,
        &settings,
        &root,
        &NewHook {
            url: "https://hooks.example.com/in",
            events: Some(&["user.created".to_string()]),
            tenant: Some("acme"),
        },
    ))
    .unwrap();
    *script.secret.borrow_mut() = made.secret.clone();
    script.answers.borrow_mut().extend([500, 500]);
    user(&all, &rt, &a.id, "DB", "dead@acme");
    user(&all, &rt, &a.id, "DB", "next@acme");
    let run = || {
        block_on(webhooks::run_lane(
            &push(&all, &rt, &script, &settings),
            &made.hook.id,
            &a.id,
        ))
        .unwrap()
    };
    block_on(webhooks::wake(&push(&all, &rt, &script, &settings), &a.id)).unwrap();
    rt.now.set(rt.now.get() + 1_000);
    run();
    assert_eq!(
        names(&script),
        ["dead@acme", "dead@acme", "next@acme"],
        "dead-lettered, then the lane moves on"
    );
    let dead_id = script.posts.borrow()[0].0.clone();
    let (list, _) = block_on(webhooks::deliveries(&all, &root, &made.hook.id, None, 100)).unwrap();
    assert_eq!(list[1]["outcome"], "failed");
    let replayed = block_on(webhooks::replay(
        &push(&all, &rt, &script, &settings),
        &root,
        &made.hook.id,
        &dead_id,
    ))
    .unwrap();
    assert_eq!(replayed["delivered"], true);
    assert_eq!(
        script.posts.borrow().last().unwrap().0,
        dead_id,
        "the replay keeps the event's id"
    );
    let unknown = block_on(webhooks::replay(
        &push(&all, &rt, &script, &settings),
        &root,
        &made.hook.id,
        "evt_db_999",
    ));
    assert_eq!(unknown.err().map(|e| e.status), Some(404));

    // Rotation: both secrets sign for a day.
    let (new_secret, _) =
        block_on(webhooks::rotate(&all, &rt, &Plain, &root, &made.hook.id)).unwrap();
    let test = block_on(webhooks::test(
        &push(&all, &rt, &script, &settings),
        &root,
        &made.hook.id,
    ))
    .unwrap();
    assert_eq!(test["delivered"], true, "the old secret still verifies");
    *script.secret.borrow_mut() = new_secret;
    block_on(webhooks::test(
        &push(&all, &rt, &script, &settings),
        &root,
        &made.hook.id,
    ))
    .unwrap();

    // 410: disabled, the event kept for when it is enabled again.
    script.answers.borrow_mut().push_back(410);
    user(&all, &rt, &a.id, "DB", "gone@acme");
    user(&all, &rt, &a.id, "DB", "after@acme");
    run();
    let hook = block_on(webhooks::get(&all, &root, &made.hook.id)).unwrap();
    assert_eq!(
        (hook.enabled, hook.disabled_reason.as_deref()),
        (0, Some("the receiver answered 410 Gone"))
    );
    let before = script.posts.borrow().len();
    run();
    assert_eq!(
        script.posts.borrow().len(),
        before,
        "a disabled endpoint receives nothing"
    );
    let change = webhooks::Change {
        enabled: Some(true),
        ..Default::default()
    };
    let (_, wake) = block_on(webhooks::update(
        &all,
        &rt,
        &settings,
        &root,
        &made.hook.id,
        &change,
    ))
    .unwrap();
    assert_eq!(wake.len(), 1);
    let catalog = crate::service::shards::Databases::catalog(&all).unwrap();
    let lane = |field: &str| {
        let out = block_on(catalog.query(crate::store::Stmt::new(
            format!("SELECT {field} AS v FROM webhook_lanes WHERE webhook_id = ?"),
            vec![made.hook.id.as_str().into()],
        )))
        .unwrap();
        out.rows[0]["v"].clone()
    };
    assert_eq!(lane("attempt"), json!(0), "the schedule starts afresh");
    assert_eq!(lane("next_at"), json!(rt.now.get()), "and at once");
    run();
    assert_eq!(
        names(&script).split_off(before),
        ["gone@acme", "after@acme"]
    );

    // Upkeep keeps the attempts and dead letters as long as the events they sent.
    let upkeep = |rt: &TestRuntime| {
        block_on(crate::service::upkeep::run_all(
            &all,
            rt,
            Default::default(),
            60_000,
        ))
        .unwrap()
    };
    assert_eq!(upkeep(&rt).deliveries_expired, 0);
    rt.now.set(rt.now.get() + 31 * scim_core::time::DAY_MS);
    let r = upkeep(&rt);
    let (left, _) = block_on(webhooks::deliveries(&all, &root, &made.hook.id, None, 100)).unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(r.deliveries_expired >= 8, "{r:?}");
}

#[test]
fn private_addresses_are_refused_and_bound_keys_see_their_own() {
    let all = TestShards::new(Sqlite::migrated(), 0);
    let rt = TestRuntime::at(1_000_000);
    block_on(tenants::create(&all, &rt, "acme", None, None, None)).unwrap();
    let root = Principal::bootstrap();
    let settings = Settings::default();
    let ask = |url| NewHook {
        url,
        events: None,
        tenant: None,
    };
    let refused = block_on(webhooks::create(
        &all,
        &rt,
        &Plain,
        &settings,
        &root,
        &ask("https://169.254.169.254/"),
    ));
    assert_eq!(refused.err().map(|e| e.status), Some(400));
    let bad_type = NewHook {
        url: "https://x.example.com/",
        events: Some(&["user.exploded".to_string()]),
        tenant: None,
    };
    assert_eq!(
        block_on(webhooks::create(
            &all, &rt, &Plain, &settings, &root, &bad_type
        ))
        .err()
        .map(|e| e.status),
        Some(400)
    );
    let made = block_on(webhooks::create(
        &all,
        &rt,
        &Plain,
        &settings,
        &root,
        &ask("https://x.example.com/"),
    ))
    .unwrap();
    let bound = Principal {
        key_id: Some("k".into()),
        scopes: root.scopes,
        tenant: Some(("t".into(), "acme".into())),
    };
    assert_eq!(
        block_on(webhooks::get(&all, &bound, &made.hook.id))
            .err()
            .map(|e| e.status),
        Some(404)
    );
}
