#![allow(clippy::unwrap_used)] // Test code.

//! Sending accounts: the API (the password is write-only), and the dispatcher's use of them
//! against two real SMTP servers on loopback: weights, fall-over, rate and daily limits, and
//! changes picked up while it runs. Time moves by the test clock; no test sleeps.

use crate::delivery::{Sink, message, parsed, relay, send};
use crate::helpers::{TestApp, code, new_key, reason, spawn_app};
use jiff::SignedDuration;
use nudge_mail::routing::{pick_weighted, roll};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::TcpListener;

const PASSWORD: &str = "correct-horse-battery-staple";

/// An account on a loopback server. The test servers offer no AUTH, so only the API tests
/// give credentials.
fn account(name: &str, port: u16, extra: Value) -> Value {
    let mut body = json!({
        "name": name, "host": "127.0.0.1", "port": port, "tls": "none",
        "from_email": format!("{}@example.com", name.to_lowercase()),
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// A loopback port nothing listens on: connecting is refused at once.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The password must not be anywhere in an answer, under any name.
fn assert_no_password(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("hunter"), "{text}");
    let objects: Vec<&Value> = match body["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![body],
    };
    for o in objects {
        assert!(o.get("password").is_none(), "{o}");
    }
}

async fn raw_body(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> String {
    let mut req = app
        .client
        .request(method, format!("{}/api/v1{path}", app.address))
        .bearer_auth(&app.key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn smtp_accounts_are_managed_through_the_api_and_the_password_is_never_returned() {
    let app = spawn_app().await;
    // Creating an account does not connect: nothing listens on this port.
    let created = app
        .create(
            "/smtp-accounts",
            account(
                "Main",
                closed_port(),
                json!({"from_name": "Nieuws", "username": "nudge", "password": PASSWORD}),
            ),
        )
        .await;
    assert_no_password(&created);
    assert_eq!(created["has_password"], true);
    assert_eq!(
        (
            &created["tls"],
            &created["weight"],
            &created["tracking"],
            &created["rate_per_second"],
            &created["daily_limit"],
            &created["username"],
        ),
        (
            &json!("none"),
            &json!(1),
            &json!(true),
            &json!(0.0),
            &json!(0),
            &json!("nudge")
        )
    );
    let path = format!("/smtp-accounts/{}", created["id"].as_str().unwrap());

    let (status, defaults) = app
        .post(
            "/smtp-accounts",
            json!({"name": "Provider", "host": "smtp.example.com", "from_email": "news@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{defaults}");
    assert_eq!(
        (
            &defaults["tls"],
            &defaults["port"],
            &defaults["has_password"]
        ),
        (&json!("starttls"), &json!(587), &json!(false))
    );

    let (status, list) = app.get("/smtp-accounts").await;
    assert_eq!(status, 200);
    assert_no_password(&list);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["id"], created["id"], "oldest first");
    let (status, one) = app.get(&path).await;
    assert_eq!(status, 200);
    assert_no_password(&one);

    let (status, changed) = app
        .patch(
            &path,
            json!({"port": 2525, "weight": 5, "rate_per_second": 2.5, "daily_limit": 1000,
                   "tracking": false, "password": "hunter2", "from_name": null}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_no_password(&changed);
    assert_eq!(
        (
            &changed["port"],
            &changed["weight"],
            &changed["rate_per_second"],
            &changed["daily_limit"],
            &changed["tracking"],
            &changed["from_name"]
        ),
        (
            &json!(2525),
            &json!(5),
            &json!(2.5),
            &json!(1000),
            &json!(false),
            &Value::Null
        )
    );
    // The raw bytes of every answer, too.
    for (method, p) in [
        (Method::GET, "/smtp-accounts"),
        (Method::GET, path.as_str()),
    ] {
        let text = raw_body(&app, method, p, None).await;
        assert!(
            !text.contains("hunter2") && !text.contains("\"password\""),
            "{text}"
        );
    }
    // It is stored, though: the relay needs it.
    let stored = app
        .store
        .get_smtp_account(uuid::Uuid::parse_str(created["id"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.settings.password.as_deref(), Some("hunter2"));

    // Reading takes settings:read, changing settings:write.
    let reader = new_key(app.store.as_ref(), &["settings:read"]).await;
    let (status, _) = app
        .call_with(&reader, Method::GET, "/smtp-accounts", None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .call_with(
            &reader,
            Method::POST,
            "/smtp-accounts",
            Some(account("X", 25, json!({}))),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("settings:write")
    );
    let other = new_key(app.store.as_ref(), &["contacts:read", "messages:read"]).await;
    for p in ["/smtp-accounts", path.as_str()] {
        let (status, body) = app.call_with(&other, Method::GET, p, None).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{p}");
    }

    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&path).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, _) = app.patch(&path, json!({"port": 25})).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/smtp-accounts/not-an-id").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_account_settings_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"port": 70000}), "port", "from 1 to 65535"),
        (json!({"port": 0}), "port", "from 1 to 65535"),
        (json!({"port": "25"}), "port", "invalid type"),
        (json!({"tls": "ssl"}), "tls", "none, starttls, tls"),
        (json!({"from_email": "news"}), "from_email", "@"),
        (json!({"weight": 0}), "weight", "from 1"),
        (
            json!({"rate_per_second": -0.5}),
            "rate_per_second",
            "from 0",
        ),
        (
            json!({"daily_limit": -1}),
            "daily_limit",
            "0 (no limit) or more",
        ),
        (json!({"host": "smtp example.com"}), "host", "host name"),
        (
            json!({"password_hint": "x"}),
            "password_hint",
            "not a known field",
        ),
        (
            json!({"password": "x"}),
            "username",
            "required when a password",
        ),
    ];
    for (extra, field, expected) in cases {
        let (status, err) = app
            .post("/smtp-accounts", account("Main", 25, extra.clone()))
            .await;
        assert_eq!(
            (status, code(&err)),
            (422, "validation_failed"),
            "{extra}: {err}"
        );
        assert!(reason(&err, field).contains(expected), "{extra}: {err}");
        assert_no_password(&err);
    }
    let (status, err) = app.post("/smtp-accounts", json!({})).await;
    assert_eq!(status, 422);
    for field in ["name", "host", "from_email"] {
        assert_eq!(reason(&err, field), "is required", "{err}");
    }
    let a = app
        .create("/smtp-accounts", account("Main", 25, json!({})))
        .await;
    let path = format!("/smtp-accounts/{}", a["id"].as_str().unwrap());
    let (status, err) = app.patch(&path, json!({"weight": -3, "tls": "tls"})).await;
    assert_eq!((status, reason(&err, "weight").is_empty()), (422, false));
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged["tls"], "none", "a refused change writes nothing");
    let (_, list) = app.get("/smtp-accounts").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn weights_route_each_message_to_the_account_its_id_picks() {
    let app = spawn_app().await;
    let (sink_a, port_a) = Sink::start();
    let (sink_b, port_b) = Sink::start();
    let a = app
        .create(
            "/smtp-accounts",
            account("Heavy", port_a, json!({"weight": 3})),
        )
        .await;
    let b = app
        .create(
            "/smtp-accounts",
            account("Light", port_b, json!({"weight": 1})),
        )
        .await;
    let mut expected = Vec::new();
    for n in 0..40 {
        let m = send(
            &app,
            json!({"to": format!("r{n}@example.net"), "subject": "Hi", "html": "<p>Hi</p>"}),
        )
        .await;
        let id = uuid::Uuid::parse_str(m["id"].as_str().unwrap()).unwrap();
        let pick = pick_weighted(roll(id), &[3, 1]).unwrap();
        expected.push((m["id"].clone(), [&a["id"], &b["id"]][pick].clone()));
    }
    // Accounts take over from the default transport, which would refuse everything here.
    let dispatcher = app.dispatcher(relay(closed_port()));
    assert_eq!(dispatcher.run_once().await.unwrap(), 40);
    let to_a = expected.iter().filter(|(_, acc)| *acc == a["id"]).count();
    assert!(to_a > 20 && to_a < 40, "{to_a} of 40 to the heavy account");
    for (id, account) in &expected {
        let row = message(&app, id).await;
        assert_eq!(row["status"], "sent", "{row}");
        assert_eq!(&row["smtp_account_id"], account, "{row}");
    }
    assert_eq!(sink_a.messages().len(), to_a);
    assert_eq!(sink_b.messages().len(), 40 - to_a);
    // Mail that names no sender goes out as the account's address.
    let (from, _, raw) = &sink_b.messages()[0];
    assert!(from.ends_with("@example.com"), "{from}");
    let sender = parsed(raw)
        .from()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_owned();
    assert_eq!(sender, "light@example.com");
}

#[tokio::test]
async fn an_unreachable_account_falls_over_to_the_other_at_once() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let down = app
        .create(
            "/smtp-accounts",
            account("Down", closed_port(), json!({"weight": 1000})),
        )
        .await;
    let up = app
        .create("/smtp-accounts", account("Up", port, json!({"weight": 1})))
        .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let m = send(
            &app,
            json!({"to": format!("f{n}@example.net"), "subject": "Hi", "html": "<p>Hi</p>",
                   "from_email": "shop@example.org"}),
        )
        .await;
        ids.push(m["id"].clone());
    }
    let dispatcher = app.dispatcher(relay(closed_port()));
    assert_eq!(dispatcher.run_once().await.unwrap(), 3);
    for id in &ids {
        let row = message(&app, id).await;
        assert_eq!(
            (
                row["status"].as_str(),
                row["attempts"].as_u64(),
                &row["smtp_account_id"]
            ),
            (Some("sent"), Some(1), &up["id"]),
            "{row}"
        );
    }
    assert_eq!(sink.messages().len(), 3);
    // The message's own sender stays, whichever account carries it.
    assert!(sink.messages()[0].0.ends_with("@example.org"));

    // With every account down, the message waits for a retry instead of failing.
    let (status, _) = app
        .patch(
            &format!("/smtp-accounts/{}", up["id"].as_str().unwrap()),
            json!({"port": closed_port()}),
        )
        .await;
    assert_eq!(status, 200);
    let m = send(
        &app,
        json!({"to": "later@example.net", "subject": "Hi", "html": "<p>Hi</p>"}),
    )
    .await;
    dispatcher.run_once().await.unwrap();
    let row = message(&app, &m["id"]).await;
    assert_eq!(row["status"], "retrying", "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("connecting to 127.0.0.1"),
        "{row}"
    );
    let _ = down;
}

#[tokio::test]
async fn the_rate_limit_keeps_messages_queued_until_the_clock_allows_them() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    app.create(
        "/smtp-accounts",
        account("Slow", port, json!({"rate_per_second": 0.5})),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let m = send(
            &app,
            json!({"to": format!("q{n}@example.net"), "subject": "Hi", "html": "<p>Hi</p>"}),
        )
        .await;
        ids.push(m["id"].clone());
    }
    let dispatcher = app.dispatcher(relay(closed_port()));
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        1,
        "one token at first"
    );
    assert_eq!(dispatcher.run_once().await.unwrap(), 0, "none left");
    let statuses = |rows: Vec<Value>| -> Vec<(String, u64)> {
        rows.iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap().to_owned(),
                    r["attempts"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let mut rows = Vec::new();
    for id in &ids {
        rows.push(message(&app, id).await);
    }
    let mut seen = statuses(rows);
    seen.sort();
    assert_eq!(
        seen,
        [
            ("queued".into(), 0),
            ("queued".into(), 0),
            ("sent".into(), 1)
        ],
        "throttled messages stay queued and count no attempt"
    );
    app.clock.advance_by(SignedDuration::from_secs(1)).unwrap();
    assert_eq!(dispatcher.run_once().await.unwrap(), 0, "half a token");
    app.clock.advance_by(SignedDuration::from_secs(1)).unwrap();
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    app.clock.advance_by(SignedDuration::from_secs(60)).unwrap();
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        1,
        "a long pause does not save up a burst"
    );
    for id in &ids {
        let row = message(&app, id).await;
        assert_eq!(
            (row["status"].as_str(), row["attempts"].as_u64()),
            (Some("sent"), Some(1))
        );
    }
    assert_eq!(sink.messages().len(), 3);
}

#[tokio::test]
async fn the_daily_limit_holds_messages_until_the_next_utc_day() {
    let app = spawn_app().await;
    let (sink_a, port_a) = Sink::start();
    let (sink_b, port_b) = Sink::start();
    app.create(
        "/smtp-accounts",
        account("Capped", port_a, json!({"daily_limit": 2, "weight": 1000})),
    )
    .await;
    app.create(
        "/smtp-accounts",
        account("Overflow", port_b, json!({"daily_limit": 1, "weight": 1})),
    )
    .await;
    for n in 0..5 {
        send(
            &app,
            json!({"to": format!("d{n}@example.net"), "subject": "Hi", "html": "<p>Hi</p>"}),
        )
        .await;
    }
    let dispatcher = app.dispatcher(relay(closed_port()));
    assert_eq!(dispatcher.run_once().await.unwrap(), 3, "2 + 1 for today");
    assert_eq!(dispatcher.run_once().await.unwrap(), 0);
    assert_eq!((sink_a.messages().len(), sink_b.messages().len()), (2, 1));
    // A dispatcher started afresh counts today's sends from the ledger.
    let restarted = app.dispatcher(relay(closed_port()));
    assert_eq!(restarted.run_once().await.unwrap(), 0);
    let (_, queued) = app.get("/messages?status=queued").await;
    assert_eq!(queued["items"].as_array().unwrap().len(), 2);

    let now = nudge_engine::Clock::now(app.clock.as_ref()).to_zoned(jiff::tz::TimeZone::UTC);
    let midnight = now
        .date()
        .tomorrow()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap();
    app.clock.advance_to(midnight.timestamp()).unwrap();
    assert_eq!(restarted.run_once().await.unwrap(), 2);
    assert_eq!(sink_a.messages().len() + sink_b.messages().len(), 5);
}

#[tokio::test]
async fn a_changed_account_is_used_with_its_new_settings_by_a_running_dispatcher() {
    let app = spawn_app().await;
    let (first, first_port) = Sink::start();
    let (second, second_port) = Sink::start();
    let a = app
        .create("/smtp-accounts", account("Main", first_port, json!({})))
        .await;
    let c = app
        .create("/contacts", json!({"email": "reader@example.net"}))
        .await;
    let campaign = json!({"contact_id": c["id"], "class": "campaign", "subject": "News",
        "html": "<p><a href=\"https://shop.example/sale\">Sale</a></p>"});
    send(&app, campaign.clone()).await;
    let dispatcher = app.dispatcher(relay(closed_port()));
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    assert_eq!(first.messages().len(), 1);

    let (status, _) = app
        .patch(
            &format!("/smtp-accounts/{}", a["id"].as_str().unwrap()),
            json!({"port": second_port, "tracking": false}),
        )
        .await;
    assert_eq!(status, 200);
    send(&app, campaign).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    assert_eq!((first.messages().len(), second.messages().len()), (1, 1));
    let html = parsed(&second.messages()[0].2)
        .body_html(0)
        .unwrap()
        .into_owned();
    assert!(
        html.contains("https://shop.example/sale") && !html.contains("/c/"),
        "tracking is off for this account: {html}"
    );

    // With the last account gone, mail takes the default transport again.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/smtp-accounts/{}", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let m = send(
        &app,
        json!({"to": "default@example.net", "subject": "Hi", "html": "<p>Hi</p>"}),
    )
    .await;
    let (third, third_port) = Sink::start();
    assert_eq!(
        app.dispatcher(relay(third_port)).run_once().await.unwrap(),
        1
    );
    assert_eq!(third.messages().len(), 1);
    assert_eq!(
        message(&app, &m["id"]).await["smtp_account_id"],
        Value::Null
    );
}
