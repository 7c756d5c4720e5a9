//! `/admin/users`: who may sign in, and adding someone (email, role, password). Only owners
//! and admins see the page (`Area::Users`); only an owner may make another owner.

use super::session::Current;
use super::{Failure, PageForm, view};
use crate::AppState;
use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use nudge_core::{Email, Role};
use nudge_store::{NewUser, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shortest password a new user may get (as `nudge user create`).
const MIN_PASSWORD: usize = 10;

#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// What the form shows again: never the password.
#[derive(Debug, Default, Serialize)]
struct Shown {
    email: String,
    role: String,
}

#[derive(Debug, Serialize)]
struct Row {
    email: String,
    role: &'static str,
    language: Option<String>,
    created_at: String,
}

const ROLES: [&str; 4] = ["owner", "admin", "editor", "viewer"];

async fn page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    form: Shown,
    errors: BTreeMap<String, String>,
) -> Result<Response, Failure> {
    let users: Vec<Row> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| Row {
            email: u.email,
            role: u.role.as_str(),
            language: u.language,
            created_at: u.created_at.to_string(),
        })
        .collect();
    let roles: Vec<&str> = ROLES
        .into_iter()
        .filter(|r| *r != "owner" || current.user.role == Role::Owner)
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let ctx = context! {
        users => view::serialized(&users),
        roles,
        form => view::serialized(&form),
        errors,
        min_password => MIN_PASSWORD,
        ..current.context("users", uri)
    };
    view::page(status, "users.html", ctx)
}

/// `GET /admin/users`.
pub async fn list(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    let form = Shown {
        role: "editor".into(),
        ..Shown::default()
    };
    page(&state, &current, &uri, form, BTreeMap::new()).await
}

/// `POST /admin/users`: adds a user; a refusal shows the form again, without the password.
pub async fn create(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<NewUserForm>,
) -> Result<Response, Failure> {
    let mut errors = BTreeMap::new();
    let email = Email::parse(form.email.trim())
        .map_err(|e| errors.insert("email".to_owned(), e.to_string()))
        .ok();
    let role = form
        .role
        .parse::<Role>()
        .map_err(|e| errors.insert("role".to_owned(), e.to_string()))
        .ok();
    if role == Some(Role::Owner) && current.user.role != Role::Owner {
        return Err(Failure::Forbidden);
    }
    if form.password.chars().count() < MIN_PASSWORD {
        errors.insert(
            "password".to_owned(),
            format!("must have at least {MIN_PASSWORD} characters"),
        );
    }
    let shown = Shown {
        email: form.email.clone(),
        role: form.role.clone(),
    };
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return page(&state, &current, &uri, shown, errors).await;
    };
    let password = form.password;
    let hash = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| Failure::Internal(format!("hashing stopped: {e}")))?
    .map_err(|e| Failure::Internal(format!("could not hash the password: {e}")))?;
    let created = state
        .store
        .create_user(NewUser {
            email,
            password_hash: hash,
            role,
        })
        .await;
    match created {
        Ok(_) => Ok(Redirect::to("/admin/users").into_response()),
        Err(StoreError::Conflict { message, .. }) => {
            errors.insert("email".to_owned(), message);
            page(&state, &current, &uri, shown, errors).await
        }
        Err(StoreError::Invalid(fields)) => {
            page(&state, &current, &uri, shown, fields.into_map()).await
        }
        Err(e) => Err(e.into()),
    }
}
