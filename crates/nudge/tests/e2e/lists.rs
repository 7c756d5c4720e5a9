use crate::helpers::{code, reason, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn groups_form_a_tree_without_cycles() {
    let app = spawn_app().await;
    let a = app.create("/groups", json!({"name": "A"})).await;
    let b = app
        .create("/groups", json!({"name": "B", "parent_id": a["id"]}))
        .await;
    let c = app
        .create("/groups", json!({"name": "C", "parent_id": b["id"]}))
        .await;
    let a_path = format!("/groups/{}", a["id"].as_str().unwrap_or_default());
    let (status, err) = app.patch(&a_path, json!({"parent_id": c["id"]})).await;
    assert_eq!((status, code(&err)), (422, "validation_failed"));
    assert_eq!(
        reason(&err, "parent_id"),
        "would make the group its own ancestor"
    );
    let (status, err) = app.patch(&a_path, json!({"parent_id": a["id"]})).await;
    assert_eq!(
        (status, reason(&err, "parent_id")),
        (422, "would make the group its own ancestor")
    );

    let b_path = format!("/groups/{}", b["id"].as_str().unwrap_or_default());
    let (status, moved) = app
        .patch(&b_path, json!({"parent_id": null, "name": "B2"}))
        .await;
    assert_eq!(
        (status, &moved["parent_id"], &moved["name"]),
        (200, &json!(null), &json!("B2"))
    );
    let (status, err) = app.call(Method::DELETE, &b_path, None).await;
    assert_eq!((status, code(&err)), (409, "group_not_empty"));
    let (_, list) = app.get("/groups").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(list["next_cursor"], json!(null));
}

#[tokio::test]
async fn custom_fields_are_typed() {
    let app = spawn_app().await;
    let (status, err) = app
        .post("/fields", json!({"key": "Tier", "type": "choice"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(reason(&err, "key"), "must start with a lower-case letter");
    assert_eq!(
        reason(&err, "options"),
        "a choice field needs at least one option"
    );
    app.create(
        "/fields",
        json!({"key": "tier", "type": "choice", "options": ["gold", "silver"]}),
    )
    .await;
    app.create(
        "/fields",
        json!({"key": "birthday", "label": "Birthday", "type": "date"}),
    )
    .await;
    let (status, err) = app
        .post("/fields", json!({"key": "tier", "type": "text"}))
        .await;
    assert_eq!((status, code(&err)), (409, "duplicate_field"));
    let (status, err) = app
        .post("/contacts", json!({"email": "f@example.com", "fields": {"tier": "bronze", "birthday": "31-12-1990"}}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(reason(&err, "fields.tier"), "must be one of: gold, silver");
    assert_eq!(
        reason(&err, "fields.birthday"),
        "must be a date (YYYY-MM-DD)"
    );
    let (_, list) = app.get("/fields").await;
    assert_eq!(list["items"][1]["label"], "Birthday");
    let (status, _) = app.call(Method::DELETE, "/fields/tier", None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn tags_are_listed_with_their_counts() {
    let app = spawn_app().await;
    app.create("/tags", json!({"name": "later"})).await;
    app.create(
        "/contacts",
        json!({"email": "t@example.com", "tags": ["vip"]}),
    )
    .await;
    let (_, tags) = app.get("/tags").await;
    assert_eq!(
        tags["items"],
        json!([{"name": "later", "contacts": 0}, {"name": "vip", "contacts": 1}])
    );
    let (status, err) = app.post("/tags", json!({"name": "a/b"})).await;
    assert_eq!(
        (status, reason(&err, "name")),
        (422, "may not contain control characters or /")
    );
    let (status, _) = app.call(Method::DELETE, "/tags/vip", None).await;
    assert_eq!(status, 204);
}
