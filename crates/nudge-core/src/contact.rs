//! Contacts: the input a user gives, the checks it must pass, and the plan of a change.

use crate::email::Email;
use crate::error::FieldErrors;
use crate::field::FieldDef;
use crate::status::Status;
use crate::tag::TagName;
use crate::timeline::TimelineEvent;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// How the contact agreed to receive mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub at: Timestamp,
    /// `form`, `import`, `api`, `admin`, ...
    pub method: String,
    pub form_id: Option<Uuid>,
    pub ip: Option<String>,
    /// The consent text the contact was shown.
    pub text: Option<String>,
}

/// A stored contact, without its group and tag memberships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: Uuid,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub owner_id: Option<Uuid>,
    pub status: Status,
    pub source: Option<String>,
    pub consent: Option<Consent>,
    pub fields: BTreeMap<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Contact {
    pub fn display_name(&self) -> String {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            self.email.to_string()
        } else {
            name
        }
    }
}

/// A contact as a user or a file gives it, before any check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub owner_id: Option<Uuid>,
    pub status: Option<String>,
    pub source: Option<String>,
    pub consent: Option<Consent>,
    pub fields: BTreeMap<String, Value>,
    pub groups: Vec<Uuid>,
    pub tags: Vec<String>,
}

/// A checked new contact, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub owner_id: Option<Uuid>,
    pub status: Status,
    pub source: Option<String>,
    pub consent: Option<Consent>,
    pub fields: BTreeMap<String, Value>,
    pub groups: Vec<Uuid>,
    pub tags: Vec<TagName>,
}

impl NewContact {
    pub fn into_contact(self, id: Uuid, now: Timestamp) -> (Contact, Vec<Uuid>, Vec<TagName>) {
        let contact = Contact {
            id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            phone: self.phone,
            language: self.language,
            time_zone: self.time_zone,
            owner_id: self.owner_id,
            status: self.status,
            source: self.source,
            consent: self.consent,
            fields: self.fields,
            created_at: now,
            updated_at: now,
        };
        (contact, self.groups, self.tags)
    }
}

/// A JSON PATCH attribute: absent keeps the value, `null` clears it, a value sets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Clear,
            Some(v) => Patch::Set(v),
        })
    }
}

/// The attributes a PATCH may change; memberships are set through their own paths or lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPatch {
    pub email: Option<String>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub phone: Patch<String>,
    pub language: Patch<String>,
    pub time_zone: Patch<String>,
    pub owner_id: Patch<Uuid>,
    pub source: Patch<String>,
    /// `null` for a key clears that field.
    pub fields: BTreeMap<String, Value>,
}

/// Checks everything about a new contact that needs no database.
pub fn plan_create(input: &ContactInput, defs: &[FieldDef]) -> Result<NewContact, FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = match input.email.as_deref() {
        None => {
            errors.add("email", "is required");
            None
        }
        Some(raw) => Email::parse(raw)
            .map_err(|e| errors.add("email", e.to_string()))
            .ok(),
    };
    let first_name = check_name(&mut errors, "first_name", input.first_name.as_deref());
    let last_name = check_name(&mut errors, "last_name", input.last_name.as_deref());
    let phone = check_phone(&mut errors, input.phone.as_deref());
    let language = check_language(&mut errors, input.language.as_deref());
    let time_zone = check_time_zone(&mut errors, input.time_zone.as_deref());
    let source = check_name(&mut errors, "source", input.source.as_deref());
    let status = match input.status.as_deref() {
        None => Status::Subscribed,
        Some(s) => s.parse().unwrap_or_else(|e: crate::status::UnknownStatus| {
            errors.add("status", e.to_string());
            Status::Subscribed
        }),
    };
    let mut fields = BTreeMap::new();
    check_fields(&mut errors, defs, &input.fields, &mut fields);
    let mut tags: Vec<TagName> = Vec::new();
    for (i, raw) in input.tags.iter().enumerate() {
        match TagName::parse(raw) {
            Ok(tag) if !tags.contains(&tag) => tags.push(tag),
            Ok(_) => {}
            Err(reason) => errors.add(format!("tags[{i}]"), reason),
        }
    }
    let mut groups = input.groups.clone();
    groups.dedup();
    match email {
        Some(email) if errors.is_empty() => Ok(NewContact {
            email,
            first_name,
            last_name,
            phone,
            language,
            time_zone,
            owner_id: input.owner_id,
            status,
            source,
            consent: input.consent.clone(),
            fields: fields.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            groups,
            tags,
        }),
        _ => Err(errors),
    }
}

/// Applies a patch to a contact and lists what changed, old to new, for the timeline.
pub fn plan_update(
    current: &Contact,
    patch: &ContactPatch,
    defs: &[FieldDef],
    now: Timestamp,
) -> Result<(Contact, Vec<TimelineEvent>), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut next = current.clone();
    let mut events = Vec::new();

    if let Some(raw) = &patch.email {
        match Email::parse(raw) {
            Ok(email) if email != current.email => {
                events.push(TimelineEvent::field_changed(
                    "email",
                    &Value::String(current.email.to_string()),
                    &Value::String(email.to_string()),
                ));
                next.email = email;
            }
            Ok(_) => {}
            Err(e) => errors.add("email", e.to_string()),
        }
    }
    let text_attrs: [(&str, &Patch<String>, &mut Option<String>, Checker); 6] = [
        (
            "first_name",
            &patch.first_name,
            &mut next.first_name,
            check_name,
        ),
        (
            "last_name",
            &patch.last_name,
            &mut next.last_name,
            check_name,
        ),
        ("phone", &patch.phone, &mut next.phone, |e, _, v| {
            check_phone(e, v)
        }),
        (
            "language",
            &patch.language,
            &mut next.language,
            |e, _, v| check_language(e, v),
        ),
        (
            "time_zone",
            &patch.time_zone,
            &mut next.time_zone,
            |e, _, v| check_time_zone(e, v),
        ),
        ("source", &patch.source, &mut next.source, check_name),
    ];
    for (name, change, slot, check) in text_attrs {
        let new = match change {
            Patch::Keep => continue,
            Patch::Clear => None,
            Patch::Set(v) => check(&mut errors, name, Some(v)),
        };
        if *slot != new {
            events.push(TimelineEvent::field_changed(
                name,
                &opt_value(slot.as_deref()),
                &opt_value(new.as_deref()),
            ));
            *slot = new;
        }
    }
    let owner = match patch.owner_id {
        Patch::Keep => current.owner_id,
        Patch::Clear => None,
        Patch::Set(id) => Some(id),
    };
    if owner != current.owner_id {
        let show = |o: Option<Uuid>| o.map_or(Value::Null, |id| Value::String(id.to_string()));
        events.push(TimelineEvent::field_changed(
            "owner_id",
            &show(current.owner_id),
            &show(owner),
        ));
        next.owner_id = owner;
    }

    let mut checked = BTreeMap::new();
    check_fields(&mut errors, defs, &patch.fields, &mut checked);
    for (key, value) in checked {
        let old = current.fields.get(&key).cloned().unwrap_or(Value::Null);
        if old == value {
            continue;
        }
        events.push(TimelineEvent::field_changed(
            &format!("fields.{key}"),
            &old,
            &value,
        ));
        if value.is_null() {
            next.fields.remove(&key);
        } else {
            next.fields.insert(key, value);
        }
    }
    if !events.is_empty() {
        next.updated_at = now;
    }
    errors.into_result((next, events))
}

type Checker = fn(&mut FieldErrors, &str, Option<&str>) -> Option<String>;

fn opt_value(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn check_fields(
    errors: &mut FieldErrors,
    defs: &[FieldDef],
    raw: &BTreeMap<String, Value>,
    out: &mut BTreeMap<String, Value>,
) {
    for (key, value) in raw {
        let name = format!("fields.{key}");
        match defs.iter().find(|d| d.key.as_str() == key) {
            None => errors.add(name, "no such custom field"),
            Some(def) => match def.check_json(value) {
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(reason) => errors.add(name, reason),
            },
        }
    }
}

/// Trims a free-text attribute; empty means absent.
fn check_name(errors: &mut FieldErrors, field: &str, value: Option<&str>) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    if v.chars().count() > 200 {
        errors.add(field, "is longer than 200 characters");
        return None;
    }
    if v.chars().any(char::is_control) {
        errors.add(field, "contains control characters");
        return None;
    }
    Some(v.to_owned())
}

fn check_phone(errors: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let allowed = v
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '/'));
    if !allowed || !(3..=20).contains(&digits) || v.len() > 32 {
        errors.add(
            "phone",
            "must be a phone number: digits, spaces, + - ( ) . /",
        );
        return None;
    }
    Some(v.to_owned())
}

/// A language tag reduced to `xx` or `xx-YY`; the primary subtag is what selects texts.
fn check_language(errors: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    let mut parts = v.split(['-', '_']);
    let primary = parts.next().unwrap_or_default().to_ascii_lowercase();
    let region = parts.next().map(str::to_ascii_uppercase);
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_lowercase());
    let region_ok = region
        .as_deref()
        .is_none_or(|r| (2..=3).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric()));
    if !primary_ok || !region_ok || parts.next().is_some() {
        errors.add(
            "language",
            "must be a language code such as nl, de or en-GB",
        );
        return None;
    }
    // `iw` is the withdrawn code for Hebrew that old systems still export.
    let primary = if primary == "iw" {
        "he".to_owned()
    } else {
        primary
    };
    Some(match region {
        Some(r) => format!("{primary}-{r}"),
        None => primary,
    })
}

fn check_time_zone(errors: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    match jiff::tz::db().get(v) {
        Ok(tz) => Some(tz.iana_name().unwrap_or(v).to_owned()),
        Err(_) => {
            errors.add(
                "time_zone",
                "must be an IANA time zone such as Europe/Amsterdam",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Vec<FieldDef> {
        vec![
            FieldDef::new("score", None, "number", vec![]).expect("valid"),
            FieldDef::new("tier", None, "choice", vec!["gold".into(), "silver".into()])
                .expect("valid"),
        ]
    }

    fn input(email: &str) -> ContactInput {
        ContactInput {
            email: Some(email.into()),
            ..ContactInput::default()
        }
    }

    #[test]
    fn create_checks_each_attribute_and_names_it() {
        type Case = (fn(&mut ContactInput), &'static str, &'static str);
        let cases: &[Case] = &[
            (|i| i.email = None, "email", "is required"),
            (|i| i.email = Some("nope".into()), "email", "has no @ sign"),
            (
                |i| i.phone = Some("call me".into()),
                "phone",
                "must be a phone number: digits, spaces, + - ( ) . /",
            ),
            (
                |i| i.language = Some("dutch".into()),
                "language",
                "must be a language code such as nl, de or en-GB",
            ),
            (
                |i| i.time_zone = Some("Mars/Base".into()),
                "time_zone",
                "must be an IANA time zone such as Europe/Amsterdam",
            ),
            (
                |i| i.status = Some("active".into()),
                "status",
                "must be one of subscribed, pending, unsubscribed, transactional, bounced, complained",
            ),
            (
                |i| {
                    i.fields.insert("score".into(), json!("high"));
                },
                "fields.score",
                "must be a number",
            ),
            (
                |i| {
                    i.fields.insert("nope".into(), json!(1));
                },
                "fields.nope",
                "no such custom field",
            ),
            (
                |i| i.tags = vec!["ok".into(), " ".into()],
                "tags[1]",
                "is empty",
            ),
            (
                |i| i.first_name = Some("x".repeat(201)),
                "first_name",
                "is longer than 200 characters",
            ),
        ];
        for (mutate, field, reason) in cases {
            let mut i = input("a@example.com");
            mutate(&mut i);
            let err = plan_create(&i, &defs()).expect_err(field);
            assert_eq!(err.get(field), Some(*reason), "{err}");
        }
    }

    #[test]
    fn create_normalises() {
        let mut i = input(" Jan@Example.NL ");
        i.language = Some("nl_be".into());
        i.first_name = Some("  Jan ".into());
        i.last_name = Some("".into());
        i.fields.insert("tier".into(), json!("GOLD"));
        i.fields.insert("score".into(), Value::Null);
        i.tags = vec!["vip".into(), "vip ".into()];
        let c = plan_create(&i, &defs()).expect("valid");
        assert_eq!(c.email.as_str(), "Jan@example.nl");
        assert_eq!(c.language.as_deref(), Some("nl-BE"));
        assert_eq!(c.first_name.as_deref(), Some("Jan"));
        assert_eq!(c.last_name, None);
        assert_eq!(c.status, Status::Subscribed);
        assert_eq!(c.fields, BTreeMap::from([("tier".into(), json!("gold"))]));
        assert_eq!(c.tags.len(), 1);
    }

    fn stored() -> Contact {
        let (c, _, _) = plan_create(&input("a@example.com"), &defs())
            .expect("valid")
            .into_contact(Uuid::from_u128(1), Timestamp::UNIX_EPOCH);
        c
    }

    #[test]
    fn update_lists_old_and_new_values() {
        let patch = ContactPatch {
            first_name: Patch::Set("Anna".into()),
            time_zone: Patch::Set("Europe/Berlin".into()),
            fields: BTreeMap::from([("score".into(), json!(7))]),
            ..ContactPatch::default()
        };
        let now = Timestamp::from_second(100).expect("valid");
        let (next, events) = plan_update(&stored(), &patch, &defs(), now).expect("valid");
        assert_eq!(next.first_name.as_deref(), Some("Anna"));
        assert_eq!(next.updated_at, now);
        let summaries: Vec<_> = events.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "first_name: (empty) → Anna",
                "time_zone: (empty) → Europe/Berlin",
                "fields.score: (empty) → 7"
            ]
        );
    }

    #[test]
    fn update_that_changes_nothing_writes_nothing() {
        let patch = ContactPatch {
            email: Some("a@EXAMPLE.com".into()),
            first_name: Patch::Clear,
            ..ContactPatch::default()
        };
        let (next, events) =
            plan_update(&stored(), &patch, &defs(), Timestamp::MAX).expect("valid");
        assert!(events.is_empty());
        assert_eq!(next, stored());
    }

    #[test]
    fn update_with_a_bad_value_fails_whole() {
        let patch = ContactPatch {
            first_name: Patch::Set("Anna".into()),
            fields: BTreeMap::from([("tier".into(), json!("bronze"))]),
            ..ContactPatch::default()
        };
        let err = plan_update(&stored(), &patch, &defs(), Timestamp::MAX).expect_err("invalid");
        assert_eq!(err.get("fields.tier"), Some("must be one of: gold, silver"));
    }

    #[test]
    fn patch_tells_absent_from_null() {
        #[derive(Deserialize)]
        struct P {
            #[serde(default)]
            a: Patch<String>,
            #[serde(default)]
            b: Patch<String>,
            #[serde(default)]
            c: Patch<String>,
        }
        let p: P = serde_json::from_value(json!({"b": null, "c": "x"})).expect("parses");
        assert_eq!(
            (p.a, p.b, p.c),
            (Patch::Keep, Patch::Clear, Patch::Set("x".into()))
        );
    }
}
