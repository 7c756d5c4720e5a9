//! `/api/v1/forms`: the forms a list manager listens to (product.md §4). The public side (the
//! hosted page, the submission endpoint and the embed script) is `crate::forms`.
//!
//! The wire names of a field's `type`, `maps_to` and `mode` and of the response `kind` are
//! parsed here into the core's types, so a bad one is refused naming its place
//! (`fields[2].type`); the definition as a whole is checked by the store (`FormDef::check`
//! against the fields and groups it reads in its transaction), on create and after a change.

use super::{ListParams, ListResponse, page_request, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use crate::public::escape;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nudge_core::form::{FillMode, FormDef, FormField, FormFieldType, FormResponse, Target};
use nudge_core::{FieldErrors, Patch, Scope};
use nudge_store::{FormRecord, Page};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_forms, create_form))
        .routes(routes!(get_form, update_form, delete_form))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormFieldJson {
    /// The input's name in the submitted form: letters, digits, `_` or `-`; not `groups`.
    pub name: String,
    /// The text shown beside the input; for a consent checkbox, the consent text stored with
    /// the contact.
    #[serde(default)]
    pub label: String,
    /// email, text, number, date, boolean, choice, multi_choice, hidden or consent.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    /// email, first_name, last_name, phone, language, time_zone or `fields.<key>`; `null`
    /// for an input only the notification shows.
    #[serde(default)]
    pub maps_to: Option<String>,
    /// overwrite (the default) or fill_empty (only a blank attribute is filled).
    #[serde(default)]
    pub mode: Option<String>,
    /// The choices of a choice or multi_choice field.
    #[serde(default)]
    pub options: Vec<String>,
    /// A hidden field's value when the page sends none.
    #[serde(default)]
    pub value: Option<String>,
}

/// What the browser sees after a good submission.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormResponseJson {
    /// message (a thank-you text; the embed snippet shows it as a popup) or redirect. When
    /// absent: redirect if `redirect_url` is given, else message.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// An http or https URL the browser is sent to (303).
    #[serde(default)]
    pub redirect_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormOut {
    pub id: Uuid,
    /// The public path segment: the hosted page is `/f/{slug}`.
    pub slug: String,
    pub name: String,
    pub fields: Vec<FormFieldJson>,
    /// Groups offered as checkboxes.
    pub group_choices: Vec<Uuid>,
    /// Groups every submission joins.
    pub groups: Vec<Uuid>,
    pub double_opt_in: bool,
    /// The sequence a submission starts.
    pub sequence_id: Option<Uuid>,
    /// Addresses told by email of each submission.
    pub notify: Vec<String>,
    pub response: FormResponseJson,
    /// The hosted page.
    pub url: String,
    /// The HTML to paste into a web page to show the form there.
    pub embed: String,
    pub created_at: String,
    pub updated_at: String,
}

impl FormOut {
    pub fn new(record: FormRecord, public_url: &str) -> Self {
        let def = record.def;
        let url = form_url(public_url, &def.slug);
        let embed = format!(
            "<script src=\"{}\" async></script>",
            escape(&format!("{url}/embed.js"))
        );
        let response = match def.response {
            FormResponse::Message(message) => FormResponseJson {
                kind: Some("message".into()),
                message: Some(message),
                redirect_url: None,
            },
            FormResponse::Redirect(url) => FormResponseJson {
                kind: Some("redirect".into()),
                message: None,
                redirect_url: Some(url),
            },
        };
        Self {
            id: record.id,
            slug: def.slug,
            name: def.name,
            fields: def
                .fields
                .into_iter()
                .map(|f| FormFieldJson {
                    name: f.name,
                    label: f.label,
                    kind: f.kind.as_str().to_owned(),
                    required: f.required,
                    maps_to: f.maps_to.map(|t| t.to_string()),
                    mode: Some(f.mode.as_str().to_owned()),
                    options: f.options,
                    value: f.value,
                })
                .collect(),
            group_choices: def.group_choices,
            groups: def.groups,
            double_opt_in: def.double_opt_in,
            sequence_id: def.sequence_id,
            notify: def.notify,
            response,
            url,
            embed,
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
        }
    }
}

/// The hosted page of a form; relative when no public URL is configured.
pub fn form_url(public_url: &str, slug: &str) -> String {
    format!("{}/f/{slug}", public_url.trim_end_matches('/'))
}

/// A new form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormCreate {
    /// 1 to 64 lower-case letters, digits or hyphens; unique.
    pub slug: String,
    /// 1 to 200 characters.
    pub name: String,
    /// Exactly one field of type email must fill `email`.
    pub fields: Vec<FormFieldJson>,
    #[serde(default)]
    pub group_choices: Vec<Uuid>,
    #[serde(default)]
    pub groups: Vec<Uuid>,
    #[serde(default)]
    pub double_opt_in: bool,
    #[serde(default)]
    pub sequence_id: Option<Uuid>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// Defaults to the message "Thank you!".
    #[serde(default)]
    pub response: Option<FormResponseJson>,
}

/// A change to a form; absent attributes are kept, given ones replace the old value whole
/// (`fields` is the new list of fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormUpdate {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub fields: Option<Vec<FormFieldJson>>,
    pub group_choices: Option<Vec<Uuid>>,
    pub groups: Option<Vec<Uuid>>,
    pub double_opt_in: Option<bool>,
    /// `null` starts no sequence any more.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub sequence_id: Patch<Uuid>,
    pub notify: Option<Vec<String>>,
    pub response: Option<FormResponseJson>,
}

/// The core's form fields from their wire form; every bad name is reported with its place.
fn parse_fields(fields: Vec<FormFieldJson>, errors: &mut FieldErrors) -> Vec<FormField> {
    let mut out = Vec::with_capacity(fields.len());
    for (i, f) in fields.into_iter().enumerate() {
        let at = |attr: &str| format!("fields[{i}].{attr}");
        let kind = FormFieldType::parse(&f.kind);
        if kind.is_none() {
            errors.add(
                at("type"),
                "must be one of email, text, number, date, boolean, choice, multi_choice, \
                 hidden, consent",
            );
        }
        let maps_to = match f.maps_to.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let target = Target::parse(raw);
                if target.is_none() {
                    errors.add(
                        at("maps_to"),
                        "must be email, first_name, last_name, phone, language, time_zone or \
                         fields.<key>",
                    );
                }
                target
            }
        };
        let mode = match f.mode.as_deref() {
            None => FillMode::default(),
            Some(raw) => FillMode::parse(raw).unwrap_or_else(|| {
                errors.add(at("mode"), "must be overwrite or fill_empty");
                FillMode::default()
            }),
        };
        if let Some(kind) = kind {
            out.push(FormField {
                name: f.name,
                label: f.label,
                kind,
                required: f.required,
                maps_to,
                mode,
                options: f.options,
                value: f.value,
            });
        }
    }
    out
}

fn parse_response(response: FormResponseJson, errors: &mut FieldErrors) -> FormResponse {
    let kind = response.kind.unwrap_or_else(|| {
        if response.redirect_url.is_some() {
            "redirect".into()
        } else {
            "message".into()
        }
    });
    match kind.as_str() {
        "message" => FormResponse::Message(response.message.unwrap_or_default()),
        "redirect" => FormResponse::Redirect(response.redirect_url.unwrap_or_default()),
        _ => {
            errors.add("response.kind", "must be message or redirect");
            FormResponse::Message(String::new())
        }
    }
}

fn default_response() -> FormResponse {
    FormResponse::Message("Thank you!".into())
}

/// Forms, newest first.
#[utoipa::path(get, path = "/forms", tag = "forms", params(ListParams),
    responses((status = 200, body = ListResponse<FormOut>)))]
async fn list_forms(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(list): Query<ListParams>,
) -> Result<Json<ListResponse<FormOut>>, AppError> {
    caller.require(Scope::AutomationsRead)?;
    let page = page_request(&list)?;
    let mut forms = state.store.list_forms().await?;
    forms.reverse();
    // An account has a handful of forms: paging the whole list in memory keeps the API's
    // cursor convention without a query per page.
    let start = match page.cursor {
        Some(cursor) => forms
            .iter()
            .position(|f| f.id == cursor)
            .map_or(forms.len(), |i| i + 1),
        None => 0,
    };
    let rows = forms
        .into_iter()
        .skip(start)
        .take(page.limit as usize + 1)
        .collect();
    let page = Page::from_rows(rows, page.limit, |f: &FormRecord| f.id);
    Ok(Json(ListResponse::from_page(page, |f| {
        FormOut::new(f, &state.public_url)
    })))
}

/// A new form's definition with its wire names parsed, or the faults named by place
/// (`fields[2].type`); shared with the admin pages. The store checks the rest.
pub fn form_definition(body: FormCreate) -> Result<FormDef, FieldErrors> {
    let mut errors = FieldErrors::new();
    let fields = parse_fields(body.fields, &mut errors);
    let response = body
        .response
        .map_or_else(default_response, |r| parse_response(r, &mut errors));
    let def = FormDef {
        slug: body.slug,
        name: body.name.trim().to_owned(),
        fields,
        group_choices: body.group_choices,
        groups: body.groups,
        double_opt_in: body.double_opt_in,
        sequence_id: body.sequence_id,
        notify: body
            .notify
            .into_iter()
            .map(|a| a.trim().to_owned())
            .collect(),
        response,
    };
    errors.into_result(def)
}

/// Create a form. A bad attribute is refused (422) naming it (`fields[2].maps_to`,
/// `group_choices[0]`, `response.redirect_url`, ...); a slug in use is 409 `duplicate_slug`.
#[utoipa::path(post, path = "/forms", tag = "forms", request_body = FormCreate,
    responses((status = 201, body = FormOut)))]
async fn create_form(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<FormCreate>,
) -> Result<(StatusCode, Json<FormOut>), AppError> {
    caller.require(Scope::AutomationsWrite)?;
    let def = form_definition(body).map_err(AppError::validation)?;
    let created = state.store.create_form(def, state.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(FormOut::new(created, &state.public_url)),
    ))
}

/// One form.
#[utoipa::path(get, path = "/forms/{id}", tag = "forms",
    params(("id" = Uuid, Path)), responses((status = 200, body = FormOut)))]
async fn get_form(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<FormOut>, AppError> {
    caller.require(Scope::AutomationsRead)?;
    let form = state.store.get_form(id).await?;
    Ok(Json(FormOut::new(form, &state.public_url)))
}

/// Change a form. The form as it is after the change is checked like a new one.
#[utoipa::path(patch, path = "/forms/{id}", tag = "forms", request_body = FormUpdate,
    params(("id" = Uuid, Path)), responses((status = 200, body = FormOut)))]
async fn update_form(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<FormUpdate>,
) -> Result<Json<FormOut>, AppError> {
    caller.require(Scope::AutomationsWrite)?;
    let mut errors = FieldErrors::new();
    let fields = body.fields.map(|f| parse_fields(f, &mut errors));
    let response = body.response.map(|r| parse_response(r, &mut errors));
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    // The store replaces the whole definition; a change that lands between this read and
    // that write is overwritten, as with any edit of a form open in two windows.
    let mut def = state.store.get_form(id).await?.def;
    if let Some(slug) = body.slug {
        def.slug = slug;
    }
    if let Some(name) = body.name {
        def.name = name.trim().to_owned();
    }
    if let Some(fields) = fields {
        def.fields = fields;
    }
    if let Some(ids) = body.group_choices {
        def.group_choices = ids;
    }
    if let Some(ids) = body.groups {
        def.groups = ids;
    }
    if let Some(on) = body.double_opt_in {
        def.double_opt_in = on;
    }
    match body.sequence_id {
        Patch::Keep => {}
        Patch::Clear => def.sequence_id = None,
        Patch::Set(id) => def.sequence_id = Some(id),
    }
    if let Some(notify) = body.notify {
        def.notify = notify.into_iter().map(|a| a.trim().to_owned()).collect();
    }
    if let Some(response) = response {
        def.response = response;
    }
    let updated = state.store.update_form(id, def, state.clock.now()).await?;
    Ok(Json(FormOut::new(updated, &state.public_url)))
}

/// Delete a form. Its page and snippet stop working; contacts it brought in are kept.
#[utoipa::path(delete, path = "/forms/{id}", tag = "forms",
    params(("id" = Uuid, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_form(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<StatusCode, AppError> {
    caller.require(Scope::AutomationsWrite)?;
    state.store.delete_form(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: &str, maps_to: Option<&str>, mode: Option<&str>) -> FormFieldJson {
        FormFieldJson {
            name: "x".into(),
            label: "X".into(),
            kind: kind.into(),
            required: false,
            maps_to: maps_to.map(Into::into),
            mode: mode.map(Into::into),
            options: vec![],
            value: None,
        }
    }

    #[test]
    fn bad_wire_names_are_reported_with_their_place() {
        let mut errors = FieldErrors::new();
        let fields = parse_fields(
            vec![
                field("email", Some("email"), None),
                field("text", Some("nickname"), Some("sometimes")),
                field("textarea", Some("fields.note"), Some("fill_empty")),
            ],
            &mut errors,
        );
        assert_eq!(fields.len(), 2, "the field of an unknown type is left out");
        assert_eq!(fields[0].maps_to, Some(Target::Email));
        assert!(errors.get("fields[1].maps_to").is_some(), "{errors}");
        assert!(errors.get("fields[1].mode").is_some(), "{errors}");
        assert!(errors.get("fields[2].type").is_some(), "{errors}");
        assert!(errors.get("fields[2].mode").is_none(), "{errors}");

        let mut errors = FieldErrors::new();
        let response = FormResponseJson {
            kind: None,
            message: None,
            redirect_url: Some("https://example.com/thanks".into()),
        };
        assert_eq!(
            parse_response(response, &mut errors),
            FormResponse::Redirect("https://example.com/thanks".into())
        );
        let response = FormResponseJson {
            kind: Some("popup".into()),
            message: Some("Hi".into()),
            redirect_url: None,
        };
        parse_response(response, &mut errors);
        assert!(errors.get("response.kind").is_some(), "{errors}");
    }

    #[test]
    fn the_snippet_loads_the_script_from_the_public_url() {
        let record = FormRecord {
            id: Uuid::nil(),
            def: FormDef {
                slug: "news".into(),
                name: "News".into(),
                fields: vec![],
                group_choices: vec![],
                groups: vec![],
                double_opt_in: false,
                sequence_id: None,
                notify: vec![],
                response: default_response(),
            },
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let out = FormOut::new(record, "https://mail.example.com/");
        assert_eq!(out.url, "https://mail.example.com/f/news");
        assert_eq!(
            out.embed,
            "<script src=\"https://mail.example.com/f/news/embed.js\" async></script>"
        );
    }
}
