//! `/admin/enrolments`: who is where in which sequence (seed 002's "Automailer Empfänger"),
//! for all sequences or one, filtered by status and contact, sorted by the last or the next
//! message time, paged by cursor; with the per-recipient actions (pause, resume, reactivate,
//! postpone) and a form that starts a sequence by hand for a contact.
//!
//! The actions are read by the API's [`parse_action`] and the rows built by its
//! [`EnrolmentOut`], so the page and `/api/v1/enrolments` apply one rule. A refusal of the
//! store (`invalid_action`: pausing a paused enrolment, say) shows the overview again with
//! the reason, status 409.

use super::session::Current;
use super::{Failure, PageForm, PageQuery, view};
use crate::AppState;
use crate::api::enrolments::{EnrolmentOut, parse_action};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use nudge_core::{Area, EnrolmentStatus};
use nudge_store::{EnrolmentFilter, EnrolmentOrder, PageRequest, StartTarget, StoreError};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// Enrolments per page.
const PAGE_SIZE: u32 = 50;

/// The overview's filters, order and cursor, as in its address.
#[derive(Debug, Default, Deserialize)]
pub struct Overview {
    #[serde(default)]
    sequence: String,
    #[serde(default)]
    status: String,
    /// A contact's id or email address.
    #[serde(default)]
    contact: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    cursor: String,
}

/// A form of the overview: an action on one enrolment, or `start`.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
    /// For `postpone`: a `datetime-local` value (read as UTC) or an RFC 3339 time.
    #[serde(default)]
    until: String,
    /// For `start`: the sequence and the contact (id or email address).
    #[serde(default)]
    sequence: String,
    #[serde(default)]
    contact: String,
    /// The overview's address to return to (filters kept); only `/admin/…` paths.
    #[serde(default)]
    back: String,
}

/// What the page says after a form: a refusal (status 409/422) or nothing.
struct Notice {
    status: StatusCode,
    error: Option<String>,
    /// The enrolment the refusal is about, to mark its row.
    row: Option<Uuid>,
    start: Option<Value>,
}

impl Notice {
    fn none() -> Self {
        Self {
            status: StatusCode::OK,
            error: None,
            row: None,
            start: None,
        }
    }
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw.trim()).ok()
}

/// The contact a filter or the start form names: an id, else an email address.
async fn find_contact(state: &AppState, raw: &str) -> Result<Option<Uuid>, Failure> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Some(id) = parse_id(raw) {
        return Ok(Some(id));
    }
    Ok(state
        .store
        .find_contact_by_email(raw)
        .await?
        .map(|r| r.contact.id))
}

/// The overview's address with these filters, another order and a cursor.
fn overview_url(q: &Overview, order: &str, cursor: Option<Uuid>) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("sequence", q.sequence.as_str()),
        ("status", q.status.as_str()),
        ("contact", q.contact.as_str()),
        ("order", order),
    ] {
        if !value.trim().is_empty() {
            params.append_pair(name, value.trim());
        }
    }
    if let Some(cursor) = cursor {
        params.append_pair("cursor", &cursor.to_string());
    }
    let params = params.finish();
    if params.is_empty() {
        "/admin/enrolments".to_owned()
    } else {
        format!("/admin/enrolments?{params}")
    }
}

/// A postponement's time: RFC 3339, or a browser's `datetime-local` (`2026-05-01T09:30`),
/// read as UTC as the form says.
fn until_time(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.parse::<jiff::Timestamp>().is_ok() {
        return Some(raw.to_owned());
    }
    let civil: jiff::civil::DateTime = raw.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().to_string())
}

async fn overview(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    q: &Overview,
    notice: Notice,
) -> Result<Response, Failure> {
    let bad = |name: &str, value: &str| Failure::BadRequest(format!("not a {name}: {value}"));
    let sequence = match q.sequence.trim() {
        "" => None,
        s => Some(parse_id(s).ok_or_else(|| bad("sequence", s))?),
    };
    let status = match q.status.trim() {
        "" => None,
        s => Some(EnrolmentStatus::parse(s).ok_or_else(|| bad("status", s))?),
    };
    let order = match q.order.trim() {
        "" => EnrolmentOrder::Newest,
        s => EnrolmentOrder::parse(s).ok_or_else(|| bad("order", s))?,
    };
    let cursor = match q.cursor.trim() {
        "" => None,
        s => Some(parse_id(s).ok_or_else(|| bad("cursor", s))?),
    };
    let contact_given = !q.contact.trim().is_empty();
    let contact = find_contact(state, &q.contact).await?;
    let sequences = state.store.list_sequences().await?;
    let mut items = Vec::new();
    let mut next_cursor = None;
    // A contact filter that names no one finds no one.
    if !contact_given || contact.is_some() {
        let filter = EnrolmentFilter {
            sequence,
            status,
            contact,
        };
        let page = match cursor {
            None => PageRequest::first(PAGE_SIZE),
            Some(c) => PageRequest::after(PAGE_SIZE, c),
        };
        let found = state.store.list_enrolments(&filter, order, page).await?;
        next_cursor = found.next_cursor;
        let defs: HashMap<Uuid, _> = sequences.iter().map(|s| (s.id, &s.def)).collect();
        items = found
            .items
            .into_iter()
            .map(|e| {
                let def = defs.get(&e.sequence_id).copied();
                EnrolmentOut::new(e, def)
            })
            .collect();
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|e| {
            context! {
                id => e.id.to_string(),
                sequence_id => e.sequence_id.to_string(),
                sequence => &e.sequence_name,
                contact_id => e.contact_id.to_string(),
                contact_name => &e.contact_name,
                contact_email => &e.contact_email,
                status => &e.status,
                reason => &e.reason,
                last_message_at => &e.last_message_at,
                last_message => &e.last_message,
                next_message_at => &e.next_message_at,
                next_message => &e.next_message,
                refused => notice.row == Some(e.id),
            }
        })
        .collect();
    let sorts: Vec<Value> = [
        ("last_message", "sort-last-asc"),
        ("-last_message", "sort-last-desc"),
        ("next_message", "sort-next-asc"),
        ("-next_message", "sort-next-desc"),
    ]
    .into_iter()
    .map(|(order, label)| {
        context! {
            label,
            href => overview_url(q, order, None),
            current => q.order.trim() == order,
        }
    })
    .collect();
    let sequence_options: Vec<Value> = sequences
        .iter()
        .map(|s| context! { id => s.id.to_string(), name => &s.def.name })
        .collect();
    let here = overview_url(q, &q.order, cursor);
    let ctx = context! {
        rows,
        sorts,
        sequences => sequence_options,
        statuses => EnrolmentStatus::ALL.map(EnrolmentStatus::as_str),
        filter => context! {
            sequence => q.sequence.trim(),
            status => q.status.trim(),
            contact => q.contact.trim(),
            order => q.order.trim(),
        },
        contact_unknown => contact_given && contact.is_none(),
        first_url => cursor.map(|_| overview_url(q, &q.order, None)),
        next_url => next_cursor.map(|c| overview_url(q, &q.order, Some(c))),
        back => here,
        error => notice.error,
        start => notice.start.unwrap_or_else(|| context! { sequence => q.sequence.trim(), contact => "" }),
        can_write => current.user.role.may(Area::Sequences, true),
        ..current.context("enrolments", uri)
    };
    view::page(notice.status, "enrolments.html", ctx)
}

/// `GET /admin/enrolments`.
pub async fn list(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageQuery(q): PageQuery<Overview>,
) -> Result<Response, Failure> {
    overview(&state, &current, &uri, &q, Notice::none()).await
}

/// Where to go after a form: its `back` if that is an overview address, else the overview.
fn back_to(back: &str) -> String {
    if back.starts_with("/admin/") && !back.starts_with("//") && !back.contains("\\") {
        back.to_owned()
    } else {
        "/admin/enrolments".to_owned()
    }
}

/// The overview to show again after a refused form: the one `back` names.
fn overview_of(back: &str) -> Overview {
    let mut q = Overview::default();
    // From a contact's page: the overview of that contact.
    if let Some(contact) = back.strip_prefix("/admin/contacts/") {
        q.contact = contact.to_owned();
        return q;
    }
    let Some(query) = back.strip_prefix("/admin/enrolments?") else {
        return q;
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "sequence" => &mut q.sequence,
            "status" => &mut q.status,
            "contact" => &mut q.contact,
            "order" => &mut q.order,
            "cursor" => &mut q.cursor,
            _ => continue,
        };
        *slot = value.into_owned();
    }
    q
}

/// The message of a store refusal a page can show, or the failure it is.
fn refusal(e: StoreError) -> Result<(StatusCode, String), Failure> {
    match e {
        StoreError::Conflict { message, .. } => Ok((StatusCode::CONFLICT, message)),
        StoreError::Invalid(fields) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            fields
                .into_map()
                .into_iter()
                .map(|(field, reason)| format!("{field}: {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
        )),
        other => Err(other.into()),
    }
}

/// `POST /admin/enrolments/{id}`: pause, resume, reactivate or postpone one enrolment.
pub async fn act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    Path(id): Path<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, Failure> {
    let id = parse_id(&id).ok_or(Failure::NotFound)?;
    let until = until_time(&form.until);
    let result = match parse_action(&form.action, until.as_deref().or(Some(form.until.trim()))) {
        Err((field, reason)) => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
        )),
        Ok(action) => match state
            .store
            .change_enrolment(id, action, state.clock.now())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(refusal(e)?),
        },
    };
    match result {
        Ok(()) => {
            state.wake_workers();
            Ok(Redirect::to(&back_to(&form.back)).into_response())
        }
        Err((status, error)) => {
            let notice = Notice {
                status,
                error: Some(error),
                row: Some(id),
                start: None,
            };
            overview(&state, &current, &uri, &overview_of(&form.back), notice).await
        }
    }
}

/// `POST /admin/enrolments` with `action=start`: starts a sequence for one contact (its id or
/// email address) by hand; the contact's consent and the sequence's condition apply as ever.
pub async fn start(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, Failure> {
    if form.action != "start" {
        return Err(Failure::BadRequest(format!(
            "no such action: {}",
            form.action
        )));
    }
    let shown = context! { sequence => form.sequence.trim(), contact => form.contact.trim() };
    let refuse = |status: StatusCode, error: String| Notice {
        status,
        error: Some(error),
        row: None,
        start: Some(shown.clone()),
    };
    let Some(sequence) = parse_id(&form.sequence) else {
        let notice = refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sequence: choose a sequence".to_owned(),
        );
        return overview(&state, &current, &uri, &overview_of(&form.back), notice).await;
    };
    let Some(contact) = find_contact(&state, &form.contact).await? else {
        let notice = refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "contact: no contact has this id or email address".to_owned(),
        );
        return overview(&state, &current, &uri, &overview_of(&form.back), notice).await;
    };
    match state
        .store
        .start_sequence(sequence, StartTarget::Contact(contact), state.clock.now())
        .await
    {
        Ok(_) => {
            state.wake_workers();
            let q = Overview {
                sequence: sequence.to_string(),
                contact: contact.to_string(),
                ..Overview::default()
            };
            Ok(Redirect::to(&overview_url(&q, "", None)).into_response())
        }
        Err(StoreError::NotFound) => {
            let notice = refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sequence or contact: not found".to_owned(),
            );
            overview(&state, &current, &uri, &overview_of(&form.back), notice).await
        }
        Err(e) => {
            let (status, error) = refusal(e)?;
            overview(
                &state,
                &current,
                &uri,
                &overview_of(&form.back),
                refuse(status, error),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postponement_reads_rfc3339_and_datetime_local_as_utc() {
        assert_eq!(
            until_time("2026-05-01T09:30").as_deref(),
            Some("2026-05-01T09:30:00Z")
        );
        assert_eq!(
            until_time("2026-05-01T09:30:00+02:00").as_deref(),
            Some("2026-05-01T09:30:00+02:00")
        );
        assert_eq!(until_time("soon"), None);
    }

    #[test]
    fn going_back_stays_in_the_admin_ui() {
        assert_eq!(back_to("https://evil.example/"), "/admin/enrolments");
        assert_eq!(back_to("//evil.example/"), "/admin/enrolments");
        assert_eq!(
            back_to("/admin/enrolments?status=paused"),
            "/admin/enrolments?status=paused"
        );
        assert_eq!(
            overview_of("/admin/enrolments?status=paused").status,
            "paused"
        );
    }
}
