#![allow(clippy::unwrap_used)] // Test code.

//! Forms end to end: managed through the API, shown on the hosted page and by the embed
//! script, submitted form-encoded or as JSON by anyone (no key), with per-field errors, the
//! honeypot, the rate limit, CORS, and the double opt-in confirmation link.

use crate::helpers::{TestApp, code, reason, spawn_app};
use jiff::SignedDuration;
use nudge_core::token::{Purpose, sign};
use reqwest::Method;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, CONTENT_TYPE};
use serde_json::{Value, json};

/// A form-encoded body; a name may repeat (multiple choices, `groups`).
fn encoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Posts the hosted page's form as a browser without JavaScript does.
async fn post_form(app: &TestApp, slug: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(format!("{}/f/{slug}", app.address))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(encoded(pairs))
        .send()
        .await
        .unwrap()
}

/// Posts a JSON submission; answers the status and the JSON body.
async fn post_json(app: &TestApp, slug: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/f/{slug}", app.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

struct Setup {
    form: Value,
    weekly: Value,
    monthly: Value,
    everyone: Value,
}

/// A newsletter form with a text, a custom choice field, a multiple choice, a consent
/// checkbox, two group choices and a fixed group, telling an owner of each submission.
async fn newsletter(app: &TestApp, extra: Value) -> Setup {
    app.create("/fields", json!({"key": "company", "type": "text"}))
        .await;
    app.create(
        "/fields",
        json!({"key": "topics", "type": "multi_choice", "options": ["rust", "mail", "go"]}),
    )
    .await;
    let weekly = app.create("/groups", json!({"name": "Weekly news"})).await;
    let monthly = app
        .create("/groups", json!({"name": "Monthly digest"}))
        .await;
    let everyone = app.create("/groups", json!({"name": "Everyone"})).await;
    let mut def = json!({
        "slug": "news",
        "name": "Newsletter",
        "fields": [
            {"name": "email", "label": "Email address", "type": "email", "required": true,
             "maps_to": "email"},
            {"name": "first_name", "label": "First name", "type": "text",
             "maps_to": "first_name", "mode": "fill_empty"},
            {"name": "company", "label": "Company", "type": "text", "maps_to": "fields.company"},
            {"name": "topics", "label": "Topics", "type": "multi_choice",
             "options": ["rust", "mail", "go"], "maps_to": "fields.topics"},
            {"name": "consent", "label": "Yes, send me the newsletter", "type": "consent",
             "required": true},
        ],
        "group_choices": [weekly["id"], monthly["id"]],
        "groups": [everyone["id"]],
        "notify": ["owner@example.com"],
        "response": {"kind": "message", "message": "Thanks for signing up!"},
    });
    for (key, value) in extra.as_object().unwrap() {
        def[key] = value.clone();
    }
    let form = app.create("/forms", def).await;
    Setup {
        form,
        weekly,
        monthly,
        everyone,
    }
}

async fn contacts(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/contacts").await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn messages_of(app: &TestApp, contact: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/messages?contact={contact}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn forms_are_created_read_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let Setup { form, weekly, .. } = newsletter(&app, json!({})).await;
    assert_eq!(form["slug"], "news");
    assert_eq!(form["fields"][0]["type"], "email");
    assert_eq!(form["fields"][0]["maps_to"], "email");
    assert_eq!(form["fields"][0]["mode"], "overwrite", "the default mode");
    assert_eq!(form["fields"][1]["mode"], "fill_empty");
    assert_eq!(form["fields"][3]["options"], json!(["rust", "mail", "go"]));
    assert_eq!(form["fields"][4]["maps_to"], Value::Null);
    assert_eq!(form["double_opt_in"], false);
    assert_eq!(form["sequence_id"], Value::Null);
    assert_eq!(
        form["response"],
        json!({"kind": "message", "message": "Thanks for signing up!", "redirect_url": null})
    );
    assert!(form["url"].as_str().unwrap().ends_with("/f/news"), "{form}");
    assert!(
        form["embed"]
            .as_str()
            .unwrap()
            .contains("/f/news/embed.js\" async></script>"),
        "{form}"
    );
    assert_eq!(form["created_at"], form["updated_at"]);
    let path = format!("/forms/{}", form["id"].as_str().unwrap());
    let (status, got) = app.get(&path).await;
    assert_eq!((status, &got), (200, &form));

    let second = app
        .create(
            "/forms",
            json!({"slug": "contact-us", "name": "Contact us", "fields": [
                {"name": "mail", "label": "Mail", "type": "email", "maps_to": "email"}]}),
        )
        .await;
    assert_eq!(second["response"]["kind"], "message", "a default answer");
    let (status, list) = app.get("/forms?limit=1").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["id"], second["id"], "newest first");
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, rest) = app.get(&format!("/forms?limit=1&cursor={cursor}")).await;
    assert_eq!(rest["items"][0]["id"], form["id"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    app.clock.advance_by(SignedDuration::from_secs(60)).unwrap();
    let (status, changed) = app
        .patch(
            &path,
            json!({"name": "Weekly newsletter", "group_choices": [weekly["id"]],
                   "response": {"kind": "redirect", "redirect_url": "https://example.com/thanks"}}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Weekly newsletter");
    assert_eq!(changed["group_choices"], json!([weekly["id"]]));
    assert_eq!(
        changed["response"],
        json!({"kind": "redirect", "message": null, "redirect_url": "https://example.com/thanks"})
    );
    assert_eq!(changed["fields"], form["fields"], "kept");
    assert_eq!(changed["notify"], form["notify"], "kept");
    assert_eq!(changed["created_at"], form["created_at"]);
    assert_ne!(changed["updated_at"], form["updated_at"]);
    let (_, got) = app.get(&path).await;
    assert_eq!(got, changed);

    let (status, body) = app.call(Method::DELETE, &path, None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, err) = app.get(&path).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
    let page = app
        .client
        .get(format!("{}/f/news", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404, "the page goes with the form");

    let (_, doc) = app.get("/openapi.json").await;
    for path in ["/forms", "/forms/{id}"] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}

#[tokio::test]
async fn bad_forms_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let email = json!({"name": "email", "label": "Email", "type": "email", "maps_to": "email"});
    let cases = [
        (
            json!({"slug": "a", "name": "A", "fields": [email, {"name": "b", "label": "B", "type": "text"},
                   {"name": "c", "label": "C", "type": "textarea"}]}),
            "fields[2].type",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email, {"name": "b", "label": "B",
                   "type": "text", "maps_to": "nickname"}]}),
            "fields[1].maps_to",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email, {"name": "b", "label": "B",
                   "type": "text", "maps_to": "first_name", "mode": "sometimes"}]}),
            "fields[1].mode",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email, {"name": "b", "label": "B",
                   "type": "text", "maps_to": "fields.unknown"}]}),
            "fields[1].maps_to",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email],
                   "response": {"kind": "popup", "message": "Hi"}}),
            "response.kind",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email],
                   "response": {"kind": "redirect"}}),
            "response.redirect_url",
        ),
        (
            json!({"slug": "Not a slug", "name": "A", "fields": [email]}),
            "slug",
        ),
        (json!({"slug": "a", "name": " ", "fields": [email]}), "name"),
        (
            json!({"slug": "a", "name": "A", "fields": [{"name": "x", "label": "X", "type": "text"}]}),
            "fields",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email],
                   "group_choices": ["00000000-0000-0000-0000-000000000000"]}),
            "group_choices[0]",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email], "notify": ["nope"]}),
            "notify[0]",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email],
                   "sequence_id": "00000000-0000-0000-0000-000000000000"}),
            "sequence_id",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [{"name": "email", "label": "E",
                   "type": "email", "maps_to": "email", "required": "yes"}]}),
            "fields[0].required",
        ),
        (
            json!({"slug": "a", "name": "A", "fields": [email], "colour": "red"}),
            "colour",
        ),
        (json!({"slug": "a", "name": "A"}), "fields"),
    ];
    for (body, field) in cases {
        let (status, err) = app.post("/forms", body.clone()).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(code(&err), "validation_failed", "{body}: {err}");
        assert!(!reason(&err, field).is_empty(), "{field} in {err}");
    }
    let (_, list) = app.get("/forms").await;
    assert_eq!(list["items"], json!([]), "nothing was created");

    let form = app
        .create(
            "/forms",
            json!({"slug": "taken", "name": "A", "fields": [email]}),
        )
        .await;
    let (status, err) = app
        .post(
            "/forms",
            json!({"slug": "taken", "name": "B", "fields": [email]}),
        )
        .await;
    assert_eq!((status, code(&err)), (409, "duplicate_slug"), "{err}");
    assert!(!reason(&err, "slug").is_empty(), "{err}");
    let other = app
        .create(
            "/forms",
            json!({"slug": "other", "name": "B", "fields": [email]}),
        )
        .await;
    let other_path = format!("/forms/{}", other["id"].as_str().unwrap());
    let (status, err) = app.patch(&other_path, json!({"slug": "taken"})).await;
    assert_eq!((status, code(&err)), (409, "duplicate_slug"), "{err}");

    // A change is checked on the form as it would be after it.
    let path = format!("/forms/{}", form["id"].as_str().unwrap());
    let (status, err) = app
        .patch(
            &path,
            json!({"fields": [{"name": "x", "label": "X", "type": "text"}]}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(!reason(&err, "fields").is_empty(), "{err}");
    let (status, err) = app
        .patch(
            &path,
            json!({"fields": [email, {"name": "y", "type": "radio"}]}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(!reason(&err, "fields[1].type").is_empty(), "{err}");
    let (_, got) = app.get(&path).await;
    assert_eq!(got, form, "unchanged");
    let (status, err) = app
        .patch(
            "/forms/00000000-0000-0000-0000-000000000000",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!((status, code(&err)), (404, "not_found"));
}

#[tokio::test]
async fn the_hosted_page_shows_the_fields_and_the_group_choices() {
    let app = spawn_app().await;
    newsletter(&app, json!({})).await;
    let page = app
        .client
        .get(format!("{}/f/news", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text().await.unwrap();
    for part in [
        "<html lang=\"en\" dir=\"ltr\">",
        "<h1>Newsletter</h1>",
        "<label for=\"nudge-news-email\">Email address",
        "type=\"email\" id=\"nudge-news-email\" name=\"email\"",
        " required",
        "<legend>Topics</legend>",
        "name=\"topics\" value=\"mail\"",
        "<label for=\"nudge-news-consent\">Yes, send me the newsletter",
        "> Weekly news</label>",
        "> Monthly digest</label>",
        "name=\"groups\"",
        "name=\"nudge_hp\" value=\"\" tabindex=\"-1\" autocomplete=\"off\"",
        "<button type=\"submit\">Submit</button>",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    assert!(!html.contains("<script"), "no JavaScript needed");
    assert!(
        !html.contains("Everyone"),
        "a fixed group is no choice: {html}"
    );

    let localized = |lang: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}/f/news", app.address))
                .header(ACCEPT_LANGUAGE, lang)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let dutch = localized("nl-NL,nl;q=0.9,en;q=0.5").await;
    assert!(
        dutch.contains("<button type=\"submit\">Verzenden</button>"),
        "{dutch}"
    );
    let hebrew = localized("he").await;
    assert!(hebrew.contains("dir=\"rtl\""), "{hebrew}");

    let missing = app
        .client
        .get(format!("{}/f/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_posted_form_creates_the_contact_with_its_fields_groups_and_consent() {
    let app = spawn_app().await;
    let Setup {
        form,
        weekly,
        monthly,
        everyone,
    } = newsletter(&app, json!({})).await;
    let weekly_id = weekly["id"].as_str().unwrap();
    let answer = post_form(
        &app,
        "news",
        &[
            ("email", " Anna@Example.com "),
            ("first_name", "Anna"),
            ("company", "Acme {{ sender.email }}"),
            ("topics", "rust"),
            ("topics", "mail"),
            ("consent", "on"),
            ("groups", weekly_id),
            ("nudge_hp", ""),
        ],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), "*");
    let html = answer.text().await.unwrap();
    assert!(html.contains("Thanks for signing up!"), "{html}");

    let all = contacts(&app).await;
    assert_eq!(all.len(), 1);
    let id = all[0]["id"].as_str().unwrap();
    let (_, anna) = app.get(&format!("/contacts/{id}")).await;
    assert_eq!(anna["email"], "Anna@example.com");
    assert_eq!(anna["first_name"], "Anna");
    assert_eq!(anna["status"], "subscribed", "no double opt-in");
    assert_eq!(anna["fields"]["company"], "Acme {{ sender.email }}");
    assert_eq!(anna["fields"]["topics"], json!(["rust", "mail"]));
    let mut groups: Vec<&str> = anna["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    groups.sort_unstable();
    let mut expected = vec![weekly_id, everyone["id"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(groups, expected, "the checked choice and the fixed group");
    assert!(!groups.contains(&monthly["id"].as_str().unwrap()));
    assert_eq!(anna["consent"]["text"], "Yes, send me the newsletter");
    assert_eq!(anna["consent"]["method"], "form");
    assert_eq!(anna["consent"]["form_id"], form["id"]);
    assert_eq!(anna["source"], "form:news");

    let (status, timeline) = app
        .get(&format!("/contacts/{id}/timeline?limit=1000"))
        .await;
    assert_eq!(status, 200, "{timeline}");
    let kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["contact_created", "form_submitted", "group_joined"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // The owner is told, about this contact, at the owner's address; no confirmation is due.
    let messages = messages_of(&app, id).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["to"], "owner@example.com");
    assert_eq!(messages[0]["class"], "transactional");
    assert_eq!(messages[0]["subject"], "New submission: Newsletter");

    // Submitting again fills only what the contact lacks in a fill_empty field.
    let answer = post_form(
        &app,
        "news",
        &[
            ("email", "anna@example.com"),
            ("first_name", "Annie"),
            ("company", "Initech"),
            ("consent", "on"),
        ],
    )
    .await;
    assert_eq!(answer.status(), 200);
    let (_, anna) = app.get(&format!("/contacts/{id}")).await;
    assert_eq!(anna["first_name"], "Anna", "fill_empty keeps it");
    assert_eq!(
        anna["fields"]["company"], "Initech",
        "overwrite replaces it"
    );
    assert_eq!(contacts(&app).await.len(), 1, "matched by email");
}

#[tokio::test]
async fn a_json_submission_answers_json() {
    let app = spawn_app().await;
    let Setup { monthly, .. } = newsletter(&app, json!({})).await;
    let (status, body) = post_json(
        &app,
        "news",
        json!({"email": "bert@example.com", "groups": [monthly["id"]], "consent": true,
               "topics": ["go"]}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"ok": true, "message": "Thanks for signing up!"})
        )
    );
    let all = contacts(&app).await;
    assert_eq!(all.len(), 1);
    assert!(
        all[0]["groups"]
            .as_array()
            .unwrap()
            .contains(&monthly["id"])
    );
    assert_eq!(all[0]["fields"]["topics"], json!(["go"]));

    // A form-encoded post that asks for JSON gets JSON too (the embed script does).
    let answer = app
        .client
        .post(format!("{}/f/news", app.address))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(encoded(&[("email", "cleo@example.com"), ("consent", "on")]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), "*");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["ok"], true);

    // Neither form-encoded nor JSON.
    let answer = app
        .client
        .post(format!("{}/f/news", app.address))
        .header(CONTENT_TYPE, "text/csv")
        .header(ACCEPT, "application/json")
        .body("email\nx@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 415);
    let (status, err) = post_json(&app, "nope", json!({"email": "x@example.com"})).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
}

#[tokio::test]
async fn invalid_input_is_answered_per_field_and_writes_nothing() {
    let app = spawn_app().await;
    newsletter(&app, json!({})).await;
    let (status, err) = post_json(
        &app,
        "news",
        json!({"email": "not an address", "topics": ["cobol"], "groups": ["nope"]}),
    )
    .await;
    assert_eq!((status, code(&err)), (422, "validation_failed"), "{err}");
    for field in ["email", "consent", "topics", "groups"] {
        assert!(!reason(&err, field).is_empty(), "{field} in {err}");
    }
    let (status, err) = post_json(&app, "news", json!({"email": {"a": 1}})).await;
    assert_eq!(status, 422, "{err}");
    assert!(!reason(&err, "email").is_empty(), "{err}");
    let (status, err) = post_json(&app, "news", json!(["x"])).await;
    assert_eq!(status, 422, "{err}");

    // Without JavaScript the page comes back with the reasons and what was typed.
    let answer = app
        .client
        .post(format!("{}/f/news", app.address))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT_LANGUAGE, "de")
        .body(encoded(&[
            ("email", "anna@"),
            ("first_name", "Anna <3"),
            ("topics", "mail"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    assert!(header(&answer, "content-type").starts_with("text/html"));
    let html = answer.text().await.unwrap();
    for part in [
        "value=\"anna@\"",
        "value=\"Anna &lt;3\"",
        "name=\"topics\" value=\"mail\" checked",
        "aria-invalid=\"true\" aria-describedby=\"nudge-news-email-error\"",
        "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
        "Bitte kreuzen Sie dieses Kästchen an.",
        "role=\"alert\"",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    assert_eq!(contacts(&app).await, Vec::<Value>::new(), "nothing written");
}

#[tokio::test]
async fn a_filled_honeypot_is_thanked_and_writes_nothing() {
    let app = spawn_app().await;
    newsletter(&app, json!({})).await;
    let answer = post_form(
        &app,
        "news",
        &[
            ("email", "robot@example.com"),
            ("consent", "on"),
            ("nudge_hp", "http://spam.example.com"),
        ],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("Thanks for signing up!")
    );
    let (status, body) = post_json(
        &app,
        "news",
        json!({"email": "robot2@example.com", "consent": true, "nudge_hp": "x"}),
    )
    .await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)));
    assert_eq!(contacts(&app).await, Vec::<Value>::new());
    let (_, messages) = app.get("/messages").await;
    assert_eq!(messages["items"], json!([]), "no notification either");
}

#[tokio::test]
async fn a_redirect_form_answers_303_or_names_the_url() {
    let app = spawn_app().await;
    newsletter(
        &app,
        json!({"response": {"kind": "redirect", "redirect_url": "https://example.com/thanks?from=nudge"}}),
    )
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("{}/f/news", app.address))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(encoded(&[("email", "dora@example.com"), ("consent", "on")]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(
        header(&answer, "location"),
        "https://example.com/thanks?from=nudge"
    );
    let (status, body) = post_json(
        &app,
        "news",
        json!({"email": "emil@example.com", "consent": "on"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(
        body["redirect_url"],
        "https://example.com/thanks?from=nudge"
    );
    assert_eq!(contacts(&app).await.len(), 2);
}

#[tokio::test]
async fn other_sites_may_post_the_form_and_load_the_script() {
    let app = spawn_app().await;
    newsletter(&app, json!({})).await;
    let preflight = app
        .client
        .request(Method::OPTIONS, format!("{}/f/news", app.address))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
    assert!(
        header(&preflight, "access-control-allow-headers")
            .to_ascii_lowercase()
            .contains("content-type")
    );

    let script = app
        .client
        .get(format!("{}/f/news/embed.js", app.address))
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    assert_eq!(header(&script, "access-control-allow-origin"), "*");
    let js = script.text().await.unwrap();
    for part in [
        "data-nudge-form",
        "document.currentScript",
        "fetch(",
        "\"Accept\": \"application/json\"",
        "showModal",
        "Email address",
        "Weekly news",
        "nudge_hp",
    ] {
        assert!(js.contains(part), "{part} in {js}");
    }
    assert!(!js.contains("__MARKUP__") && !js.contains("__SLUG__"));
    assert!(!js.contains("onclick") && !js.contains("onsubmit"));
    let missing = app
        .client
        .get(format!("{}/f/nope/embed.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn submissions_are_limited_per_address() {
    let app = spawn_app().await;
    newsletter(&app, json!({})).await;
    // The test server has no client addresses: every request counts as the same client.
    for i in 0..10 {
        let (status, body) = post_json(
            &app,
            "news",
            json!({"email": format!("p{i}@example.com"), "consent": true}),
        )
        .await;
        assert_eq!(status, 200, "{i}: {body}");
    }
    let answer = app
        .client
        .post(format!("{}/f/news", app.address))
        .json(&json!({"email": "late@example.com", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert!(header(&answer, "retry-after").parse::<u64>().unwrap() > 0);
    assert_eq!(header(&answer, "access-control-allow-origin"), "*");
    let err: Value = answer.json().await.unwrap();
    assert_eq!(code(&err), "rate_limited");
    assert_eq!(
        contacts(&app).await.len(),
        10,
        "the refused one wrote nothing"
    );

    app.clock.advance_by(SignedDuration::from_secs(60)).unwrap();
    let (status, body) = post_json(
        &app,
        "news",
        json!({"email": "late@example.com", "consent": true}),
    )
    .await;
    assert_eq!(status, 200, "a new minute: {body}");
}

#[tokio::test]
async fn double_opt_in_queues_a_confirmation_and_the_link_confirms() {
    let app = spawn_app().await;
    let Setup { form, .. } = newsletter(&app, json!({"double_opt_in": true})).await;
    let path = format!("/forms/{}", form["id"].as_str().unwrap());
    // The page is written in Dutch: a hidden field sets the contact's language.
    let mut fields = form["fields"].as_array().unwrap().clone();
    fields.push(json!({"name": "lang", "type": "hidden", "maps_to": "language", "value": "nl"}));
    let (status, body) = app.patch(&path, json!({"fields": fields})).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = post_json(
        &app,
        "news",
        json!({"email": "femke@example.com", "consent": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let all = contacts(&app).await;
    let id = all[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(all[0]["status"], "pending");
    assert_eq!(all[0]["language"], "nl");
    let messages = messages_of(&app, &id).await;
    let confirmation = messages
        .iter()
        .find(|m| m["to"] == "femke@example.com")
        .unwrap_or_else(|| panic!("a confirmation in {messages:?}"));
    assert_eq!(confirmation["class"], "transactional");
    assert_eq!(confirmation["subject"], "Bevestig uw inschrijving");
    assert!(messages.iter().any(|m| m["to"] == "owner@example.com"));

    let token = sign(&app.secret, Purpose::Confirm, id.parse().unwrap());
    let link = format!("{}/confirm/{token}", app.address);
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"nl\""), "{html}");
    assert!(html.contains("<form method=\"post\"><button type=\"submit\">Bevestigen</button>"));
    let (_, still) = app.get(&format!("/contacts/{id}")).await;
    assert_eq!(
        still["status"], "pending",
        "showing the page confirms nothing"
    );

    // A tampered or unknown token gets 404 and changes nothing.
    let mut tampered = token.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "nope"] {
        let url = format!("{}/confirm/{bad}", app.address);
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 404);
        assert_eq!(app.client.post(&url).send().await.unwrap().status(), 404);
    }
    let unsubscribe_token = sign(&app.secret, Purpose::Unsubscribe, id.parse().unwrap());
    let wrong_purpose = format!("{}/confirm/{unsubscribe_token}", app.address);
    assert_eq!(
        app.client
            .post(&wrong_purpose)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (_, still) = app.get(&format!("/contacts/{id}")).await;
    assert_eq!(still["status"], "pending");

    let confirmed = app.client.post(&link).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("is bevestigd"));
    let (_, femke) = app.get(&format!("/contacts/{id}")).await;
    assert_eq!(femke["status"], "subscribed");
    let (_, timeline) = app
        .get(&format!("/contacts/{id}/timeline?limit=1000"))
        .await;
    assert!(
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "status_changed"),
        "{timeline}"
    );
    // The link keeps saying so.
    let again = app.client.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("is bevestigd"));
}
