//! Typed custom fields: their definitions and the checking of values against them.

use crate::error::FieldErrors;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Number,
    Date,
    Boolean,
    Choice,
    MultiChoice,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Boolean => "boolean",
            FieldType::Choice => "choice",
            FieldType::MultiChoice => "multi_choice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            FieldType::Text,
            FieldType::Number,
            FieldType::Date,
            FieldType::Boolean,
            FieldType::Choice,
            FieldType::MultiChoice,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A custom field's key: lower-case ASCII letters, digits and underscores, starting with a letter.
///
/// Keys appear in templates (`{{ fields.score }}`), CSV headers and JSON, so they are kept to the
/// characters all three accept unquoted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldKey(String);

impl FieldKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.len() > 64 {
            return Err("is longer than 64 characters".into());
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err("must start with a lower-case letter".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err("may hold only a-z, 0-9 and _".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FieldKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FieldKey> for String {
    fn from(value: FieldKey) -> Self {
        value.0
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub key: FieldKey,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub options: Vec<String>,
}

impl FieldDef {
    /// Builds a definition, naming the attribute at fault when it can't be one.
    pub fn new(
        key: &str,
        label: Option<&str>,
        kind: &str,
        options: Vec<String>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let key = FieldKey::parse(key)
            .map_err(|reason| errors.add("key", reason))
            .ok();
        let kind = FieldType::parse(kind)
            .ok_or_else(|| {
                errors.add(
                    "type",
                    "must be one of text, number, date, boolean, choice, multi_choice",
                )
            })
            .ok();
        let options: Vec<String> = options.iter().map(|o| o.trim().to_owned()).collect();
        match kind {
            Some(FieldType::Choice | FieldType::MultiChoice) => {
                if options.is_empty() {
                    errors.add("options", "a choice field needs at least one option");
                } else if options.iter().any(String::is_empty) {
                    errors.add("options", "an option is empty");
                } else if has_duplicates(&options) {
                    errors.add("options", "an option is listed twice");
                }
            }
            Some(_) if !options.is_empty() => {
                errors.add("options", "only choice fields have options");
            }
            _ => {}
        }
        let label = label.map(str::trim).unwrap_or_default();
        if label.chars().count() > 200 {
            errors.add("label", "is longer than 200 characters");
        }
        match (key, kind) {
            (Some(key), Some(kind)) if errors.is_empty() => Ok(Self {
                label: if label.is_empty() {
                    key.as_str().to_owned()
                } else {
                    label.to_owned()
                },
                key,
                kind,
                options,
            }),
            _ => Err(errors),
        }
    }

    /// Checks a JSON value against this field and returns it in its stored form.
    ///
    /// `null` clears the field. Dates are stored as `YYYY-MM-DD`, multiple choices in the order
    /// the definition lists them.
    pub fn check_json(&self, value: &Value) -> Result<Value, String> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match self.kind {
            FieldType::Text => match value {
                Value::String(s) if s.chars().count() <= 10_000 => Ok(Value::String(s.clone())),
                Value::String(_) => Err("is longer than 10000 characters".into()),
                _ => Err("must be text".into()),
            },
            FieldType::Number => match value {
                Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => {
                    Ok(Value::Number(n.clone()))
                }
                _ => Err("must be a number".into()),
            },
            FieldType::Date => match value {
                Value::String(s) => parse_date(s),
                _ => Err("must be a date (YYYY-MM-DD)".into()),
            },
            FieldType::Boolean => match value {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                _ => Err("must be true or false".into()),
            },
            FieldType::Choice => match value {
                Value::String(s) => self.option(s).map(Value::String),
                _ => Err(self.options_reason()),
            },
            FieldType::MultiChoice => {
                let Value::Array(items) = value else {
                    return Err("must be a list of options".into());
                };
                let mut chosen = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(s) = item else {
                        return Err(self.options_reason());
                    };
                    chosen.push(self.option(s)?);
                }
                Ok(self.in_option_order(chosen))
            }
        }
    }

    /// Reads a value typed as text (a CSV cell, a form field) into the stored form.
    ///
    /// An empty text clears the field; a multiple choice is separated by `|` or `,`.
    pub fn check_text(&self, text: &str) -> Result<Value, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Value::Null);
        }
        match self.kind {
            FieldType::Text => self.check_json(&Value::String(text.to_owned())),
            FieldType::Number => text
                .replace(',', ".")
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "must be a number".to_owned()),
            FieldType::Date => parse_date(text),
            FieldType::Boolean => match text.to_lowercase().as_str() {
                "true" | "yes" | "y" | "1" | "on" | "ja" | "j" => Ok(Value::Bool(true)),
                "false" | "no" | "n" | "0" | "off" | "nee" | "nein" => Ok(Value::Bool(false)),
                _ => Err("must be true or false".into()),
            },
            FieldType::Choice => self.option(text).map(Value::String),
            FieldType::MultiChoice => {
                let sep = if text.contains('|') { '|' } else { ',' };
                let chosen = text
                    .split(sep)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| self.option(s))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.in_option_order(chosen))
            }
        }
    }

    /// Matches an option case-insensitively and returns it as the definition spells it.
    fn option(&self, s: &str) -> Result<String, String> {
        self.options
            .iter()
            .find(|o| o.eq_ignore_ascii_case(s.trim()))
            .cloned()
            .ok_or_else(|| self.options_reason())
    }

    fn options_reason(&self) -> String {
        format!("must be one of: {}", self.options.join(", "))
    }

    fn in_option_order(&self, chosen: Vec<String>) -> Value {
        Value::Array(
            self.options
                .iter()
                .filter(|o| chosen.contains(o))
                .map(|o| Value::String(o.clone()))
                .collect(),
        )
    }
}

fn parse_date(s: &str) -> Result<Value, String> {
    s.trim()
        .parse::<Date>()
        .map(|d| Value::String(d.to_string()))
        .map_err(|_| "must be a date (YYYY-MM-DD)".to_owned())
}

fn has_duplicates(options: &[String]) -> bool {
    options
        .iter()
        .enumerate()
        .any(|(i, o)| options[..i].iter().any(|p| p.eq_ignore_ascii_case(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: &str, options: &[&str]) -> FieldDef {
        FieldDef::new(
            "f",
            None,
            kind,
            options.iter().map(|s| s.to_string()).collect(),
        )
        .expect("valid definition")
    }

    #[test]
    fn json_values_by_type() {
        let cases: Vec<(FieldDef, Value, Result<Value, &str>)> = vec![
            (def("text", &[]), json!("hi"), Ok(json!("hi"))),
            (def("text", &[]), json!(3), Err("must be text")),
            (def("number", &[]), json!(3.5), Ok(json!(3.5))),
            (def("number", &[]), json!("3"), Err("must be a number")),
            (
                def("date", &[]),
                json!("2026-02-28"),
                Ok(json!("2026-02-28")),
            ),
            (
                def("date", &[]),
                json!("2026-02-30"),
                Err("must be a date (YYYY-MM-DD)"),
            ),
            (def("boolean", &[]), json!(true), Ok(json!(true))),
            (
                def("boolean", &[]),
                json!("yes"),
                Err("must be true or false"),
            ),
            (
                def("choice", &["Gold", "Silver"]),
                json!("gold"),
                Ok(json!("Gold")),
            ),
            (
                def("choice", &["Gold", "Silver"]),
                json!("Bronze"),
                Err("must be one of: Gold, Silver"),
            ),
            (
                def("multi_choice", &["a", "b", "c"]),
                json!(["c", "a"]),
                Ok(json!(["a", "c"])),
            ),
            (
                def("multi_choice", &["a", "b"]),
                json!("a"),
                Err("must be a list of options"),
            ),
            (def("number", &[]), Value::Null, Ok(Value::Null)),
        ];
        for (def, input, expected) in cases {
            let got = def.check_json(&input);
            assert_eq!(
                got,
                expected.map_err(str::to_owned),
                "{:?} {input}",
                def.kind
            );
        }
    }

    #[test]
    fn text_values_by_type() {
        let cases: Vec<(FieldDef, &str, Result<Value, &str>)> = vec![
            (def("number", &[]), "3,25", Ok(json!(3.25))),
            (def("number", &[]), "drie", Err("must be a number")),
            (def("boolean", &[]), "Ja", Ok(json!(true))),
            (def("boolean", &[]), "nein", Ok(json!(false))),
            (def("date", &[]), " 2027-01-01 ", Ok(json!("2027-01-01"))),
            (
                def("multi_choice", &["x", "y"]),
                "y|x",
                Ok(json!(["x", "y"])),
            ),
            (
                def("multi_choice", &["x", "y"]),
                "y,z",
                Err("must be one of: x, y"),
            ),
            (def("text", &[]), "", Ok(Value::Null)),
        ];
        for (def, input, expected) in cases {
            assert_eq!(
                def.check_text(input),
                expected.map_err(str::to_owned),
                "{input}"
            );
        }
    }

    #[test]
    fn definitions_name_the_attribute_at_fault() {
        let cases: &[(&str, &str, &[&str], &str)] = &[
            ("Score", "number", &[], "key"),
            ("1st", "number", &[], "key"),
            ("score", "integer", &[], "type"),
            ("tier", "choice", &[], "options"),
            ("tier", "choice", &["a", "A"], "options"),
            ("age", "number", &["a"], "options"),
        ];
        for (key, kind, options, field) in cases {
            let err = FieldDef::new(
                key,
                None,
                kind,
                options.iter().map(|s| s.to_string()).collect(),
            )
            .expect_err("invalid");
            assert!(err.get(field).is_some(), "{key} {kind}: {err}");
        }
    }
}
