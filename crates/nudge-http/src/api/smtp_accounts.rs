//! `/api/v1/smtp-accounts`: the relays mail goes out through. The password is write-only: it is
//! taken on create and change and never appears in an answer (`has_password` says whether one
//! is set). Creating or changing an account does not connect to it; the dispatcher uses it
//! from its next pass.

use super::{ListResponse, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use nudge_core::{Patch, Scope, SmtpAccountInput, SmtpAccountSettings};
use nudge_store::SmtpAccount;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account, delete_account))
}

/// A sending account as the API shows it: everything but the password.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmtpAccountOut {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    /// none, starttls or tls (TLS from the first byte).
    pub tls: String,
    pub username: Option<String>,
    /// Whether a password is stored; the password itself is never shown.
    pub has_password: bool,
    pub from_email: String,
    pub from_name: Option<String>,
    /// Messages per second this server hands to the account; 0 = no limit.
    pub rate_per_second: f64,
    /// Messages per UTC day; 0 = no limit.
    pub daily_limit: u64,
    /// The account's share of the mail relative to the other accounts.
    pub weight: u32,
    /// Whether opens and clicks are tracked in mail sent through it.
    pub tracking: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SmtpAccount> for SmtpAccountOut {
    fn from(a: SmtpAccount) -> Self {
        let s = a.settings;
        Self {
            id: a.id,
            name: s.name,
            host: s.host,
            port: s.port,
            tls: s.tls.as_str().to_owned(),
            username: s.username,
            has_password: s.password.is_some(),
            from_email: s.from_email.to_string(),
            from_name: s.from_name,
            rate_per_second: s.rate_per_second,
            daily_limit: s.daily_limit,
            weight: s.weight,
            tracking: s.tracking,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// A new account. `name`, `host` and `from_email` are required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpAccountCreate {
    pub name: Option<String>,
    pub host: Option<String>,
    /// Default: 587 for starttls, 465 for tls, 25 for none.
    pub port: Option<i64>,
    /// none, starttls (the default) or tls.
    pub tls: Option<String>,
    pub username: Option<String>,
    /// Write-only.
    pub password: Option<String>,
    /// The sender of mail that names none.
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    /// 0 (the default) = no limit.
    pub rate_per_second: Option<f64>,
    /// 0 (the default) = no limit.
    pub daily_limit: Option<i64>,
    /// 1 or more (default 1).
    pub weight: Option<i64>,
    /// Default true.
    pub tracking: Option<bool>,
}

/// A change: only the fields given change; `null` clears `username`, `password` or
/// `from_name`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpAccountUpdate {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub username: Patch<String>,
    /// Write-only.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub password: Patch<String>,
    pub from_email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub from_name: Patch<String>,
    pub rate_per_second: Option<f64>,
    pub daily_limit: Option<i64>,
    pub weight: Option<i64>,
    pub tracking: Option<bool>,
}

fn to_patch(value: Option<String>) -> Patch<String> {
    value.map_or(Patch::Keep, Patch::Set)
}

/// Every sending account, oldest first.
#[utoipa::path(get, path = "/smtp-accounts", tag = "smtp-accounts",
    responses((status = 200, body = ListResponse<SmtpAccountOut>)))]
async fn list_accounts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ListResponse<SmtpAccountOut>>, AppError> {
    caller.require(Scope::SettingsRead)?;
    let accounts = state.store.list_smtp_accounts().await?;
    Ok(Json(ListResponse::all(
        accounts.into_iter().map(SmtpAccountOut::from).collect(),
    )))
}

/// Add a sending account. Nothing connects to it until a message goes out through it.
#[utoipa::path(post, path = "/smtp-accounts", tag = "smtp-accounts",
    request_body = SmtpAccountCreate, responses((status = 201, body = SmtpAccountOut)))]
async fn create_account(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<SmtpAccountCreate>,
) -> Result<(StatusCode, Json<SmtpAccountOut>), AppError> {
    caller.require(Scope::SettingsWrite)?;
    let settings = SmtpAccountSettings::create(SmtpAccountInput {
        name: body.name,
        host: body.host,
        port: body.port,
        tls: body.tls,
        username: to_patch(body.username),
        password: to_patch(body.password),
        from_email: body.from_email,
        from_name: to_patch(body.from_name),
        rate_per_second: body.rate_per_second,
        daily_limit: body.daily_limit,
        weight: body.weight,
        tracking: body.tracking,
    })
    .map_err(AppError::validation)?;
    let account = state.store.create_smtp_account(settings).await?;
    Ok((StatusCode::CREATED, Json(account.into())))
}

/// One sending account.
#[utoipa::path(get, path = "/smtp-accounts/{id}", tag = "smtp-accounts",
    params(("id" = Uuid, Path)), responses((status = 200, body = SmtpAccountOut)))]
async fn get_account(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<SmtpAccountOut>, AppError> {
    caller.require(Scope::SettingsRead)?;
    Ok(Json(state.store.get_smtp_account(id).await?.into()))
}

/// Change a sending account; the dispatcher opens new connections with the new settings.
#[utoipa::path(patch, path = "/smtp-accounts/{id}", tag = "smtp-accounts",
    request_body = SmtpAccountUpdate, params(("id" = Uuid, Path)),
    responses((status = 200, body = SmtpAccountOut)))]
async fn update_account(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<SmtpAccountUpdate>,
) -> Result<Json<SmtpAccountOut>, AppError> {
    caller.require(Scope::SettingsWrite)?;
    let change = SmtpAccountInput {
        name: body.name,
        host: body.host,
        port: body.port,
        tls: body.tls,
        username: body.username,
        password: body.password,
        from_email: body.from_email,
        from_name: body.from_name,
        rate_per_second: body.rate_per_second,
        daily_limit: body.daily_limit,
        weight: body.weight,
        tracking: body.tracking,
    };
    Ok(Json(
        state.store.update_smtp_account(id, change).await?.into(),
    ))
}

/// Remove a sending account; messages it sent keep its id.
#[utoipa::path(delete, path = "/smtp-accounts/{id}", tag = "smtp-accounts",
    params(("id" = Uuid, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_account(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::SettingsWrite)?;
    state.store.delete_smtp_account(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
