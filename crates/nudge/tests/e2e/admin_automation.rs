//! The admin pages of automation over HTTP: the enrolment overview (seed 002's "Automailer
//! Empfänger") with its per-recipient actions and the manual start of a sequence.

#![allow(clippy::unwrap_used)] // Test code.

use crate::admin::Visitor;
use crate::helpers::{TestApp, spawn_app};
use nudge_core::Role;
use serde_json::{Value, json};

async fn sequence_and_contact(app: &TestApp) -> (String, String) {
    let sequence = app
        .create(
            "/sequences",
            json!({
                "name": "Welcome <series>",
                "messages": [
                    {"subject": "Hello", "html": "<p>Day 0</p>", "delay": "P1D"},
                    {"subject": "Day 3", "html": "<p>Later</p>", "delay": "P3D"},
                ],
            }),
        )
        .await;
    let contact = app
        .create(
            "/contacts",
            json!({"email": "anna@example.com", "first_name": "Anna", "status": "subscribed"}),
        )
        .await;
    (
        sequence["id"].as_str().unwrap().to_owned(),
        contact["id"].as_str().unwrap().to_owned(),
    )
}

async fn enrolments(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/enrolments").await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_sequence_started_from_the_overview_is_paused_refused_and_reactivated() {
    let app = spawn_app().await;
    let (sequence, contact) = sequence_and_contact(&app).await;
    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    let page = editor.get("/admin/enrolments").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"no-enrolments\""));
    // The sequence's name is printed as text.
    assert!(page.body.contains("Welcome &lt;series&gt;"));
    assert!(page.body.contains("href=\"/admin/enrolments\""));
    let token = page.token();

    // Started by hand by email address: the overview, filtered to them, shows the enrolment.
    let answer = editor
        .post(
            "/admin/enrolments",
            &[
                ("csrf_token", &token),
                ("action", "start"),
                ("sequence", &sequence),
                ("contact", "anna@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let filtered = answer.location().to_owned();
    assert!(
        filtered.contains(&format!("contact={contact}")),
        "{filtered}"
    );
    let rows = enrolments(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "active");
    let id = rows[0]["id"].as_str().unwrap().to_owned();
    let overview = editor.get(&filtered).await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains(&format!("id=\"enrolment-{id}\"")));
    assert!(overview.text().contains("anna@example.com"));

    // Pause, back to the same overview.
    let path = format!("/admin/enrolments/{id}");
    let answer = editor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "pause"),
                ("back", &filtered),
            ],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, filtered.as_str()));
    assert_eq!(enrolments(&app).await[0]["status"], "paused");
    let paused = editor.get("/admin/enrolments?status=paused").await;
    assert!(paused.body.contains(&format!("id=\"enrolment-{id}\"")));
    let active = editor.get("/admin/enrolments?status=active").await;
    assert!(!active.body.contains(&format!("id=\"enrolment-{id}\"")));

    // Pausing again is the store's refusal, shown on the page; nothing changes.
    let answer = editor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "pause"),
                ("back", &filtered),
            ],
        )
        .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(answer.body.contains("id=\"refusal\""));
    assert!(answer.body.contains("class=\"refused\""));
    assert_eq!(enrolments(&app).await[0]["status"], "paused");

    // Reactivated: active again, the next message a minute away.
    let answer = editor
        .post(&path, &[("csrf_token", &token), ("action", "reactivate")])
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let row = &enrolments(&app).await[0];
    assert_eq!(row["status"], "active");

    // Postponed with a browser's datetime-local value, read as UTC.
    let answer = editor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "postpone"),
                ("until", "2099-05-01T09:30"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let row = &enrolments(&app).await[0];
    assert_eq!(row["next_message_at"], "2099-05-01T09:30:00Z");

    // Sorting links and the sorted pages work both ways.
    for order in [
        "last_message",
        "-last_message",
        "next_message",
        "-next_message",
    ] {
        let page = editor
            .get(&format!("/admin/enrolments?order={order}"))
            .await;
        assert_eq!(page.status, 200, "{order}");
        assert!(page.body.contains(&format!("id=\"enrolment-{id}\"")));
    }
    assert_eq!(
        editor.get("/admin/enrolments?order=sideways").await.status,
        400
    );

    // The contact's page lists the enrolment, with the same actions.
    let contact_path = format!("/admin/contacts/{contact}");
    let contact_page = editor.get(&contact_path).await;
    assert!(contact_page.text().contains("Welcome &lt;series&gt;"));
    assert!(contact_page.body.contains(&format!("action=\"{path}\"")));
    let answer = editor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "pause"),
                ("back", &contact_path),
            ],
        )
        .await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, contact_path.as_str())
    );
    assert_eq!(enrolments(&app).await[0]["status"], "paused");
}

#[tokio::test]
async fn a_viewer_sees_the_overview_but_cannot_act_and_a_post_needs_its_token() {
    let app = spawn_app().await;
    let (sequence, _) = sequence_and_contact(&app).await;
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    let page = viewer.get("/admin/enrolments").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"start-sequence\""));
    let token = page.token();
    let answer = viewer
        .post(
            "/admin/enrolments",
            &[
                ("csrf_token", &token),
                ("action", "start"),
                ("sequence", &sequence),
                ("contact", "anna@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);
    assert!(enrolments(&app).await.is_empty());

    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    assert_eq!(editor.get("/admin/enrolments").await.status, 200);
    let answer = editor
        .post(
            "/admin/enrolments",
            &[
                ("action", "start"),
                ("sequence", &sequence),
                ("contact", "anna@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);
    assert!(enrolments(&app).await.is_empty());

    // An unknown contact is said so, and nothing starts.
    let token = editor.get("/admin/enrolments").await.token();
    let answer = editor
        .post(
            "/admin/enrolments",
            &[
                ("csrf_token", &token),
                ("action", "start"),
                ("sequence", &sequence),
                ("contact", "nobody@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("id=\"refusal\""));
    assert!(enrolments(&app).await.is_empty());
}

/// The fields of the sequence editor with `messages` as (delay, subject, html) in order.
fn editor_fields(
    token: &str,
    name: &str,
    ids: &[String],
    messages: &[(&str, &str, &str)],
) -> Vec<(String, String)> {
    let mut fields = vec![
        ("csrf_token".to_owned(), token.to_owned()),
        ("action".to_owned(), "save".to_owned()),
        ("name".to_owned(), name.to_owned()),
    ];
    for (i, (delay, subject, html)) in messages.iter().enumerate() {
        let id = ids.get(i).cloned().unwrap_or_default();
        for (part, value) in [
            ("id", id.as_str()),
            ("delay", delay),
            ("subject", subject),
            ("html", html),
            ("text", ""),
        ] {
            fields.push((format!("m{i}_{part}"), value.to_string()));
        }
    }
    fields
}

#[tokio::test]
async fn a_sequence_is_built_on_its_page_and_a_template_error_saves_nothing() {
    let app = spawn_app().await;
    let group = app.create("/groups", json!({"name": "Trial"})).await;
    let group = group["id"].as_str().unwrap().to_owned();
    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    let list = editor.get("/admin/sequences").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let token = list.token();
    let answer = editor
        .post(
            "/admin/sequences",
            &[("csrf_token", &token), ("name", "Onboarding")],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let path = answer.location().to_owned();
    let id = path.rsplit('/').next().unwrap().to_owned();
    let page = editor.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (_, stored) = app.get(&format!("/sequences/{id}")).await;
    let first = stored["messages"][0]["id"].as_str().unwrap().to_owned();

    // Three messages, a start group and a window, saved from the page.
    let mut fields = editor_fields(
        &token,
        "Onboarding",
        std::slice::from_ref(&first),
        &[
            (
                "P0D",
                "Welcome {{ first_name | default(\"there\") }}",
                "<p>Day 0</p>",
            ),
            ("P3D", "Day 3", "<p>Three days later</p>"),
        ],
    );
    fields.extend([
        ("new_delay".to_owned(), "P4D".to_owned()),
        ("new_subject".to_owned(), "Day 7".to_owned()),
        ("new_html".to_owned(), "<p>A week later</p>".to_owned()),
        ("group".to_owned(), group.clone()),
        ("day".to_owned(), "mon".to_owned()),
        ("day".to_owned(), "tue".to_owned()),
        ("window_from".to_owned(), "09:00".to_owned()),
        ("window_to".to_owned(), "17:00".to_owned()),
    ]);
    let answer = editor.post_with(&path, &to_refs(&fields), &[]).await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, path.as_str()),
        "{}",
        answer.body
    );
    let (_, stored) = app.get(&format!("/sequences/{id}")).await;
    let subjects: Vec<&str> = stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects[1..], ["Day 3", "Day 7"]);
    assert_eq!(stored["messages"][0]["id"], first.as_str());
    assert_eq!(stored["messages"][2]["delay"], "P4D");
    assert_eq!(stored["start_groups"], json!([group]));
    assert_eq!(stored["window"]["days"], json!(["mon", "tue"]));
    let version = stored["version"].clone();

    // A template error is shown beside its message, and nothing is saved.
    let fields = editor_fields(
        &token,
        "Onboarding",
        &[],
        &[
            ("P0D", "Hi", "<p>{{ first_name </p>"),
            ("P1D", "Fine", "<p>ok</p>"),
        ],
    );
    let answer = editor.post_with(&path, &to_refs(&fields), &[]).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(
        answer.body.contains("id=\"m0-html-error\""),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("&lt;p&gt;{{ first_name &lt;"));
    let (_, after) = app.get(&format!("/sequences/{id}")).await;
    assert_eq!(after["version"], version);
    assert_eq!(after["messages"].as_array().unwrap().len(), 3);

    // Reordering by position: the last message first.
    let (_, stored) = app.get(&format!("/sequences/{id}")).await;
    let ids: Vec<String> = stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let mut fields = editor_fields(
        &token,
        "Onboarding",
        &ids,
        &[
            ("P0D", "Welcome", "<p>Day 0</p>"),
            ("P3D", "Day 3", "<p>Three days later</p>"),
            ("P4D", "Day 7", "<p>A week later</p>"),
        ],
    );
    fields.push(("m2_position".to_owned(), "-1".to_owned()));
    let answer = editor.post_with(&path, &to_refs(&fields), &[]).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let (_, stored) = app.get(&format!("/sequences/{id}")).await;
    assert_eq!(stored["messages"][0]["subject"], "Day 7");
    assert_eq!(stored["messages"][0]["id"], ids[2].as_str());

    // Started by hand for a contact from the sequence's page: the overview shows it.
    app.create(
        "/contacts",
        json!({"email": "bo@example.com", "status": "subscribed"}),
    )
    .await;
    let answer = editor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "start"),
                ("contact", "bo@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let started = editor.get(answer.location()).await;
    assert!(started.body.contains("id=\"started\""));
    let overview = editor
        .get(&format!("/admin/enrolments?sequence={id}"))
        .await;
    assert!(overview.text().contains("bo@example.com"));
    assert_eq!(enrolments(&app).await.len(), 1);

    // A message rendered for that contact, in a sandboxed frame; an unknown contact is said.
    let preview = editor
        .get(&format!("{path}?preview=0&contact=bo@example.com"))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("id=\"preview-frame\""));
    assert!(preview.body.contains("sandbox=\"\""));
    assert!(preview.body.contains("A week later"));
    let unknown = editor
        .get(&format!("{path}?preview=0&contact=nobody@example.com"))
        .await;
    assert!(unknown.body.contains("id=\"preview-error\""));

    // "Send a test to me": only to a contact with the user's address, which is not made.
    let test = [
        ("csrf_token", token.as_str()),
        ("action", "test"),
        ("message", "0"),
    ];
    let answer = editor.post(&path, &test).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let said = editor.get(answer.location()).await;
    assert!(
        said.body.contains("id=\"test-no-contact\""),
        "{}",
        said.body
    );
    app.create(
        "/contacts",
        json!({"email": "editor@example.com", "status": "subscribed"}),
    )
    .await;
    let answer = editor.post(&path, &test).await;
    let said = editor.get(answer.location()).await;
    assert!(said.body.contains("id=\"test-queued\""));
    let (_, sent) = app.get("/messages?class=transactional").await;
    let sent = sent["items"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["subject"], "Day 7");

    // A viewer reads the page but cannot save.
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    let page = viewer.get(&path).await;
    assert_eq!(page.status, 200);
    let token = page.token();
    let fields = editor_fields(&token, "Taken over", &[], &[("P0D", "x", "<p>x</p>")]);
    assert_eq!(
        viewer.post_with(&path, &to_refs(&fields), &[]).await.status,
        403
    );
    let (_, after) = app.get(&format!("/sequences/{id}")).await;
    assert_eq!(after["name"], "Onboarding");
}

fn to_refs(fields: &[(String, String)]) -> Vec<(&str, String)> {
    fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect()
}

#[tokio::test]
async fn a_form_built_on_its_page_takes_a_submission_with_a_group_and_double_opt_in() {
    let app = spawn_app().await;
    let group = app
        .create("/groups", json!({"name": "Weekly <news>"}))
        .await;
    let group = group["id"].as_str().unwrap().to_owned();
    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    let page = editor.get("/admin/forms").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Weekly &lt;news&gt;"));
    let token = page.token();

    // A bad slug is refused by the store's rule and shown; nothing is created.
    let answer = editor
        .post(
            "/admin/forms",
            &[
                ("csrf_token", &token),
                ("name", "News"),
                ("slug", "Not A Slug"),
            ],
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("id=\"form-refusals\""));
    let (_, forms) = app.get("/forms").await;
    assert!(forms["items"].as_array().unwrap().is_empty());

    // Without a token: 403, nothing created.
    let answer = editor
        .post("/admin/forms", &[("name", "News"), ("slug", "news")])
        .await;
    assert_eq!(answer.status, 403);

    let answer = editor
        .post(
            "/admin/forms",
            &[
                ("csrf_token", &token),
                ("name", "News"),
                ("slug", "news"),
                ("email_label", "Your email"),
                ("group_choice", &group),
                ("double_opt_in", "1"),
                ("message", "Thanks!"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let list = editor.get("/admin/forms").await;
    assert!(list.body.contains("&#x2f;f&#x2f;news"), "{}", list.body);
    assert!(list.body.contains("embed.js"));
    let (_, forms) = app.get("/forms").await;
    let form = &forms["items"][0];
    assert_eq!(form["double_opt_in"], true);
    assert_eq!(form["group_choices"], json!([group]));

    // The hosted page takes a submission: the contact waits for confirmation, in the group.
    let hosted = app
        .client
        .get(format!("{}/f/news", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(hosted.status().as_u16(), 200);
    let response = app
        .client
        .post(format!("{}/f/news", app.address))
        .form(&[("email", "cleo@example.com"), ("groups", group.as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success() || response.status().is_redirection());
    let (_, found) = app.get("/contacts?q=cleo@example.com").await;
    let contact = &found["items"][0];
    assert_eq!(contact["status"], "pending", "{found}");

    // A viewer cannot create one.
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    let token = viewer.get("/admin/forms").await.token();
    let answer = viewer
        .post(
            "/admin/forms",
            &[("csrf_token", &token), ("name", "Mine"), ("slug", "mine")],
        )
        .await;
    assert_eq!(answer.status, 403);
}
