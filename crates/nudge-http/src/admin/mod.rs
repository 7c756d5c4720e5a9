//! The admin web UI under `/admin`: server-rendered pages (minijinja templates embedded in the
//! binary), htmx for partial updates, and no other JavaScript. Every page works without it.
//!
//! Layers, outermost first, on every admin route: security headers (a CSP without inline
//! script or style), error pages in the reader's language, then for signed-in routes the
//! session (`session::require`: no session is a 303 to `/admin/login`), the CSRF check on
//! every state-changing request (`csrf::protect`: 403 and nothing runs), and the role check
//! of the route's [`Area`] (`allow`). The sign-in form has its own CSRF binding to a
//! pre-session cookie.

mod api_keys;
mod assets;
mod contacts;
mod csrf;
mod dashboard;
mod enrolments;
mod forms;
mod i18n;
mod lists;
mod login;
mod messages;
mod sequences;
mod session;
mod settings;
mod users;
mod view;

use crate::AppState;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use nudge_core::Area;
use nudge_store::StoreError;
use serde::de::DeserializeOwned;
use session::Current;
use tower_http::set_header::SetResponseHeaderLayer;

/// How long an admin session lasts without a request (tests move the clock past it).
pub use session::IDLE_LIFETIME;

/// What went wrong with an admin request; answered with a page in the reader's language.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no such page or record")]
    NotFound,
    /// The user's role may not do this.
    #[error("the role may not do this")]
    Forbidden,
    /// A state-changing request without a valid CSRF token, or from another site.
    #[error("the request's CSRF token is missing or invalid, or it came from another site")]
    Csrf,
    /// A query or form that cannot be read at all (not one with a field at fault).
    #[error("the request cannot be read: {0}")]
    BadRequest(String),
    #[error("the request body is too large")]
    TooLarge,
    #[error("storage failed: {0}")]
    Store(StoreError),
    #[error("a page failed to render: {0}")]
    Render(#[from] minijinja::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Failure::NotFound,
            other => Failure::Store(other),
        }
    }
}

/// Marks a response whose page [`error_pages`] still has to render.
#[derive(Debug, Clone, Copy)]
struct ErrorPage(&'static str);

/// The language of the signed-in user, left on a response for [`error_pages`].
#[derive(Debug, Clone, Copy)]
struct PageLang(&'static str);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            Failure::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            Failure::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Failure::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            Failure::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            Failure::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            Failure::Store(_) | Failure::Render(_) | Failure::Internal(_) => {
                tracing::error!(error = %self, "admin request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage(kind));
        response
    }
}

/// Renders the page of a [`Failure`] in the signed-in user's language, else the browser's.
async fn error_pages(req: Request, next: Next) -> Response {
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(req).await;
    let Some(ErrorPage(kind)) = response.extensions().get::<ErrorPage>().copied() else {
        return response;
    };
    let lang = match response.extensions().get::<PageLang>() {
        Some(PageLang(lang)) => lang,
        None => i18n::negotiate(accept.as_deref()),
    };
    let status = response.status();
    let ctx = minijinja::context! { kind, ..view::base_context(lang) };
    match view::page(status, "error.html", ctx) {
        Ok(page) => page,
        // The plain status is all that is left to say.
        Err(_) => status.into_response(),
    }
}

/// The navigation: each page's section key (`nav-*` in the catalogues), path and area. Pages
/// of interfaces.md that do not exist yet join the list with their routes.
const NAV: [(&str, &str, Area); 13] = [
    ("dashboard", "/admin", Area::Dashboard),
    ("contacts", "/admin/contacts", Area::Contacts),
    ("groups", "/admin/groups", Area::Lists),
    ("fields", "/admin/fields", Area::Lists),
    ("tags", "/admin/tags", Area::Lists),
    ("forms", "/admin/forms", Area::Forms),
    ("sequences", "/admin/sequences", Area::Sequences),
    ("enrolments", "/admin/enrolments", Area::Sequences),
    ("messages", "/admin/messages", Area::Messages),
    ("smtp", "/admin/settings/smtp", Area::Settings),
    ("dkim", "/admin/settings/dkim", Area::Settings),
    ("api-keys", "/admin/settings/api-keys", Area::Settings),
    ("users", "/admin/users", Area::Users),
];

/// A form body; one that cannot be read is a 400 page rather than axum's plain-text answer.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|form| PageForm(form.0))
            .map_err(|e| Failure::BadRequest(e.body_text()))
    }
}

/// Query parameters, read like [`PageForm`].
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| PageQuery(query.0))
            .map_err(|e| Failure::BadRequest(e.body_text()))
    }
}

/// Whether a request may change something: everything but GET, HEAD and OPTIONS.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses the request unless the signed-in user's role may see (GET) or change (any other
/// method) `area`.
async fn allow(area: Area, req: Request, next: Next) -> Result<Response, Failure> {
    let current = req
        .extensions()
        .get::<Current>()
        .ok_or_else(|| Failure::Internal("a role check ran without a session".into()))?;
    if current.user.role.may(area, changes_state(req.method())) {
        Ok(next.run(req).await)
    } else {
        Err(Failure::Forbidden)
    }
}

/// The routes of one area, behind its role check.
fn area(area: Area, routes: Router<AppState>) -> Router<AppState> {
    routes.route_layer(middleware::from_fn(move |req: Request, next: Next| {
        allow(area, req, next)
    }))
}

/// The admin UI's router; `app()` merges it beside the API.
pub fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .merge(area(
            Area::Dashboard,
            Router::new().route("/admin", get(dashboard::page)),
        ))
        .merge(area(
            Area::Contacts,
            Router::new()
                .route(
                    "/admin/contacts",
                    get(contacts::list).post(contacts::create),
                )
                .route(
                    "/admin/contacts/{id}",
                    get(contacts::show).post(contacts::act),
                ),
        ))
        .merge(area(
            Area::Lists,
            Router::new()
                .route("/admin/groups", get(lists::groups).post(lists::groups_act))
                .route("/admin/fields", get(lists::fields).post(lists::fields_act))
                .route("/admin/tags", get(lists::tags).post(lists::tags_act)),
        ))
        .merge(area(
            Area::Forms,
            Router::new().route("/admin/forms", get(forms::list).post(forms::create)),
        ))
        .merge(area(
            Area::Sequences,
            Router::new()
                .route(
                    "/admin/enrolments",
                    get(enrolments::list).post(enrolments::start),
                )
                .route("/admin/enrolments/{id}", post(enrolments::act))
                .route(
                    "/admin/sequences",
                    get(sequences::list).post(sequences::create),
                )
                .route(
                    "/admin/sequences/{id}",
                    get(sequences::show).post(sequences::act),
                ),
        ))
        .merge(area(
            Area::Messages,
            Router::new().route("/admin/messages", get(messages::ledger)),
        ))
        .merge(area(
            Area::Settings,
            Router::new()
                .route(
                    "/admin/settings/smtp",
                    get(settings::smtp).post(settings::smtp_act),
                )
                .route(
                    "/admin/settings/dkim",
                    get(settings::dkim).post(settings::dkim_generate),
                )
                .route(
                    "/admin/settings/api-keys",
                    get(api_keys::list).post(api_keys::create),
                ),
        ))
        .merge(area(
            Area::Users,
            Router::new().route("/admin/users", get(users::list).post(users::create)),
        ))
        .merge(area(
            Area::Account,
            Router::new()
                .route("/admin/logout", post(login::sign_out))
                .route("/admin/language", post(login::set_language)),
        ))
        // Paths still to come (and mistyped ones) are behind the session like the rest.
        .route("/admin/{*rest}", any(|| async { Failure::NotFound }))
        .route_layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require,
        ));
    let signed_out = Router::new()
        .route("/admin/login", get(login::form).post(login::sign_in))
        .route_layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
        .route("/admin/static/{file}", get(assets::serve));
    // HSTS only where the public URL is https: over plain http a browser ignores it anyway,
    // and a test server on 127.0.0.1 would claim something untrue.
    let hsts = state
        .public_url
        .starts_with("https://")
        .then(|| HeaderValue::from_static("max-age=31536000"));
    signed_out
        .merge(signed_in)
        .layer(middleware::from_fn(error_pages))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Pages carry personal data and CSRF tokens; the static files set their own.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ))
}

/// The Content-Security-Policy of every admin answer: nothing inline (htmx is told not to
/// inject its indicator style), no frames, plugins or foreign form targets.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
