//! `/admin/contacts`: the filtered list (the API's `q`, `status`, `group`, `tag`, paged by
//! cursor through the store's indexed list and count), creating a contact, and one contact's
//! page with its status change, sequences, messages and timeline.
//!
//! The list's filter form and pager also work as htmx requests: those get only the results
//! fragment (`contacts_results.html`), which the full page includes.

use super::i18n::format_number;
use super::session::Current;
use super::{Failure, PageForm, PageQuery, view};
use crate::AppState;
use crate::api::contacts::{ContactQuery, filter};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use nudge_core::{Area, ChangeSource, ContactInput, Status};
use nudge_store::{
    ChangeContext, ContactRecord, EnrolmentFilter, EnrolmentOrder, Group, MessageFilter,
    PageRequest, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Contacts per page of the list.
const PAGE_SIZE: u32 = 50;
/// Timeline entries per page of a contact.
const TIMELINE_PAGE: u32 = 50;
/// The latest messages a contact's page shows.
const MESSAGES_SHOWN: u32 = 20;

#[derive(Debug, Deserialize)]
pub struct Paging {
    cursor: Option<String>,
}

/// The new-contact form.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NewContact {
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    status: String,
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    /// The timeline's cursor.
    timeline: Option<String>,
}

/// A form on a contact's page; `action` says which.
#[derive(Debug, Deserialize)]
pub struct ContactAction {
    #[serde(default)]
    action: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: String,
}

/// A form shown again: the values as given, a reason per field at fault, and the status.
struct Shown {
    values: Value,
    errors: BTreeMap<String, String>,
    status: StatusCode,
}

impl Shown {
    fn fresh(values: Value) -> Self {
        Self {
            values,
            errors: BTreeMap::new(),
            status: StatusCode::OK,
        }
    }

    fn refused(values: Value, errors: BTreeMap<String, String>) -> Self {
        Self {
            values,
            errors,
            status: StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    id: Uuid,
    email: String,
    name: String,
    status: &'static str,
    created_at: String,
}

#[derive(Debug, Serialize)]
pub(super) struct GroupOption {
    pub(super) id: String,
    pub(super) label: String,
}

fn cursor(raw: Option<&str>) -> Result<Option<Uuid>, Failure> {
    match raw.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(raw) => Uuid::parse_str(raw)
            .map(Some)
            .map_err(|_| Failure::BadRequest(format!("not a cursor: {raw}"))),
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn admin_change(state: &AppState) -> ChangeContext {
    ChangeContext::new(ChangeSource::Admin, state.clock.now())
}

/// `First Last`, or empty for a contact without a name.
fn name(record: &ContactRecord) -> String {
    let c = &record.contact;
    [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each group labelled with its path from the top (`Customers › Gold`), sorted by label.
pub(super) fn group_options(groups: &[Group]) -> Vec<GroupOption> {
    let by_id: HashMap<Uuid, &Group> = groups.iter().map(|g| (g.id, g)).collect();
    let mut options: Vec<GroupOption> = groups
        .iter()
        .map(|group| {
            let mut names = vec![group.name.as_str()];
            let mut parent = group.parent_id;
            // The store refuses cycles; the bound only keeps a corrupt tree from looping.
            while let Some(p) = parent.and_then(|id| by_id.get(&id)) {
                if names.len() > groups.len() {
                    break;
                }
                names.push(p.name.as_str());
                parent = p.parent_id;
            }
            names.reverse();
            GroupOption {
                id: group.id.to_string(),
                label: names.join(" › "),
            }
        })
        .collect();
    options.sort_by(|a, b| a.label.cmp(&b.label));
    options
}

/// The list's address with these filters (and a cursor): a link to share, a page to go to.
fn list_url(query: &ContactQuery, cursor: Option<Uuid>) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    let filters = [
        ("q", &query.q),
        ("status", &query.status),
        ("group", &query.group),
        ("tag", &query.tag),
    ];
    for (name, value) in filters {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            params.append_pair(name, value);
        }
    }
    if let Some(cursor) = cursor {
        params.append_pair("cursor", &cursor.to_string());
    }
    let params = params.finish();
    if params.is_empty() {
        "/admin/contacts".to_owned()
    } else {
        format!("/admin/contacts?{params}")
    }
}

/// What the list page and its results fragment show.
async fn list_context(
    state: &AppState,
    query: &ContactQuery,
    cursor: Option<Uuid>,
) -> Result<Value, Failure> {
    let filter = filter(query).map_err(|e| Failure::BadRequest(e.message))?;
    let page = match cursor {
        None => PageRequest::first(PAGE_SIZE),
        Some(c) => PageRequest::after(PAGE_SIZE, c),
    };
    let found = state.store.list_contacts(&filter, page).await?;
    let count = state.store.count_contacts(&filter).await?;
    let groups = state.store.list_groups().await?;
    let rows: Vec<Row> = found
        .items
        .iter()
        .map(|r| Row {
            id: r.contact.id,
            email: r.contact.email.to_string(),
            name: name(r),
            status: r.contact.status.as_str(),
            created_at: r.contact.created_at.to_string(),
        })
        .collect();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(context! {
        contacts => view::serialized(&rows),
        count,
        filter => context! {
            q => text(&query.q),
            status => text(&query.status),
            group => text(&query.group),
            tag => text(&query.tag),
        },
        first_url => cursor.map(|_| list_url(query, None)),
        next_url => found.next_cursor.map(|c| list_url(query, Some(c))),
        groups => view::serialized(group_options(&groups)),
        statuses => Status::ALL.map(Status::as_str),
    })
}

/// The whole list page: the results, the filters and the new-contact form.
async fn list_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    query: &ContactQuery,
    cursor: Option<Uuid>,
    new: Shown,
) -> Result<Response, Failure> {
    let ctx = context! {
        can_write => current.user.role.may(Area::Contacts, true),
        new => new.values,
        errors => new.errors,
        ..context! { ..list_context(state, query, cursor).await?, ..current.context("contacts", uri) }
    };
    view::page(new.status, "contacts.html", ctx)
}

/// `GET /admin/contacts`.
pub async fn list(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    headers: HeaderMap,
    PageQuery(query): PageQuery<ContactQuery>,
    PageQuery(paging): PageQuery<Paging>,
) -> Result<Response, Failure> {
    let cursor = cursor(paging.cursor.as_deref())?;
    if headers.contains_key("hx-request") {
        let ctx = context! {
            ..list_context(&state, &query, cursor).await?,
            ..current.context("contacts", &uri)
        };
        return view::page(StatusCode::OK, "contacts_results.html", ctx);
    }
    let new = NewContact {
        status: Status::Subscribed.as_str().to_owned(),
        ..NewContact::default()
    };
    let new = Shown::fresh(view::serialized(&new));
    list_page(&state, &current, &uri, &query, cursor, new).await
}

/// Field errors of a store refusal a form can show, or the failure it is.
fn form_errors(e: StoreError) -> Result<BTreeMap<String, String>, Failure> {
    match e {
        StoreError::Invalid(fields) => Ok(fields.into_map()),
        StoreError::Conflict {
            field: Some(field),
            message,
            ..
        } => Ok(BTreeMap::from([(field.to_owned(), message)])),
        other => Err(other.into()),
    }
}

/// `POST /admin/contacts`: creates a contact and shows it; a refusal shows the form again
/// with a reason per field.
pub async fn create(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<NewContact>,
) -> Result<Response, Failure> {
    let input = ContactInput {
        email: Some(form.email.clone()),
        first_name: non_empty(&form.first_name),
        last_name: non_empty(&form.last_name),
        status: non_empty(&form.status),
        source: Some("admin".to_owned()),
        ..ContactInput::default()
    };
    match state
        .store
        .create_contact(input, admin_change(&state))
        .await
    {
        Ok(record) => {
            Ok(Redirect::to(&format!("/admin/contacts/{}", record.contact.id)).into_response())
        }
        Err(e) => {
            let new = Shown::refused(view::serialized(&form), form_errors(e)?);
            let query = ContactQuery {
                q: None,
                status: None,
                group: None,
                tag: None,
            };
            list_page(&state, &current, &uri, &query, None, new).await
        }
    }
}

/// A custom field's value as text; a yes/no field is left to the catalogue (`flag`).
fn field_text(lang: &str, value: &serde_json::Value) -> (String, Option<&'static str>) {
    match value {
        serde_json::Value::Bool(b) => (String::new(), Some(if *b { "yes" } else { "no" })),
        serde_json::Value::Number(n) => (
            n.as_f64()
                .map(|f| format_number(lang, f, 6))
                .unwrap_or_else(|| n.to_string()),
            None,
        ),
        serde_json::Value::String(s) => (s.clone(), None),
        serde_json::Value::Array(items) => (
            items
                .iter()
                .map(|v| field_text(lang, v).0)
                .collect::<Vec<_>>()
                .join(", "),
            None,
        ),
        other => (other.to_string(), None),
    }
}

/// One contact's page, with the status form as given (`form`) and its errors.
async fn contact_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    id: Uuid,
    timeline_cursor: Option<Uuid>,
    form: Shown,
) -> Result<Response, Failure> {
    let record = state.store.get_contact(id).await?;
    let c = &record.contact;
    let defs = state.store.list_fields().await?;
    let fields: Vec<Value> = defs
        .iter()
        .filter_map(|def| {
            let value = c.fields.get(def.key.as_str()).filter(|v| !v.is_null())?;
            let (text, flag) = field_text(current.lang, value);
            Some(context! { label => &def.label, text, flag })
        })
        .collect();
    let details: Vec<Value> = [
        ("field-first-name", &c.first_name),
        ("field-last-name", &c.last_name),
        ("field-phone", &c.phone),
        ("field-language", &c.language),
        ("field-time-zone", &c.time_zone),
        ("field-source", &c.source),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.as_ref().map(|text| context! { label, text }))
    .collect();
    let all_groups = state.store.list_groups().await?;
    let groups: Vec<GroupOption> = group_options(&all_groups)
        .into_iter()
        .filter(|g| record.groups.iter().any(|id| id.to_string() == g.id))
        .collect();
    let enrolments = state
        .store
        .list_enrolments(
            &EnrolmentFilter {
                contact: Some(id),
                ..EnrolmentFilter::default()
            },
            EnrolmentOrder::Newest,
            PageRequest::first(PageRequest::MAX_LIMIT),
        )
        .await?;
    let enrolments: Vec<Value> = enrolments
        .items
        .iter()
        .map(|e| {
            context! {
                id => e.id.to_string(),
                sequence => &e.sequence_name,
                status => e.state.status.as_str(),
                reason => &e.state.reason,
                last_message_at => e.state.last_message_at.map(|t| t.to_string()),
                next_due_at => e.state.next_due_at.map(|t| t.to_string()),
            }
        })
        .collect();
    let messages = state
        .store
        .list_messages(
            &MessageFilter {
                contact: Some(id),
                ..MessageFilter::default()
            },
            PageRequest::first(MESSAGES_SHOWN),
        )
        .await?;
    let messages: Vec<Value> = messages
        .items
        .iter()
        .map(|m| {
            context! {
                subject => &m.content.subject,
                class => m.class.as_str(),
                status => m.status.as_str(),
                created_at => m.created_at.to_string(),
            }
        })
        .collect();
    let page = match timeline_cursor {
        None => PageRequest::first(TIMELINE_PAGE),
        Some(cursor) => PageRequest::after(TIMELINE_PAGE, cursor),
    };
    let timeline = state.store.timeline(id, page).await?;
    let entries: Vec<Value> = timeline
        .items
        .iter()
        .map(|e| {
            context! {
                at => e.at.to_string(),
                kind => e.kind.as_str().replace('_', "-"),
                summary => &e.summary,
            }
        })
        .collect();
    let ctx = context! {
        contact => context! {
            id => c.id.to_string(),
            email => c.email.as_str(),
            name => c.display_name(),
            status => c.status.as_str(),
            created_at => c.created_at.to_string(),
            updated_at => c.updated_at.to_string(),
        },
        details,
        fields,
        groups => view::serialized(&groups),
        tags => &record.tags,
        blocking => c.status.is_blocking(),
        statuses => Status::ALL.map(Status::as_str),
        enrolments,
        messages,
        timeline => entries,
        timeline_next => timeline
            .next_cursor
            .map(|cursor| format!("/admin/contacts/{id}?timeline={cursor}")),
        can_write => current.user.role.may(Area::Contacts, true),
        can_act => current.user.role.may(Area::Sequences, true),
        form => form.values,
        errors => form.errors,
        ..current.context("contacts", uri)
    };
    view::page(form.status, "contact.html", ctx)
}

fn contact_id(raw: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw).map_err(|_| Failure::NotFound)
}

/// `GET /admin/contacts/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<DetailQuery>,
) -> Result<Response, Failure> {
    let id = contact_id(&id)?;
    let timeline = cursor(query.timeline.as_deref())?;
    let record = state.store.get_contact(id).await?;
    let form = context! { status => record.contact.status.as_str(), reason => "" };
    contact_page(&state, &current, &uri, id, timeline, Shown::fresh(form)).await
}

/// `POST /admin/contacts/{id}`: the forms of a contact's page (now: `action=status`).
pub async fn act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    Path(id): Path<String>,
    PageForm(form): PageForm<ContactAction>,
) -> Result<Response, Failure> {
    let id = contact_id(&id)?;
    if form.action != "status" {
        return Err(Failure::BadRequest(format!(
            "no such action: {}",
            form.action
        )));
    }
    let result = match form.status.parse::<Status>() {
        Ok(to) => state
            .store
            .change_status(id, to, non_empty(&form.reason), admin_change(&state))
            .await
            .map_err(form_errors),
        Err(e) => Err(Ok(BTreeMap::from([("status".to_owned(), e.to_string())]))),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/admin/contacts/{id}")).into_response()),
        Err(errors) => {
            let values = context! { status => &form.status, reason => &form.reason };
            let shown = Shown::refused(values, errors?);
            contact_page(&state, &current, &uri, id, None, shown).await
        }
    }
}
