#![allow(clippy::unwrap_used)] // Test code.

//! Sequences end to end: forms, double opt-in, list managers started by hand, start groups and
//! status-bound sequences with the 30-day rule, on the test clock and a real SMTP server. No
//! test waits: `POST /api/v1/test-clock/advance` moves time and runs what falls due.

use crate::delivery::{Sink, parsed, relay};
use crate::helpers::{TestApp, code, spawn_app, spawn_app_mailing};
use nudge_store::{ExistingPolicy, ImportOptions, ImportRow};
use reqwest::Method;
use serde_json::{Value, json};

/// The subjects the sink received, in order.
fn subjects(sink: &Sink) -> Vec<String> {
    sink.messages()
        .iter()
        .map(|(_, _, raw)| parsed(raw).subject().unwrap_or_default().to_owned())
        .collect()
}

fn three_mails(name: &str) -> Value {
    json!({
        "name": name,
        "messages": [
            {"subject": "Welcome {{ first_name | default(\"there\") }}", "html": "<p>Day 0</p>"},
            {"subject": "Day 3", "html": "<p>Three days later</p>", "delay": "P3D"},
            {"subject": "Day 7", "html": "<p>A week later</p>", "delay": "P4D"},
        ],
    })
}

async fn enrolments(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/enrolments?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn timeline_kinds(app: &TestApp, contact: &str) -> Vec<String> {
    let (status, body) = app
        .get(&format!("/contacts/{contact}/timeline?limit=1000"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn secs(t: &Value) -> i64 {
    t.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second()
}

/// The confirmation link in a received mail's HTML.
fn confirm_link(raw: &[u8]) -> String {
    let message = parsed(raw);
    let html = message.body_html(0).unwrap().into_owned();
    let start = html.find("http").unwrap();
    let rest = &html[start..];
    let link_start = rest.find("/confirm/").unwrap();
    let end = rest[link_start..]
        .find(['"', '<', ' '])
        .map_or(rest.len(), |e| link_start + e);
    let url = &rest[..end];
    assert!(url.contains("/confirm/"), "{url}");
    url.to_owned()
}

#[tokio::test]
async fn a_double_opt_in_form_runs_a_three_mail_sequence_on_the_test_clock() {
    let (sink, port) = Sink::start();
    let app = spawn_app_mailing(relay(port)).await;
    let interests = app.create("/groups", json!({"name": "Interests"})).await;
    let cycling = app
        .create(
            "/groups",
            json!({"name": "Cycling", "parent_id": interests["id"]}),
        )
        .await;
    let sequence = app
        .create("/sequences", three_mails("Welcome course"))
        .await;
    let form = app
        .create(
            "/forms",
            json!({
                "slug": "course",
                "name": "Course",
                "fields": [
                    {"name": "email", "label": "Email", "type": "email", "required": true, "maps_to": "email"},
                    {"name": "first_name", "label": "First name", "type": "text", "maps_to": "first_name"},
                ],
                "group_choices": [cycling["id"]],
                "double_opt_in": true,
                "sequence_id": sequence["id"],
                "response": {"kind": "message", "message": "Check your inbox!"},
            }),
        )
        .await;
    assert_eq!(form["slug"], "course");

    let submitted = app
        .client
        .post(format!("{}/f/course", app.address))
        .header("accept", "application/json")
        .form(&[
            ("email", "anna@example.com"),
            ("first_name", "Anna"),
            ("groups", cycling["id"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 200);
    let answer: Value = submitted.json().await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");

    // A second person who never confirms.
    let other = app
        .client
        .post(format!("{}/f/course", app.address))
        .header("accept", "application/json")
        .json(&json!({"email": "bert@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    app.advance("PT0S").await;
    let received = sink.messages();
    assert_eq!(received.len(), 2, "{:?}", subjects(&sink));
    let (_, to, anna_confirmation) = received
        .iter()
        .find(|(_, to, _)| to.iter().any(|t| t == "anna@example.com"))
        .unwrap();
    assert_eq!(to, &vec!["anna@example.com".to_owned()]);
    let (status, contacts) = app.get("/contacts?q=anna").await;
    assert_eq!(status, 200);
    let anna = contacts["items"][0].clone();
    let anna_id = anna["id"].as_str().unwrap().to_owned();
    assert_eq!(anna["status"], "pending");
    assert_eq!(anna["groups"], json!([cycling["id"]]));
    let waiting = enrolments(&app, &format!("contact={anna_id}")).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["status"], "active");
    assert_eq!(waiting[0]["next_message_at"], Value::Null);

    // Confirming: the page asks, the POST confirms.
    let link = confirm_link(anna_confirmation);
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let confirmed = app.client.post(&link).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    let (_, anna) = app.get(&format!("/contacts/{anna_id}")).await;
    assert_eq!(anna["status"], "subscribed");

    let start = app.advance("PT0S").await;
    assert_eq!(
        subjects(&sink)[2..],
        ["Welcome Anna".to_owned()],
        "the welcome mail goes out at once"
    );
    let row = &enrolments(&app, &format!("contact={anna_id}")).await[0];
    assert_eq!(row["sequence_name"], "Welcome course");
    assert_eq!(row["contact_email"], "anna@example.com");
    // The overview names a message by its subject as written in the sequence.
    assert_eq!(
        row["last_message"],
        "Welcome {{ first_name | default(\"there\") }}"
    );
    assert_eq!(secs(&row["last_message_at"]), secs(&start["now"]));
    assert_eq!(row["next_message"], "Day 3");
    assert_eq!(
        secs(&row["next_message_at"]),
        secs(&start["now"]) + 3 * 86_400
    );

    app.advance("P2D").await;
    assert_eq!(sink.messages().len(), 3, "nothing before day 3");
    app.advance("P1D").await;
    assert_eq!(subjects(&sink)[3..], ["Day 3".to_owned()]);
    let row = &enrolments(&app, &format!("contact={anna_id}")).await[0];
    assert_eq!(row["next_message"], "Day 7");
    assert_eq!(
        secs(&row["next_message_at"]),
        secs(&start["now"]) + 7 * 86_400
    );
    app.advance("P4D").await;
    app.advance("P10D").await;
    assert_eq!(
        subjects(&sink)[4..],
        ["Day 7".to_owned()],
        "each follow-up arrives exactly once"
    );
    let row = &enrolments(&app, &format!("contact={anna_id}")).await[0];
    assert_eq!(row["status"], "completed");
    assert_eq!(row["next_message_at"], Value::Null);

    // Bert never confirmed: he got the confirmation and nothing else.
    let to_bert = sink
        .messages()
        .iter()
        .filter(|(_, to, _)| to.iter().any(|t| t == "bert@example.com"))
        .count();
    assert_eq!(to_bert, 1);

    let kinds = timeline_kinds(&app, &anna_id).await;
    for kind in [
        "contact_created",
        "group_joined",
        "form_submitted",
        "sequence_entered",
        "status_changed",
        "email_sent",
        "sequence_left",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| *k == "email_sent").count(), 4);
    let (_, anna) = app.get(&format!("/contacts/{anna_id}")).await;
    assert_eq!(anna["enrolments"][0]["status"], "completed");
}

async fn bound_sequence(app: &TestApp) -> Value {
    app.create(
        "/fields",
        json!({"key": "stage", "label": "Stage", "type": "choice", "options": ["lead", "customer"]}),
    )
    .await;
    let mut def = three_mails("Lead nurture");
    def["condition"] = json!({"field": "stage", "values": ["lead"]});
    app.create("/sequences", def).await
}

async fn set_stage(app: &TestApp, contact: &str, stage: &str) {
    let (status, body) = app
        .patch(
            &format!("/contacts/{contact}"),
            json!({"fields": {"stage": stage}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_bound_sequence_resumes_within_thirty_days_and_stays_suspended_after() {
    let (sink, port) = Sink::start();
    let app = spawn_app_mailing(relay(port)).await;
    bound_sequence(&app).await;
    let soon = app
        .create(
            "/contacts",
            json!({"email": "soon@example.com", "fields": {"stage": "lead"}}),
        )
        .await;
    let late = app
        .create(
            "/contacts",
            json!({"email": "late@example.com", "fields": {"stage": "lead"}}),
        )
        .await;
    let (soon, late) = (
        soon["id"].as_str().unwrap().to_owned(),
        late["id"].as_str().unwrap().to_owned(),
    );
    let start = app.advance("PT0S").await;
    assert_eq!(sink.messages().len(), 2, "both entered and got mail 1");

    set_stage(&app, &soon, "customer").await;
    set_stage(&app, &late, "customer").await;
    app.advance("PT0S").await;
    for id in [&soon, &late] {
        let row = &enrolments(&app, &format!("contact={id}")).await[0];
        assert_eq!(row["status"], "suspended", "{row}");
    }
    app.advance("P10D").await;
    assert_eq!(sink.messages().len(), 2, "nothing goes out while suspended");

    // Day 10: mail 2 was due on day 3, seven days ago: it resumes and goes out at once.
    set_stage(&app, &soon, "lead").await;
    app.advance("PT0S").await;
    let row = &enrolments(&app, &format!("contact={soon}")).await[0];
    assert_eq!(row["status"], "active");
    assert_eq!(row["last_message"], "Day 3");
    assert_eq!(sink.messages().len(), 3);

    // Day 40: mail 2 was due 37 days ago: it stays suspended and says why.
    app.advance("P30D").await;
    set_stage(&app, &late, "lead").await;
    app.advance("PT0S").await;
    let row = &enrolments(&app, &format!("contact={late}")).await[0];
    assert_eq!(row["status"], "suspended");
    assert!(row["reason"].as_str().unwrap().contains("30 days"), "{row}");
    let before = sink.messages().len();

    // Reactivating by hand: the next mail a minute from now, the later gap kept.
    let id = row["id"].as_str().unwrap();
    let (status, row) = app
        .patch(
            &format!("/enrolments/{id}"),
            json!({"action": "reactivate"}),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["status"], "active");
    let now = secs(&app.get("/test-clock").await.1["now"]);
    assert_eq!(secs(&row["next_message_at"]), now + 60);
    app.advance("PT1M").await;
    assert_eq!(sink.messages().len(), before + 1);
    let row = &enrolments(&app, &format!("contact={late}")).await[0];
    assert_eq!(row["last_message"], "Day 3");
    assert_eq!(secs(&row["next_message_at"]), now + 60 + 4 * 86_400);
    assert!(secs(&start["now"]) < now);

    // A completed enrolment cannot be acted on.
    app.advance("P5D").await;
    let row = &enrolments(&app, &format!("contact={late}")).await[0];
    assert_eq!(row["status"], "completed");
    let (status, body) = app
        .patch(
            &format!("/enrolments/{}", row["id"].as_str().unwrap()),
            json!({"action": "pause"}),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "invalid_action"));
}

#[tokio::test]
async fn joining_a_start_group_enrols_and_postponing_moves_the_next_mail() {
    let (sink, port) = Sink::start();
    let app = spawn_app_mailing(relay(port)).await;
    let group = app.create("/groups", json!({"name": "Trial"})).await;
    let mut def = three_mails("Trial mails");
    def["start_groups"] = json!([group["id"]]);
    app.create("/sequences", def).await;
    let contact = app
        .create("/contacts", json!({"email": "trial@example.com"}))
        .await;
    let id = contact["id"].as_str().unwrap();
    app.advance("PT0S").await;
    assert!(sink.messages().is_empty(), "not in the group yet");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/contacts/{id}/groups/{}", group["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(status < 300);
    let start = app.advance("PT0S").await;
    assert_eq!(subjects(&sink), ["Welcome there".to_owned()]);

    let row = &enrolments(&app, &format!("contact={id}")).await[0];
    let until = jiff::Timestamp::from_second(secs(&start["now"]) + 5 * 86_400).unwrap();
    let (status, row) = app
        .patch(
            &format!("/enrolments/{}", row["id"].as_str().unwrap()),
            json!({"action": "postpone", "until": until.to_string()}),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    app.advance("P4D").await;
    assert_eq!(sink.messages().len(), 1, "postponed past day 3");
    app.advance("P1D").await;
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn a_list_manager_started_by_hand_mails_a_whole_group_once() {
    let (sink, port) = Sink::start();
    let app = spawn_app_mailing(relay(port)).await;
    let parent = app.create("/groups", json!({"name": "Customers"})).await;
    let child = app
        .create(
            "/groups",
            json!({"name": "2026", "parent_id": parent["id"]}),
        )
        .await;
    let child_id = uuid::Uuid::parse_str(child["id"].as_str().unwrap()).unwrap();
    let rows = (0..1000)
        .map(|i| ImportRow {
            line: i + 2,
            input: nudge_core::ContactInput {
                email: Some(format!("customer{i}@example.com")),
                ..Default::default()
            },
        })
        .collect();
    app.store
        .import_batch(
            rows,
            &ImportOptions {
                existing: ExistingPolicy::Skip,
                group: Some(child_id),
                dry_run: false,
            },
            nudge_engine::Clock::now(app.clock.as_ref()),
        )
        .await
        .unwrap();
    let sequence = app.create("/sequences", three_mails("Onboarding")).await;
    let path = format!("/sequences/{}/start", sequence["id"].as_str().unwrap());
    let (status, outcome) = app.post(&path, json!({"group_id": parent["id"]})).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome, json!({"enrolled": 1000, "already": 0}));
    let (_, again) = app.post(&path, json!({"group_id": parent["id"]})).await;
    assert_eq!(again, json!({"enrolled": 0, "already": 1000}));
    app.advance("PT0S").await;
    assert_eq!(sink.messages().len(), 1000);
    let mut recipients: Vec<String> = sink
        .messages()
        .into_iter()
        .flat_map(|(_, to, _)| to)
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 1000, "one mail per contact");
    let (status, body) = app
        .post(&path, json!({"group_id": uuid::Uuid::now_v7()}))
        .await;
    assert_eq!((status, code(&body)), (422, "validation_failed"));
}

#[tokio::test]
async fn an_unsubscribe_in_the_middle_of_a_sequence_stops_it() {
    let (sink, port) = Sink::start();
    let app = spawn_app_mailing(relay(port)).await;
    let sequence = app.create("/sequences", three_mails("Course")).await;
    let contact = app
        .create("/contacts", json!({"email": "leaver@example.com"}))
        .await;
    let id = contact["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/sequences/{}/start", sequence["id"].as_str().unwrap()),
            json!({"contact_id": id}),
        )
        .await;
    assert_eq!(status, 200);
    app.advance("PT0S").await;
    assert_eq!(sink.messages().len(), 1);

    // The one-click unsubscribe of the List-Unsubscribe header of the mail received.
    let raw = &sink.messages()[0].2;
    let header = parsed(raw)
        .header_raw("List-Unsubscribe")
        .unwrap()
        .to_owned();
    let url = header
        .split(['<', '>'])
        .find(|part| part.starts_with("http"))
        .unwrap()
        .to_owned();
    let one_click = app
        .client
        .post(&url)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert!(one_click.status().is_success());

    app.advance("P10D").await;
    assert_eq!(sink.messages().len(), 1, "nothing after the unsubscribe");
    let row = &enrolments(&app, &format!("contact={id}")).await[0];
    assert_eq!(row["status"], "cancelled");
    let (_, messages) = app.get(&format!("/messages?contact={id}")).await;
    let skipped: Vec<&Value> = messages["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{messages}");
    assert_eq!(skipped[0]["skip_rule"], "unsubscribed");
}

#[tokio::test]
async fn the_test_clock_paths_exist_only_with_a_test_clock() {
    let plain = spawn_app().await;
    let (status, _) = plain.get("/test-clock").await;
    assert_eq!(status, 404);

    let (_, port) = Sink::start();
    let app = spawn_app_mailing(relay(port)).await;
    let (status, now) = app.get("/test-clock").await;
    assert_eq!(status, 200);
    let moved = app.advance("P1DT2H").await;
    assert_eq!(secs(&moved["now"]), secs(&now["now"]) + 26 * 3600);
    let (status, body) = app
        .post("/test-clock/advance", json!({"to": "2001-01-01T00:00:00Z"}))
        .await;
    assert_eq!((status, code(&body)), (422, "validation_failed"));
    let (status, _) = app
        .post("/test-clock/advance", json!({"by": "one day"}))
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn sequences_are_checked_when_saved() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/sequences",
            json!({
                "name": "Broken",
                "messages": [
                    {"subject": "Hi {{ frist_name }}", "html": "<p>x</p>"},
                    {"subject": "Later", "html": "<p>y</p>", "delay": "P1M"},
                ],
                "window": {"days": ["funday"], "from": "17:00", "to": "09:00"},
                "start_groups": [uuid::Uuid::now_v7()],
            }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields = body["error"]["fields"].as_object().unwrap();
    for key in [
        "messages[0].subject",
        "messages[1].delay",
        "window.days",
        "window.to",
    ] {
        assert!(fields.contains_key(key), "{key} in {body}");
    }
    let (status, _) = app
        .post("/sequences", json!({"name": "Empty", "messages": []}))
        .await;
    assert_eq!(status, 422);
}
