//! `/api/v1/templates`: stored email templates. A template is checked when it is saved (created,
//! or changed, after the change is applied) against the custom fields defined then, so a
//! syntax error or an undefined variable is refused with its line instead of reaching a mail.
//! A message queued with a template copies its content, so a later edit changes only mail
//! queued after it.

use super::{ListParams, ListResponse, page_request, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nudge_core::{FieldErrors, Patch, Scope};
use nudge_mail::Template;
use nudge_store::{NewTemplate, TemplatePatch, TemplateRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateOut {
    pub id: Uuid,
    pub name: String,
    pub subject: String,
    pub html: String,
    /// `null`: the text part is made from the HTML when a message is sent.
    pub text: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<TemplateRecord> for TemplateOut {
    fn from(t: TemplateRecord) -> Self {
        Self {
            id: t.id,
            name: t.template.name,
            subject: t.template.subject,
            html: t.template.html,
            text: t.template.text,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

/// A new template. The subject, HTML and text are minijinja templates:
/// `{{ first_name | default("there") }}`, `{{ fields.key }}`, `{{ unsubscribe_url }}`, ...
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateCreate {
    /// 1 to 200 characters.
    pub name: String,
    pub subject: String,
    pub html: String,
    /// Made from the HTML when absent or blank.
    pub text: Option<String>,
}

/// A change to a template; absent parts are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateUpdate {
    pub name: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    /// `null` (or blank) removes the text part, so it is made from the HTML again.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub text: Patch<String>,
}

/// A blank text part is no text part: the check and the dispatcher treat it so, and storing it
/// as absent says the same thing to whoever reads the template back.
fn text_part(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

/// Why the template as it would be saved cannot be, keyed by `name`, `subject`, `html` and
/// `text`; empty when it can.
async fn refusals(state: &AppState, template: &NewTemplate) -> Result<FieldErrors, AppError> {
    let mut errors = FieldErrors::new();
    if let Err(reason) = NewTemplate::checked_name(&template.name) {
        errors.add("name", reason);
    }
    let fields = state.store.list_fields().await?;
    if let Err(template_errors) = Template::check(
        &template.subject,
        &template.html,
        template.text.as_deref(),
        &fields,
    ) {
        for (part, reason) in template_errors.iter() {
            errors.add(part, reason);
        }
    }
    Ok(errors)
}

/// Stored templates, newest first.
#[utoipa::path(get, path = "/templates", tag = "templates", params(ListParams),
    responses((status = 200, body = ListResponse<TemplateOut>)))]
async fn list_templates(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(list): Query<ListParams>,
) -> Result<Json<ListResponse<TemplateOut>>, AppError> {
    caller.require(Scope::TemplatesRead)?;
    let page = state.store.list_templates(page_request(&list)?).await?;
    Ok(Json(ListResponse::from_page(page, TemplateOut::from)))
}

/// Save a template. A syntax error or an undefined variable is refused (422), naming the part
/// (`subject`, `html` or `text`) and the line.
#[utoipa::path(post, path = "/templates", tag = "templates", request_body = TemplateCreate,
    responses((status = 201, body = TemplateOut)))]
async fn create_template(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<TemplateCreate>,
) -> Result<(StatusCode, Json<TemplateOut>), AppError> {
    caller.require(Scope::TemplatesWrite)?;
    let template = NewTemplate {
        name: body.name,
        subject: body.subject,
        html: body.html,
        text: text_part(body.text),
    };
    let errors = refusals(&state, &template).await?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let created = state.store.create_template(template).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One template.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path)), responses((status = 200, body = TemplateOut)))]
async fn get_template(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<TemplateOut>, AppError> {
    caller.require(Scope::TemplatesRead)?;
    Ok(Json(state.store.get_template(id).await?.into()))
}

/// Change a template. The template as it is after the change is checked like a new one;
/// messages already queued with it keep the content they were queued with.
#[utoipa::path(patch, path = "/templates/{id}", tag = "templates", request_body = TemplateUpdate,
    params(("id" = Uuid, Path)), responses((status = 200, body = TemplateOut)))]
async fn update_template(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<TemplateUpdate>,
) -> Result<Json<TemplateOut>, AppError> {
    caller.require(Scope::TemplatesWrite)?;
    let patch = TemplatePatch {
        name: body.name,
        subject: body.subject,
        html: body.html,
        text: match body.text {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(text) => Some(text_part(Some(text))),
        },
    };
    let current = state.store.get_template(id).await?;
    // The store applies the patch again to the row it reads in its own transaction. Each part
    // is checked on its own, so if another change lands in between, every part saved was still
    // checked by the request that wrote it.
    let errors = refusals(&state, &patch.apply(&current.template)).await?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(Json(state.store.update_template(id, patch).await?.into()))
}

/// Delete a template; messages queued with it are not affected.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_template(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::TemplatesWrite)?;
    state.store.delete_template(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
