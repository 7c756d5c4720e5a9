//! Signing in and out, and the user's language.
//!
//! A sign-in checks the password with argon2 (off the async threads), counts failures in the
//! store and refuses a locked user without looking at the password, so a lock-out cannot be
//! used to test guesses. A success always starts a new session with a new cookie value, so a
//! cookie planted before sign-in is worth nothing after it.

use super::session::{
    self, ABSOLUTE_LIFETIME, Current, IDLE_LIFETIME, LOCK_OUT, LOGIN_COOKIE, SESSION_COOKIE,
};
use super::{Failure, PageForm, csrf, i18n, view};
use crate::AppState;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use nudge_core::Email;
use serde::Deserialize;
use std::sync::LazyLock;

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize)]
pub struct LanguageChoice {
    #[serde(default)]
    language: String,
    /// The page to go back to.
    #[serde(default)]
    back: String,
}

/// Why a sign-in was refused; the page says which (`sign-in-error-*`).
enum Refusal {
    Invalid,
    Locked { minutes: i64 },
}

/// The sign-in page, with the token of the anonymous cookie (made here when missing).
fn sign_in_page(
    state: &AppState,
    jar: CookieJar,
    lang: &'static str,
    email: &str,
    refusal: Option<Refusal>,
) -> Result<Response, Failure> {
    let (jar, value) = match jar.get(LOGIN_COOKIE).map(|c| c.value().to_owned()) {
        Some(value) => (jar, value),
        None => {
            let value = session::random_value()?;
            let cookie = session::cookie(LOGIN_COOKIE, value.clone(), session::secure(state));
            (jar.add(cookie), value)
        }
    };
    let (status, error, minutes) = match refusal {
        None => (StatusCode::OK, None, None),
        Some(Refusal::Invalid) => (StatusCode::UNAUTHORIZED, Some("invalid"), None),
        Some(Refusal::Locked { minutes }) => {
            (StatusCode::TOO_MANY_REQUESTS, Some("locked"), Some(minutes))
        }
    };
    let ctx = minijinja::context! {
        csrf => csrf::token(&state.secret, &value),
        email,
        error,
        minutes,
        ..view::base_context(lang)
    };
    Ok((jar, view::page(status, "login.html", ctx)?).into_response())
}

/// `GET /admin/login`. Signed-in users go on to the dashboard.
pub async fn form(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    if session::current(&state, &jar, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin").into_response());
    }
    let lang = i18n::negotiate(session::accept_language(&headers));
    let mut response = sign_in_page(&state, jar, lang, "", None)?;
    // An htmx request that lost its session followed our 303 here: swapping the sign-in form
    // into a table would be confusing, so htmx is told to load this page whole.
    if headers.contains_key("hx-request") {
        response
            .headers_mut()
            .insert("hx-redirect", HeaderValue::from_static("/admin/login"));
    }
    Ok(response)
}

/// A hash no password matches, checked when the address is unknown so that an unknown address
/// takes as long as a wrong password.
static DECOY: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"decoy password for unknown addresses")
        .ok()
        .map(|h| h.to_string())
});

async fn password_matches(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let hash = hash.or_else(|| DECOY.clone());
        hash.is_some_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

fn minutes_until(until: jiff::Timestamp, now: jiff::Timestamp) -> i64 {
    let seconds = until.duration_since(now).as_secs().max(0);
    (seconds + 59) / 60
}

/// `POST /admin/login` (its CSRF token is bound to the anonymous cookie).
pub async fn sign_in(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    PageForm(form): PageForm<SignIn>,
) -> Result<Response, Failure> {
    let lang = i18n::negotiate(session::accept_language(&headers));
    let now = state.clock.now();
    let refuse = |jar, refusal| sign_in_page(&state, jar, lang, form.email.trim(), Some(refusal));
    let credentials = match Email::parse(form.email.trim()) {
        Ok(email) => state.store.user_credentials(&email).await?,
        Err(_) => None,
    };
    let Some(credentials) = credentials else {
        password_matches(form.password.clone(), None).await;
        return refuse(jar, Refusal::Invalid);
    };
    if let Some(until) = credentials.locked_until.filter(|until| *until > now) {
        let minutes = minutes_until(until, now);
        return refuse(jar, Refusal::Locked { minutes });
    }
    let user = credentials.user;
    if !password_matches(form.password.clone(), Some(credentials.password_hash)).await {
        return match state
            .store
            .record_failed_sign_in(user.id, LOCK_OUT, now)
            .await?
        {
            Some(until) => refuse(
                jar,
                Refusal::Locked {
                    minutes: minutes_until(until, now),
                },
            ),
            None => refuse(jar, Refusal::Invalid),
        };
    }
    if credentials.failed_sign_ins > 0 || credentials.locked_until.is_some() {
        state.store.clear_failed_sign_ins(user.id).await?;
    }
    // A session this browser had before is ended, not continued.
    if let Some(old) = jar.get(SESSION_COOKIE) {
        state
            .store
            .delete_session(&session::id_hash(old.value()))
            .await?;
    }
    let expired = state
        .store
        .delete_expired_sessions(now - IDLE_LIFETIME, now - ABSOLUTE_LIFETIME)
        .await?;
    tracing::info!(user = %user.email, expired, "signed in to the admin UI");
    let value = session::random_value()?;
    state
        .store
        .create_session(&session::id_hash(&value), user.id, now)
        .await?;
    let jar = jar
        .remove(session::removal(LOGIN_COOKIE))
        .add(session::cookie(
            SESSION_COOKIE,
            value,
            session::secure(&state),
        ));
    Ok((jar, Redirect::to("/admin")).into_response())
}

/// `POST /admin/logout`: the session row goes, so the cookie is dead even if kept.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    jar: CookieJar,
) -> Result<Response, Failure> {
    state.store.delete_session(&current.id_hash).await?;
    let jar = jar.remove(session::removal(SESSION_COOKIE));
    Ok((jar, Redirect::to("/admin/login")).into_response())
}

/// Where to go after the language switch: the page it was made on, if that is an admin page
/// of this server and fit for a `Location` header; else the dashboard.
fn back_to(back: &str) -> &str {
    let local = back == "/admin" || back.starts_with("/admin/") || back.starts_with("/admin?");
    if local && back.bytes().all(|b| b.is_ascii_graphic()) {
        back
    } else {
        "/admin"
    }
}

/// `POST /admin/language`: stores the user's choice of language.
pub async fn set_language(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    PageForm(choice): PageForm<LanguageChoice>,
) -> Result<Response, Failure> {
    let language = i18n::supported(&choice.language)
        .ok_or_else(|| Failure::BadRequest(format!("no such language: {}", choice.language)))?;
    state
        .store
        .set_user_language(current.user.id, Some(language))
        .await?;
    Ok(Redirect::to(back_to(&choice.back)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_goes_back_only_to_admin_pages() {
        assert_eq!(
            back_to("/admin/contacts?q=a&status=pending"),
            "/admin/contacts?q=a&status=pending"
        );
        assert_eq!(back_to("/admin"), "/admin");
        assert_eq!(back_to("//evil.example/admin"), "/admin");
        assert_eq!(back_to("https://evil.example"), "/admin");
        assert_eq!(back_to("/administrator"), "/admin");
        assert_eq!(back_to("/admin/x\r\nSet-Cookie: a=b"), "/admin");
        assert_eq!(back_to(""), "/admin");
    }

    #[test]
    fn a_lock_out_is_told_in_whole_minutes_rounded_up() {
        let now = jiff::Timestamp::from_second(1_800_000_000).expect("a time");
        let at = |s: i64| now + jiff::SignedDuration::from_secs(s);
        assert_eq!(minutes_until(at(900), now), 15);
        assert_eq!(minutes_until(at(61), now), 2);
        assert_eq!(minutes_until(at(1), now), 1);
        assert_eq!(minutes_until(at(-5), now), 0);
    }
}
