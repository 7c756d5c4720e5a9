//! API keys: the bearer check in front of every `/api/v1` route, and scope checks in handlers.

use crate::AppState;
use crate::error::AppError;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use nudge_core::Scope;
use nudge_store::ApiKey;
use sha2::{Digest, Sha256};

/// The key a request was made with.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKey);

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if scope.granted_by(&self.0.scopes) {
            Ok(())
        } else {
            Err(AppError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this API key lacks the scope {}", scope.as_str()),
            ))
        }
    }
}

/// The stored form of a key: its SHA-256 in hex. Keys are 256 random bits, so a fast hash is
/// as safe here as a slow one and keeps every request cheap.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn require_api_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(AppError::unauthorized)?;
    let found = state
        .store
        .api_key_by_hash(&key_hash(key))
        .await?
        .ok_or_else(AppError::unauthorized)?;
    req.extensions_mut().insert(Caller(found));
    Ok(next.run(req).await)
}
