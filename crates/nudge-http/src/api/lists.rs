//! `/api/v1/fields`, `/api/v1/groups` and `/api/v1/tags`: the things contacts are sorted by.

use super::{ListResponse, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nudge_core::{FieldDef, Patch, Scope};
use nudge_store::{Group, GroupPatch, Tag};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_fields, create_field))
        .routes(routes!(delete_field))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(delete_tag))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldBody {
    /// Lower-case letters, digits and `_`, starting with a letter.
    pub key: String,
    pub label: Option<String>,
    /// text, number, date, boolean, choice or multi_choice.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
}

impl From<FieldDef> for FieldBody {
    fn from(d: FieldDef) -> Self {
        Self {
            key: d.key.to_string(),
            label: Some(d.label),
            kind: d.kind.as_str().to_owned(),
            options: d.options,
        }
    }
}

/// All custom fields.
#[utoipa::path(get, path = "/fields", tag = "fields", responses((status = 200, body = ListResponse<FieldBody>)))]
async fn list_fields(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ListResponse<FieldBody>>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let defs = state.store.list_fields().await?;
    Ok(Json(ListResponse::all(
        defs.into_iter().map(FieldBody::from).collect(),
    )))
}

/// Define a custom field.
#[utoipa::path(post, path = "/fields", tag = "fields", request_body = FieldBody,
    responses((status = 201, body = FieldBody)))]
async fn create_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<FieldBody>,
) -> Result<(StatusCode, Json<FieldBody>), AppError> {
    caller.require(Scope::ListsWrite)?;
    let def = FieldDef::new(&body.key, body.label.as_deref(), &body.kind, body.options)
        .map_err(AppError::validation)?;
    let def = state.store.create_field(def).await?;
    Ok((StatusCode::CREATED, Json(def.into())))
}

/// Delete a custom field and every contact's value for it.
#[utoipa::path(delete, path = "/fields/{key}", tag = "fields",
    params(("key" = String, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::ListsWrite)?;
    state.store.delete_field(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupOut {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    /// Offered on the preference page, where contacts may leave it.
    pub public: bool,
    pub created_at: String,
}

impl From<Group> for GroupOut {
    fn from(g: Group) -> Self {
        Self {
            id: g.id,
            name: g.name,
            parent_id: g.parent_id,
            public: g.public,
            created_at: rfc3339(g.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
    pub name: String,
    pub parent_id: Option<Uuid>,
    /// Default false.
    pub public: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    pub name: Option<String>,
    /// `null` moves the group to the top of the tree.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Patch<Uuid>,
    pub public: Option<bool>,
}

/// All groups; the tree is given by each group's `parent_id`.
#[utoipa::path(get, path = "/groups", tag = "groups", responses((status = 200, body = ListResponse<GroupOut>)))]
async fn list_groups(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ListResponse<GroupOut>>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let groups = state.store.list_groups().await?;
    Ok(Json(ListResponse::all(
        groups.into_iter().map(GroupOut::from).collect(),
    )))
}

/// Create a group, at the top or below a parent.
#[utoipa::path(post, path = "/groups", tag = "groups", request_body = GroupCreate,
    responses((status = 201, body = GroupOut)))]
async fn create_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<GroupCreate>,
) -> Result<(StatusCode, Json<GroupOut>), AppError> {
    caller.require(Scope::ListsWrite)?;
    let group = state
        .store
        .create_group(&body.name, body.parent_id, body.public.unwrap_or(false))
        .await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// One group.
#[utoipa::path(get, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path)), responses((status = 200, body = GroupOut)))]
async fn get_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<GroupOut>, AppError> {
    caller.require(Scope::ContactsRead)?;
    Ok(Json(state.store.get_group(id).await?.into()))
}

/// Rename or move a group; a move that would make a cycle is refused.
#[utoipa::path(patch, path = "/groups/{id}", tag = "groups", request_body = GroupUpdate,
    params(("id" = Uuid, Path)), responses((status = 200, body = GroupOut)))]
async fn update_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<GroupUpdate>,
) -> Result<Json<GroupOut>, AppError> {
    caller.require(Scope::ListsWrite)?;
    let patch = GroupPatch {
        name: body.name,
        parent_id: match body.parent_id {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(p) => Some(Some(p)),
        },
        public: body.public,
    };
    Ok(Json(state.store.update_group(id, patch).await?.into()))
}

/// Delete a group that has no subgroups and no contacts.
#[utoipa::path(delete, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::ListsWrite)?;
    state.store.delete_group(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagOut {
    pub name: String,
    /// How many contacts carry the tag.
    pub contacts: u64,
}

impl From<Tag> for TagOut {
    fn from(t: Tag) -> Self {
        Self {
            name: t.name,
            contacts: t.contacts,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagCreate {
    pub name: String,
}

/// All tags with their contact counts.
#[utoipa::path(get, path = "/tags", tag = "tags", responses((status = 200, body = ListResponse<TagOut>)))]
async fn list_tags(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ListResponse<TagOut>>, AppError> {
    caller.require(Scope::ContactsRead)?;
    let tags = state.store.list_tags().await?;
    Ok(Json(ListResponse::all(
        tags.into_iter().map(TagOut::from).collect(),
    )))
}

/// Create a tag before any contact carries it.
#[utoipa::path(post, path = "/tags", tag = "tags", request_body = TagCreate,
    responses((status = 201, body = TagOut)))]
async fn create_tag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<TagCreate>,
) -> Result<(StatusCode, Json<TagOut>), AppError> {
    caller.require(Scope::ListsWrite)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_tag(&body.name).await?.into()),
    ))
}

/// Delete a tag and remove it from every contact.
#[utoipa::path(delete, path = "/tags/{name}", tag = "tags",
    params(("name" = String, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_tag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::ListsWrite)?;
    state.store.delete_tag(&name, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
