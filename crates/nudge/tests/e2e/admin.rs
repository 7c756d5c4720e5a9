//! The admin UI over HTTP, without a browser: sessions, CSRF, lock-out, roles, languages,
//! escaping and the contact pages. (`tests/browser` drives the same pages in Chromium.)

#![allow(clippy::unwrap_used)] // Test code.

use crate::helpers::{PASSWORD, TestApp, add_user, spawn_app};
use nudge_core::{Email, Role};
use nudge_store::{ChangeContext, ContactFilter};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;

/// A client that keeps cookies by hand and does not follow redirects, so tests see each 303.
pub struct Visitor {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// Extra headers for every request (`Accept-Language`, `HX-Request`, ...).
    pub headers: Vec<(&'static str, String)>,
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body without the bidi isolation marks Fluent puts around every placeable.
    pub fn text(&self) -> String {
        self.body.replace(['\u{2068}', '\u{2069}'], "")
    }

    /// The CSRF token of the page's first form.
    pub fn token(&self) -> String {
        let (_, rest) = self
            .body
            .split_once("name=\"csrf_token\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in: {}", self.body));
        rest.split('"').next().unwrap().to_owned()
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: BTreeMap::new(),
            headers: Vec::new(),
        }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE).iter() {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, cookie) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), cookie.to_owned());
            }
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&String> {
        self.cookies.get(name)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request;
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header("cookie", jar.join("; "));
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        let body = response.text().await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        self.send(request).await
    }

    /// A POST with extra headers for this request only.
    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, String)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Signs in through the form; the answer is the POST's.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form.token();
        self.post(
            "/admin/login",
            &[
                ("csrf_token", &token),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    /// A visitor signed in as a new user with `role`.
    pub async fn signed_in(app: &TestApp, email: &str, role: Role) -> Self {
        add_user(app, email, role).await;
        let mut visitor = Self::new(app);
        let answer = visitor.sign_in(email, PASSWORD).await;
        assert_eq!((answer.status, answer.location()), (303, "/admin"));
        visitor
    }
}

async fn contacts(app: &TestApp) -> u64 {
    app.store
        .count_contacts(&ContactFilter::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn every_admin_page_without_a_session_redirects_to_sign_in() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    let id = uuid::Uuid::now_v7();
    for path in [
        "/admin".to_owned(),
        "/admin/contacts?status=pending".to_owned(),
        format!("/admin/contacts/{id}"),
        "/admin/groups".to_owned(),
        "/admin/settings/smtp".to_owned(),
    ] {
        let answer = visitor.get(&path).await;
        assert_eq!(
            (answer.status, answer.location()),
            (303, "/admin/login"),
            "{path}"
        );
    }
    let answer = visitor
        .post("/admin/contacts", &[("email", "a@example.com")])
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/login"));
    // A session cookie that names no session is no better than none, and is taken away.
    visitor.set("nudge_session", "made-up");
    let answer = visitor.get("/admin").await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/login"));
    assert!(visitor.cookie("nudge_session").is_none());

    let login = visitor.get("/admin/login").await;
    assert_eq!(login.status, 200);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.headers["x-content-type-options"], "nosniff");
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(login.body.contains("name=\"email\"") && login.body.contains("name=\"password\""));
    assert!(!login.body.contains("style=") && !login.body.contains("<script>"));

    let css = visitor.get("/admin/static/app.css").await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let htmx = visitor.get("/admin/static/htmx.min.js").await;
    assert_eq!(htmx.status, 200);
    assert!(htmx.body.contains("htmx"));
    assert_eq!(visitor.get("/admin/static/nothing.js").await.status, 404);
}

#[tokio::test]
async fn signing_in_shows_the_dashboard_and_signing_out_ends_the_session() {
    let app = spawn_app().await;
    add_user(&app, "owner@example.com", Role::Owner).await;
    let mut visitor = Visitor::new(&app);
    let answer = visitor.sign_in("Owner@Example.com", PASSWORD).await;
    assert_eq!((answer.status, answer.location()), (303, "/admin"));
    let cookie = answer.set_cookie("nudge_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(
        visitor.cookie("nudge_login").is_none(),
        "the sign-in cookie is gone"
    );

    let dashboard = visitor.get("/admin").await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert!(dashboard.body.contains("owner@example.com"));
    assert!(dashboard.body.contains("<svg class=\"chart status-bar\""));
    // Signed in, the sign-in page sends one on.
    let login = visitor.get("/admin/login").await;
    assert_eq!((login.status, login.location()), (303, "/admin"));

    let session = visitor.cookie("nudge_session").unwrap().clone();
    let token = dashboard.token();
    let out = visitor
        .post("/admin/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!((out.status, out.location()), (303, "/admin/login"));
    assert!(visitor.cookie("nudge_session").is_none());
    // The old cookie, kept by someone, opens nothing: the session row is gone.
    visitor.set("nudge_session", &session);
    let answer = visitor.get("/admin").await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/login"));
}

#[tokio::test]
async fn a_state_changing_request_without_a_valid_token_gets_403_and_changes_nothing() {
    let app = spawn_app().await;
    let mut visitor = Visitor::signed_in(&app, "owner@example.com", Role::Owner).await;
    let page = visitor.get("/admin/contacts").await;
    let token = page.token();
    let create = |token: &str| {
        [
            ("csrf_token", token.to_owned()),
            ("email", "new@example.com".to_owned()),
        ]
    };
    for bad in ["", "bm90IGEgdG9rZW4", &token[..token.len() - 2]] {
        let answer = visitor
            .post_with("/admin/contacts", &create(bad), &[])
            .await;
        assert_eq!(answer.status, 403, "token {bad:?}");
        assert!(
            answer.body.contains("<h1>"),
            "an error page: {}",
            answer.body
        );
    }
    let no_field = visitor
        .post("/admin/contacts", &[("email", "new@example.com")])
        .await;
    assert_eq!(no_field.status, 403);
    // The right token from a foreign page, or a page that says it is one, is refused too.
    let foreign = [("origin", "https://evil.example")];
    let answer = visitor
        .post_with("/admin/contacts", &create(&token), &foreign)
        .await;
    assert_eq!(answer.status, 403);
    let cross = [("sec-fetch-site", "cross-site")];
    let answer = visitor
        .post_with("/admin/contacts", &create(&token), &cross)
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(contacts(&app).await, 0, "nothing was created");

    // The token also works as htmx's header, from our own origin.
    let ours = [
        ("x-csrf-token", token.as_str()),
        ("origin", app.address.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let fields = [("email", "new@example.com".to_owned())];
    let answer = visitor.post_with("/admin/contacts", &fields, &ours).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(answer.location().starts_with("/admin/contacts/"));
    assert_eq!(contacts(&app).await, 1);

    // The sign-in form needs its own token too.
    let mut stranger = Visitor::new(&app);
    let answer = stranger
        .post(
            "/admin/login",
            &[("email", "owner@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(answer.status, 403);
    // A session's token is no sign-in token, and the reverse.
    stranger.get("/admin/login").await;
    let answer = stranger
        .post(
            "/admin/login",
            &[
                ("csrf_token", &token),
                ("email", "owner@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn five_wrong_passwords_lock_a_user_out_for_fifteen_minutes() {
    let app = spawn_app().await;
    add_user(&app, "editor@example.com", Role::Editor).await;
    let mut visitor = Visitor::new(&app);
    visitor.headers.push(("accept-language", "en".to_owned()));
    for _ in 0..4 {
        let answer = visitor
            .sign_in("editor@example.com", "wrong password")
            .await;
        assert_eq!(answer.status, 401);
        assert!(answer.body.contains("data-reason=\"invalid\""));
        assert!(answer.set_cookie("nudge_session").is_none());
    }
    let answer = visitor
        .sign_in("editor@example.com", "wrong password")
        .await;
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains("data-reason=\"locked\""));
    assert!(answer.text().contains("15 minutes"), "{}", answer.body);
    // Locked, even the right password is refused, and says nothing about it.
    let answer = visitor.sign_in("editor@example.com", PASSWORD).await;
    assert_eq!(answer.status, 429);
    // An unknown address is refused like a wrong password.
    let answer = visitor.sign_in("nobody@example.com", PASSWORD).await;
    assert_eq!(answer.status, 401);

    app.clock
        .advance_by(jiff::SignedDuration::from_mins(15))
        .unwrap();
    let answer = visitor.sign_in("editor@example.com", PASSWORD).await;
    assert_eq!((answer.status, answer.location()), (303, "/admin"));
    let creds = app
        .store
        .user_credentials(&Email::parse("editor@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((creds.failed_sign_ins, creds.locked_until), (0, None));
}

#[tokio::test]
async fn a_session_ends_after_two_idle_hours_or_twelve_in_all() {
    let app = spawn_app().await;
    let mut visitor = Visitor::signed_in(&app, "owner@example.com", Role::Owner).await;
    let hour = jiff::SignedDuration::from_hours(1);
    // Busy for eleven hours: each request keeps the session alive.
    for _ in 0..11 {
        app.clock.advance_by(hour).unwrap();
        assert_eq!(visitor.get("/admin").await.status, 200);
    }
    app.clock.advance_by(hour + hour).unwrap();
    let answer = visitor.get("/admin").await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/login"));

    let mut idle = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    app.clock
        .advance_by(nudge_http::admin::IDLE_LIFETIME + jiff::SignedDuration::from_secs(1))
        .unwrap();
    let answer = idle.get("/admin").await;
    assert_eq!((answer.status, answer.location()), (303, "/admin/login"));
}

#[tokio::test]
async fn a_viewer_may_read_everything_but_change_nothing() {
    let app = spawn_app().await;
    let mut viewer = Visitor::signed_in(&app, "viewer@example.com", Role::Viewer).await;
    let list = viewer.get("/admin/contacts").await;
    assert_eq!(list.status, 200);
    assert!(
        !list
            .body
            .contains("action=\"/admin/contacts\" class=\"stacked\"")
    );
    let token = list.token();
    let answer = viewer
        .post(
            "/admin/contacts",
            &[("csrf_token", &token), ("email", "new@example.com")],
        )
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(contacts(&app).await, 0);

    let record = app
        .store
        .create_contact(
            nudge_core::ContactInput {
                email: Some("anna@example.com".into()),
                ..Default::default()
            },
            ChangeContext::new(nudge_core::ChangeSource::Admin, jiff::Timestamp::now()),
        )
        .await
        .unwrap();
    let path = format!("/admin/contacts/{}", record.contact.id);
    assert_eq!(viewer.get(&path).await.status, 200);
    let answer = viewer
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "status"),
                ("status", "unsubscribed"),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);
    let still = app.store.get_contact(record.contact.id).await.unwrap();
    assert_eq!(still.contact.status, nudge_core::Status::Subscribed);
    // Their own account is theirs: the language switch and sign-out work.
    let answer = viewer
        .post(
            "/admin/language",
            &[("csrf_token", &token), ("language", "de"), ("back", &path)],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, path.as_str()));
    assert!(viewer.get(&path).await.body.contains("<html lang=\"de\">"));

    let mut editor = Visitor::signed_in(&app, "editor@example.com", Role::Editor).await;
    let token = editor.get("/admin/contacts").await.token();
    let answer = editor
        .post(
            "/admin/contacts",
            &[("csrf_token", &token), ("email", "new@example.com")],
        )
        .await;
    assert_eq!(answer.status, 303);
}

#[tokio::test]
async fn pages_speak_the_users_language_else_the_browsers() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor
        .headers
        .push(("accept-language", "de-AT,de;q=0.9".to_owned()));
    let login = visitor.get("/admin/login").await;
    assert!(login.body.contains("<html lang=\"de\">"));
    assert!(login.body.contains("Anmelden"));

    add_user(&app, "owner@example.com", Role::Owner).await;
    let answer = visitor.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(answer.status, 303);
    let dashboard = visitor.get("/admin").await;
    assert!(dashboard.body.contains("Kontakte nach Status"));
    let token = dashboard.token();
    visitor
        .post(
            "/admin/language",
            &[
                ("csrf_token", &token),
                ("language", "nl"),
                ("back", "/admin"),
            ],
        )
        .await;
    let dashboard = visitor.get("/admin").await;
    assert!(dashboard.body.contains("<html lang=\"nl\">"));
    assert!(dashboard.body.contains("Contacten per status"));
    let answer = visitor
        .post(
            "/admin/language",
            &[("csrf_token", &token), ("language", "fr")],
        )
        .await;
    assert_eq!(answer.status, 400);
}

#[tokio::test]
async fn a_contact_is_created_found_by_filters_and_paged() {
    let app = spawn_app().await;
    let mut visitor = Visitor::signed_in(&app, "owner@example.com", Role::Owner).await;
    visitor.headers.push(("accept-language", "en".to_owned()));
    let token = visitor.get("/admin/contacts").await.token();
    let answer = visitor
        .post(
            "/admin/contacts",
            &[
                ("csrf_token", &token),
                ("email", "Eva@Example.com"),
                ("first_name", "Eva"),
                ("status", "pending"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let page = visitor.get(answer.location()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Eva@example.com"));
    assert!(page.body.contains("Pending"));

    // A refused contact shows the form again with the reason.
    let answer = visitor
        .post(
            "/admin/contacts",
            &[("csrf_token", &token), ("email", "eva@example.com")],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("id=\"new-email-error\""));

    for i in 0..55 {
        let input = nudge_core::ContactInput {
            email: Some(format!("bulk{i:02}@example.com")),
            ..Default::default()
        };
        let ctx = ChangeContext::new(nudge_core::ChangeSource::Import, jiff::Timestamp::now());
        app.store.create_contact(input, ctx).await.unwrap();
    }
    let pending = visitor.get("/admin/contacts?status=pending&q=ev").await;
    assert!(
        pending.text().contains("One contact matches."),
        "{}",
        pending.body
    );
    assert!(pending.body.contains("Eva@example.com"));
    assert!(!pending.body.contains("bulk"));

    let first = visitor.get("/admin/contacts?q=bulk").await;
    assert!(first.text().contains("55 contacts match."));
    let (_, rest) = first.body.split_once("rel=\"next\"").unwrap();
    assert!(!rest.is_empty());
    let next = first
        .body
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|href| href.contains("cursor="))
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    assert!(next.starts_with("/admin/contacts?q=bulk&cursor="), "{next}");
    // The pager is htmx: asked for by htmx, the answer is the results fragment alone.
    visitor.headers.push(("hx-request", "true".to_owned()));
    let second = visitor.get(&next).await;
    assert_eq!(second.status, 200);
    assert!(!second.body.contains("<html"));
    assert_eq!(second.body.matches("/admin/contacts/").count(), 5);
    assert!(second.body.contains("bulk04@example.com"));

    assert_eq!(visitor.get("/admin/contacts?status=gone").await.status, 400);
}

#[tokio::test]
async fn a_contact_named_like_markup_is_shown_as_text() {
    let app = spawn_app().await;
    let mut visitor = Visitor::signed_in(&app, "owner@example.com", Role::Owner).await;
    let token = visitor.get("/admin/contacts").await.token();
    let evil = "<img src=x onerror=alert(1)>";
    let answer = visitor
        .post(
            "/admin/contacts",
            &[
                ("csrf_token", &token),
                ("email", "x@example.com"),
                ("first_name", evil),
            ],
        )
        .await;
    assert_eq!(answer.status, 303);
    for path in [answer.location().to_owned(), "/admin/contacts".to_owned()] {
        let page = visitor.get(&path).await;
        assert!(!page.body.contains(evil), "{path}: {}", page.body);
        assert!(
            page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn leaving_unsubscribed_on_a_contacts_page_needs_a_reason() {
    let app = spawn_app().await;
    let mut visitor = Visitor::signed_in(&app, "admin@example.com", Role::Admin).await;
    visitor.headers.push(("accept-language", "en".to_owned()));
    let token = visitor.get("/admin/contacts").await.token();
    let created = visitor
        .post(
            "/admin/contacts",
            &[
                ("csrf_token", &token),
                ("email", "u@example.com"),
                ("status", "unsubscribed"),
            ],
        )
        .await;
    let path = created.location().to_owned();
    let change = |reason: &str| {
        [
            ("csrf_token", token.clone()),
            ("action", "status".to_owned()),
            ("status", "subscribed".to_owned()),
            ("reason", reason.to_owned()),
        ]
    };
    let answer = visitor.post_with(&path, &change(""), &[]).await;
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("id=\"reason-error\""));
    let answer = visitor
        .post_with(&path, &change("asked by phone"), &[])
        .await;
    assert_eq!((answer.status, answer.location()), (303, path.as_str()));
    let page = visitor.get(&path).await;
    assert!(page.body.contains("id=\"current-status\">Subscribed"));
    assert!(
        page.body.contains("asked by phone"),
        "the timeline tells why"
    );
    assert_eq!(
        visitor
            .post(&path, &[("csrf_token", &token), ("action", "dance")])
            .await
            .status,
        400
    );
    let unknown = format!("/admin/contacts/{}", uuid::Uuid::now_v7());
    assert_eq!(visitor.get(&unknown).await.status, 404);
    assert_eq!(visitor.get("/admin/contacts/not-an-id").await.status, 404);
}
