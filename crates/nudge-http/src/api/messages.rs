//! `/api/v1/messages`: the send ledger, and sending one message.

use super::{ListParams, ListResponse, page_request, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, IdPath};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use nudge_core::{ChangeSource, ContactInput, MessageClass, Scope};
use nudge_mail::Template;
use nudge_store::{ChangeContext, Message, MessageContent, MessageFilter, NewMessage, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, send_message))
        .routes(routes!(get_message))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: Uuid,
    pub contact_id: Uuid,
    /// campaign, automation or transactional.
    pub class: String,
    /// queued, sending, sent, retrying, failed or skipped.
    pub status: String,
    /// The send-gate rule that skipped the message.
    pub skip_rule: Option<String>,
    pub to: String,
    pub subject: String,
    /// The Message-ID header it was sent with.
    pub message_id: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub due_at: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// The sending account it went out through (`null` for the default relay or folder).
    pub smtp_account_id: Option<Uuid>,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        Self {
            id: m.id,
            contact_id: m.contact_id,
            class: m.class.as_str().to_owned(),
            status: m.status.as_str().to_owned(),
            skip_rule: m.skip_rule.map(|r| r.as_str().to_owned()),
            to: m.to_email,
            subject: m.content.subject,
            message_id: m.message_id,
            attempts: m.attempts,
            last_error: m.last_error,
            due_at: rfc3339(m.due_at),
            created_at: rfc3339(m.created_at),
            sent_at: m.sent_at.map(rfc3339),
            smtp_account_id: m.smtp_account_id,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The contact, by id; or give `to`.
    pub contact_id: Option<Uuid>,
    /// The contact, by address; an unknown address becomes a transactional-only contact.
    pub to: Option<String>,
    /// campaign, automation or transactional (the default).
    pub class: Option<String>,
    /// A template (minijinja): `{{ first_name | default("there") }}`, `{{ fields.key }}`, ...
    pub subject: Option<String>,
    pub html: Option<String>,
    /// Generated from the HTML when absent.
    pub text: Option<String>,
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    /// A stored template instead of inline content; its content is copied into the message
    /// now, so a later edit of the template does not change it.
    pub template_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// A contact id.
    pub contact: Option<String>,
    pub status: Option<String>,
    pub class: Option<String>,
}

fn filter(query: &MessageQuery) -> Result<MessageFilter, AppError> {
    let mut errors = nudge_core::FieldErrors::new();
    let mut filter = MessageFilter::default();
    if let Some(raw) = query.contact.as_deref().filter(|s| !s.is_empty()) {
        filter.contact = Uuid::parse_str(raw)
            .map_err(|_| errors.add("contact", "must be a contact id"))
            .ok();
    }
    if let Some(raw) = query.status.as_deref().filter(|s| !s.is_empty()) {
        filter.status = raw
            .parse()
            .map_err(|e: String| errors.add("status", e))
            .ok();
    }
    if let Some(raw) = query.class.as_deref().filter(|s| !s.is_empty()) {
        filter.class = MessageClass::parse(raw);
        if filter.class.is_none() {
            errors.add(
                "class",
                "must be one of campaign, automation, transactional",
            );
        }
    }
    errors.into_result(filter).map_err(AppError::validation)
}

/// The send ledger, newest first.
#[utoipa::path(get, path = "/messages", tag = "messages", params(MessageQuery, ListParams),
    responses((status = 200, body = ListResponse<MessageOut>)))]
async fn list_messages(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<MessageQuery>,
    Query(list): Query<ListParams>,
) -> Result<Json<ListResponse<MessageOut>>, AppError> {
    caller.require(Scope::MessagesRead)?;
    let page = state
        .store
        .list_messages(&filter(&query)?, page_request(&list)?)
        .await?;
    Ok(Json(ListResponse::from_page(page, MessageOut::from)))
}

/// One message of the ledger.
#[utoipa::path(get, path = "/messages/{id}", tag = "messages",
    params(("id" = Uuid, Path)), responses((status = 200, body = MessageOut)))]
async fn get_message(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IdPath(id): IdPath,
) -> Result<Json<MessageOut>, AppError> {
    caller.require(Scope::MessagesRead)?;
    Ok(Json(state.store.get_message(id).await?.into()))
}

/// Queue one message for a contact; it is delivered in the background. A message the send gate
/// forbids is accepted and recorded as skipped with its rule. With an `Idempotency-Key` header,
/// a repeated request returns the first message instead of queueing another.
#[utoipa::path(post, path = "/messages", tag = "messages", request_body = SendMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses((status = 202, body = MessageOut)))]
async fn send_message(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessage>,
) -> Result<(StatusCode, Json<MessageOut>), AppError> {
    caller.require(Scope::MessagesSend)?;
    let mut errors = nudge_core::FieldErrors::new();
    let class = match body.class.as_deref() {
        None => MessageClass::Transactional,
        Some(raw) => MessageClass::parse(raw).unwrap_or_else(|| {
            errors.add(
                "class",
                "must be one of campaign, automation, transactional",
            );
            MessageClass::Transactional
        }),
    };
    if body.contact_id.is_none() && body.to.is_none() {
        errors.add("contact_id", "give contact_id or to");
    }
    if let Some(Err(e)) = body.from_email.as_deref().map(nudge_core::Email::parse) {
        errors.add("from_email", e.to_string());
    }
    let inline = body.subject.is_some() || body.html.is_some() || body.text.is_some();
    let (subject, html, text) = match body.template_id {
        Some(_) if inline => {
            errors.add(
                "template_id",
                "give template_id or inline content, not both",
            );
            (String::new(), String::new(), None)
        }
        // The template's content is copied into the ledger row here, so a later edit of the
        // template changes only messages queued after it.
        Some(id) => match state.store.get_template(id).await {
            Ok(stored) => {
                let t = stored.template;
                // Checked again against the fields defined now: one the template uses may have
                // been deleted since it was saved, and a message that cannot render is better
                // refused here than failed later by the dispatcher.
                let fields = state.store.list_fields().await?;
                if let Err(template_errors) =
                    Template::check(&t.subject, &t.html, t.text.as_deref(), &fields)
                {
                    let reasons: Vec<String> = template_errors
                        .iter()
                        .map(|(part, reason)| format!("{part}: {reason}"))
                        .collect();
                    errors.add(
                        "template_id",
                        format!("the template no longer checks: {}", reasons.join("; ")),
                    );
                }
                (t.subject, t.html, t.text)
            }
            Err(StoreError::NotFound) => {
                errors.add("template_id", "no such template");
                (String::new(), String::new(), None)
            }
            Err(e) => return Err(e.into()),
        },
        None => {
            let subject = body.subject.unwrap_or_default();
            let html = body.html.unwrap_or_default();
            let fields = state.store.list_fields().await?;
            if let Err(template_errors) =
                Template::check(&subject, &html, body.text.as_deref(), &fields)
            {
                for (field, reason) in template_errors.iter() {
                    errors.add(field, reason);
                }
            }
            (subject, html, body.text)
        }
    };
    let key = match headers.get("idempotency-key") {
        None => Uuid::now_v7().to_string(),
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= 200 => format!("api:{}:{k}", caller.0.id),
            _ => {
                errors.add(
                    "Idempotency-Key",
                    "must be 1 to 200 visible ASCII characters",
                );
                String::new()
            }
        },
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let now = state.clock.now();
    let contact_id = match (body.contact_id, body.to) {
        (Some(id), _) => id,
        (None, Some(to)) => match state.store.find_contact_by_email(&to).await? {
            Some(record) => record.contact.id,
            None => {
                let input = ContactInput {
                    email: Some(to),
                    status: Some("transactional".into()),
                    source: Some("api".into()),
                    ..ContactInput::default()
                };
                let ctx = ChangeContext::new(ChangeSource::Admin, now);
                match state.store.create_contact(input, ctx).await {
                    Ok(record) => record.contact.id,
                    Err(StoreError::Invalid(fields)) => {
                        let reason = fields.get("email").unwrap_or("is not a valid address");
                        return Err(AppError::field("to", reason));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        },
        (None, None) => return Err(AppError::field("contact_id", "give contact_id or to")),
    };
    let new = NewMessage {
        contact_id,
        class,
        content: MessageContent {
            subject,
            html,
            text,
            from_email: body.from_email,
            from_name: body.from_name,
        },
        idempotency_key: key,
        due_at: now,
    };
    let (message, _) = state
        .store
        .queue_message(new, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::field("contact_id", "no such contact"),
            other => other.into(),
        })?;
    if let Some(wake) = &state.wake {
        wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(message.into())))
}
