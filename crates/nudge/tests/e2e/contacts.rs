use crate::helpers::{code, reason, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_contact_round_trips_with_fields_groups_and_tags() {
    let app = spawn_app().await;
    app.create("/fields", json!({"key": "score", "type": "number"}))
        .await;
    let group = app.create("/groups", json!({"name": "Klanten"})).await;
    let created = app
        .create(
            "/contacts",
            json!({"email": " Anna@Example.NL ", "first_name": "Anna", "language": "nl",
                   "fields": {"score": 5}, "groups": [group["id"]], "tags": ["vip"],
                   "consent": {"text": "Ja, stuur mij de nieuwsbrief"}}),
        )
        .await;
    assert_eq!(created["email"], "Anna@example.nl");
    assert_eq!(created["status"], "subscribed");
    assert_eq!(created["fields"]["score"], 5);
    assert_eq!(created["groups"], json!([group["id"]]));
    assert_eq!(created["tags"], json!(["vip"]));
    assert_eq!(created["consent"]["text"], "Ja, stuur mij de nieuwsbrief");
    assert!(
        created["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let id = created["id"].as_str().unwrap_or_default();
    let (status, mut got) = app.get(&format!("/contacts/{id}")).await;
    // The one-contact view adds the contact's sequences.
    assert_eq!(got["enrolments"], json!([]));
    if let Some(object) = got.as_object_mut() {
        object.remove("enrolments");
    }
    assert_eq!((status, &got), (200, &created));

    let (status, patched) = app
        .patch(
            &format!("/contacts/{id}"),
            json!({"last_name": "de Vries", "first_name": null, "fields": {"score": 6}}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["last_name"], "de Vries");
    assert_eq!(patched["first_name"], json!(null));
    assert_eq!(patched["fields"]["score"], 6);

    let (status, timeline) = app.get(&format!("/contacts/{id}/timeline")).await;
    assert_eq!(status, 200);
    let summaries: Vec<&str> = timeline["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["summary"].as_str()).collect())
        .unwrap_or_default();
    assert!(summaries.contains(&"fields.score: 5 → 6"), "{summaries:?}");
    assert!(
        summaries.contains(&"first_name: Anna → (empty)"),
        "{summaries:?}"
    );
    assert_eq!(summaries.last(), Some(&"Contact created (admin)"));
}

#[tokio::test]
async fn filtering_by_a_parent_group_finds_contacts_of_its_subgroups() {
    let app = spawn_app().await;
    let top = app.create("/groups", json!({"name": "Klanten"})).await;
    let gold = app
        .create("/groups", json!({"name": "Gold", "parent_id": top["id"]}))
        .await;
    let deep = app
        .create(
            "/groups",
            json!({"name": "Platinum", "parent_id": gold["id"]}),
        )
        .await;
    let other = app.create("/groups", json!({"name": "Leveranciers"})).await;
    for (email, group, tag) in [
        ("a@example.com", &top, "vip"),
        ("b@example.com", &deep, "vip"),
        ("c@example.com", &other, "vip"),
        ("d@example.com", &gold, "basic"),
    ] {
        app.create(
            "/contacts",
            json!({"email": email, "groups": [group["id"]], "tags": [tag]}),
        )
        .await;
    }
    let top_id = top["id"].as_str().unwrap_or_default();
    let (status, page) = app
        .get(&format!(
            "/contacts?group={top_id}&tag=vip&status=subscribed"
        ))
        .await;
    assert_eq!(status, 200);
    let mut emails: Vec<&str> = page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|c| c["email"].as_str()).collect())
        .unwrap_or_default();
    emails.sort();
    assert_eq!(emails, ["a@example.com", "b@example.com"]);
    let (_, page) = app.get("/contacts?q=D@EXAMPLE").await;
    assert_eq!(page["items"][0]["email"], "d@example.com");
    let (status, err) = app.get("/contacts?status=active&group=nope").await;
    assert_eq!(status, 422);
    assert!(reason(&err, "status").starts_with("must be one of"));
    assert_eq!(reason(&err, "group"), "must be a group id");
}

#[tokio::test]
async fn pages_follow_the_cursor_newest_first() {
    let app = spawn_app().await;
    for n in 0..7 {
        app.create("/contacts", json!({"email": format!("p{n}@example.com")}))
            .await;
    }
    let mut seen = Vec::new();
    let mut path = "/contacts?limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["email"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/contacts?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|n| format!("p{n}@example.com")).collect();
    assert_eq!(seen, expected);
    for bad in ["limit=0", "limit=1001", "limit=x", "cursor=abc"] {
        let (status, err) = app.get(&format!("/contacts?{bad}")).await;
        assert_eq!((status, code(&err)), (422, "validation_failed"), "{bad}");
    }
}

#[tokio::test]
async fn a_status_change_out_of_unsubscribed_needs_a_reason() {
    let app = spawn_app().await;
    let c = app
        .create("/contacts", json!({"email": "s@example.com"}))
        .await;
    let path = format!("/contacts/{}/status", c["id"].as_str().unwrap_or_default());
    let (status, body) = app.post(&path, json!({"status": "unsubscribed"})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("unsubscribed"))
    );

    let (status, err) = app.post(&path, json!({"status": "subscribed"})).await;
    assert_eq!((status, code(&err)), (422, "validation_failed"));
    assert_eq!(
        reason(&err, "reason"),
        "leaving unsubscribed needs a re-subscription with a reason"
    );
    let (status, err) = app.post(&path, json!({"status": "gone"})).await;
    assert_eq!(status, 422);
    assert!(reason(&err, "status").starts_with("must be one of"));

    let (status, body) = app
        .post(
            &path,
            json!({"status": "subscribed", "reason": "asked by phone"}),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("subscribed")));
    let (_, timeline) = app
        .get(&format!(
            "/contacts/{}/timeline",
            c["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(timeline["items"][0]["kind"], "status_changed");
    assert_eq!(timeline["items"][0]["data"]["reason"], "asked by phone");

    let (status, err) = app
        .patch(
            &format!("/contacts/{}", c["id"].as_str().unwrap_or_default()),
            json!({"status": "bounced"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(reason(&err, "status").contains("/status"));
}

#[tokio::test]
async fn export_gives_everything_and_erase_leaves_only_a_suppression() {
    let app = spawn_app().await;
    let group = app.create("/groups", json!({"name": "Nieuwsbrief"})).await;
    let c = app
        .create(
            "/contacts",
            json!({"email": "weg@example.com", "first_name": "Wim", "groups": [group["id"]]}),
        )
        .await;
    let id = c["id"].as_str().unwrap_or_default().to_owned();
    let (status, export) = app.get(&format!("/contacts/{id}/export")).await;
    assert_eq!(status, 200);
    assert_eq!(export["contact"]["email"], "weg@example.com");
    assert_eq!(export["groups"][0]["name"], "Nieuwsbrief");
    assert_eq!(export["timeline"].as_array().map(Vec::len), Some(2));

    app.post(
        &format!("/contacts/{id}/status"),
        json!({"status": "complained"}),
    )
    .await;
    let (status, _) = app
        .call(Method::DELETE, &format!("/contacts/{id}"), None)
        .await;
    assert_eq!(status, 204);
    for path in [
        format!("/contacts/{id}"),
        format!("/contacts/{id}/timeline"),
        format!("/contacts/{id}/export"),
    ] {
        let (status, err) = app.get(&path).await;
        assert_eq!((status, code(&err)), (404, "not_found"), "{path}");
    }
    let (status, _) = app
        .call(Method::DELETE, &format!("/contacts/{id}"), None)
        .await;
    assert_eq!(status, 404);
    // The address comes back, but stays complained: it is never mailed again.
    let back = app
        .create("/contacts", json!({"email": "WEG@example.com"}))
        .await;
    assert_eq!(back["status"], "complained");
}

#[tokio::test]
async fn memberships_have_their_own_paths() {
    let app = spawn_app().await;
    let group = app.create("/groups", json!({"name": "G"})).await;
    let c = app
        .create("/contacts", json!({"email": "m@example.com"}))
        .await;
    let (id, gid) = (
        c["id"].as_str().unwrap_or_default(),
        group["id"].as_str().unwrap_or_default(),
    );
    let (status, body) = app
        .call(Method::PUT, &format!("/contacts/{id}/groups/{gid}"), None)
        .await;
    assert_eq!((status, &body["groups"]), (200, &json!([gid])));
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/contacts/{id}/tags/Klant%202026"),
            None,
        )
        .await;
    assert_eq!((status, &body["tags"]), (200, &json!(["Klant 2026"])));
    let (_, body) = app
        .call(
            Method::DELETE,
            &format!("/contacts/{id}/tags/Klant%202026"),
            None,
        )
        .await;
    assert_eq!(body["tags"], json!([]));
    let (_, body) = app
        .call(
            Method::DELETE,
            &format!("/contacts/{id}/groups/{gid}"),
            None,
        )
        .await;
    assert_eq!(body["groups"], json!([]));
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/contacts/{id}/groups/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, 404);
}
