//! `/admin/forms`: the forms with their hosted link and embed snippet, and creating one: its
//! email field (and an optional first-name field), the groups offered as checkboxes and the
//! fixed ones, double opt-in, the sequence to start, the thank-you text or redirect and the
//! addresses to notify. The definition goes through the API's [`form_definition`] and the
//! store's check, so the page and `/api/v1/forms` apply one rule.

use super::contacts::group_options;
use super::session::Current;
use super::{Failure, PageForm, view};
use crate::AppState;
use crate::api::forms::{FormCreate, FormFieldJson, FormOut, FormResponseJson, form_definition};
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use nudge_core::Area;
use nudge_store::StoreError;
use std::collections::BTreeMap;
use uuid::Uuid;

type Fields = Vec<(String, String)>;

fn one<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn ids(fields: &Fields, name: &str) -> Vec<Uuid> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect()
}

/// `GET /admin/forms`.
pub async fn list(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    page(&state, &current, &uri, &Vec::new(), BTreeMap::new()).await
}

async fn page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    posted: &Fields,
    errors: BTreeMap<String, String>,
) -> Result<Response, Failure> {
    let forms: Vec<Value> = state
        .store
        .list_forms()
        .await?
        .into_iter()
        .map(|record| {
            let out = FormOut::new(record, &state.public_url);
            context! {
                id => out.id.to_string(),
                name => out.name,
                slug => out.slug,
                url => out.url,
                embed => out.embed,
                double_opt_in => out.double_opt_in,
            }
        })
        .collect();
    let groups = state.store.list_groups().await?;
    let chosen = ids(posted, "group_choice");
    let fixed = ids(posted, "group_fixed");
    let groups: Vec<Value> = group_options(&groups)
        .into_iter()
        .map(|g| {
            let choice = chosen.iter().any(|id| id.to_string() == g.id);
            let fixed = fixed.iter().any(|id| id.to_string() == g.id);
            context! { id => g.id, label => g.label, choice, fixed }
        })
        .collect();
    let sequences: Vec<Value> = state
        .store
        .list_sequences()
        .await?
        .into_iter()
        .map(|s| context! { id => s.id.to_string(), name => s.def.name })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let value = |name: &str| one(posted, name).to_owned();
    let ctx = context! {
        forms,
        groups,
        sequences,
        new => context! {
            name => value("name"),
            slug => value("slug"),
            email_label => if posted.is_empty() { "Email".to_owned() } else { value("email_label") },
            first_name => !value("first_name").is_empty(),
            double_opt_in => !value("double_opt_in").is_empty(),
            sequence => value("sequence"),
            message => value("message"),
            redirect_url => value("redirect_url"),
            notify => value("notify"),
        },
        errors,
        can_write => current.user.role.may(Area::Forms, true),
        ..current.context("forms", uri)
    };
    view::page(status, "forms.html", ctx)
}

/// `POST /admin/forms`: creates a form; a refusal shows the form again, each reason named by
/// the API's field names (`slug`, `fields[0].label`, `response.redirect_url`, ...).
pub async fn create(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<Fields>,
) -> Result<Response, Failure> {
    let mut fields = vec![FormFieldJson {
        name: "email".to_owned(),
        label: one(&form, "email_label").trim().to_owned(),
        kind: "email".to_owned(),
        required: true,
        maps_to: Some("email".to_owned()),
        mode: None,
        options: Vec::new(),
        value: None,
    }];
    if !one(&form, "first_name").is_empty() {
        fields.push(FormFieldJson {
            name: "first_name".to_owned(),
            label: one(&form, "first_name_label").trim().to_owned(),
            kind: "text".to_owned(),
            required: false,
            maps_to: Some("first_name".to_owned()),
            mode: Some("fill_empty".to_owned()),
            options: Vec::new(),
            value: None,
        });
    }
    let redirect_url = one(&form, "redirect_url").trim();
    let message = one(&form, "message").trim();
    let response = if !redirect_url.is_empty() {
        Some(FormResponseJson {
            kind: Some("redirect".to_owned()),
            message: None,
            redirect_url: Some(redirect_url.to_owned()),
        })
    } else if !message.is_empty() {
        Some(FormResponseJson {
            kind: Some("message".to_owned()),
            message: Some(message.to_owned()),
            redirect_url: None,
        })
    } else {
        None
    };
    let body = FormCreate {
        slug: one(&form, "slug").trim().to_owned(),
        name: one(&form, "name").to_owned(),
        fields,
        group_choices: ids(&form, "group_choice"),
        groups: ids(&form, "group_fixed"),
        double_opt_in: !one(&form, "double_opt_in").is_empty(),
        sequence_id: Uuid::parse_str(one(&form, "sequence")).ok(),
        notify: one(&form, "notify")
            .split([',', '\n'])
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        response,
    };
    let refused = match form_definition(body) {
        Err(e) => e.into_map(),
        Ok(def) => match state.store.create_form(def, state.clock.now()).await {
            Ok(created) => {
                return Ok(
                    Redirect::to(&format!("/admin/forms#form-{}", created.id)).into_response()
                );
            }
            Err(StoreError::Invalid(e)) => e.into_map(),
            Err(StoreError::Conflict { field, message, .. }) => {
                BTreeMap::from([(field.unwrap_or("slug").to_owned(), message)])
            }
            Err(other) => return Err(other.into()),
        },
    };
    page(&state, &current, &uri, &form, refused).await
}
