//! Request extractors that turn every malformed input into an [`AppError`] naming the field.

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The largest request body the API reads.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A JSON body. Syntax errors are `invalid_json` (400); a body that parses but has a wrong type,
/// a missing or an unknown field is `validation_failed` (422) naming that field.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::payload_too_large()
            } else {
                AppError::invalid_json(format!("the body could not be read: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.is_empty() {
        return Err(AppError::invalid_json(
            "the body is empty; a JSON object is expected",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let (field, reason) = field_reason(&path, &inner.to_string());
                AppError::field(field, reason)
            }
            _ => AppError::invalid_json(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| AppError::invalid_json(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Turns serde's message into the field it is about and a reason without serde's jargon.
fn field_reason(path: &str, message: &str) -> (String, String) {
    // serde's data messages end with " at line L column C"; the field name says where.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head);
    let join = |name: &str| {
        if path.is_empty() || path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted_after(message, "unknown field `") {
        // For an unknown field the path already ends at the field itself.
        let field = if path.ends_with(&name) {
            path.to_owned()
        } else {
            join(&name)
        };
        return (field, "is not a known field".to_owned());
    }
    if let Some(name) = quoted_after(message, "missing field `") {
        return (join(&name), "is required".to_owned());
    }
    let field = if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    (field, message.to_owned())
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

/// A path segment that must be an id; anything else is a 404, like an unknown id.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::not_found())?;
        Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| AppError::not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only the parse outcome matters here.
    struct Body {
        name: String,
        inner: Option<Inner>,
        #[serde(default)]
        ids: Vec<Uuid>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        let cases: &[(&str, u16, Option<&str>)] = &[
            ("{", 400, None),
            ("not json", 400, None),
            ("", 400, None),
            (r#"{"name": "a"} {}"#, 400, None),
            ("[]", 422, Some("body")),
            ("{}", 422, Some("name")),
            (r#"{"name": 3}"#, 422, Some("name")),
            (r#"{"name": "a", "colour": 1}"#, 422, Some("colour")),
            (r#"{"name": "a", "inner": {"n": -1}}"#, 422, Some("inner.n")),
            (r#"{"name": "a", "inner": {"m": 1}}"#, 422, Some("inner.m")),
            (r#"{"name": "a", "ids": ["x"]}"#, 422, Some("ids[0]")),
        ];
        for (body, status, field) in cases {
            let err = parse_json::<Body>(body.as_bytes()).expect_err(body);
            assert_eq!(err.status.as_u16(), *status, "{body}: {err:?}");
            let named = err.fields.as_ref().and_then(|f| f.keys().next().cloned());
            assert_eq!(named.as_deref(), *field, "{body}: {err:?}");
        }
    }
}
