//! Sign-in sessions: a cookie of 32 random bytes whose SHA-256 names a row in `sessions`.
//!
//! The cookie is `HttpOnly; SameSite=Lax; Path=/admin`, `Secure` when the public URL is https,
//! and has no Max-Age: it ends with the browser, and the server ends it earlier after
//! [`IDLE_LIFETIME`] without a request or [`ABSOLUTE_LIFETIME`] after sign-in, by the
//! application clock.

use super::{NAV, PageLang, csrf, i18n, view};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use minijinja::{Value, context};
use nudge_store::{LockOut, Session, User};

use super::Failure;

pub const SESSION_COOKIE: &str = "nudge_session";
/// The anonymous cookie the sign-in form's CSRF token is bound to.
pub const LOGIN_COOKIE: &str = "nudge_login";

/// A session ends after this long without a request.
pub const IDLE_LIFETIME: SignedDuration = SignedDuration::from_hours(2);
/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE_LIFETIME: SignedDuration = SignedDuration::from_hours(12);
/// `last_seen_at` is written at most this often, so that browsing is not a write per page.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);
/// Five wrong passwords in a row lock the user out for a quarter of an hour.
pub const LOCK_OUT: LockOut = LockOut {
    after_failures: 5,
    duration: SignedDuration::from_mins(15),
};

/// The signed-in user of a request, for handlers and the CSRF and role checks.
#[derive(Clone)]
pub struct Current {
    pub user: User,
    /// The page language: the user's choice, else the browser's.
    pub lang: &'static str,
    /// This session's CSRF token, for forms and htmx.
    pub csrf: String,
    /// The session row's key, for signing out.
    pub id_hash: String,
    /// The cookie value the CSRF token is bound to.
    pub(super) cookie: String,
}

impl Current {
    /// The context every signed-in page has: the user, the CSRF token, the navigation of
    /// what the user's role may see, the current section and path (for the language switch).
    pub fn context(&self, section: &str, uri: &Uri) -> Value {
        let nav: Vec<Value> = NAV
            .iter()
            .filter(|(_, _, area)| self.user.role.may(*area, false))
            .map(|&(key, href, _)| context! { key, href })
            .collect();
        context! {
            me => context! { email => &self.user.email, role => self.user.role.as_str() },
            csrf => &self.csrf,
            nav,
            section,
            path => uri.path_and_query().map_or("/admin", |p| p.as_str()),
            ..view::base_context(self.lang)
        }
    }
}

/// A new cookie value: 256 random bits, URL-safe.
pub fn random_value() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::Internal(format!("no randomness available: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the store keeps of a cookie value: its SHA-256, as for API keys.
pub fn id_hash(value: &str) -> String {
    crate::auth::key_hash(value)
}

/// A cookie of the admin UI: only `/admin` sees it, scripts never do.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
}

/// Removes a cookie set by [`cookie`] (the path must match).
pub fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build(name).path("/admin").build()
}

/// Cookies are `Secure` when the public URL is https.
pub fn secure(state: &AppState) -> bool {
    state.public_url.starts_with("https://")
}

pub fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

fn expired(session: &Session, now: Timestamp) -> bool {
    now.duration_since(session.last_seen_at) > IDLE_LIFETIME
        || now.duration_since(session.created_at) > ABSOLUTE_LIFETIME
}

/// The signed-in user, if the session cookie names a live session; an expired one is deleted.
pub async fn current(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
) -> Result<Option<Current>, Failure> {
    let Some(value) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let id_hash = id_hash(&value);
    let Some(session) = state.store.session(&id_hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if expired(&session, now) {
        state.store.delete_session(&id_hash).await?;
        return Ok(None);
    }
    if now.duration_since(session.last_seen_at) >= TOUCH_EVERY {
        state.store.touch_session(&id_hash, now).await?;
    }
    let lang = session
        .user
        .language
        .as_deref()
        .and_then(i18n::supported)
        .unwrap_or_else(|| i18n::negotiate(accept_language(headers)));
    Ok(Some(Current {
        csrf: csrf::token(&state.secret, &value),
        user: session.user,
        lang,
        id_hash,
        cookie: value,
    }))
}

/// In front of every signed-in route: without a live session, a 303 to the sign-in page (and
/// the dead cookie goes); with one, the handler finds [`Current`] in the request.
pub async fn require(
    State(state): State<AppState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Result<Response, Failure> {
    let Some(current) = current(&state, &jar, req.headers()).await? else {
        let jar = match jar.get(SESSION_COOKIE) {
            Some(_) => jar.remove(removal(SESSION_COOKIE)),
            None => jar,
        };
        return Ok((jar, Redirect::to("/admin/login")).into_response());
    };
    let lang = current.lang;
    req.extensions_mut().insert(current);
    let mut response = next.run(req).await;
    response.extensions_mut().insert(PageLang(lang));
    Ok(response)
}
