//! Forms and what a submission changes (product.md §4, seed 000's list manager).
//!
//! A form's definition is checked when it is saved ([`FormDef::check`]); a submission is checked
//! against it ([`check_submission`]) before anything is written, and turns into a contact
//! change: [`submission_input`] for a new contact, [`submission_patch`] for a known one, and
//! [`submission_status`] for what the double opt-in does to the status.

use crate::contact::{Consent, Contact, ContactInput, ContactPatch, Patch};
use crate::email::Email;
use crate::error::FieldErrors;
use crate::field::{FieldDef, FieldType};
use crate::status::Status;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The name of the hidden field robots fill in and people never see.
pub const HONEYPOT: &str = "nudge_hp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormFieldType {
    Email,
    Text,
    Number,
    Date,
    Boolean,
    Choice,
    MultiChoice,
    Hidden,
    Consent,
}

impl FormFieldType {
    const ALL: [FormFieldType; 9] = [
        FormFieldType::Email,
        FormFieldType::Text,
        FormFieldType::Number,
        FormFieldType::Date,
        FormFieldType::Boolean,
        FormFieldType::Choice,
        FormFieldType::MultiChoice,
        FormFieldType::Hidden,
        FormFieldType::Consent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FormFieldType::Email => "email",
            FormFieldType::Text => "text",
            FormFieldType::Number => "number",
            FormFieldType::Date => "date",
            FormFieldType::Boolean => "boolean",
            FormFieldType::Choice => "choice",
            FormFieldType::MultiChoice => "multi_choice",
            FormFieldType::Hidden => "hidden",
            FormFieldType::Consent => "consent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The contact attribute a form field fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Email,
    FirstName,
    LastName,
    Phone,
    Language,
    TimeZone,
    /// A custom field's key.
    Custom(String),
}

impl Target {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "email" => Target::Email,
            "first_name" => Target::FirstName,
            "last_name" => Target::LastName,
            "phone" => Target::Phone,
            "language" => Target::Language,
            "time_zone" => Target::TimeZone,
            other => Target::Custom(other.strip_prefix("fields.")?.to_owned()),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Email => f.write_str("email"),
            Target::FirstName => f.write_str("first_name"),
            Target::LastName => f.write_str("last_name"),
            Target::Phone => f.write_str("phone"),
            Target::Language => f.write_str("language"),
            Target::TimeZone => f.write_str("time_zone"),
            Target::Custom(key) => write!(f, "fields.{key}"),
        }
    }
}

/// Whether a submitted value replaces what the contact has, or only fills a blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FillMode {
    #[default]
    Overwrite,
    FillEmpty,
}

impl FillMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FillMode::Overwrite => "overwrite",
            FillMode::FillEmpty => "fill_empty",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "overwrite" => Some(FillMode::Overwrite),
            "fill_empty" => Some(FillMode::FillEmpty),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// The input's name in the submitted form.
    pub name: String,
    /// The text shown beside it; for a consent checkbox, the consent text that is stored.
    pub label: String,
    pub kind: FormFieldType,
    pub required: bool,
    pub maps_to: Option<Target>,
    pub mode: FillMode,
    /// The choices of a choice or multiple-choice field.
    pub options: Vec<String>,
    /// A hidden field's value when the page sends none.
    pub value: Option<String>,
}

/// What the browser sees after a good submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormResponse {
    Message(String),
    Redirect(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormDef {
    /// The public path segment: `/f/{slug}`.
    pub slug: String,
    pub name: String,
    pub fields: Vec<FormField>,
    /// Groups offered as checkboxes.
    pub group_choices: Vec<Uuid>,
    /// Groups always added.
    pub groups: Vec<Uuid>,
    pub double_opt_in: bool,
    /// The sequence (list manager's mails) a submission starts.
    pub sequence_id: Option<Uuid>,
    /// Who is told by email of each submission.
    pub notify: Vec<String>,
    pub response: FormResponse,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl FormDef {
    /// Checks a definition against the custom fields and groups that exist; errors name the
    /// attribute (`slug`, `fields[1].maps_to`, `group_choices[0]`, ...).
    pub fn check(&self, defs: &[FieldDef], groups: &[Uuid]) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug_ok = is_name(&self.slug)
            && self
                .slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            errors.add(
                "slug",
                "must be 1 to 64 lower-case letters, digits or hyphens",
            );
        }
        let name = self.name.trim();
        if name.is_empty() {
            errors.add("name", "is empty");
        } else if name.chars().count() > 200 {
            errors.add("name", "is longer than 200 characters");
        }
        let mut names = BTreeSet::new();
        let mut emails = 0;
        for (i, field) in self.fields.iter().enumerate() {
            let at = |attr: &str| format!("fields[{i}].{attr}");
            if !is_name(&field.name) || field.name == "groups" || field.name == HONEYPOT {
                errors.add(
                    at("name"),
                    "must be 1 to 64 letters, digits, _ or -, and not groups",
                );
            } else if !names.insert(field.name.as_str()) {
                errors.add(at("name"), "is used by another field");
            }
            if field.label.trim().is_empty() && field.kind != FormFieldType::Hidden {
                errors.add(at("label"), "is empty");
            }
            if matches!(
                field.kind,
                FormFieldType::Choice | FormFieldType::MultiChoice
            ) && field.options.is_empty()
            {
                errors.add(at("options"), "needs at least one choice");
            }
            match &field.maps_to {
                Some(Target::Email) => {
                    emails += 1;
                    if field.kind != FormFieldType::Email {
                        errors.add(at("type"), "a field that fills email must be of type email");
                    }
                }
                Some(Target::Custom(key)) => match defs.iter().find(|d| d.key.as_str() == key) {
                    None => errors.add(at("maps_to"), format!("no custom field {key}")),
                    Some(def) if !fits(field.kind, def.kind) => errors.add(
                        at("maps_to"),
                        format!(
                            "a {} field cannot fill the {} field {key}",
                            field.kind.as_str(),
                            def.kind.as_str()
                        ),
                    ),
                    Some(_) => {}
                },
                Some(_) if field.kind == FormFieldType::Consent => {
                    errors.add(at("maps_to"), "a consent checkbox fills no contact field");
                }
                _ => {}
            }
        }
        if emails != 1 {
            errors.add("fields", "needs exactly one email field that fills email");
        }
        for (list, ids) in [
            ("group_choices", &self.group_choices),
            ("groups", &self.groups),
        ] {
            for (i, id) in ids.iter().enumerate() {
                if !groups.contains(id) {
                    errors.add(format!("{list}[{i}]"), "no such group");
                }
            }
        }
        for (i, address) in self.notify.iter().enumerate() {
            if let Err(e) = Email::parse(address) {
                errors.add(format!("notify[{i}]"), e.to_string());
            }
        }
        match &self.response {
            FormResponse::Message(m) if m.trim().is_empty() => {
                errors.add("response.message", "is empty");
            }
            FormResponse::Redirect(url)
                if !(url.starts_with("https://") || url.starts_with("http://")) =>
            {
                errors.add("response.redirect_url", "must be an http or https URL");
            }
            _ => {}
        }
        errors.into_result(())
    }
}

/// Whether a form input of `kind` can fill a custom field of `field`.
fn fits(kind: FormFieldType, field: FieldType) -> bool {
    use FormFieldType as F;
    match kind {
        F::Text | F::Hidden | F::Email => field == FieldType::Text || field == FieldType::Choice,
        F::Number => field == FieldType::Number,
        F::Date => field == FieldType::Date,
        F::Boolean => field == FieldType::Boolean,
        F::Choice => field == FieldType::Choice || field == FieldType::Text,
        F::MultiChoice => field == FieldType::MultiChoice,
        F::Consent => false,
    }
}

/// A submission that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSubmission {
    pub email: Email,
    /// Values for contact attributes, with how each is applied.
    pub sets: Vec<(Target, Value, FillMode)>,
    /// The checked group choices and the fixed groups.
    pub groups: Vec<Uuid>,
    /// The text of the consent checkbox the contact ticked.
    pub consent_text: Option<String>,
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "on" | "true" | "1" | "yes"
    )
}

/// Checks a submission (values by input name, as a form posts them, a name repeated for
/// multiple choices) against the form. Errors are keyed by input name, and by `groups`.
pub fn check_submission(
    form: &FormDef,
    defs: &[FieldDef],
    values: &BTreeMap<String, Vec<String>>,
    checked_groups: &[String],
) -> Result<CheckedSubmission, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut email = None;
    let mut sets = Vec::new();
    let mut consent_text = None;
    for field in &form.fields {
        let given: Vec<&str> = values
            .get(&field.name)
            .map(|v| {
                v.iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let first = given
            .first()
            .copied()
            .or(match field.kind {
                FormFieldType::Hidden => field.value.as_deref(),
                _ => None,
            })
            .filter(|s| !s.is_empty());
        let value = match (field.kind, first) {
            (FormFieldType::Boolean, v) => Some(Value::Bool(v.is_some_and(truthy))),
            (FormFieldType::Consent, v) => {
                let ticked = v.is_some_and(truthy);
                if ticked {
                    consent_text = Some(field.label.clone());
                } else if field.required {
                    errors.add(&field.name, "must be ticked");
                }
                continue;
            }
            (_, None) => {
                if field.required {
                    errors.add(&field.name, "is required");
                }
                continue;
            }
            (FormFieldType::Email, Some(v)) => match Email::parse(v) {
                Ok(e) => {
                    if field.maps_to == Some(Target::Email) {
                        email = Some(e.clone());
                    }
                    Some(Value::String(e.to_string()))
                }
                Err(e) => {
                    errors.add(&field.name, e.to_string());
                    continue;
                }
            },
            (FormFieldType::Number, Some(v)) => match v.replace(',', ".").parse::<f64>() {
                Ok(n) if n.is_finite() => serde_json::Number::from_f64(n).map(Value::Number),
                _ => {
                    errors.add(&field.name, "is not a number");
                    continue;
                }
            },
            (FormFieldType::Date, Some(v)) => match v.parse::<jiff::civil::Date>() {
                Ok(d) => Some(Value::String(d.to_string())),
                Err(_) => {
                    errors.add(&field.name, "is not a date like 2026-12-31");
                    continue;
                }
            },
            (FormFieldType::Choice, Some(v)) => {
                if !field.options.iter().any(|o| o == v) {
                    errors.add(&field.name, "is not one of the choices");
                    continue;
                }
                Some(Value::String(v.to_owned()))
            }
            (FormFieldType::MultiChoice, Some(_)) => {
                if let Some(bad) = given
                    .iter()
                    .find(|v| !field.options.iter().any(|o| o == *v))
                {
                    errors.add(&field.name, format!("{bad:?} is not one of the choices"));
                    continue;
                }
                Some(Value::Array(
                    given
                        .iter()
                        .map(|v| Value::String((*v).to_owned()))
                        .collect(),
                ))
            }
            (FormFieldType::Text | FormFieldType::Hidden, Some(v)) => {
                if v.chars().count() > 10_000 {
                    errors.add(&field.name, "is longer than 10,000 characters");
                    continue;
                }
                Some(Value::String(v.to_owned()))
            }
        };
        let (Some(target), Some(value)) = (&field.maps_to, value) else {
            continue;
        };
        if let Target::Custom(key) = target
            && let Some(def) = defs.iter().find(|d| d.key.as_str() == key)
            && let Err(reason) = def.check_json(&value)
        {
            errors.add(&field.name, reason);
            continue;
        }
        if *target != Target::Email {
            sets.push((target.clone(), value, field.mode));
        }
    }
    let mut groups = Vec::new();
    for raw in checked_groups {
        match Uuid::parse_str(raw.trim()) {
            Ok(id) if form.group_choices.contains(&id) => {
                if !groups.contains(&id) {
                    groups.push(id);
                }
            }
            _ => errors.add(
                "groups",
                format!("{raw:?} is not one of this form's groups"),
            ),
        }
    }
    for id in &form.groups {
        if !groups.contains(id) {
            groups.push(*id);
        }
    }
    if email.is_none() && errors.is_empty() {
        errors.add("email", "is required");
    }
    match email {
        Some(email) if errors.is_empty() => Ok(CheckedSubmission {
            email,
            sets,
            groups,
            consent_text,
        }),
        _ => Err(errors),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The consent record of a submission.
pub fn consent(
    submission: &CheckedSubmission,
    form_id: Uuid,
    ip: Option<&str>,
    at: Timestamp,
) -> Consent {
    Consent {
        at,
        method: "form".into(),
        form_id: Some(form_id),
        ip: ip.map(str::to_owned),
        text: submission.consent_text.clone(),
    }
}

/// A new contact from a submission, with the status the double opt-in gives it.
pub fn submission_input(
    submission: &CheckedSubmission,
    form: &FormDef,
    consent: Consent,
) -> ContactInput {
    let mut input = ContactInput {
        email: Some(submission.email.to_string()),
        source: Some(format!("form:{}", form.slug)),
        consent: Some(consent),
        groups: submission.groups.clone(),
        status: Some(
            if form.double_opt_in {
                Status::Pending
            } else {
                Status::Subscribed
            }
            .as_str()
            .to_owned(),
        ),
        ..ContactInput::default()
    };
    for (target, value, _) in &submission.sets {
        let slot = match target {
            Target::FirstName => &mut input.first_name,
            Target::LastName => &mut input.last_name,
            Target::Phone => &mut input.phone,
            Target::Language => &mut input.language,
            Target::TimeZone => &mut input.time_zone,
            Target::Custom(key) => {
                input.fields.insert(key.clone(), value.clone());
                continue;
            }
            Target::Email => continue,
        };
        *slot = text(value);
    }
    input
}

/// The change a submission makes to a known contact: overwrite, or fill only what is empty.
/// Memberships are added separately (a form never removes one).
pub fn submission_patch(existing: &Contact, submission: &CheckedSubmission) -> ContactPatch {
    let mut patch = ContactPatch::default();
    for (target, value, mode) in &submission.sets {
        let fill = *mode == FillMode::Overwrite;
        let (slot, current) = match target {
            Target::FirstName => (&mut patch.first_name, &existing.first_name),
            Target::LastName => (&mut patch.last_name, &existing.last_name),
            Target::Phone => (&mut patch.phone, &existing.phone),
            Target::Language => (&mut patch.language, &existing.language),
            Target::TimeZone => (&mut patch.time_zone, &existing.time_zone),
            Target::Custom(key) => {
                let empty = existing.fields.get(key).is_none_or(Value::is_null);
                if fill || empty {
                    patch.fields.insert(key.clone(), value.clone());
                }
                continue;
            }
            Target::Email => continue,
        };
        if (fill || current.is_none())
            && let Some(v) = text(value)
        {
            *slot = Patch::Set(v);
        }
    }
    patch
}

/// What a submission does to a known contact's status: the status to move to (if any) and
/// whether a confirmation mail goes out.
///
/// With double opt-in, anyone not yet confirmed for marketing (new, pending, transactional-only
/// or unsubscribed) becomes pending and is asked to confirm; a subscribed contact needs no
/// confirmation. Without it, only a new or pending contact becomes subscribed: an unsubscribed
/// one comes back only through a confirmed opt-in. Bounced and complained addresses stay as
/// they are and get no mail.
pub fn submission_status(existing: Status, double_opt_in: bool) -> (Option<Status>, bool) {
    match (existing, double_opt_in) {
        (Status::Bounced | Status::Complained, _) => (None, false),
        (Status::Subscribed, _) => (None, false),
        (Status::Pending, true) => (None, true),
        (Status::Transactional | Status::Unsubscribed, true) => (Some(Status::Pending), true),
        (Status::Pending, false) => (Some(Status::Subscribed), false),
        (Status::Transactional | Status::Unsubscribed, false) => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FormFieldType, maps_to: Option<&str>) -> FormField {
        FormField {
            name: name.into(),
            label: name.into(),
            kind,
            required: false,
            maps_to: maps_to.and_then(Target::parse),
            mode: FillMode::Overwrite,
            options: vec![],
            value: None,
        }
    }

    fn form(groups: Vec<Uuid>) -> FormDef {
        let mut email = field("email", FormFieldType::Email, Some("email"));
        email.required = true;
        let mut consent = field("consent", FormFieldType::Consent, None);
        consent.label = "Yes, send me the course".into();
        consent.required = true;
        let mut name = field("name", FormFieldType::Text, Some("first_name"));
        name.mode = FillMode::FillEmpty;
        FormDef {
            slug: "course".into(),
            name: "Course".into(),
            fields: vec![email, name, consent],
            group_choices: groups,
            groups: vec![],
            double_opt_in: true,
            sequence_id: None,
            notify: vec![],
            response: FormResponse::Message("Thanks!".into()),
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            map.entry((*k).into()).or_default().push((*v).into());
        }
        map
    }

    #[test]
    fn a_definition_needs_one_email_field_and_known_groups() {
        let g = Uuid::now_v7();
        assert_eq!(form(vec![g]).check(&[], &[g]), Ok(()));
        let mut bad = form(vec![g]);
        bad.slug = "Not A Slug".into();
        bad.fields.remove(0);
        bad.notify = vec!["nope".into()];
        let errors = bad.check(&[], &[]).expect_err("refused");
        for key in ["slug", "fields", "group_choices[0]", "notify[0]"] {
            assert!(errors.get(key).is_some(), "{key}: {errors}");
        }
    }

    #[test]
    fn a_submission_is_checked_field_by_field() {
        let g = Uuid::now_v7();
        let f = form(vec![g]);
        let errors = check_submission(&f, &[], &values(&[("email", "nope")]), &["x".into()])
            .expect_err("refused");
        assert!(errors.get("email").is_some());
        assert_eq!(errors.get("consent"), Some("must be ticked"));
        assert!(errors.get("groups").is_some());
        let ok = check_submission(
            &f,
            &[],
            &values(&[
                ("email", " Ann@Example.COM "),
                ("name", "Ann"),
                ("consent", "on"),
            ]),
            &[g.to_string()],
        )
        .expect("accepted");
        assert_eq!(ok.email.to_string(), "Ann@example.com");
        assert_eq!(ok.groups, vec![g]);
        assert_eq!(ok.consent_text.as_deref(), Some("Yes, send me the course"));
    }

    #[test]
    fn fill_empty_keeps_what_the_contact_has() {
        let f = form(vec![]);
        let ok = check_submission(
            &f,
            &[],
            &values(&[
                ("email", "a@example.com"),
                ("name", "New"),
                ("consent", "on"),
            ]),
            &[],
        )
        .expect("accepted");
        let input = submission_input(
            &ok,
            &f,
            consent(&ok, Uuid::nil(), None, Timestamp::UNIX_EPOCH),
        );
        assert_eq!(input.first_name.as_deref(), Some("New"));
        assert_eq!(input.status.as_deref(), Some("pending"));
        let mut existing = crate::contact::plan_create(&input, &[])
            .expect("a contact")
            .into_contact(Uuid::nil(), Timestamp::UNIX_EPOCH)
            .0;
        existing.first_name = Some("Old".into());
        assert_eq!(submission_patch(&existing, &ok).first_name, Patch::Keep);
        existing.first_name = None;
        assert_eq!(
            submission_patch(&existing, &ok).first_name,
            Patch::Set("New".into())
        );
    }

    #[test]
    fn double_opt_in_asks_everyone_not_yet_confirmed() {
        use Status::*;
        assert_eq!(submission_status(Subscribed, true), (None, false));
        assert_eq!(submission_status(Pending, true), (None, true));
        assert_eq!(submission_status(Unsubscribed, true), (Some(Pending), true));
        assert_eq!(submission_status(Bounced, true), (None, false));
        assert_eq!(submission_status(Unsubscribed, false), (None, false));
        assert_eq!(submission_status(Pending, false), (Some(Subscribed), false));
    }
}
