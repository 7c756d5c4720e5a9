//! `/api/v1/contacts`: contacts, their memberships, status, timeline, export and erase.

use super::{ListParams, ListResponse, page_request, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use nudge_core::{ChangeSource, Consent, ContactInput, ContactPatch, Patch, Scope, TimelineEntry};
use nudge_store::{ChangeContext, ContactFilter, ContactRecord, Memberships, PageRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact, erase_contact))
        .routes(routes!(change_status))
        .routes(routes!(timeline))
        .routes(routes!(export_contact))
        .routes(routes!(join_group, leave_group))
        .routes(routes!(add_tag, remove_tag))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub owner_id: Option<Uuid>,
    /// subscribed, pending, unsubscribed, transactional, bounced or complained.
    pub status: String,
    pub source: Option<String>,
    pub consent: Option<ConsentOut>,
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    pub groups: Vec<Uuid>,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The contact's sequences, on `GET /contacts/{id}` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolments: Option<Vec<super::enrolments::EnrolmentOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentOut {
    pub at: String,
    pub method: String,
    pub form_id: Option<Uuid>,
    pub ip: Option<String>,
    pub text: Option<String>,
}

impl From<ContactRecord> for ContactOut {
    fn from(r: ContactRecord) -> Self {
        let c = r.contact;
        Self {
            id: c.id,
            email: c.email.to_string(),
            first_name: c.first_name,
            last_name: c.last_name,
            phone: c.phone,
            language: c.language,
            time_zone: c.time_zone,
            owner_id: c.owner_id,
            status: c.status.as_str().to_owned(),
            source: c.source,
            consent: c.consent.map(|k| ConsentOut {
                at: rfc3339(k.at),
                method: k.method,
                form_id: k.form_id,
                ip: k.ip,
                text: k.text,
            }),
            fields: c.fields,
            groups: r.groups,
            tags: r.tags,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            enrolments: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {
    /// The consent text the contact was shown.
    pub text: Option<String>,
    /// How consent was given; defaults to `api`.
    pub method: Option<String>,
    pub ip: Option<String>,
    pub form_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCreate {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub owner_id: Option<Uuid>,
    /// Defaults to `subscribed`.
    pub status: Option<String>,
    pub source: Option<String>,
    pub consent: Option<ConsentIn>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    #[serde(default)]
    pub groups: Vec<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Absent attributes stay as they are; `null` clears one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUpdate {
    pub email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub first_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub last_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub phone: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub language: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub time_zone: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Patch<Uuid>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub source: Patch<String>,
    /// Not changed here: a status change has its own path and may need a reason.
    pub status: Option<String>,
    /// Values by key; `null` clears a field.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    /// Replaces the contact's groups.
    pub groups: Option<Vec<Uuid>>,
    /// Replaces the contact's tags.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: String,
    /// Required when leaving unsubscribed, bounced or complained.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineOut {
    pub id: Uuid,
    pub at: String,
    pub kind: String,
    pub summary: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<TimelineEntry> for TimelineOut {
    fn from(e: TimelineEntry) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            kind: e.kind.as_str().to_owned(),
            summary: e.summary,
            data: e.data,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRef {
    pub id: Uuid,
    pub name: String,
}

/// Everything Nudge holds about one contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactExport {
    pub contact: ContactOut,
    pub groups: Vec<GroupRef>,
    pub timeline: Vec<TimelineOut>,
    pub exported_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// Matches the start of the email, first name or last name (case-insensitive).
    pub q: Option<String>,
    pub status: Option<String>,
    /// A group id; contacts of its subgroups are included.
    pub group: Option<String>,
    pub tag: Option<String>,
}

/// Reads the filters; the admin UI's contact list takes the same query parameters.
pub(crate) fn filter(query: &ContactQuery) -> Result<ContactFilter, AppError> {
    let mut errors = nudge_core::FieldErrors::new();
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => s
            .parse()
            .map_err(|e: nudge_core::status::UnknownStatus| errors.add("status", e.to_string()))
            .ok(),
    };
    let group = match query.group.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Uuid::parse_str(s)
            .map_err(|_| errors.add("group", "must be a group id"))
            .ok(),
    };
    errors
        .into_result(ContactFilter {
            q: query.q.clone().filter(|q| !q.trim().is_empty()),
            status,
            group,
            tag: query.tag.clone().filter(|t| !t.trim().is_empty()),
        })
        .map_err(AppError::validation)
}

fn ctx(state: &AppState) -> ChangeContext {
    ChangeContext::new(ChangeSource::Admin, state.clock.now())
}

/// List contacts, newest first, filtered.
#[utoipa::path(get, path = "/contacts", tag = "contacts",
    params(ContactQuery, ListParams),
    responses((status = 200, body = ListResponse<ContactOut>)))]
async fn list_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ContactQuery>,
    Query(list): Query<ListParams>,
) -> Result<Json<ListResponse<ContactOut>>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let filter = filter(&query)?;
    let page = state
        .store
        .list_contacts(&filter, page_request(&list)?)
        .await?;
    Ok(Json(ListResponse::from_page(page, ContactOut::from)))
}

/// Create a contact with its fields, groups and tags.
#[utoipa::path(post, path = "/contacts", tag = "contacts", request_body = ContactCreate,
    responses((status = 201, body = ContactOut)))]
async fn create_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<ContactCreate>,
) -> Result<(StatusCode, Json<ContactOut>), AppError> {
    caller.require(Scope::ContactsWrite)?;
    let now = state.clock.now();
    let input = ContactInput {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        phone: body.phone,
        language: body.language,
        time_zone: body.time_zone,
        owner_id: body.owner_id,
        status: body.status,
        source: body.source.or_else(|| Some("api".to_owned())),
        consent: body.consent.map(|c| Consent {
            at: now,
            method: c.method.unwrap_or_else(|| "api".to_owned()),
            form_id: c.form_id,
            ip: c.ip,
            text: c.text,
        }),
        fields: body.fields,
        groups: body.groups,
        tags: body.tags,
    };
    let record = state.store.create_contact(input, ctx(&state)).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// One contact.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path)), responses((status = 200, body = ContactOut)))]
async fn get_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<ContactOut>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let mut out: ContactOut = state.store.get_contact(id).await?.into();
    let filter = nudge_store::EnrolmentFilter {
        contact: Some(id),
        ..Default::default()
    };
    let enrolments = state
        .store
        .list_enrolments(
            &filter,
            nudge_store::EnrolmentOrder::Newest,
            nudge_store::PageRequest::first(nudge_store::PageRequest::MAX_LIMIT),
        )
        .await?;
    out.enrolments =
        Some(super::enrolments::describe(state.store.as_ref(), enrolments.items).await?);
    Ok(Json(out))
}

/// Change a contact's attributes, fields, groups or tags; each change goes to its timeline.
#[utoipa::path(patch, path = "/contacts/{id}", tag = "contacts", request_body = ContactUpdate,
    params(("id" = Uuid, Path)), responses((status = 200, body = ContactOut)))]
async fn update_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ContactUpdate>,
) -> Result<Json<ContactOut>, AppError> {
    caller.require(Scope::ContactsWrite)?;
    if body.status.is_some() {
        return Err(AppError::field(
            "status",
            "is changed with POST /api/v1/contacts/{id}/status, which takes a reason",
        ));
    }
    let patch = ContactPatch {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        phone: body.phone,
        language: body.language,
        time_zone: body.time_zone,
        owner_id: body.owner_id,
        source: body.source,
        fields: body.fields,
    };
    let memberships = Memberships {
        groups: body.groups,
        tags: body.tags,
    };
    let record = state
        .store
        .update_contact(id, patch, memberships, ctx(&state))
        .await?;
    Ok(Json(record.into()))
}

/// Erase a contact (GDPR): all its data goes; a hash of the address stays, so an address that
/// bounced or complained is never mailed again.
#[utoipa::path(delete, path = "/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path)), responses((status = 204, description = "Erased")))]
async fn erase_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::ContactsErase)?;
    state.store.erase_contact(id, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the status; leaving unsubscribed, bounced or complained needs a reason.
#[utoipa::path(post, path = "/contacts/{id}/status", tag = "contacts", request_body = StatusChange,
    params(("id" = Uuid, Path)), responses((status = 200, body = ContactOut)))]
async fn change_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<StatusChange>,
) -> Result<Json<ContactOut>, AppError> {
    caller.require(Scope::ContactsWrite)?;
    let to = body
        .status
        .parse()
        .map_err(|e: nudge_core::status::UnknownStatus| AppError::field("status", e.to_string()))?;
    let record = state
        .store
        .change_status(id, to, body.reason, ctx(&state))
        .await?;
    Ok(Json(record.into()))
}

/// The contact's timeline, newest first.
#[utoipa::path(get, path = "/contacts/{id}/timeline", tag = "contacts",
    params(("id" = Uuid, Path), ListParams), responses((status = 200, body = ListResponse<TimelineOut>)))]
async fn timeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    Query(list): Query<ListParams>,
) -> Result<Json<ListResponse<TimelineOut>>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let page = state.store.timeline(id, page_request(&list)?).await?;
    Ok(Json(ListResponse::from_page(page, TimelineOut::from)))
}

/// All data of one contact: attributes, fields, groups, tags and the whole timeline.
#[utoipa::path(get, path = "/contacts/{id}/export", tag = "contacts",
    params(("id" = Uuid, Path)), responses((status = 200, body = ContactExport)))]
async fn export_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<ContactExport>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let record = state.store.get_contact(id).await?;
    let mut groups = Vec::with_capacity(record.groups.len());
    for group_id in &record.groups {
        let g = state.store.get_group(*group_id).await?;
        groups.push(GroupRef {
            id: g.id,
            name: g.name,
        });
    }
    let mut timeline = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = state.store.timeline(id, page).await?;
        timeline.extend(got.items.into_iter().map(TimelineOut::from));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(PageRequest::MAX_LIMIT, cursor),
            None => break,
        }
    }
    Ok(Json(ContactExport {
        contact: record.into(),
        groups,
        timeline,
        exported_at: rfc3339(state.clock.now()),
    }))
}

/// Add the contact to a group.
#[utoipa::path(put, path = "/contacts/{id}/groups/{group_id}", tag = "contacts",
    params(("id" = Uuid, Path), ("group_id" = Uuid, Path)), responses((status = 200, body = ContactOut)))]
async fn join_group(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Json<ContactOut>, AppError> {
    membership(state, caller, path, true).await
}

/// Remove the contact from a group.
#[utoipa::path(delete, path = "/contacts/{id}/groups/{group_id}", tag = "contacts",
    params(("id" = Uuid, Path), ("group_id" = Uuid, Path)), responses((status = 200, body = ContactOut)))]
async fn leave_group(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Json<ContactOut>, AppError> {
    membership(state, caller, path, false).await
}

async fn membership(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, group_id)): Path<(String, String)>,
    member: bool,
) -> Result<Json<ContactOut>, AppError> {
    caller.require(Scope::ContactsWrite)?;
    let id = Uuid::parse_str(&id).map_err(|_| AppError::not_found())?;
    let group_id = Uuid::parse_str(&group_id).map_err(|_| AppError::not_found())?;
    let record = state
        .store
        .set_group_membership(id, group_id, member, ctx(&state))
        .await?;
    Ok(Json(record.into()))
}

/// Tag the contact (the tag is created on first use).
#[utoipa::path(put, path = "/contacts/{id}/tags/{tag}", tag = "contacts",
    params(("id" = Uuid, Path), ("tag" = String, Path)), responses((status = 200, body = ContactOut)))]
async fn add_tag(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Json<ContactOut>, AppError> {
    tagging(state, caller, path, true).await
}

/// Remove a tag from the contact.
#[utoipa::path(delete, path = "/contacts/{id}/tags/{tag}", tag = "contacts",
    params(("id" = Uuid, Path), ("tag" = String, Path)), responses((status = 200, body = ContactOut)))]
async fn remove_tag(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Json<ContactOut>, AppError> {
    tagging(state, caller, path, false).await
}

async fn tagging(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, tag)): Path<(String, String)>,
    tagged: bool,
) -> Result<Json<ContactOut>, AppError> {
    caller.require(Scope::ContactsWrite)?;
    let id = Uuid::parse_str(&id).map_err(|_| AppError::not_found())?;
    let record = state.store.set_tag(id, &tag, tagged, ctx(&state)).await?;
    Ok(Json(record.into()))
}
