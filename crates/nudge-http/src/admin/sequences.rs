//! `/admin/sequences`: the sequences (automailers) with their active and suspended recipients,
//! creating one, and `/admin/sequences/{id}`: its name, messages with delays (edit, add,
//! remove, reorder), sending window, start groups and condition, and starting it by hand for
//! a contact or a group.
//!
//! A saved definition goes through the API's [`check_definition`]: the same template check
//! and rules, the refusals named alike (`messages[1].html`) and shown beside their fields.

use super::contacts::group_options;
use super::session::{Current, random_value};
use super::{Failure, PageForm, view};
use crate::AppState;
use crate::api::sequences::{
    ConditionIo, SequenceIn, StepIn, WindowIo, check_definition, window_io,
};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use nudge_core::{Area, EnrolmentStatus, FieldErrors, MessageClass, SequenceDef};
use nudge_store::{
    EnrolmentFilter, EnrolmentOrder, MessageContent, NewMessage, PageRequest, SequenceRecord,
    StartTarget, StoreError,
};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The weekdays of the sending window, as the core names them.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A form's fields in order, as posted (repeated names kept).
type Fields = Vec<(String, String)>;

fn one<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn all<'a>(fields: &'a Fields, name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// How many enrolments of `sequence` have `status`, up to the store's page limit (`more`
/// when there are more).
async fn count(
    state: &AppState,
    sequence: Uuid,
    status: EnrolmentStatus,
) -> Result<(usize, bool), Failure> {
    let filter = EnrolmentFilter {
        sequence: Some(sequence),
        status: Some(status),
        contact: None,
    };
    let page = state
        .store
        .list_enrolments(
            &filter,
            EnrolmentOrder::Newest,
            PageRequest::first(PageRequest::MAX_LIMIT),
        )
        .await?;
    Ok((page.items.len(), page.next_cursor.is_some()))
}

/// `GET /admin/sequences`.
pub async fn list(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    list_page(&state, &current, &uri, "", None).await
}

async fn list_page(
    state: &AppState,
    current: &Current,
    uri: &Uri,
    name: &str,
    error: Option<String>,
) -> Result<Response, Failure> {
    let mut rows = Vec::new();
    for s in state.store.list_sequences().await? {
        let (active, active_more) = count(state, s.id, EnrolmentStatus::Active).await?;
        let (suspended, suspended_more) = count(state, s.id, EnrolmentStatus::Suspended).await?;
        rows.push(context! {
            id => s.id.to_string(),
            name => s.def.name,
            messages => s.def.messages.len(),
            active, active_more, suspended, suspended_more,
            updated_at => s.updated_at.to_string(),
        });
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = context! {
        rows,
        new_name => name,
        error,
        can_write => current.user.role.may(Area::Sequences, true),
        ..current.context("sequences", uri)
    };
    view::page(status, "sequences.html", ctx)
}

/// `POST /admin/sequences`: a new sequence with one message to edit, then its page.
pub async fn create(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    PageForm(form): PageForm<Fields>,
) -> Result<Response, Failure> {
    let name = one(&form, "name").trim().to_owned();
    let fields = state.store.list_fields().await?;
    let input = SequenceIn {
        name: name.clone(),
        messages: vec![StepIn {
            id: None,
            subject: "{{ first_name | default(\"Hello\") }}".to_owned(),
            html: "<p></p>".to_owned(),
            text: None,
            delay: None,
        }],
        start_groups: Vec::new(),
        condition: None,
        window: None,
    };
    match check_definition(&fields, input, &[]) {
        Ok(def) => {
            let created = state.store.create_sequence(def, state.clock.now()).await?;
            Ok(Redirect::to(&format!("/admin/sequences/{}", created.id)).into_response())
        }
        Err(errors) => {
            let error = errors
                .iter()
                .map(|(field, reason)| format!("{field}: {reason}"))
                .collect::<Vec<_>>()
                .join("; ");
            list_page(&state, &current, &uri, &name, Some(error)).await
        }
    }
}

/// The editor's values: what is stored, or what was posted.
struct Draft {
    name: String,
    messages: Vec<StepIn>,
    groups: Vec<String>,
    days: Vec<String>,
    from: String,
    to: String,
    condition_field: String,
    condition_values: String,
}

impl Draft {
    fn of(def: &SequenceDef) -> Self {
        let window = def.window.as_ref().map(window_io);
        Self {
            name: def.name.clone(),
            messages: def
                .messages
                .iter()
                .map(|m| StepIn {
                    id: Some(m.id),
                    subject: m.subject.clone(),
                    html: m.html.clone(),
                    text: m.text.clone(),
                    delay: Some(m.delay.to_string()),
                })
                .collect(),
            groups: def.start_groups.iter().map(Uuid::to_string).collect(),
            days: window.as_ref().map(|w| w.days.clone()).unwrap_or_default(),
            from: window.as_ref().map(|w| w.from.clone()).unwrap_or_default(),
            to: window.as_ref().map(|w| w.to.clone()).unwrap_or_default(),
            condition_field: def
                .condition
                .as_ref()
                .map(|c| c.field.clone())
                .unwrap_or_default(),
            condition_values: def
                .condition
                .as_ref()
                .map(|c| c.values.join(", "))
                .unwrap_or_default(),
        }
    }

    /// The editor's form: messages `m{i}_*` in the order of their `m{i}_position` (a message
    /// with `m{i}_remove` left out), then a new one if its subject or HTML is given.
    fn posted(form: &Fields) -> Self {
        let mut slots: Vec<(f64, usize, StepIn)> = Vec::new();
        for i in 0.. {
            let key = |part: &str| format!("m{i}_{part}");
            if !form.iter().any(|(n, _)| n == &key("subject")) {
                break;
            }
            if !one(form, &key("remove")).is_empty() {
                continue;
            }
            let position = one(form, &key("position"))
                .trim()
                .parse()
                .unwrap_or(i as f64);
            slots.push((
                position,
                i,
                StepIn {
                    id: Uuid::parse_str(one(form, &key("id"))).ok(),
                    subject: one(form, &key("subject")).to_owned(),
                    html: one(form, &key("html")).to_owned(),
                    text: Some(one(form, &key("text")).to_owned()),
                    delay: Some(one(form, &key("delay")).trim().to_owned())
                        .filter(|d| !d.is_empty()),
                },
            ));
        }
        slots.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut messages: Vec<StepIn> = slots.into_iter().map(|(_, _, m)| m).collect();
        let (subject, html) = (one(form, "new_subject"), one(form, "new_html"));
        if !subject.trim().is_empty() || !html.trim().is_empty() {
            messages.push(StepIn {
                id: None,
                subject: subject.to_owned(),
                html: html.to_owned(),
                text: Some(one(form, "new_text").to_owned()),
                delay: Some(one(form, "new_delay").trim().to_owned()).filter(|d| !d.is_empty()),
            });
        }
        Self {
            name: one(form, "name").to_owned(),
            messages,
            groups: all(form, "group").into_iter().map(str::to_owned).collect(),
            days: all(form, "day").into_iter().map(str::to_owned).collect(),
            from: one(form, "window_from").trim().to_owned(),
            to: one(form, "window_to").trim().to_owned(),
            condition_field: one(form, "condition_field").trim().to_owned(),
            condition_values: one(form, "condition_values").to_owned(),
        }
    }

    /// The definition to check; an id that is not one is named like the API would.
    fn input(&self) -> Result<SequenceIn, FieldErrors> {
        let mut start_groups = Vec::new();
        for g in &self.groups {
            match Uuid::parse_str(g) {
                Ok(id) => start_groups.push(id),
                Err(_) => return Err(FieldErrors::one("start_groups", "is not a group")),
            }
        }
        let window =
            (!self.days.is_empty() || !self.from.is_empty() || !self.to.is_empty()).then(|| {
                WindowIo {
                    days: self.days.clone(),
                    from: self.from.clone(),
                    to: self.to.clone(),
                }
            });
        let condition = (!self.condition_field.is_empty()).then(|| ConditionIo {
            field: self.condition_field.clone(),
            values: self
                .condition_values
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect(),
        });
        Ok(SequenceIn {
            name: self.name.clone(),
            messages: self
                .messages
                .iter()
                .map(|m| StepIn {
                    id: m.id,
                    subject: m.subject.clone(),
                    html: m.html.clone(),
                    text: m.text.clone(),
                    delay: m.delay.clone(),
                })
                .collect(),
            start_groups,
            condition,
            window,
        })
    }
}

fn sequence_id(raw: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw).map_err(|_| Failure::NotFound)
}

/// One sequence's page with the editor as `draft` says, its refusals, a notice and a
/// preview; [`EditPage::render`] draws it.
struct EditPage<'a> {
    state: &'a AppState,
    current: &'a Current,
    uri: &'a Uri,
    record: &'a SequenceRecord,
    draft: &'a Draft,
    errors: BTreeMap<String, String>,
    status: StatusCode,
    notice: Option<Value>,
    preview: Option<Value>,
}

#[allow(clippy::too_many_arguments)]
fn edit_page<'a>(
    state: &'a AppState,
    current: &'a Current,
    uri: &'a Uri,
    record: &'a SequenceRecord,
    draft: &'a Draft,
    errors: BTreeMap<String, String>,
    status: StatusCode,
    notice: Option<Value>,
) -> EditPage<'a> {
    EditPage {
        state,
        current,
        uri,
        record,
        draft,
        errors,
        status,
        notice,
        preview: None,
    }
}

impl EditPage<'_> {
    async fn render(self) -> Result<Response, Failure> {
        let EditPage {
            state,
            current,
            uri,
            record,
            draft,
            errors,
            status,
            notice,
            preview,
        } = self;
        let groups = state.store.list_groups().await?;
        let groups: Vec<Value> = group_options(&groups)
            .into_iter()
            .map(|g| {
                let checked = draft.groups.contains(&g.id);
                context! { id => g.id, label => g.label, checked }
            })
            .collect();
        let messages: Vec<Value> = draft
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let prefix = format!("messages[{i}]");
                let own: BTreeMap<String, String> = errors
                    .iter()
                    .filter_map(|(k, v)| {
                        let part = k.strip_prefix(&prefix)?;
                        let part = part.strip_prefix('.').unwrap_or("message");
                        Some((part.to_owned(), v.clone()))
                    })
                    .collect();
                context! {
                    index => i,
                    position => i + 1,
                    id => m.id.map(|id| id.to_string()).unwrap_or_default(),
                    subject => &m.subject,
                    html => &m.html,
                    text => m.text.clone().unwrap_or_default(),
                    delay => m.delay.clone().unwrap_or_default(),
                    errors => own,
                }
            })
            .collect();
        // Refusals not about one message: the name, window, condition, groups.
        let general: BTreeMap<String, String> = errors
            .iter()
            .filter(|(k, _)| !k.starts_with("messages["))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let days: Vec<Value> = DAYS
            .iter()
            .map(|d| context! { key => *d, checked => draft.days.iter().any(|x| x == d) })
            .collect();
        let fields = state.store.list_fields().await?;
        let ctx = context! {
            sequence => context! {
                id => record.id.to_string(),
                version => record.version,
                updated_at => record.updated_at.to_string(),
            },
            draft => context! {
                name => &draft.name,
                from => &draft.from,
                to => &draft.to,
                condition_field => &draft.condition_field,
                condition_values => &draft.condition_values,
            },
            messages,
            groups,
            days,
            condition_fields => fields.iter().map(|f| f.key.to_string()).collect::<Vec<_>>(),
            errors => general,
            has_errors => errors.keys().any(|k| k != "start"),
            notice,
            preview,
            can_write => current.user.role.may(Area::Sequences, true),
            ..current.context("sequences", uri)
        };
        view::page(status, "sequence.html", ctx)
    }
}

/// `GET /admin/sequences/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>,
) -> Result<Response, Failure> {
    let record = state.store.get_sequence(sequence_id(&id)?).await?;
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<u64>().ok());
    let notice = match (number("enrolled"), number("already")) {
        (Some(enrolled), Some(already)) => Some(context! { enrolled, already }),
        _ => None,
    };
    let notice = match query.get("test").map(String::as_str) {
        Some("queued") => Some(context! { test => "queued", email => &current.user.email }),
        Some("no-contact") => Some(context! { test => "no-contact", email => &current.user.email }),
        _ => notice,
    };
    let draft = Draft::of(&record.def);
    let preview = preview(&state, &current, &record, &query).await?;
    let mut page = edit_page(
        &state,
        &current,
        &uri,
        &record,
        &draft,
        BTreeMap::new(),
        StatusCode::OK,
        notice,
    );
    // The preview goes into the same page: rendered here, shown in a sandboxed frame.
    page.preview = preview;
    page.render().await
}

/// A message of the sequence rendered for a contact (`?preview=<n>&contact=<email or id>`),
/// with `nudge_mail::Template` as the engine would; the links are placeholders.
async fn preview(
    state: &AppState,
    current: &Current,
    record: &SequenceRecord,
    query: &BTreeMap<String, String>,
) -> Result<Option<Value>, Failure> {
    let (Some(n), Some(who)) = (query.get("preview"), query.get("contact")) else {
        return Ok(None);
    };
    let chosen = context! { message => n, contact => who };
    let Some(step) = n
        .parse::<usize>()
        .ok()
        .and_then(|n| record.def.messages.get(n))
    else {
        return Ok(Some(context! { error => "message", ..chosen }));
    };
    let contact = match Uuid::parse_str(who.trim()) {
        Ok(id) => match state.store.get_contact(id).await {
            Ok(r) => Some(r),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => state.store.find_contact_by_email(who.trim()).await?,
    };
    let Some(contact) = contact else {
        return Ok(Some(context! { error => "contact", ..chosen }));
    };
    let fields = state.store.list_fields().await?;
    let template =
        nudge_mail::Template::check(&step.subject, &step.html, step.text.as_deref(), &fields)
            .map_err(|e| Failure::Internal(format!("a stored message does not check: {e:?}")))?;
    let base = state.public_url.trim_end_matches('/');
    let (unsubscribe, preferences, confirm) = (
        format!("{base}/u/preview"),
        format!("{base}/p/preview"),
        format!("{base}/confirm/preview"),
    );
    let rendered = template
        .render(&nudge_mail::RenderContext {
            contact: &contact.contact,
            sender_name: "Nudge",
            sender_email: &current.user.email,
            unsubscribe_url: &unsubscribe,
            preferences_url: &preferences,
            confirm_url: &confirm,
        })
        .map_err(|e| Failure::Internal(format!("the preview did not render: {e:?}")))?;
    Ok(Some(context! {
        subject => rendered.subject,
        html => rendered.html,
        text => rendered.text,
        ..chosen
    }))
}

/// `POST /admin/sequences/{id}`: `action=save` (the editor) or `action=start` (a contact by
/// id or email address, or a group).
pub async fn act(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
    Path(id): Path<String>,
    PageForm(form): PageForm<Fields>,
) -> Result<Response, Failure> {
    let id = sequence_id(&id)?;
    let record = state.store.get_sequence(id).await?;
    match one(&form, "action") {
        "save" => {
            let draft = Draft::posted(&form);
            let fields = state.store.list_fields().await?;
            let checked = draft
                .input()
                .and_then(|input| check_definition(&fields, input, &record.def.messages));
            let refused = match checked {
                Ok(def) => match state
                    .store
                    .update_sequence(id, def, state.clock.now())
                    .await
                {
                    Ok(_) => {
                        state.wake_workers();
                        return Ok(Redirect::to(&format!("/admin/sequences/{id}")).into_response());
                    }
                    Err(StoreError::Invalid(e)) => e.into_map(),
                    Err(StoreError::Conflict { field, message, .. }) => {
                        BTreeMap::from([(field.unwrap_or("name").to_owned(), message)])
                    }
                    Err(other) => return Err(other.into()),
                },
                Err(e) => e.into_map(),
            };
            edit_page(
                &state,
                &current,
                &uri,
                &record,
                &draft,
                refused,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .render()
            .await
        }
        "start" => {
            let contact = one(&form, "contact").trim();
            let group = one(&form, "group_id").trim();
            let target = if !contact.is_empty() {
                let found = match Uuid::parse_str(contact) {
                    Ok(c) => Some(c),
                    Err(_) => state
                        .store
                        .find_contact_by_email(contact)
                        .await?
                        .map(|r| r.contact.id),
                };
                found.map(StartTarget::Contact)
            } else {
                Uuid::parse_str(group).ok().map(StartTarget::Group)
            };
            let outcome = match target {
                None => Err(None),
                Some(target) => match state
                    .store
                    .start_sequence(id, target, state.clock.now())
                    .await
                {
                    Ok(outcome) => Ok(outcome),
                    Err(StoreError::NotFound) => Err(None),
                    Err(StoreError::Conflict { message, .. }) => Err(Some(message)),
                    Err(other) => return Err(other.into()),
                },
            };
            match outcome {
                Ok(outcome) => {
                    state.wake_workers();
                    Ok(Redirect::to(&format!(
                        "/admin/sequences/{id}?enrolled={}&already={}",
                        outcome.enrolled, outcome.already
                    ))
                    .into_response())
                }
                Err(reason) => {
                    let draft = Draft::of(&record.def);
                    // No reason: the catalogue's "no such contact or group".
                    let errors = BTreeMap::from([("start".to_owned(), reason.unwrap_or_default())]);
                    edit_page(
                        &state,
                        &current,
                        &uri,
                        &record,
                        &draft,
                        errors,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        None,
                    )
                    .render()
                    .await
                }
            }
        }
        "test" => {
            let step = one(&form, "message")
                .parse::<usize>()
                .ok()
                .and_then(|n| record.def.messages.get(n))
                .ok_or_else(|| Failure::BadRequest("no such message".to_owned()))?;
            // To a contact with the signed-in user's address, if one exists; none is made.
            let Some(me) = state
                .store
                .find_contact_by_email(&current.user.email)
                .await?
            else {
                return Ok(
                    Redirect::to(&format!("/admin/sequences/{id}?test=no-contact")).into_response(),
                );
            };
            let now = state.clock.now();
            let new = NewMessage {
                contact_id: me.contact.id,
                class: MessageClass::Transactional,
                content: MessageContent {
                    subject: step.subject.clone(),
                    html: step.html.clone(),
                    text: step.text.clone(),
                    from_email: None,
                    from_name: None,
                },
                idempotency_key: format!("admin-test:{}", random_value()?),
                due_at: now,
            };
            state.store.queue_message(new, now).await?;
            state.wake_workers();
            Ok(Redirect::to(&format!("/admin/sequences/{id}?test=queued")).into_response())
        }
        other => Err(Failure::BadRequest(format!("no such action: {other}"))),
    }
}
