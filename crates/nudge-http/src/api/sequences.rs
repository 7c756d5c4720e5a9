//! `/api/v1/sequences`: sequences (automailers) and starting them by hand. Each message is
//! checked like a template when the sequence is saved, so a typo in a variable is refused with
//! its message and line instead of reaching a contact days later.

use super::{ListResponse, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use nudge_core::{
    Condition, Delay, FieldDef, FieldErrors, Patch, Scope, SendingWindow, SequenceDef, Step,
};
use nudge_mail::Template;
use nudge_store::{SequenceRecord, StartTarget, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sequences, create_sequence))
        .routes(routes!(get_sequence, update_sequence, delete_sequence))
        .routes(routes!(start_sequence))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionIo {
    /// A custom field's key, or `status`.
    pub field: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowIo {
    /// `mon` .. `sun`.
    pub days: Vec<String>,
    /// `HH:MM` in the contact's time zone (UTC when it has none).
    pub from: String,
    pub to: String,
}

pub fn window_io(w: &SendingWindow) -> WindowIo {
    WindowIo {
        days: w
            .days
            .iter()
            .map(|d| nudge_core::sequence::weekday_name(*d).to_owned())
            .collect(),
        from: w.from.strftime("%H:%M").to_string(),
        to: w.to.strftime("%H:%M").to_string(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepOut {
    pub id: Uuid,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    /// ISO 8601, counted from when the previous message was due (the first from the start).
    pub delay: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SequenceOut {
    pub id: Uuid,
    pub name: String,
    pub messages: Vec<StepOut>,
    pub start_groups: Vec<Uuid>,
    pub condition: Option<ConditionIo>,
    pub window: Option<WindowIo>,
    /// Grows with every change.
    pub version: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SequenceRecord> for SequenceOut {
    fn from(r: SequenceRecord) -> Self {
        let def = r.def;
        Self {
            id: r.id,
            name: def.name,
            messages: def
                .messages
                .into_iter()
                .map(|m| StepOut {
                    id: m.id,
                    subject: m.subject,
                    html: m.html,
                    text: m.text,
                    delay: m.delay.to_string(),
                })
                .collect(),
            start_groups: def.start_groups,
            condition: def.condition.map(|c| ConditionIo {
                field: c.field,
                values: c.values,
            }),
            window: def.window.as_ref().map(window_io),
            version: r.version,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// One message of a sequence. Subject, HTML and text are templates like
/// `/api/v1/templates`'.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepIn {
    /// Keep a message's id when changing a sequence, so contacts in it keep their place.
    pub id: Option<Uuid>,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    /// ISO 8601 (`P3D`, `PT12H`); `P0D` when absent.
    pub delay: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceIn {
    pub name: String,
    pub messages: Vec<StepIn>,
    #[serde(default)]
    pub start_groups: Vec<Uuid>,
    pub condition: Option<ConditionIo>,
    pub window: Option<WindowIo>,
}

/// A change to a sequence; absent attributes are kept, `null` removes a condition or window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SequencePatch {
    pub name: Option<String>,
    pub messages: Option<Vec<StepIn>>,
    pub start_groups: Option<Vec<Uuid>>,
    #[serde(default)]
    #[schema(value_type = Option<ConditionIo>)]
    pub condition: Patch<ConditionIo>,
    #[serde(default)]
    #[schema(value_type = Option<WindowIo>)]
    pub window: Patch<WindowIo>,
}

/// Builds and checks a definition: delays, the window, each message as a template against the
/// custom fields, and the core's rules. Every fault is named (`messages[1].delay`, ...).
async fn definition(
    state: &AppState,
    name: String,
    messages: Vec<StepIn>,
    start_groups: Vec<Uuid>,
    condition: Option<ConditionIo>,
    window: Option<WindowIo>,
    existing: &[Step],
) -> Result<SequenceDef, AppError> {
    let fields = state.store.list_fields().await?;
    check_definition(
        &fields,
        SequenceIn {
            name,
            messages,
            start_groups,
            condition,
            window,
        },
        existing,
    )
    .map_err(AppError::validation)
}

/// The check of [`definition`] for given custom fields, shared with the admin pages: the
/// same rules and the same field names (`messages[1].html`, `window.from`, ...).
pub fn check_definition(
    fields: &[FieldDef],
    input: SequenceIn,
    existing: &[Step],
) -> Result<SequenceDef, FieldErrors> {
    let SequenceIn {
        name,
        messages,
        start_groups,
        condition,
        window,
    } = input;
    let mut errors = FieldErrors::new();
    let mut steps = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let delay = match m.delay.as_deref() {
            None => Delay::ZERO,
            Some(raw) => Delay::parse(raw).unwrap_or_else(|reason| {
                errors.add(format!("messages[{i}].delay"), reason);
                Delay::ZERO
            }),
        };
        let text = m.text.filter(|t| !t.trim().is_empty());
        if let Err(template_errors) = Template::check(&m.subject, &m.html, text.as_deref(), fields)
        {
            for (part, reason) in template_errors.iter() {
                errors.add(format!("messages[{i}].{part}"), reason);
            }
        }
        let id =
            m.id.filter(|id| existing.iter().any(|s| s.id == *id))
                .unwrap_or_else(Uuid::now_v7);
        steps.push(Step {
            id,
            subject: m.subject,
            html: m.html,
            text,
            delay,
        });
    }
    let window = window.and_then(|w| {
        SendingWindow::parse(&w.days, &w.from, &w.to)
            .map_err(|e| {
                for (field, reason) in e.iter() {
                    errors.add(field, reason);
                }
            })
            .ok()
    });
    let def = SequenceDef {
        name: name.trim().to_owned(),
        messages: steps,
        start_groups,
        condition: condition.map(|c| Condition {
            field: c.field.trim().to_owned(),
            values: c.values,
        }),
        window,
    };
    if let Err(e) = def.check() {
        for (field, reason) in e.iter() {
            errors.add(field, reason);
        }
    }
    errors.into_result(def)
}

/// Every sequence, oldest first.
#[utoipa::path(get, path = "/sequences", tag = "sequences",
    responses((status = 200, body = ListResponse<SequenceOut>)))]
async fn list_sequences(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ListResponse<SequenceOut>>, AppError> {
    caller.require(Scope::AutomationsRead)?;
    let all = state.store.list_sequences().await?;
    Ok(Json(ListResponse::all(
        all.into_iter().map(SequenceOut::from).collect(),
    )))
}

/// Create a sequence. Messages are checked like templates; a bad delay, window, condition or
/// start group is refused (422) naming it.
#[utoipa::path(post, path = "/sequences", tag = "sequences", request_body = SequenceIn,
    responses((status = 201, body = SequenceOut)))]
async fn create_sequence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<SequenceIn>,
) -> Result<(StatusCode, Json<SequenceOut>), AppError> {
    caller.require(Scope::AutomationsWrite)?;
    let def = definition(
        &state,
        body.name,
        body.messages,
        body.start_groups,
        body.condition,
        body.window,
        &[],
    )
    .await?;
    let created = state.store.create_sequence(def, state.clock.now()).await?;
    // A new start group or condition may concern contacts already there: the engine looks.
    state.wake_workers();
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One sequence.
#[utoipa::path(get, path = "/sequences/{id}", tag = "sequences",
    params(("id" = Uuid, Path)), responses((status = 200, body = SequenceOut)))]
async fn get_sequence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<SequenceOut>, AppError> {
    caller.require(Scope::AutomationsRead)?;
    Ok(Json(state.store.get_sequence(id).await?.into()))
}

/// Change a sequence. Contacts in it keep their place: give the messages' ids to keep them.
#[utoipa::path(patch, path = "/sequences/{id}", tag = "sequences", request_body = SequencePatch,
    params(("id" = Uuid, Path)), responses((status = 200, body = SequenceOut)))]
async fn update_sequence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<SequencePatch>,
) -> Result<Json<SequenceOut>, AppError> {
    caller.require(Scope::AutomationsWrite)?;
    let current = state.store.get_sequence(id).await?.def;
    let messages = match body.messages {
        Some(m) => m,
        None => current
            .messages
            .iter()
            .map(|s| StepIn {
                id: Some(s.id),
                subject: s.subject.clone(),
                html: s.html.clone(),
                text: s.text.clone(),
                delay: Some(s.delay.to_string()),
            })
            .collect(),
    };
    let keep_condition = || {
        current.condition.clone().map(|c| ConditionIo {
            field: c.field,
            values: c.values,
        })
    };
    let condition = match body.condition {
        Patch::Keep => keep_condition(),
        Patch::Clear => None,
        Patch::Set(c) => Some(c),
    };
    let window = match body.window {
        Patch::Keep => current.window.as_ref().map(window_io),
        Patch::Clear => None,
        Patch::Set(w) => Some(w),
    };
    let def = definition(
        &state,
        body.name.unwrap_or_else(|| current.name.clone()),
        messages,
        body.start_groups
            .unwrap_or_else(|| current.start_groups.clone()),
        condition,
        window,
        &current.messages,
    )
    .await?;
    let updated = state
        .store
        .update_sequence(id, def, state.clock.now())
        .await?;
    state.wake_workers();
    Ok(Json(updated.into()))
}

/// Delete a sequence and its enrolments; messages it queued stay in the ledger.
#[utoipa::path(delete, path = "/sequences/{id}", tag = "sequences",
    params(("id" = Uuid, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_sequence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::AutomationsWrite)?;
    state.store.delete_sequence(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whom to start the sequence for: one contact, or every contact of a group and its
/// subgroups.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartIn {
    pub contact_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StartOut {
    pub enrolled: u64,
    /// Contacts already in the sequence, left as they were.
    pub already: u64,
}

/// Start the sequence by hand for a contact or a whole group (seed 000, step 6): the schedule
/// starts now.
#[utoipa::path(post, path = "/sequences/{id}/start", tag = "sequences", request_body = StartIn,
    params(("id" = Uuid, Path)), responses((status = 200, body = StartOut)))]
async fn start_sequence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<StartIn>,
) -> Result<Json<StartOut>, AppError> {
    caller.require(Scope::AutomationsWrite)?;
    let (target, field) = match (body.contact_id, body.group_id) {
        (Some(c), None) => (StartTarget::Contact(c), "contact_id"),
        (None, Some(g)) => (StartTarget::Group(g), "group_id"),
        _ => {
            return Err(AppError::field(
                "contact_id",
                "give either contact_id or group_id",
            ));
        }
    };
    state.store.get_sequence(id).await?;
    let outcome = state
        .store
        .start_sequence(id, target, state.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::field(field, "does not exist"),
            other => other.into(),
        })?;
    state.wake_workers();
    Ok(Json(StartOut {
        enrolled: outcome.enrolled,
        already: outcome.already,
    }))
}
