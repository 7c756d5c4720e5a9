//! `/admin/messages`: the send ledger, newest first, filtered by status, class and contact
//! (as `GET /api/v1/messages`) and paged by cursor. Read-only; the filter form also works as
//! an htmx request, which gets only the results fragment.

use super::session::Current;
use super::{Failure, PageQuery, view};
use crate::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use minijinja::context;
use nudge_core::{MessageClass, MessageStatus};
use nudge_store::{MessageFilter, PageRequest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Messages per page.
const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct LedgerQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Debug, Serialize)]
struct Row {
    id: String,
    contact_id: String,
    status: &'static str,
    class: &'static str,
    skip_rule: Option<&'static str>,
    attempts: u32,
    subject: String,
    to: String,
    created_at: String,
    due_at: String,
    sent_at: Option<String>,
    last_error: Option<String>,
}

fn bad(what: &str, raw: &str) -> Failure {
    Failure::BadRequest(format!("not a {what}: {raw}"))
}

fn filter(query: &LedgerQuery) -> Result<MessageFilter, Failure> {
    let mut filter = MessageFilter::default();
    if !query.status.is_empty() {
        let status: MessageStatus = query
            .status
            .parse()
            .map_err(|_| bad("message status", &query.status))?;
        filter.status = Some(status);
    }
    if !query.class.is_empty() {
        filter.class =
            Some(MessageClass::parse(&query.class).ok_or_else(|| bad("class", &query.class))?);
    }
    let contact = query.contact.trim();
    if !contact.is_empty() {
        filter.contact = Some(Uuid::parse_str(contact).map_err(|_| bad("contact id", contact))?);
    }
    Ok(filter)
}

/// The ledger's address with these filters and a cursor.
fn ledger_url(query: &LedgerQuery, cursor: Option<Uuid>) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("status", &query.status),
        ("class", &query.class),
        ("contact", &query.contact),
    ] {
        if !value.is_empty() {
            params.append_pair(name, value.trim());
        }
    }
    if let Some(cursor) = cursor {
        params.append_pair("cursor", &cursor.to_string());
    }
    let params = params.finish();
    if params.is_empty() {
        "/admin/messages".to_owned()
    } else {
        format!("/admin/messages?{params}")
    }
}

/// `GET /admin/messages`.
pub async fn ledger(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    headers: HeaderMap,
    PageQuery(query): PageQuery<LedgerQuery>,
) -> Result<Response, Failure> {
    let filter = filter(&query)?;
    let cursor = match query.cursor.trim() {
        "" => None,
        raw => Some(Uuid::parse_str(raw).map_err(|_| bad("cursor", raw))?),
    };
    let page = match cursor {
        None => PageRequest::first(PAGE_SIZE),
        Some(c) => PageRequest::after(PAGE_SIZE, c),
    };
    let found = state.store.list_messages(&filter, page).await?;
    let rows: Vec<Row> = found
        .items
        .iter()
        .map(|m| Row {
            id: m.id.to_string(),
            contact_id: m.contact_id.to_string(),
            status: m.status.as_str(),
            class: m.class.as_str(),
            skip_rule: m.skip_rule.map(|r| r.as_str()),
            attempts: m.attempts,
            subject: m.content.subject.clone(),
            to: m.to_email.clone(),
            created_at: m.created_at.to_string(),
            due_at: m.due_at.to_string(),
            sent_at: m.sent_at.map(|t| t.to_string()),
            last_error: m.last_error.clone(),
        })
        .collect();
    let ctx = context! {
        messages => view::serialized(&rows),
        filter => context! {
            status => &query.status,
            class => &query.class,
            contact => query.contact.trim(),
        },
        statuses => MessageStatus::ALL.map(MessageStatus::as_str),
        classes => MessageClass::ALL.map(MessageClass::as_str),
        first_url => cursor.map(|_| ledger_url(&query, None)),
        next_url => found.next_cursor.map(|c| ledger_url(&query, Some(c))),
        ..current.context("messages", &uri)
    };
    let template = if headers.contains_key("hx-request") {
        "messages_results.html"
    } else {
        "messages.html"
    };
    view::page(StatusCode::OK, template, ctx)
}
