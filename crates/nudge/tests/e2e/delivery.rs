#![allow(clippy::unwrap_used)] // Test code.

//! Delivery against real SMTP servers on loopback: mailin-embedded as the receiving server, and
//! a hand-written one for a connection that drops in the middle of DATA. Time moves by the test
//! clock; no test waits for a retry.

use crate::helpers::{TestApp, code, reason, spawn_app};
use jiff::SignedDuration;
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server};
use nudge_mail::{EmlFolder, SmtpRelay, SmtpSettings, TlsMode, Transport};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the test server received, and what it answers to RCPT TO per address (in turn).
#[derive(Clone, Default)]
pub(crate) struct Sink {
    received: Arc<Mutex<Vec<(String, Vec<String>, Vec<u8>)>>>,
    rcpt_replies: Arc<Mutex<HashMap<String, Vec<Response>>>>,
    current: Arc<Mutex<(String, Vec<String>, Vec<u8>)>>,
}

impl Handler for Sink {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        *self.current.lock().unwrap() = (from.to_owned(), Vec::new(), Vec::new());
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let scripted = self
            .rcpt_replies
            .lock()
            .unwrap()
            .get_mut(to)
            .and_then(|r| (!r.is_empty()).then(|| r.remove(0)));
        let reply = scripted.unwrap_or(response::OK);
        if reply.code < 400 {
            self.current.lock().unwrap().1.push(to.to_owned());
        }
        reply
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.lock().unwrap().2.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let done = std::mem::take(&mut *self.current.lock().unwrap());
        self.received.lock().unwrap().push(done);
        response::OK
    }
}

impl Sink {
    /// Starts the server on a free loopback port; it lives until the test process ends.
    pub(crate) fn start() -> (Sink, u16) {
        let sink = Sink::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server = Server::new(sink.clone());
        server
            .with_name("sink.example.com")
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        (sink, port)
    }

    fn script(&self, to: &str, replies: Vec<Response>) {
        self.rcpt_replies
            .lock()
            .unwrap()
            .insert(to.to_owned(), replies);
    }

    pub(crate) fn messages(&self) -> Vec<(String, Vec<String>, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}

pub(crate) fn relay(port: u16) -> Arc<dyn Transport> {
    Arc::new(SmtpRelay::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        credentials: None,
        helo: "nudge.test".into(),
        timeout: Duration::from_secs(5),
        pool_size: 2,
    }))
}

pub(crate) async fn send(app: &TestApp, body: Value) -> Value {
    let (status, message) = app.post("/messages", body).await;
    assert_eq!(status, 202, "{message}");
    message
}

pub(crate) async fn message(app: &TestApp, id: &Value) -> Value {
    let (status, m) = app
        .get(&format!("/messages/{}", id.as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    m
}

pub(crate) fn parsed(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).unwrap()
}

#[tokio::test]
async fn a_transactional_message_goes_out_over_smtp_rendered_and_recorded() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let m = send(
        &app,
        json!({"to": "Jürgen@Example.de", "subject": "Hallo {{ first_name | default(\"daar\") }}",
               "html": "<style>p{color:red}</style><p>Grüße, <a href=\"https://example.com\">hier</a></p>"}),
    )
    .await;
    assert_eq!(
        (m["status"].as_str(), m["class"].as_str()),
        (Some("queued"), Some("transactional"))
    );

    let sent = app.dispatcher(relay(port)).run_once().await.unwrap();
    assert_eq!(sent, 1);
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    let (from, to, raw) = &received[0];
    assert!(
        from.starts_with("bounces+") && from.ends_with("@example.com"),
        "VERP return path: {from}"
    );
    assert_eq!(to, &["Jürgen@example.de".to_owned()]);
    let mail = parsed(raw);
    assert_eq!(mail.subject(), Some("Hallo daar"));
    assert!(
        mail.header("List-Unsubscribe").is_none(),
        "transactional mail has no List-Unsubscribe"
    );
    assert!(
        mail.body_html(0).unwrap().contains("color: red"),
        "CSS inlined"
    );
    assert!(mail.body_text(0).unwrap().contains("Grüße"));

    let row = message(&app, &m["id"]).await;
    assert_eq!(row["status"], "sent");
    assert_eq!(row["attempts"], 1);
    let message_id = row["message_id"].as_str().unwrap();
    assert_eq!(
        mail.message_id().map(|id| format!("<{id}>")).as_deref(),
        Some(message_id)
    );
    let (_, timeline) = app
        .get(&format!(
            "/contacts/{}/timeline",
            row["contact_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(timeline["items"][0]["kind"], "email_sent");
    // The unknown address became a transactional-only contact.
    let (_, contact) = app
        .get(&format!(
            "/contacts/{}",
            row["contact_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(contact["status"], "transactional");
}

#[tokio::test]
async fn a_campaign_carries_one_click_unsubscribe_that_works_and_a_get_changes_nothing() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let c = app
        .create(
            "/contacts",
            json!({"email": "noa@example.co.il", "language": "he"}),
        )
        .await;
    send(&app, json!({"contact_id": c["id"], "class": "campaign", "subject": "שלום", "html": "<p>שלום עולם</p>"})).await;
    app.dispatcher(relay(port)).run_once().await.unwrap();
    let received = sink.messages();
    let mail = parsed(&received[0].2);
    assert_eq!(mail.subject(), Some("שלום"));
    let post = mail
        .header_raw("List-Unsubscribe-Post")
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(post, "List-Unsubscribe=One-Click");
    let list = mail.header_raw("List-Unsubscribe").unwrap();
    assert!(list.contains("<mailto:unsubscribe+"), "{list}");
    let url = list
        .split(['<', '>'])
        .find(|part| part.starts_with("http"))
        .unwrap()
        .to_owned();

    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("dir=\"rtl\"") && html.contains("<form method=\"post\">"),
        "{html}"
    );
    let (_, still) = app
        .get(&format!("/contacts/{}", c["id"].as_str().unwrap()))
        .await;
    assert_eq!(still["status"], "subscribed", "a GET unsubscribes nobody");

    let one_click = app
        .client
        .post(&url)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    let (_, gone) = app
        .get(&format!("/contacts/{}", c["id"].as_str().unwrap()))
        .await;
    assert_eq!(gone["status"], "unsubscribed");

    let mut tampered = url.clone();
    tampered.pop();
    tampered.push(if url.ends_with('A') { 'B' } else { 'A' });
    let refused = app.client.post(&tampered).send().await.unwrap();
    assert_eq!(refused.status(), 404);
}

#[tokio::test]
async fn a_4xx_is_retried_when_the_clock_passes_the_retry_time_and_not_before() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    sink.script(
        "later@example.com",
        vec![Response::custom(451, "4.3.0 try again later".into())],
    );
    let m = send(
        &app,
        json!({"to": "later@example.com", "subject": "Hi", "html": "<p>Hi</p>"}),
    )
    .await;
    let dispatcher = app.dispatcher(relay(port));
    dispatcher.run_once().await.unwrap();
    let row = message(&app, &m["id"]).await;
    assert_eq!(row["status"], "retrying");
    assert!(row["last_error"].as_str().unwrap().contains("451"), "{row}");

    assert_eq!(dispatcher.run_once().await.unwrap(), 0, "not due yet");
    app.clock.advance_by(SignedDuration::from_secs(59)).unwrap();
    assert_eq!(dispatcher.run_once().await.unwrap(), 0, "still not due");
    app.clock.advance_by(SignedDuration::from_secs(2)).unwrap();
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let row = message(&app, &m["id"]).await;
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("sent"), Some(2))
    );
    assert_eq!(sink.messages().len(), 1, "sent exactly once");
}

#[tokio::test]
async fn a_5xx_fails_the_message_and_bounces_the_contact() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    sink.script(
        "nobody@example.com",
        vec![Response::custom(550, "5.1.1 no such user".into())],
    );
    let c = app
        .create("/contacts", json!({"email": "nobody@example.com"}))
        .await;
    let m = send(
        &app,
        json!({"contact_id": c["id"], "class": "automation", "subject": "Hi", "html": "<p>Hi</p>"}),
    )
    .await;
    app.dispatcher(relay(port)).run_once().await.unwrap();
    let row = message(&app, &m["id"]).await;
    assert_eq!(row["status"], "failed");
    let (_, contact) = app
        .get(&format!("/contacts/{}", c["id"].as_str().unwrap()))
        .await;
    assert_eq!(contact["status"], "bounced");
    let (_, timeline) = app
        .get(&format!("/contacts/{}/timeline", c["id"].as_str().unwrap()))
        .await;
    let kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(&kinds[..2], ["status_changed", "email_bounced"]);
    assert!(sink.messages().is_empty());
    // Later mail to the bounced contact is refused by the gate when it is queued.
    let again = send(
        &app,
        json!({"contact_id": c["id"], "subject": "Receipt", "html": "<p>x</p>"}),
    )
    .await;
    assert_eq!(
        (again["status"].as_str(), again["skip_rule"].as_str()),
        (Some("skipped"), Some("bounced"))
    );
}

/// Accepts one SMTP session up to DATA, reads a little of the message and hangs up.
fn dropping_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        let _ = stream.write_all(b"220 drop.test ESMTP\r\n");
        for reply in [
            "250 drop.test\r\n",
            "250 OK\r\n",
            "250 OK\r\n",
            "354 go ahead\r\n",
        ] {
            if stream.read(&mut buf).unwrap_or(0) == 0 {
                return;
            }
            let _ = stream.write_all(reply.as_bytes());
        }
        let _ = stream.read(&mut buf);
        drop(stream);
    });
    port
}

#[tokio::test]
async fn a_connection_dropped_in_the_middle_of_data_is_retried_and_sent_once() {
    let app = spawn_app().await;
    let m = send(
        &app,
        json!({"to": "drop@example.com", "subject": "Hi", "html": "<p>Hi</p>"}),
    )
    .await;
    app.dispatcher(relay(dropping_server()))
        .run_once()
        .await
        .unwrap();
    let row = message(&app, &m["id"]).await;
    assert_eq!(row["status"], "retrying", "{row}");

    let (sink, port) = Sink::start();
    app.clock.advance_by(SignedDuration::from_mins(2)).unwrap();
    app.dispatcher(relay(port)).run_once().await.unwrap();
    let row = message(&app, &m["id"]).await;
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("sent"), Some(2))
    );
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_status_change_between_queueing_and_sending_skips_the_message() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let c = app
        .create("/contacts", json!({"email": "changes@example.com"}))
        .await;
    let m = send(&app, json!({"contact_id": c["id"], "class": "campaign", "subject": "Sale", "html": "<p>Sale</p>"})).await;
    assert_eq!(m["status"], "queued");
    let (status, _) = app
        .post(
            &format!("/contacts/{}/status", c["id"].as_str().unwrap()),
            json!({"status": "unsubscribed"}),
        )
        .await;
    assert_eq!(status, 200);
    app.dispatcher(relay(port)).run_once().await.unwrap();
    let row = message(&app, &m["id"]).await;
    assert_eq!(
        (row["status"].as_str(), row["skip_rule"].as_str()),
        (Some("skipped"), Some("unsubscribed"))
    );
    assert!(sink.messages().is_empty(), "never sent");
}

#[tokio::test]
async fn without_a_relay_mail_lands_in_a_folder_of_eml_files() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let m = send(
        &app,
        json!({"to": "folder@example.com", "subject": "Één bericht", "html": "<p>Hallo</p>"}),
    )
    .await;
    app.dispatcher(Arc::new(EmlFolder::new(dir.path().to_path_buf())))
        .run_once()
        .await
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read(files[0].path()).unwrap();
    assert_eq!(parsed(&raw).subject(), Some("Één bericht"));
    assert_eq!(message(&app, &m["id"]).await["status"], "sent");
}

#[tokio::test]
async fn sending_checks_its_input_like_a_template_save() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"to": "a@example.com", "subject": "Hi {{ frist_name }}", "html": "<p>x</p>"}),
            "subject",
            "undefined variable",
        ),
        (
            json!({"to": "a@example.com", "subject": "Hi", "html": "<p>{% if %}</p>"}),
            "html",
            "syntax error",
        ),
        (
            json!({"to": "a@example.com", "subject": "Hi", "html": "<p>x</p>", "class": "spam"}),
            "class",
            "must be one of",
        ),
        (
            json!({"subject": "Hi", "html": "<p>x</p>"}),
            "contact_id",
            "give contact_id or to",
        ),
        (
            json!({"to": "not-an-address", "subject": "Hi", "html": "<p>x</p>"}),
            "to",
            "has no @ sign",
        ),
        (
            json!({"contact_id": uuid::Uuid::now_v7(), "subject": "Hi", "html": "<p>x</p>"}),
            "contact_id",
            "no such contact",
        ),
    ];
    for (body, field, expected) in cases {
        let (status, err) = app.post("/messages", body.clone()).await;
        assert_eq!(
            (status, code(&err)),
            (422, "validation_failed"),
            "{body}: {err}"
        );
        assert!(reason(&err, field).contains(expected), "{body}: {err}");
    }
    let (_, list) = app.get("/messages").await;
    assert_eq!(list["items"], json!([]), "nothing queued");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_post_return_the_first_message() {
    let app = spawn_app().await;
    let body = json!({"to": "once@example.com", "subject": "Receipt", "html": "<p>Thanks</p>"});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = app
            .client
            .request(Method::POST, format!("{}/api/v1/messages", app.address))
            .bearer_auth(&app.key)
            .header("Idempotency-Key", "order-1234")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let m: Value = response.json().await.unwrap();
        ids.push(m["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let (_, list) = app.get("/messages?class=transactional").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn opens_and_clicks_are_tracked_through_signed_links_and_nothing_else_redirects() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let c = app
        .create("/contacts", json!({"email": "reader@example.com"}))
        .await;
    send(
        &app,
        json!({"contact_id": c["id"], "class": "campaign", "subject": "News",
               "html": "<p><a href=\"https://shop.example/sale?a=1&amp;b=2\">Sale</a> <a href=\"{{ unsubscribe_url }}\">stop</a></p>"}),
    )
    .await;
    send(&app, json!({"contact_id": c["id"], "subject": "Receipt", "html": "<p><a href=\"https://shop.example/order\">order</a></p>"})).await;
    app.dispatcher(relay(port)).run_once().await.unwrap();
    let received = sink.messages();
    assert_eq!(received.len(), 2);
    let campaign = received
        .iter()
        .find(|m| parsed(&m.2).subject() == Some("News"))
        .unwrap();
    let html = parsed(&campaign.2).body_html(0).unwrap().into_owned();
    let receipt = received
        .iter()
        .find(|m| parsed(&m.2).subject() == Some("Receipt"))
        .unwrap();
    let receipt_html = parsed(&receipt.2).body_html(0).unwrap().into_owned();
    assert!(
        receipt_html.contains("https://shop.example/order") && !receipt_html.contains("/o/"),
        "transactional mail is not tracked"
    );
    assert!(
        html.contains("/unsubscribe/"),
        "the unsubscribe link is left alone: {html}"
    );
    let link = |prefix: &str| {
        let start = html.find(&format!("{}/{prefix}/", app.address)).unwrap();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let (click, pixel) = (link("c"), link("o"));

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects.get(&click).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example/sale?a=1&b=2"
    );
    for _ in 0..2 {
        let image = no_redirects.get(&pixel).send().await.unwrap();
        assert_eq!(image.headers()["content-type"], "image/gif");
    }
    let (_, timeline) = app
        .get(&format!("/contacts/{}/timeline", c["id"].as_str().unwrap()))
        .await;
    let kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "email_opened").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "email_clicked").count(),
        1,
        "{kinds:?}"
    );

    let mut tampered = click.clone();
    tampered.pop();
    tampered.push(if click.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        no_redirects.get(&tampered).send().await.unwrap().status(),
        404
    );
    let forged = format!("{}/c/{}", app.address, "AAAA".repeat(20));
    assert_eq!(
        no_redirects.get(&forged).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn the_preference_page_lets_a_contact_leave_one_public_group_or_everything() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let news = app
        .create("/groups", json!({"name": "Nieuwsbrief", "public": true}))
        .await;
    let internal = app.create("/groups", json!({"name": "Intern"})).await;
    assert_eq!(
        (news["public"].as_bool(), internal["public"].as_bool()),
        (Some(true), Some(false))
    );
    let c = app
        .create("/contacts", json!({"email": "prefs@example.nl", "language": "nl", "groups": [news["id"], internal["id"]]}))
        .await;
    send(
        &app,
        json!({"contact_id": c["id"], "class": "campaign", "subject": "Nieuws",
               "html": "<p><a href=\"{{ preferences_url }}\">voorkeuren</a></p>"}),
    )
    .await;
    app.dispatcher(relay(port)).run_once().await.unwrap();
    let html = parsed(&sink.messages()[0].2)
        .body_html(0)
        .unwrap()
        .into_owned();
    let start = html.find(&format!("{}/preferences/", app.address)).unwrap();
    let url = html[start..].split('"').next().unwrap().to_owned();

    let page = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Nieuwsbrief") && !page.contains("Intern"),
        "only public groups: {page}"
    );
    assert!(page.contains(" checked>"), "{page}");
    assert!(page.contains("lang=\"nl\""));

    let post = |body: &'static str| {
        app.client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let saved = post("action=save").await.unwrap();
    assert_eq!(saved.status(), 200);
    assert!(saved.text().await.unwrap().contains("opgeslagen"));
    let (_, contact) = app
        .get(&format!("/contacts/{}", c["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        contact["groups"],
        json!([internal["id"]]),
        "left only the public group"
    );
    assert_eq!(contact["status"], "subscribed");

    let everything = post("action=unsubscribe").await.unwrap();
    assert_eq!(everything.status(), 200);
    let (_, contact) = app
        .get(&format!("/contacts/{}", c["id"].as_str().unwrap()))
        .await;
    assert_eq!(contact["status"], "unsubscribed");
}
