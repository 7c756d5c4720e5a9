//! `/api/v1/enrolments`: the overview of who is where in which sequence (seed 002's
//! "Automailer Empfänger") and the per-recipient actions: pause, resume, reactivate, postpone.

use super::{ListParams, ListResponse, page_request, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use jiff::Timestamp;
use nudge_core::{EnrolmentAction, EnrolmentStatus, Scope, SequenceDef};
use nudge_store::{Enrolment, EnrolmentFilter, EnrolmentOrder, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_enrolments))
        .routes(routes!(get_enrolment, change_enrolment))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentOut {
    pub id: Uuid,
    pub sequence_id: Uuid,
    pub sequence_name: String,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub contact_email: String,
    /// active, suspended, paused, completed or cancelled.
    pub status: String,
    pub last_message_at: Option<String>,
    /// The subject of the last message sent.
    pub last_message: Option<String>,
    pub next_message_at: Option<String>,
    /// The subject of the next message.
    pub next_message: Option<String>,
    /// Why it waits, stopped or was suspended.
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl EnrolmentOut {
    pub fn new(e: Enrolment, sequence: Option<&SequenceDef>) -> Self {
        let subject = |step: Option<u32>| {
            let step = usize::try_from(step?).ok()?;
            sequence?.messages.get(step).map(|m| m.subject.clone())
        };
        Self {
            id: e.id,
            sequence_id: e.sequence_id,
            sequence_name: e.sequence_name,
            contact_id: e.contact_id,
            contact_name: e.contact_name,
            contact_email: e.contact_email,
            status: e.state.status.as_str().to_owned(),
            last_message_at: e.state.last_message_at.map(rfc3339),
            last_message: subject(e.state.last_step),
            next_message_at: e.state.next_due_at.map(rfc3339),
            next_message: subject(e.state.next_step),
            reason: e.state.reason,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// The overview rows with their message subjects, read from the sequences they belong to.
pub async fn describe(
    store: &dyn Store,
    rows: Vec<Enrolment>,
) -> Result<Vec<EnrolmentOut>, AppError> {
    let mut sequences: HashMap<Uuid, SequenceDef> = HashMap::new();
    if !rows.is_empty() {
        for s in store.list_sequences().await? {
            sequences.insert(s.id, s.def);
        }
    }
    Ok(rows
        .into_iter()
        .map(|e| {
            let def = sequences.get(&e.sequence_id);
            EnrolmentOut::new(e, def)
        })
        .collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrolmentParams {
    /// A sequence id.
    pub sequence: Option<String>,
    /// active, suspended, paused, completed or cancelled.
    pub status: Option<String>,
    /// A contact id.
    pub contact: Option<String>,
    /// `last_message`, `-last_message`, `next_message` or `-next_message` (`-`: latest
    /// first); newest enrolments first when absent.
    pub order: Option<String>,
}

fn id_param(name: &str, raw: Option<&str>) -> Result<Option<Uuid>, AppError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => Uuid::parse_str(s)
            .map(Some)
            .map_err(|_| AppError::field(name, "is not an id")),
    }
}

/// The enrolment overview: for all sequences or one, filterable by status and contact,
/// sortable by last and next message time.
#[utoipa::path(get, path = "/enrolments", tag = "enrolments",
    params(EnrolmentParams, ListParams),
    responses((status = 200, body = ListResponse<EnrolmentOut>)))]
async fn list_enrolments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<EnrolmentParams>,
    Query(list): Query<ListParams>,
) -> Result<Json<ListResponse<EnrolmentOut>>, AppError> {
    caller.require(Scope::AutomationsRead)?;
    let filter = EnrolmentFilter {
        sequence: id_param("sequence", params.sequence.as_deref())?,
        contact: id_param("contact", params.contact.as_deref())?,
        status: match params.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(EnrolmentStatus::parse(s).ok_or_else(|| {
                AppError::field(
                    "status",
                    "must be active, suspended, paused, completed or cancelled",
                )
            })?),
        },
    };
    let order = match params.order.as_deref().filter(|s| !s.is_empty()) {
        None => EnrolmentOrder::Newest,
        Some(s) => EnrolmentOrder::parse(s).ok_or_else(|| {
            AppError::field(
                "order",
                "must be last_message, -last_message, next_message or -next_message",
            )
        })?,
    };
    let page = state
        .store
        .list_enrolments(&filter, order, page_request(&list)?)
        .await?;
    let next_cursor = page.next_cursor.map(|c| c.to_string());
    let items = describe(state.store.as_ref(), page.items).await?;
    Ok(Json(ListResponse { items, next_cursor }))
}

/// One enrolment.
#[utoipa::path(get, path = "/enrolments/{id}", tag = "enrolments",
    params(("id" = Uuid, Path)), responses((status = 200, body = EnrolmentOut)))]
async fn get_enrolment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<EnrolmentOut>, AppError> {
    caller.require(Scope::AutomationsRead)?;
    let e = state.store.get_enrolment(id).await?;
    one(state.store.as_ref(), e).await
}

async fn one(store: &dyn Store, e: Enrolment) -> Result<Json<EnrolmentOut>, AppError> {
    let mut out = describe(store, vec![e]).await?;
    out.pop().map(Json).ok_or_else(AppError::internal)
}

/// An action on one enrolment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    /// `pause`, `resume`, `reactivate` (next message a minute from now, later gaps kept) or
    /// `postpone` (with `until`).
    pub action: String,
    /// RFC 3339; the new time of the next message, for `postpone`.
    pub until: Option<String>,
}

/// An action by name (`pause`, `resume`, `reactivate`, `postpone` with `until`, an RFC 3339
/// time), or the field at fault and why: the API and the admin pages read actions alike.
pub fn parse_action(
    action: &str,
    until: Option<&str>,
) -> Result<EnrolmentAction, (&'static str, &'static str)> {
    Ok(match action {
        "pause" => EnrolmentAction::Pause,
        "resume" => EnrolmentAction::Resume,
        "reactivate" => EnrolmentAction::Reactivate,
        "postpone" => {
            let until = until
                .filter(|s| !s.is_empty())
                .ok_or(("until", "is required to postpone"))?;
            EnrolmentAction::Postpone(
                until
                    .parse::<Timestamp>()
                    .map_err(|_| ("until", "is not an RFC 3339 time"))?,
            )
        }
        _ => return Err(("action", "must be pause, resume, reactivate or postpone")),
    })
}

/// Pause, resume, reactivate or postpone one recipient's sequence.
#[utoipa::path(patch, path = "/enrolments/{id}", tag = "enrolments", request_body = ActionIn,
    params(("id" = Uuid, Path)), responses((status = 200, body = EnrolmentOut)))]
async fn change_enrolment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ActionIn>,
) -> Result<Json<EnrolmentOut>, AppError> {
    caller.require(Scope::AutomationsWrite)?;
    let action = parse_action(&body.action, body.until.as_deref())
        .map_err(|(field, reason)| AppError::field(field, reason))?;
    let changed = state
        .store
        .change_enrolment(id, action, state.clock.now())
        .await?;
    state.wake_workers();
    one(state.store.as_ref(), changed).await
}
