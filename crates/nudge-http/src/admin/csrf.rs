//! Cross-site request forgery: every state-changing admin request must come from our own
//! pages (`Sec-Fetch-Site` and `Origin`) and carry the token of the cookie it is bound to: the
//! session cookie when signed in, the anonymous sign-in cookie on the sign-in form. Forms send
//! it as the hidden field `csrf_token`, htmx as the `X-CSRF-Token` header (`hx-headers` on the
//! page's body). A request that fails gets 403 and reaches no handler.
//!
//! The token is `HMAC-SHA256(server secret, "csrf" || cookie value)`: nothing to store, valid
//! on every node that shares the secret, and useless with any other cookie.

use super::session::{Current, LOGIN_COOKIE};
use super::{Failure, changes_state};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";
/// The header htmx sends it in.
const HEADER: &str = "x-csrf-token";

fn mac(secret: &[u8], bound_to: &str) -> Option<hmac::Hmac<Sha256>> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"csrf");
    mac.update(bound_to.as_bytes());
    Some(mac)
}

/// The token for pages shown with the cookie value `bound_to`.
pub fn token(secret: &[u8], bound_to: &str) -> String {
    mac(secret, bound_to)
        .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Whether `token` belongs to `bound_to`, compared in constant time.
fn valid(secret: &[u8], bound_to: &str, token: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(token.trim()) else {
        return false;
    };
    mac(secret, bound_to).is_some_and(|m| m.verify_slice(&tag).is_ok())
}

/// The origin (`scheme://host[:port]`) of a URL such as the public URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host_len = rest.find('/').unwrap_or(rest.len());
    url.get(..scheme.len() + 3 + host_len)
}

/// Whether the browser says the request comes from our own pages. Browsers send
/// `Sec-Fetch-Site` and, on a POST, `Origin`; a client that sends neither is no browser being
/// abused, and the token still decides.
fn from_our_pages(headers: &HeaderMap, public_url: &str) -> bool {
    // "none" is a request the user started (typed, bookmarked), not one a page made.
    let site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|v| matches!(v.as_bytes(), b"same-origin" | b"none"));
    let origin_ok = match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|origin| {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let by_host = origin
                .split_once("://")
                .zip(host)
                .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
            let by_public_url =
                origin_of(public_url).is_some_and(|o| o.eq_ignore_ascii_case(origin));
            by_host || by_public_url
        }),
    };
    site_ok && origin_ok
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The CSRF check in front of admin handlers; GET, HEAD and OPTIONS pass untouched. The body
/// is read here (up to the API's body limit) to find the form field, and handed on whole.
pub async fn protect(
    State(state): State<AppState>,
    jar: CookieJar,
    req: Request,
    next: Next,
) -> Result<Response, Failure> {
    if !changes_state(req.method()) {
        return Ok(next.run(req).await);
    }
    if !from_our_pages(req.headers(), &state.public_url) {
        return Err(Failure::Csrf);
    }
    let bound_to = match req.extensions().get::<Current>() {
        Some(current) => current.cookie.clone(),
        None => jar
            .get(LOGIN_COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(Failure::Csrf)?,
    };
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > crate::extract::BODY_LIMIT) {
        return Err(Failure::TooLarge);
    }
    let bytes = axum::body::to_bytes(body, crate::extract::BODY_LIMIT)
        .await
        .map_err(|e| Failure::BadRequest(format!("the body could not be read: {e}")))?;
    let token = match parts.headers.get(HEADER) {
        Some(value) => value.to_str().ok().map(str::to_owned),
        None if is_form(&parts.headers) => form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == FIELD)
            .map(|(_, value)| value.into_owned()),
        None => None,
    };
    if !token.is_some_and(|t| valid(&state.secret, &bound_to, &t)) {
        return Err(Failure::Csrf);
    }
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_token_is_valid_only_for_its_cookie_and_secret() {
        let t = token(b"secret", "cookie-a");
        assert!(valid(b"secret", "cookie-a", &t));
        assert!(!valid(b"secret", "cookie-b", &t));
        assert!(!valid(b"other", "cookie-a", &t));
        assert!(!valid(b"secret", "cookie-a", ""));
        assert!(!valid(b"secret", "cookie-a", "not base64!"));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_our_own_pages_may_post() {
        let public = "https://mail.example.com/";
        let cases: [(&[(&str, &str)], bool); 8] = [
            (&[], true),
            (&[("sec-fetch-site", "same-origin")], true),
            (&[("sec-fetch-site", "cross-site")], false),
            (&[("sec-fetch-site", "same-site")], false),
            (&[("origin", "https://mail.example.com")], true),
            (&[("origin", "https://evil.example")], false),
            (&[("origin", "null")], false),
            (
                &[
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080"),
                ],
                true,
            ),
        ];
        for (pairs, ok) in cases {
            assert_eq!(from_our_pages(&headers(pairs), public), ok, "{pairs:?}");
        }
        assert_eq!(
            origin_of("http://a.example:8080/x/y"),
            Some("http://a.example:8080")
        );
        assert_eq!(origin_of(""), None);
    }
}
