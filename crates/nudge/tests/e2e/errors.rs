use crate::helpers::{code, new_key, reason, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn only_healthz_and_the_openapi_document_are_served_without_a_key() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .ok();
    assert_eq!(health.map(|r| r.status().as_u16()), Some(200));
    for (method, path) in [
        (Method::GET, "/contacts"),
        (Method::POST, "/contacts"),
        (Method::GET, "/groups"),
        (Method::DELETE, "/fields/x"),
    ] {
        for key in ["", "nudge_wrong"] {
            let (status, body) = app.call_with(key, method.clone(), path, None).await;
            assert_eq!(
                (status, code(&body)),
                (401, "unauthorized"),
                "{method} {path} with {key:?}"
            );
        }
    }
    let no_header = app
        .client
        .get(format!("{}/api/v1/contacts", app.address))
        .send()
        .await
        .ok();
    assert_eq!(no_header.map(|r| r.status().as_u16()), Some(401));
}

#[tokio::test]
async fn a_key_without_the_scope_gets_403() {
    let app = spawn_app().await;
    let reader = new_key(app.store.as_ref(), &["contacts:read"]).await;
    let (status, _) = app.call_with(&reader, Method::GET, "/contacts", None).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .call_with(
            &reader,
            Method::POST,
            "/contacts",
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("contacts:write"))
    );
    let writer = new_key(app.store.as_ref(), &["contacts:read", "contacts:write"]).await;
    let c = app
        .create("/contacts", json!({"email": "e@example.com"}))
        .await;
    let path = format!("/contacts/{}", c["id"].as_str().unwrap_or_default());
    let (status, body) = app.call_with(&writer, Method::DELETE, &path, None).await;
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "erasing needs contacts:erase"
    );
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_and_write_nothing() {
    let app = spawn_app().await;
    app.create("/fields", json!({"key": "score", "type": "number"}))
        .await;
    app.create("/contacts", json!({"email": "taken@example.com"}))
        .await;
    // (what, body, status, code, the field at fault and its reason)
    type Case = (
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
        Option<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            b"{\"email\": ".to_vec(),
            400,
            "invalid_json",
            None,
        ),
        (
            "not JSON at all",
            b"email=a@example.com".to_vec(),
            400,
            "invalid_json",
            None,
        ),
        ("empty body", Vec::new(), 400, "invalid_json", None),
        (
            "unknown field",
            br#"{"email": "a@example.com", "colour": "red"}"#.to_vec(),
            422,
            "validation_failed",
            Some(("colour", "is not a known field")),
        ),
        (
            "wrong type",
            br#"{"email": 42}"#.to_vec(),
            422,
            "validation_failed",
            Some(("email", "invalid type: integer `42`, expected a string")),
        ),
        (
            "wrong list type",
            br#"{"email": "a@example.com", "groups": "x"}"#.to_vec(),
            422,
            "validation_failed",
            Some(("groups", "invalid type: string \"x\", expected a sequence")),
        ),
        (
            "invalid email",
            br#"{"email": "anna.example.com"}"#.to_vec(),
            422,
            "validation_failed",
            Some(("email", "has no @ sign")),
        ),
        (
            "missing email",
            br#"{"first_name": "Anna"}"#.to_vec(),
            422,
            "validation_failed",
            Some(("email", "is required")),
        ),
        (
            "wrong custom field type",
            br#"{"email": "a@example.com", "fields": {"score": "high"}}"#.to_vec(),
            422,
            "validation_failed",
            Some(("fields.score", "must be a number")),
        ),
        (
            "unknown custom field",
            br#"{"email": "a@example.com", "fields": {"shoe": 42}}"#.to_vec(),
            422,
            "validation_failed",
            Some(("fields.shoe", "no such custom field")),
        ),
        (
            "duplicate email",
            br#"{"email": "TAKEN@example.com"}"#.to_vec(),
            409,
            "duplicate_email",
            Some((
                "email",
                "a contact with the email TAKEN@example.com already exists",
            )),
        ),
        (
            "JSON array",
            b"[1, 2]".to_vec(),
            422,
            "validation_failed",
            None,
        ),
    ];
    for (name, body, status, expected_code, field) in cases {
        let (got, err) = app.raw(Method::POST, "/contacts", body).await;
        assert_eq!((got, code(&err)), (status, expected_code), "{name}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        if let Some((field, expected)) = field {
            assert_eq!(reason(&err, field), expected, "{name}: {err}");
        }
    }
    let (_, list) = app.get("/contacts").await;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(1),
        "nothing half-written"
    );
}

#[tokio::test]
async fn a_body_over_two_mebibytes_gets_413() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"email": "a@example.com", "first_name": "{}"}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let (status, err) = app.raw(Method::POST, "/contacts", big.into_bytes()).await;
    assert_eq!((status, code(&err)), (413, "payload_too_large"));
    let (_, list) = app.get("/contacts").await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn no_input_yields_a_server_error() {
    let app = spawn_app().await;
    let bodies: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00],
        b"null".to_vec(),
        b"{\"email\": null}".to_vec(),
        b"{\"email\": \"\\u0000@x.com\"}".to_vec(),
        b"{\"email\": \"a@b.co\", \"groups\": [null]}".to_vec(),
        b"{\"email\": \"a@b.co\", \"fields\": []}".to_vec(),
        b"{\"email\": \"a@b.co\", \"tags\": [\"\"]}".to_vec(),
        b"{\"email\": \"a@b.co\", \"time_zone\": \"../../etc/passwd\"}".to_vec(),
        b"{\"email\": \"a@b.co\", \"first_name\": \"\\ud800\"}".to_vec(),
        format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
    ];
    let paths = ["/contacts", "/groups", "/fields", "/tags"];
    for path in paths {
        for body in &bodies {
            let (status, err) = app.raw(Method::POST, path, body.clone()).await;
            assert!(
                (400..500).contains(&status),
                "{path} {:?}: {status} {err}",
                String::from_utf8_lossy(body)
            );
            assert!(!code(&err).is_empty(), "{path}: {err}");
        }
    }
    for path in [
        "/contacts/not-an-id",
        "/contacts/00000000-0000-0000-0000-000000000000/timeline",
        "/groups/%00",
        "/nope",
    ] {
        let (status, err) = app.get(path).await;
        assert_eq!((status, code(&err)), (404, "not_found"), "{path}");
    }
    let (status, err) = app.call(Method::PUT, "/contacts", None).await;
    assert_eq!((status, code(&err)), (405, "method_not_allowed"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_its_errors() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .ok()
        .and_then(|r| r.error_for_status().ok())
        .map(|r| async { r.json().await.ok() })
        .expect("served")
        .await
        .expect("JSON");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/contacts",
        "/contacts/{id}",
        "/contacts/{id}/status",
        "/contacts/{id}/timeline",
        "/contacts/{id}/export",
        "/contacts/{id}/groups/{group_id}",
        "/contacts/{id}/tags/{tag}",
        "/fields",
        "/fields/{key}",
        "/groups",
        "/groups/{id}",
        "/tags",
        "/tags/{name}",
        "/smtp-accounts",
        "/smtp-accounts/{id}",
        "/templates",
        "/templates/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let responses = &op["responses"];
            for status in ["401", "403", "422", "500"] {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} lacks {status}"
                );
            }
            if method == "post" || method == "patch" {
                for status in ["400", "413"] {
                    assert!(
                        responses.get(status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}
