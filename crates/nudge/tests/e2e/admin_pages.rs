//! The admin pages for groups, custom fields and tags over HTTP: each renders for an admin,
//! a viewer cannot change anything, a write without a CSRF token changes nothing, and the
//! main actions work, refusals included.

#![allow(clippy::unwrap_used)] // Test code.

use crate::admin::Visitor;
use crate::helpers::{TestApp, spawn_app};
use nudge_core::{ChangeSource, ContactInput, Role};
use nudge_store::{ChangeContext, Group};
use serde_json::json;

const PAGES: [&str; 3] = ["/admin/groups", "/admin/fields", "/admin/tags"];

async fn groups(app: &TestApp) -> Vec<Group> {
    app.store.list_groups().await.unwrap()
}

fn id_of(groups: &[Group], name: &str) -> String {
    groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
        .id
        .to_string()
}

#[tokio::test]
async fn the_list_pages_render_for_an_admin_in_every_language() {
    let app = spawn_app().await;
    let mut admin = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    for page in PAGES {
        let answer = admin.get(page).await;
        assert_eq!(answer.status, 200, "{page}: {}", answer.body);
        assert!(
            answer.body.contains(&format!("action=\"{page}\"")),
            "{page}"
        );
        // minijinja escapes `/` too.
        let href = page.replace('/', "&#x2f;");
        assert!(
            answer
                .body
                .contains(&format!("href=\"{href}\" aria-current=\"page\""))
        );
    }
    for lang in ["nl", "de"] {
        admin.headers = vec![("accept-language", lang.to_owned())];
        for page in PAGES {
            let answer = admin.get(page).await;
            assert_eq!(answer.status, 200, "{page} in {lang}: {}", answer.body);
        }
    }
    admin.headers.clear();
    assert!(
        admin
            .get("/admin/fields")
            .await
            .text()
            .contains("Custom fields")
    );
}

#[tokio::test]
async fn a_viewer_sees_the_lists_but_cannot_change_them() {
    let app = spawn_app().await;
    app.store
        .create_group("Existing", None, false)
        .await
        .unwrap();
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    for page in PAGES {
        let answer = viewer.get(page).await;
        assert_eq!(answer.status, 200, "{page}");
        assert!(
            !answer.body.contains("name=\"action\" value=\"create\""),
            "{page}"
        );
    }
    let token = viewer.get("/admin/groups").await.token();
    let id = id_of(&groups(&app).await, "Existing");
    let tries: [(&str, Vec<(&str, &str)>); 5] = [
        ("/admin/groups", vec![("action", "create"), ("name", "New")]),
        ("/admin/groups", vec![("action", "delete"), ("id", &id)]),
        (
            "/admin/groups",
            vec![("action", "rename"), ("id", &id), ("name", "X")],
        ),
        (
            "/admin/fields",
            vec![("action", "create"), ("key", "plan"), ("type", "text")],
        ),
        ("/admin/tags", vec![("action", "create"), ("name", "vip")]),
    ];
    for (path, fields) in tries {
        let mut fields = fields;
        fields.push(("csrf_token", &token));
        let answer = viewer.post(path, &fields).await;
        assert_eq!(answer.status, 403, "{path} {fields:?}");
    }
    let left = groups(&app).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "Existing");
    assert!(app.store.list_fields().await.unwrap().is_empty());
    assert!(app.store.list_tags().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_write_without_a_csrf_token_gets_403_and_changes_nothing() {
    let app = spawn_app().await;
    let mut owner = Visitor::signed_in(&app, "owner@example.com", Role::Owner).await;
    let token = owner.get("/admin/groups").await.token();
    let tries: [(&str, Vec<(&str, &str)>); 3] = [
        ("/admin/groups", vec![("action", "create"), ("name", "New")]),
        (
            "/admin/fields",
            vec![("action", "create"), ("key", "plan"), ("type", "text")],
        ),
        ("/admin/tags", vec![("action", "create"), ("name", "vip")]),
    ];
    for (path, fields) in tries {
        assert_eq!(owner.post(path, &fields).await.status, 403, "{path}");
        let mut wrong = fields.clone();
        let bad = &token[..token.len() - 2];
        wrong.push(("csrf_token", bad));
        assert_eq!(owner.post(path, &wrong).await.status, 403, "{path}");
    }
    assert!(groups(&app).await.is_empty());
    assert!(app.store.list_fields().await.unwrap().is_empty());
    assert!(app.store.list_tags().await.unwrap().is_empty());
}

#[tokio::test]
async fn groups_are_created_renamed_moved_and_deleted_with_clear_refusals() {
    let app = spawn_app().await;
    let mut admin = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    let token = admin.get("/admin/groups").await.token();
    let post = |fields: Vec<(&'static str, String)>| {
        let mut fields = fields;
        fields.push(("csrf_token", token.clone()));
        fields
    };

    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![
                ("action", "create".into()),
                ("name", "Customers".into()),
            ]),
            &[],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/groups"));
    let customers = id_of(&groups(&app).await, "Customers");
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![
                ("action", "create".into()),
                ("name", "<b>Gold</b>".into()),
                ("parent", customers.clone()),
            ]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let gold = id_of(&groups(&app).await, "<b>Gold</b>");

    // The tree shows Gold indented under Customers, its name as text.
    let page = admin.get("/admin/groups").await;
    assert!(
        page.body.contains("&lt;b&gt;Gold&lt;&#x2f;b&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>Gold</b>"));
    let at_customers = page
        .body
        .find(&format!("id=\"group-{customers}\""))
        .unwrap();
    let at_gold = page.body.find(&format!("id=\"group-{gold}\"")).unwrap();
    assert!(at_customers < at_gold);
    assert!(page.body[at_gold..].contains("class=\"depth-1\""));

    // Rename.
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![
                ("action", "rename".into()),
                ("id", gold.clone()),
                ("name", "Gold".into()),
            ]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(id_of(&groups(&app).await, "Gold"), gold);

    // Moving Customers under its own child is a cycle: the page says so, nothing moves.
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![
                ("action", "move".into()),
                ("id", customers.clone()),
                ("parent", gold.clone()),
            ]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("role=\"alert\""));
    let now = groups(&app).await;
    let c = now.iter().find(|g| g.id.to_string() == customers).unwrap();
    assert_eq!(c.parent_id, None);

    // A group with a subgroup cannot go.
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![("action", "delete".into()), ("id", customers.clone())]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer.text().contains("still has contacts or subgroups"),
        "{}",
        answer.body
    );

    // Move Gold to the top; Customers still has a contact.
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![
                ("action", "move".into()),
                ("id", gold.clone()),
                ("parent", String::new()),
            ]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let record = app
        .store
        .create_contact(
            ContactInput {
                email: Some("anna@example.com".into()),
                ..Default::default()
            },
            ChangeContext::new(ChangeSource::Admin, jiff::Timestamp::now()),
        )
        .await
        .unwrap();
    app.store
        .set_group_membership(
            record.contact.id,
            customers.parse().unwrap(),
            true,
            ChangeContext::new(ChangeSource::Admin, jiff::Timestamp::now()),
        )
        .await
        .unwrap();
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![("action", "delete".into()), ("id", customers.clone())]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(answer.text().contains("still has contacts or subgroups"));

    // A group a sequence starts from cannot go either, and says why.
    let mut sequence = json!({
        "name": "Gold mails",
        "messages": [{"subject": "Hi", "html": "<p>Hi</p>"}],
    });
    sequence["start_groups"] = json!([gold]);
    app.create("/sequences", sequence).await;
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![("action", "delete".into()), ("id", gold.clone())]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer
            .text()
            .contains("A sequence or a form uses this group"),
        "{}",
        answer.body
    );
    assert_eq!(groups(&app).await.len(), 2);

    // An empty, unused group goes.
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![("action", "create".into()), ("name", "Spare".into())]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 303);
    let spare = id_of(&groups(&app).await, "Spare");
    let answer = admin
        .post_with(
            "/admin/groups",
            &post(vec![("action", "delete".into()), ("id", spare)]),
            &[],
        )
        .await;
    assert_eq!(answer.status, 303);
    assert_eq!(groups(&app).await.len(), 2);
}

#[tokio::test]
async fn fields_and_tags_are_created_listed_and_deleted() {
    let app = spawn_app().await;
    // Editors may see the lists but not change them (Role::may); admins may.
    let mut admin = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    let token = admin.get("/admin/fields").await.token();

    let answer = admin
        .post(
            "/admin/fields",
            &[
                ("csrf_token", &token),
                ("action", "create"),
                ("key", "plan"),
                ("label", "Plan"),
                ("type", "choice"),
                ("options", "Free\r\nPro\r\n"),
            ],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/fields"));
    let fields = app.store.list_fields().await.unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].options, ["Free", "Pro"]);
    let page = admin.get("/admin/fields").await;
    assert!(page.body.contains("<code>plan</code>"));
    assert!(page.body.contains("Free, Pro"));

    // A choice without options is refused with the reason beside the field.
    let answer = admin
        .post(
            "/admin/fields",
            &[
                ("csrf_token", &token),
                ("action", "create"),
                ("key", "tier"),
                ("type", "choice"),
            ],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer.body.contains("at least one option"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("value=\"tier\""));
    assert_eq!(app.store.list_fields().await.unwrap().len(), 1);

    let answer = admin
        .post(
            "/admin/fields",
            &[
                ("csrf_token", &token),
                ("action", "delete"),
                ("key", "plan"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303);
    assert!(app.store.list_fields().await.unwrap().is_empty());

    // Tags.
    let answer = admin
        .post(
            "/admin/tags",
            &[
                ("csrf_token", &token),
                ("action", "create"),
                ("name", "vip"),
            ],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/tags"));
    let page = admin.get("/admin/tags").await;
    assert!(
        page.body.contains("href=\"/admin/contacts?tag=vip\""),
        "{}",
        page.body
    );
    let answer = admin
        .post(
            "/admin/tags",
            &[
                ("csrf_token", &token),
                ("action", "delete"),
                ("name", "vip"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303);
    assert!(app.store.list_tags().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_send_ledger_lists_messages_filtered_and_escaped() {
    let app = spawn_app().await;
    let anna = app
        .create("/contacts", json!({"email": "anna@example.com"}))
        .await;
    let bert = app
        .create("/contacts", json!({"email": "bert@example.com"}))
        .await;
    for (contact, class, subject) in [
        (&anna, "campaign", "<i>News</i>"),
        (&bert, "transactional", "Your receipt"),
    ] {
        let (status, body) = app
            .post(
                "/messages",
                json!({"contact_id": contact["id"], "class": class, "subject": subject, "html": "<p>x</p>"}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // Viewers may read the ledger.
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    let page = viewer.get("/admin/messages").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("&lt;i&gt;News&lt;&#x2f;i&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<i>News"));
    assert!(page.body.contains("Your receipt"));
    assert!(page.text().contains("bert@example.com"));

    let page = viewer.get("/admin/messages?class=transactional").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Your receipt"));
    assert!(!page.body.contains("News"));
    let contact = anna["id"].as_str().unwrap();
    let page = viewer
        .get(&format!("/admin/messages?contact={contact}&status=queued"))
        .await;
    assert!(page.body.contains("News"));
    assert!(!page.body.contains("Your receipt"));
    // htmx gets the results only.
    viewer.headers = vec![("hx-request", "true".to_owned())];
    let fragment = viewer.get("/admin/messages?status=sent").await;
    assert_eq!(fragment.status, 200);
    assert!(!fragment.body.contains("<html"));
    assert!(fragment.text().contains("No messages match."));
    viewer.headers.clear();
    assert_eq!(viewer.get("/admin/messages?status=nope").await.status, 400);
}

#[tokio::test]
async fn sending_accounts_keep_their_password_out_of_every_page() {
    let app = spawn_app().await;
    let secret = "hunter2-very-secret";
    // Editors and viewers do not see settings at all.
    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    assert_eq!(editor.get("/admin/settings/smtp").await.status, 403);
    let editor_token = editor.get("/admin/contacts").await.token();
    let answer = editor
        .post(
            "/admin/settings/smtp",
            &[
                ("csrf_token", &editor_token),
                ("action", "create"),
                ("name", "x"),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);

    let mut admin = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    let page = admin.get("/admin/settings/smtp").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.token();
    let account = |token: &str, password: &str| {
        vec![
            ("csrf_token", token.to_owned()),
            ("action", "create".to_owned()),
            ("name", "Main relay".to_owned()),
            ("host", "127.0.0.1".to_owned()),
            ("port", "2525".to_owned()),
            ("tls", "none".to_owned()),
            ("username", "mailer".to_owned()),
            ("password", password.to_owned()),
            ("from_email", "news@example.com".to_owned()),
            ("tracking", "on".to_owned()),
        ]
    };
    // Without a token nothing is created.
    let mut no_token = account("", secret);
    no_token.remove(0);
    assert_eq!(
        admin
            .post_with("/admin/settings/smtp", &no_token, &[])
            .await
            .status,
        403
    );
    assert!(app.store.list_smtp_accounts().await.unwrap().is_empty());

    // A refusal shows the form again, without the password.
    let mut bad = account(&token, secret);
    bad.retain(|(name, _)| !matches!(*name, "from_email" | "port"));
    bad.push(("port", "many".to_owned()));
    let answer = admin.post_with("/admin/settings/smtp", &bad, &[]).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(!answer.body.contains(secret));
    assert!(answer.body.contains("value=\"Main relay\""));

    let answer = admin
        .post_with("/admin/settings/smtp", &account(&token, secret), &[])
        .await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, "/admin/settings/smtp"),
        "{}",
        answer.body
    );
    let stored = app.store.list_smtp_accounts().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].settings.password.as_deref(), Some(secret));
    let id = stored[0].id.to_string();
    let page = admin.get("/admin/settings/smtp").await;
    assert!(page.body.contains("Main relay"));
    assert!(!page.body.contains(secret));
    let edit = admin.get(&format!("/admin/settings/smtp?edit={id}")).await;
    assert_eq!(edit.status, 200);
    assert!(edit.body.contains("value=\"mailer\""));
    assert!(!edit.body.contains(secret));

    // An edit with the password left empty keeps it.
    let answer = admin
        .post(
            "/admin/settings/smtp",
            &[
                ("csrf_token", &token),
                ("action", "update"),
                ("id", &id),
                ("name", "Renamed relay"),
                ("host", "127.0.0.1"),
                ("port", "2525"),
                ("tls", "none"),
                ("username", "mailer"),
                ("password", ""),
                ("from_email", "news@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let stored = app.store.list_smtp_accounts().await.unwrap();
    assert_eq!(stored[0].settings.name, "Renamed relay");
    assert_eq!(stored[0].settings.password.as_deref(), Some(secret));
    assert!(!stored[0].settings.tracking, "the box was not ticked");

    // Testing a relay that is not there says so, quickly, and shows no password.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let answer = admin
        .post(
            "/admin/settings/smtp",
            &[
                ("csrf_token", &token),
                ("action", "update"),
                ("id", &id),
                ("name", "Renamed relay"),
                ("host", "127.0.0.1"),
                ("port", &port),
                ("tls", "none"),
                ("username", ""),
                ("password", ""),
                ("clear_password", "on"),
                ("from_email", "news@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let answer = admin
        .post(
            "/admin/settings/smtp",
            &[("csrf_token", &token), ("action", "test"), ("id", &id)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.text().contains("The connection test failed."),
        "{}",
        answer.body
    );

    // A relay that answers.
    let (_sink, port) = crate::delivery::Sink::start();
    let answer = admin
        .post(
            "/admin/settings/smtp",
            &[
                ("csrf_token", &token),
                ("action", "update"),
                ("id", &id),
                ("name", "Renamed relay"),
                ("host", "127.0.0.1"),
                ("port", &port.to_string()),
                ("tls", "none"),
                ("from_email", "news@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let answer = admin
        .post(
            "/admin/settings/smtp",
            &[("csrf_token", &token), ("action", "test"), ("id", &id)],
        )
        .await;
    assert!(
        answer.text().contains("The server answered"),
        "{}",
        answer.body
    );
    assert!(answer.text().contains("EHLO accepted"));

    let answer = admin
        .post(
            "/admin/settings/smtp",
            &[("csrf_token", &token), ("action", "delete"), ("id", &id)],
        )
        .await;
    assert_eq!(answer.status, 303);
    assert!(app.store.list_smtp_accounts().await.unwrap().is_empty());
}

#[tokio::test]
async fn owners_and_admins_add_users_and_no_one_else_may() {
    let app = spawn_app().await;
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    assert_eq!(viewer.get("/admin/users").await.status, 403);
    let token = viewer.get("/admin/contacts").await.token();
    let new_user = |token: &str, role: &str| {
        vec![
            ("csrf_token", token.to_owned()),
            ("email", "new@example.com".to_owned()),
            ("role", role.to_owned()),
            ("password", "a long enough password".to_owned()),
        ]
    };
    let answer = viewer
        .post_with("/admin/users", &new_user(&token, "editor"), &[])
        .await;
    assert_eq!(answer.status, 403);

    let mut admin = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    let page = admin.get("/admin/users").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("viewer@example.com"));
    assert!(
        !page.body.contains("value=\"owner\""),
        "admins cannot make owners"
    );
    let token = page.token();
    let mut no_token = new_user(&token, "editor");
    no_token.remove(0);
    assert_eq!(
        admin.post_with("/admin/users", &no_token, &[]).await.status,
        403
    );
    let answer = admin
        .post_with("/admin/users", &new_user(&token, "owner"), &[])
        .await;
    assert_eq!(answer.status, 403);
    let mut short = new_user(&token, "editor");
    short[3].1 = "short".to_owned();
    let answer = admin.post_with("/admin/users", &short, &[]).await;
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("at least 10 characters"));
    assert_eq!(app.store.list_users().await.unwrap().len(), 2);

    let answer = admin
        .post_with("/admin/users", &new_user(&token, "editor"), &[])
        .await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, "/admin/users"),
        "{}",
        answer.body
    );
    let users = app.store.list_users().await.unwrap();
    assert_eq!(users.len(), 3);
    // The new user can sign in.
    let mut new = Visitor::new(&app);
    let answer = new
        .sign_in("new@example.com", "a long enough password")
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/admin"));
}

#[tokio::test]
async fn a_dkim_key_made_on_the_page_shows_its_dns_record_and_never_the_private_key() {
    let app = spawn_app().await;
    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    assert_eq!(editor.get("/admin/settings/dkim").await.status, 403);
    let mut owner = Visitor::signed_in(&app, "owner@example.com", Role::Owner).await;
    let page = owner.get("/admin/settings/dkim").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.token();
    let form = |token: &str, domain: &str| {
        vec![
            ("csrf_token", token.to_owned()),
            ("domain", domain.to_owned()),
            ("selector", "s1".to_owned()),
            ("algorithm", "ed25519".to_owned()),
        ]
    };
    let mut no_token = form("", "example.com");
    no_token.remove(0);
    let answer = owner
        .post_with("/admin/settings/dkim", &no_token, &[])
        .await;
    assert_eq!(answer.status, 403);
    let answer = owner
        .post_with("/admin/settings/dkim", &form(&token, "not a domain"), &[])
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(app.store.dkim_keys().await.unwrap().is_empty());

    let answer = owner
        .post_with("/admin/settings/dkim", &form(&token, "Example.com"), &[])
        .await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, "/admin/settings/dkim"),
        "{}",
        answer.body
    );
    let keys = app.store.dkim_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    let page = owner.get("/admin/settings/dkim").await;
    assert!(
        page.body.contains("s1._domainkey.example.com"),
        "{}",
        page.body
    );
    assert!(page.body.contains("v=DKIM1; k=ed25519; p="));
    assert!(!page.body.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn an_api_key_is_shown_once_and_works() {
    let app = spawn_app().await;
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    assert_eq!(viewer.get("/admin/settings/api-keys").await.status, 403);
    let mut admin = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    let page = admin.get("/admin/settings/api-keys").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.token();
    let before = app.store.list_api_keys().await.unwrap().len();
    let answer = admin
        .post(
            "/admin/settings/api-keys",
            &[("name", "CRM sync"), ("scope", "contacts:read")],
        )
        .await;
    assert_eq!(answer.status, 403, "no token");
    let answer = admin
        .post(
            "/admin/settings/api-keys",
            &[("csrf_token", &token), ("name", "CRM sync")],
        )
        .await;
    assert_eq!(answer.status, 422, "no scope");
    assert_eq!(app.store.list_api_keys().await.unwrap().len(), before);

    let answer = admin
        .post(
            "/admin/settings/api-keys",
            &[
                ("csrf_token", &token),
                ("name", "CRM sync"),
                ("scope", "contacts:read"),
                ("scope", "lists:write"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (_, rest) = answer.body.split_once("id=\"new-key-value\">").unwrap();
    let key = rest.split('<').next().unwrap().to_owned();
    assert!(key.starts_with("nudge_"), "{key}");
    let keys = app.store.list_api_keys().await.unwrap();
    assert_eq!(keys.len(), before + 1);
    let made = keys.iter().find(|k| k.name == "CRM sync").unwrap();
    assert_eq!(made.scopes, ["contacts:read", "lists:write"]);
    // The key works on the API, for its scopes only.
    let (status, _) = app
        .call_with(&key, reqwest::Method::GET, "/contacts", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call_with(&key, reqwest::Method::GET, "/smtp-accounts", None)
        .await;
    assert_eq!(status, 403);
    // And it is never shown again.
    let page = admin.get("/admin/settings/api-keys").await;
    assert!(page.body.contains("CRM sync"));
    assert!(!page.body.contains(&key));
}
