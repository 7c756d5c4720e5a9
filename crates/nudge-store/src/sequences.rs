//! The records of sequences, enrolments and forms, and the JSON documents both backends keep
//! a sequence's and a form's definition in (one format, so a database moved from SQLite to
//! PostgreSQL reads the same).

use crate::StoreError;
use jiff::Timestamp;
use nudge_core::form::{FillMode, FormDef, FormField, FormFieldType, FormResponse, Target};
use nudge_core::sequence::weekday_name;
use nudge_core::{
    Condition, Delay, EnrolmentState, EnrolmentStatus, SendingWindow, SequenceDef, Step,
};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct SequenceRecord {
    pub id: Uuid,
    pub def: SequenceDef,
    /// Grows with every edit; part of each step's idempotency key.
    pub version: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormRecord {
    pub id: Uuid,
    pub def: FormDef,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One row of the enrolment overview (seed 002's "Automailer Empfänger").
#[derive(Debug, Clone, PartialEq)]
pub struct Enrolment {
    pub id: Uuid,
    pub sequence_id: Uuid,
    pub sequence_name: String,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub contact_email: String,
    pub state: EnrolmentState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrolmentFilter {
    pub sequence: Option<Uuid>,
    pub status: Option<EnrolmentStatus>,
    pub contact: Option<Uuid>,
}

/// The order of the overview. Enrolments without the time sorted on come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnrolmentOrder {
    #[default]
    Newest,
    LastMessageAsc,
    LastMessageDesc,
    NextMessageAsc,
    NextMessageDesc,
}

impl EnrolmentOrder {
    /// `?order=` values: `last_message`, `-last_message`, `next_message`, `-next_message`
    /// (a leading `-` is newest or latest first).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "newest" => EnrolmentOrder::Newest,
            "last_message" => EnrolmentOrder::LastMessageAsc,
            "-last_message" => EnrolmentOrder::LastMessageDesc,
            "next_message" => EnrolmentOrder::NextMessageAsc,
            "-next_message" => EnrolmentOrder::NextMessageDesc,
            _ => return None,
        })
    }
}

/// Who a manual start enrols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTarget {
    Contact(Uuid),
    /// Every contact of the group and of its subgroups.
    Group(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartOutcome {
    pub enrolled: u64,
    /// Contacts already in the sequence, left as they are.
    pub already: u64,
}

/// A checked form submission and the mail it may cause, prepared by the caller (which holds
/// the template engine and the public URL).
#[derive(Debug, Clone, PartialEq)]
pub struct FormSubmission {
    pub form_id: Uuid,
    pub submission: nudge_core::form::CheckedSubmission,
    pub ip: Option<String>,
    /// The double opt-in mail; queued (transactional) when the contact must confirm. Its
    /// `{{ confirm_url }}` is filled in when it is sent.
    pub confirmation: crate::MessageContent,
    /// The mail to each of the form's notification addresses.
    pub notification: crate::MessageContent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionOutcome {
    pub contact_id: Uuid,
    pub created: bool,
    /// A confirmation mail was queued.
    pub confirmation: bool,
    /// The enrolment the submission started, if the form starts a sequence.
    pub enrolment: Option<Uuid>,
}

/// What one step of the engine did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    pub enrolment_id: Uuid,
    /// The message queued for the step (possibly recorded skipped by the send gate).
    pub message: Option<Uuid>,
    pub state: EnrolmentState,
}

/// The idempotency key of a sequence step's message: one per enrolment, step and version,
/// so a replayed step never queues a message twice.
pub fn step_key(enrolment: Uuid, step: Uuid, version: u32) -> String {
    format!("seq:{}:{}:v{version}", enrolment.simple(), step.simple())
}

fn bad(what: &str) -> StoreError {
    StoreError::Backend(format!("a stored {what} definition cannot be read"))
}

pub fn sequence_to_json(def: &SequenceDef) -> Value {
    json!({
        "messages": def.messages.iter().map(|m| json!({
            "id": m.id,
            "subject": m.subject,
            "html": m.html,
            "text": m.text,
            "delay": m.delay.to_string(),
        })).collect::<Vec<_>>(),
        "start_groups": def.start_groups,
        "condition": def.condition.as_ref().map(|c| json!({"field": c.field, "values": c.values})),
        "window": def.window.as_ref().map(|w| json!({
            "days": w.days.iter().map(|d| weekday_name(*d)).collect::<Vec<_>>(),
            "from": w.from.strftime("%H:%M").to_string(),
            "to": w.to.strftime("%H:%M").to_string(),
        })),
    })
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn ids_of(v: &Value, key: &str) -> Vec<Uuid> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn strings_of(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn sequence_from_json(name: String, v: &Value) -> Result<SequenceDef, StoreError> {
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("sequence"))?
        .iter()
        .map(|m| {
            Some(Step {
                id: Uuid::parse_str(m.get("id")?.as_str()?).ok()?,
                subject: str_of(m, "subject")?,
                html: str_of(m, "html")?,
                text: str_of(m, "text"),
                delay: Delay::parse(m.get("delay")?.as_str()?).ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("sequence"))?;
    let condition = match v.get("condition") {
        Some(c) if !c.is_null() => Some(Condition {
            field: str_of(c, "field").ok_or_else(|| bad("sequence"))?,
            values: strings_of(c, "values"),
        }),
        _ => None,
    };
    let window = match v.get("window") {
        Some(w) if !w.is_null() => Some(
            SendingWindow::parse(
                &strings_of(w, "days"),
                &str_of(w, "from").unwrap_or_default(),
                &str_of(w, "to").unwrap_or_default(),
            )
            .map_err(|_| bad("sequence"))?,
        ),
        _ => None,
    };
    Ok(SequenceDef {
        name,
        messages,
        start_groups: ids_of(v, "start_groups"),
        condition,
        window,
    })
}

pub fn form_to_json(def: &FormDef) -> Value {
    let (kind, message, redirect_url) = match &def.response {
        FormResponse::Message(m) => ("message", Some(m.as_str()), None),
        FormResponse::Redirect(u) => ("redirect", None, Some(u.as_str())),
    };
    json!({
        "fields": def.fields.iter().map(|f| json!({
            "name": f.name,
            "label": f.label,
            "type": f.kind.as_str(),
            "required": f.required,
            "maps_to": f.maps_to.as_ref().map(ToString::to_string),
            "mode": f.mode.as_str(),
            "options": f.options,
            "value": f.value,
        })).collect::<Vec<_>>(),
        "group_choices": def.group_choices,
        "groups": def.groups,
        "double_opt_in": def.double_opt_in,
        "sequence_id": def.sequence_id,
        "notify": def.notify,
        "response": {"kind": kind, "message": message, "redirect_url": redirect_url},
    })
}

pub fn form_from_json(slug: String, name: String, v: &Value) -> Result<FormDef, StoreError> {
    let fields = v
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("form"))?
        .iter()
        .map(|f| {
            Some(FormField {
                name: str_of(f, "name")?,
                label: str_of(f, "label").unwrap_or_default(),
                kind: FormFieldType::parse(f.get("type")?.as_str()?)?,
                required: f.get("required").and_then(Value::as_bool).unwrap_or(false),
                maps_to: f
                    .get("maps_to")
                    .and_then(Value::as_str)
                    .and_then(Target::parse),
                mode: f
                    .get("mode")
                    .and_then(Value::as_str)
                    .and_then(FillMode::parse)
                    .unwrap_or_default(),
                options: strings_of(f, "options"),
                value: str_of(f, "value"),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("form"))?;
    let response = v.get("response").ok_or_else(|| bad("form"))?;
    let response = match response.get("kind").and_then(Value::as_str) {
        Some("redirect") => {
            FormResponse::Redirect(str_of(response, "redirect_url").unwrap_or_default())
        }
        _ => FormResponse::Message(str_of(response, "message").unwrap_or_default()),
    };
    Ok(FormDef {
        slug,
        name,
        fields,
        group_choices: ids_of(v, "group_choices"),
        groups: ids_of(v, "groups"),
        double_opt_in: v
            .get("double_opt_in")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        sequence_id: v
            .get("sequence_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok()),
        notify: strings_of(v, "notify"),
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_survive_their_json_document() {
        let seq = SequenceDef {
            name: "Welcome".into(),
            messages: vec![Step {
                id: Uuid::now_v7(),
                subject: "Hi {{ first_name }}".into(),
                html: "<p>Hi</p>".into(),
                text: Some("Hi".into()),
                delay: Delay::parse("P1DT2H").expect("a delay"),
            }],
            start_groups: vec![Uuid::now_v7()],
            condition: Some(Condition {
                field: "stage".into(),
                values: vec!["lead".into()],
            }),
            window: Some(
                SendingWindow::parse(&["mon".into(), "fri".into()], "09:00", "17:30")
                    .expect("a window"),
            ),
        };
        let back = sequence_from_json("Welcome".into(), &sequence_to_json(&seq));
        assert_eq!(back.expect("read back"), seq);

        let form = FormDef {
            slug: "course".into(),
            name: "Course".into(),
            fields: vec![FormField {
                name: "email".into(),
                label: "Email".into(),
                kind: FormFieldType::Email,
                required: true,
                maps_to: Some(Target::Email),
                mode: FillMode::FillEmpty,
                options: vec![],
                value: None,
            }],
            group_choices: vec![Uuid::now_v7()],
            groups: vec![],
            double_opt_in: true,
            sequence_id: Some(Uuid::now_v7()),
            notify: vec!["owner@example.com".into()],
            response: FormResponse::Redirect("https://example.com/thanks".into()),
        };
        let back = form_from_json("course".into(), "Course".into(), &form_to_json(&form));
        assert_eq!(back.expect("read back"), form);
    }
}
