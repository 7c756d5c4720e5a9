//! `/admin/settings/api-keys`: the API keys (name, scopes, age) and making one. A new key is
//! shown once, on the answer to the form that made it; the store keeps only its SHA-256.

use super::session::{Current, random_value};
use super::{Failure, PageForm, view};
use crate::AppState;
use crate::auth::key_hash;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use minijinja::context;
use nudge_core::Scope;
use nudge_store::NewApiKey;
use std::collections::BTreeMap;

/// The longest key name, in characters.
const NAME_MAX: usize = 200;

async fn page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    name: &str,
    new_key: Option<String>,
    errors: BTreeMap<String, String>,
) -> Result<Response, Failure> {
    let keys: Vec<minijinja::Value> = state
        .store
        .list_api_keys()
        .await?
        .into_iter()
        .map(|k| {
            context! {
                name => k.name,
                scopes => k.scopes,
                created_at => k.created_at.to_string(),
            }
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let ctx = context! {
        keys,
        scopes => Scope::ALL.map(Scope::as_str),
        every => Scope::EVERY,
        name,
        new_key,
        errors,
        ..current.context("api-keys", uri)
    };
    view::page(status, "api_keys.html", ctx)
}

/// `GET /admin/settings/api-keys`.
pub async fn list(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    page(&state, &current, &uri, "", None, BTreeMap::new()).await
}

/// `POST /admin/settings/api-keys`: `name` and any number of `scope` fields (`*`: every
/// scope, present and future). The answer shows the key, once.
pub async fn create(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let mut errors = BTreeMap::new();
    let name = fields
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    if name.is_empty() {
        errors.insert("name".to_owned(), "must not be empty".to_owned());
    } else if name.chars().count() > NAME_MAX {
        errors.insert(
            "name".to_owned(),
            format!("must have at most {NAME_MAX} characters"),
        );
    }
    let mut scopes = Vec::new();
    for (_, raw) in fields.iter().filter(|(k, _)| k == "scope") {
        if raw == Scope::EVERY {
            scopes = vec![Scope::EVERY.to_owned()];
            break;
        }
        match raw.parse::<Scope>() {
            Ok(scope) => scopes.push(scope.as_str().to_owned()),
            Err(reason) => {
                errors.insert("scope".to_owned(), reason);
            }
        }
    }
    if scopes.is_empty() && !errors.contains_key("scope") {
        errors.insert("scope".to_owned(), "choose at least one scope".to_owned());
    }
    if !errors.is_empty() {
        return page(&state, &current, &uri, &name, None, errors).await;
    }
    let key = format!("nudge_{}", random_value()?);
    state
        .store
        .create_api_key(NewApiKey {
            name: name.clone(),
            key_hash: key_hash(&key),
            scopes,
        })
        .await?;
    page(&state, &current, &uri, "", Some(key), BTreeMap::new()).await
}
