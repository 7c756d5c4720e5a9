#![allow(clippy::unwrap_used)] // Test code.

//! Stored templates: managed through the API, checked when saved, and copied into a message
//! when it is queued, so that mail already queued never changes with the template.

use crate::delivery::{Sink, message, parsed, relay, send};
use crate::helpers::{code, new_key, reason, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn templates_are_created_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let first = app
        .create(
            "/templates",
            json!({"name": "  Welkom  ", "subject": "Hallo {{ first_name }}",
                   "html": "<p>Welkom</p>", "text": "Welkom"}),
        )
        .await;
    assert_eq!(first["name"], "Welkom", "the name is trimmed");
    assert_eq!(first["text"], "Welkom");
    assert_eq!(first["created_at"], first["updated_at"]);
    let second = app
        .create(
            "/templates",
            json!({"name": "Nieuwsbrief", "subject": "Nieuws", "html": "<p>Nieuws</p>"}),
        )
        .await;
    assert_eq!(second["text"], serde_json::Value::Null);
    let path = format!("/templates/{}", first["id"].as_str().unwrap());

    let (status, got) = app.get(&path).await;
    assert_eq!((status, &got), (200, &first));
    let (status, list) = app.get("/templates?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["id"], second["id"], "newest first");
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/templates?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"][0]["id"], first["id"]);
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);

    let (status, changed) = app
        .patch(&path, json!({"html": "<p>Anders</p>", "text": null}))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["html"], "<p>Anders</p>");
    assert_eq!(changed["text"], serde_json::Value::Null, "null removes it");
    assert_eq!(changed["subject"], first["subject"], "kept");
    assert_eq!(changed["name"], "Welkom", "kept");
    assert_eq!(changed["created_at"], first["created_at"]);
    let (_, got) = app.get(&path).await;
    assert_eq!(got, changed);

    // Names are required and 1 to 200 characters.
    let (status, err) = app
        .post("/templates", json!({"subject": "s", "html": "<p>x</p>"}))
        .await;
    assert_eq!((status, reason(&err, "name")), (422, "is required"));
    for name in [" ".to_owned(), "x".repeat(201)] {
        let (status, err) = app
            .post(
                "/templates",
                json!({"name": name, "subject": "s", "html": "<p>x</p>"}),
            )
            .await;
        assert_eq!((status, code(&err)), (422, "validation_failed"));
        assert!(!reason(&err, "name").is_empty(), "{err}");
    }
    let (status, err) = app.patch(&path, json!({"name": ""})).await;
    assert_eq!((status, reason(&err, "name")), (422, "is empty"));

    // Reading takes templates:read, changing templates:write.
    let reader = new_key(app.store.as_ref(), &["templates:read"]).await;
    let (status, _) = app.call_with(&reader, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let (status, err) = app
        .call_with(&reader, Method::PATCH, &path, Some(json!({"name": "X"})))
        .await;
    assert_eq!((status, code(&err)), (403, "forbidden"));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("templates:write")
    );
    let other = new_key(app.store.as_ref(), &["contacts:read", "messages:send"]).await;
    let (status, _) = app.call_with(&other, Method::GET, "/templates", None).await;
    assert_eq!(status, 403);

    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, err) = app.get(&path).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
    let (status, _) = app.patch(&path, json!({"name": "X"})).await;
    assert_eq!(status, 404);
    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/templates").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_template_with_a_mistake_is_refused_when_saved_with_the_part_and_line() {
    let app = spawn_app().await;
    let (status, err) = app
        .post(
            "/templates",
            json!({"name": "Typo", "subject": "Hallo",
                   "html": "<p>Hallo</p>\n<p>{{ frist_name }}</p>"}),
        )
        .await;
    assert_eq!((status, code(&err)), (422, "validation_failed"), "{err}");
    assert_eq!(
        reason(&err, "html"),
        "line 2: undefined variable \"frist_name\""
    );
    let (status, err) = app
        .post(
            "/templates",
            json!({"name": "Broken", "subject": "Hi {{ first_name", "html": "<p>x</p>",
                   "text": "a\n{{ fields.colour }}"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        reason(&err, "subject").starts_with("line 1: syntax error"),
        "{err}"
    );
    assert_eq!(
        reason(&err, "text"),
        "line 2: undefined variable \"fields.colour\"",
        "an undefined custom field"
    );
    let (_, list) = app.get("/templates").await;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "nothing saved"
    );

    // A change is checked as the template will be after it, and refused whole.
    let good = app
        .create(
            "/templates",
            json!({"name": "Good", "subject": "Hallo", "html": "<p>Hallo</p>"}),
        )
        .await;
    let path = format!("/templates/{}", good["id"].as_str().unwrap());
    let (status, err) = app
        .patch(
            &path,
            json!({"name": "Renamed", "subject": "Hallo\n\n{{ frist_name }}"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        reason(&err, "subject"),
        "line 3: undefined variable \"frist_name\""
    );
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged, good);
}

#[tokio::test]
async fn a_message_from_a_template_is_rendered_per_contact_over_smtp() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    app.create("/fields", json!({"key": "city", "type": "text"}))
        .await;
    let template = app
        .create(
            "/templates",
            json!({"name": "Groet",
                   "subject": "Hallo {{ first_name | default(\"there\") }}",
                   "html": "<p>Groeten uit {{ fields.city | default(\"nergens\") }}</p>",
                   "text": "Groeten uit {{ fields.city }}"}),
        )
        .await;
    let anna = app
        .create(
            "/contacts",
            json!({"email": "anna@example.nl", "first_name": "Anna",
                   "fields": {"city": "Köln"}}),
        )
        .await;
    let bare = app
        .create("/contacts", json!({"email": "bare@example.nl"}))
        .await;
    for c in [&anna, &bare] {
        send(
            &app,
            json!({"contact_id": c["id"], "template_id": template["id"]}),
        )
        .await;
    }
    assert_eq!(app.dispatcher(relay(port)).run_once().await.unwrap(), 2);
    let mut received: Vec<(String, String, String)> = sink
        .messages()
        .iter()
        .map(|(_, to, raw)| {
            let mail = parsed(raw);
            (
                to[0].clone(),
                mail.subject().unwrap().to_owned(),
                mail.body_text(0).unwrap().trim().to_owned(),
            )
        })
        .collect();
    received.sort();
    assert_eq!(
        received,
        [
            (
                "anna@example.nl".to_owned(),
                "Hallo Anna".to_owned(),
                "Groeten uit Köln".to_owned()
            ),
            (
                "bare@example.nl".to_owned(),
                "Hallo there".to_owned(),
                "Groeten uit".to_owned()
            ),
        ]
    );
    let html: Vec<String> = sink
        .messages()
        .iter()
        .map(|(_, _, raw)| parsed(raw).body_html(0).unwrap().into_owned())
        .collect();
    assert!(
        html.iter().any(|h| h.contains("Groeten uit Köln")),
        "{html:?}"
    );
    assert!(
        html.iter().any(|h| h.contains("Groeten uit nergens")),
        "{html:?}"
    );
}

#[tokio::test]
async fn editing_a_template_after_queueing_does_not_change_the_queued_message() {
    let app = spawn_app().await;
    let (sink, port) = Sink::start();
    let template = app
        .create(
            "/templates",
            json!({"name": "Versie", "subject": "Eerste versie", "html": "<p>Eerste</p>"}),
        )
        .await;
    let path = format!("/templates/{}", template["id"].as_str().unwrap());
    let queued = send(
        &app,
        json!({"to": "lisa@example.de", "template_id": template["id"]}),
    )
    .await;
    assert_eq!(queued["subject"], "Eerste versie");
    let (status, _) = app
        .patch(
            &path,
            json!({"subject": "Tweede versie", "html": "<p>Tweede</p>"}),
        )
        .await;
    assert_eq!(status, 200);
    let later = send(
        &app,
        json!({"to": "lisa@example.de", "template_id": template["id"]}),
    )
    .await;
    // Deleting the template does not touch what was queued with it either.
    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);

    assert_eq!(app.dispatcher(relay(port)).run_once().await.unwrap(), 2);
    let mut subjects: Vec<String> = sink
        .messages()
        .iter()
        .map(|(_, _, raw)| parsed(raw).subject().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Eerste versie", "Tweede versie"]);
    assert_eq!(
        message(&app, &queued["id"]).await["subject"],
        "Eerste versie"
    );
    assert_eq!(
        message(&app, &later["id"]).await["subject"],
        "Tweede versie"
    );
}

#[tokio::test]
async fn sending_with_an_unknown_template_or_with_both_template_and_inline_content_is_refused() {
    let app = spawn_app().await;
    let (status, err) = app
        .post(
            "/messages",
            json!({"to": "x@example.com", "template_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(
        (status, reason(&err, "template_id")),
        (422, "no such template")
    );
    let template = app
        .create(
            "/templates",
            json!({"name": "T", "subject": "s", "html": "<p>x</p>"}),
        )
        .await;
    for inline in [
        json!({"subject": "s", "html": "<p>x</p>"}),
        json!({"subject": "s"}),
        json!({"html": "<p>x</p>"}),
    ] {
        let mut body = json!({"to": "x@example.com", "template_id": template["id"]});
        for (k, v) in inline.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = app.post("/messages", body).await;
        assert_eq!(
            (status, reason(&err, "template_id")),
            (422, "give template_id or inline content, not both"),
            "{inline}"
        );
    }
    let (_, ledger) = app.get("/messages").await;
    assert!(
        ledger["items"].as_array().unwrap().is_empty(),
        "nothing queued"
    );
}
